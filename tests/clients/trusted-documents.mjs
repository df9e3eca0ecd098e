// Runs every operation GraphQL Code Generator's client preset generated (with
// `persistedDocuments: true`) with Apollo Client by hash only, as a frontend built that way does:
// Apollo's persisted-queries link sends extensions.persistedQuery.sha256Hash, taking the hash
// from the generated document's `__meta__` (codegen's recipe for Apollo Client). Prints one JSON
// line: each operation's result, and every request body sent (so a test can see that no query
// text went over the wire).
//
//   node trusted-documents.mjs URL GENERATED_DIR '<variables by operation name, JSON>' [API_KEY]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApolloClient, HttpLink, InMemoryCache } from '@apollo/client';
import { createPersistedQueryLink } from '@apollo/client/link/persisted-queries';

const [url, generated, variablesJson = '{}', apiKey] = process.argv.slice(2);
if (!url || !generated) {
  console.error('usage: node trusted-documents.mjs URL GENERATED_DIR [VARIABLES_JSON] [API_KEY]');
  process.exit(2);
}
const variables = JSON.parse(variablesJson);
// graphql.ts is TypeScript, which this Node does not load; each document in it is a JSON object
// literal (`export const XDocument = {…} as unknown as DocumentNode<…>`), read as such.
const typescript = readFileSync(join(generated, 'graphql.ts'), 'utf8');
const documents = [...typescript.matchAll(/^export const (\w+)Document = (\{.*\}) as unknown as /gm)].map(
  ([, name, json]) => ({ name, document: JSON.parse(json) }),
);
if (documents.length === 0) {
  console.error(`no generated documents in ${generated}/graphql.ts`);
  process.exit(1);
}

const sent = [];
const recordingFetch = (uri, options) => {
  sent.push(JSON.parse(options.body));
  return fetch(uri, options);
};
const link = createPersistedQueryLink({ generateHash: (document) => document.__meta__.hash }).concat(
  new HttpLink({ uri: url, fetch: recordingFetch, headers: apiKey ? { 'X-API-Key': apiKey } : {} }),
);
const client = new ApolloClient({ link, cache: new InMemoryCache() });

const results = [];
for (const { name, document } of documents) {
  const hash = document.__meta__.hash;
  try {
    const { data, error } = await client.query({
      query: document,
      variables: variables[name] ?? {},
      fetchPolicy: 'no-cache',
      errorPolicy: 'all',
    });
    results.push({ name, hash, data: data ?? null, error: error?.message ?? null });
  } catch (error) {
    results.push({ name, hash, data: null, error: error?.message ?? String(error) });
  }
}
console.log(JSON.stringify({ results, sent }));
