// GraphQL Code Generator (client preset) against the live gateway: introspects
// $GATEWAY_URL/graphql, checks operations/*.graphql against that schema and writes typed
// documents to generated/ (gitignored), or to $CODEGEN_OUTPUT, with the manifest of trusted
// documents a frontend would push (persisted-documents.json: `persistedDocuments: true`).
//
//   GATEWAY_URL=http://127.0.0.1:8080 npm run codegen        (from tests/clients)
//
// Exits non-zero when GATEWAY_URL is unset, the schema cannot be loaded (gateway down,
// introspection refused) or an operation does not validate. CODEGEN_SCHEMA=path/to/schema.graphql
// uses a schema file instead of the live endpoint (to check the operations offline).
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CodegenConfig } from '@graphql-codegen/cli';
import { preset as clientPreset } from '@graphql-codegen/client-preset';

// Paths relative to this file and the preset imported (not named), so that the config works from
// any working directory.
const here = dirname(fileURLToPath(import.meta.url));

function schemaSource(): string {
  const file = process.env.CODEGEN_SCHEMA;
  if (file) return resolve(file);
  const base = process.env.GATEWAY_URL;
  if (!base) {
    throw new Error('codegen.ts: set GATEWAY_URL to the gateway base URL, e.g. http://127.0.0.1:8080');
  }
  return `${base.replace(/\/+$/, '')}/graphql`;
}

const config: CodegenConfig = {
  schema: schemaSource(),
  documents: [join(here, 'operations/*.graphql')],
  ignoreNoDocuments: false,
  errorsOnly: false,
  overwrite: true,
  generates: {
    [`${resolve(process.env.CODEGEN_OUTPUT ?? join(here, 'generated'))}/`]: {
      preset: clientPreset,
      // persisted-documents.json ({"sha256:<hex>": "<document>"}) for `datasync-gateway documents
      // push`, and each generated document's hash in its `__meta__`, for the client to send.
      presetConfig: { persistedDocuments: true },
      config: {
        // The gateway's custom scalars, as JSON carries them.
        scalars: { DateTime: 'string', Long: 'number' },
        enumsAsTypes: true,
      },
    },
  },
};

export default config;
