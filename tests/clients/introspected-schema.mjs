// Runs graphql-js's standard introspection query (the vendored introspection-query.graphql)
// against a live gateway, builds the schema from the answer as clients do, and compares it with
// the committed schema.graphql, both printed by graphql-js after sorting.
//
//   node introspected-schema.mjs <gatewayBaseUrl> <path/to/schema.graphql>
//
// Exit 0 when they are equal; 1 with a diff-like report otherwise.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildClientSchema, buildSchema, lexicographicSortSchema, printSchema } from 'graphql';

const [base, schemaPath] = process.argv.slice(2);
if (!base || !schemaPath) {
  console.error('usage: node introspected-schema.mjs <gatewayBaseUrl> <schema.graphql>');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const query = readFileSync(join(here, 'introspection-query.graphql'), 'utf8');
const response = await fetch(`${base.replace(/\/+$/, '')}/graphql`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ query }),
});
const body = await response.json();
if (body.errors) {
  console.error(`introspection failed: ${JSON.stringify(body.errors)}`);
  process.exit(1);
}
// async-graphql 7.2.1 answers `__schema.description` with the built-in description of the
// __Schema type rather than null (the SDL it prints has no schema description); types, fields,
// arguments and directives are what is compared.
body.data.__schema.description = null;
const print = (schema) => printSchema(lexicographicSortSchema(schema));
const live = print(buildClientSchema(body.data));
const committed = print(buildSchema(readFileSync(schemaPath, 'utf8')));
if (live !== committed) {
  const a = live.split('\n');
  const b = committed.split('\n');
  const first = a.findIndex((line, i) => line !== b[i]);
  console.error(`schemas differ from line ${first + 1}:\n  live:      ${a[first]}\n  committed: ${b[first]}`);
  process.exit(1);
}
console.log(JSON.stringify({ ok: true, types: Object.keys(body.data.__schema.types).length }));
