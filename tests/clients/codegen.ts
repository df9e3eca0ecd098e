// GraphQL Code Generator (client preset) against the live gateway: introspects
// $GATEWAY_URL/graphql, checks operations/*.graphql against that schema and writes typed
// documents to generated/ (gitignored).
//
//   GATEWAY_URL=http://127.0.0.1:8080 npm run codegen        (from tests/clients)
//
// Exits non-zero when GATEWAY_URL is unset, the schema cannot be loaded (gateway down,
// introspection refused) or an operation does not validate. CODEGEN_SCHEMA=path/to/schema.graphql
// uses a schema file instead of the live endpoint (to check the operations offline).
import type { CodegenConfig } from '@graphql-codegen/cli';

function schemaSource(): string {
  const file = process.env.CODEGEN_SCHEMA;
  if (file) return file;
  const base = process.env.GATEWAY_URL;
  if (!base) {
    throw new Error('codegen.ts: set GATEWAY_URL to the gateway base URL, e.g. http://127.0.0.1:8080');
  }
  return `${base.replace(/\/+$/, '')}/graphql`;
}

const config: CodegenConfig = {
  schema: schemaSource(),
  documents: ['operations/*.graphql'],
  ignoreNoDocuments: false,
  errorsOnly: false,
  overwrite: true,
  generates: {
    'generated/': {
      preset: 'client',
      config: {
        // The gateway's custom scalars, as JSON carries them.
        scalars: { DateTime: 'string', Long: 'number' },
        enumsAsTypes: true,
      },
    },
  },
};

export default config;
