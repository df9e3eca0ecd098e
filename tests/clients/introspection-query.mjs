#!/usr/bin/env node
// The introspection query a real client sends: graphql-js's getIntrospectionQuery() with every
// option the installed graphql package knows, as GraphiQL, GraphQL Code Generator and most IDEs
// build it.
//
//   node introspection-query.mjs            prints {"query": "..."} (a POST /graphql body) on stdout
//   node introspection-query.mjs --graphql  prints the query as a .graphql document with a header
//   node introspection-query.mjs --write    rewrites introspection-query.graphql beside this file
//
// Exits non-zero if the installed graphql package ignores one of the options (for example oneOf,
// which needs graphql >= 16.9), so a downgrade cannot silently shrink the query.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getIntrospectionQuery } from 'graphql';

const OPTIONS = {
  descriptions: true,
  specifiedByUrl: true,
  directiveIsRepeatable: true,
  schemaDescription: true,
  inputValueDeprecation: true,
  oneOf: true,
};

// Each option and a field it must add to the query.
const EXPECTED_FIELDS = {
  descriptions: /\bdescription\b/,
  specifiedByUrl: /\bspecifiedByURL\b/,
  directiveIsRepeatable: /\bisRepeatable\b/,
  schemaDescription: /__schema\s*{\s*description\b/,
  inputValueDeprecation: /inputFields\(includeDeprecated: true\)/,
  oneOf: /\bisOneOf\b/,
};

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const graphqlVersion = JSON.parse(
  readFileSync(require.resolve('graphql/package.json'), 'utf8'),
).version;

const query = getIntrospectionQuery(OPTIONS);
const missing = Object.entries(EXPECTED_FIELDS)
  .filter(([, re]) => !re.test(query))
  .map(([name]) => name);
if (missing.length > 0) {
  console.error(
    `introspection-query: graphql ${graphqlVersion} ignored option(s) ${missing.join(', ')}; ` +
      'install graphql >= 16.9 (see package.json)',
  );
  process.exit(1);
}

function asDocument() {
  return (
    `# getIntrospectionQuery(${JSON.stringify(OPTIONS)})\n` +
    `# from the npm package graphql@${graphqlVersion}; regenerate with: node tests/clients/introspection-query.mjs --write\n` +
    `${query.trim()}\n`
  );
}

const arg = process.argv[2];
if (arg === undefined) {
  process.stdout.write(`${JSON.stringify({ query })}\n`);
} else if (arg === '--graphql') {
  process.stdout.write(asDocument());
} else if (arg === '--write') {
  const file = join(here, 'introspection-query.graphql');
  writeFileSync(file, asDocument());
  console.error(`introspection-query: wrote ${file} (graphql ${graphqlVersion})`);
} else {
  console.error('usage: node introspection-query.mjs [--graphql | --write]');
  process.exit(2);
}
