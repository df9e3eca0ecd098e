// Subscribes with a real client library and prints each result as one JSON line, then
// {"complete":true} when the server completes the operation.
//
//   node subscribe.mjs ws  ws://127.0.0.1:8080/graphql/ws  '<query>' '<variables JSON>'
//   node subscribe.mjs sse http://127.0.0.1:8080/graphql    '<query>' '<variables JSON>'
//   node subscribe.mjs multipart http://127.0.0.1:8080/graphql '<query>' '<variables JSON>'
//
// `ws` is graphql-ws (the graphql-transport-ws protocol) over the `ws` package; `sse` is
// graphql-sse in distinct-connections mode; `multipart` is Apollo Client's own HttpLink (its
// multipart subscriptions over plain HTTP). Exits 1 on an error (printed as {"error": ...}),
// 2 on bad arguments; SUBSCRIBE_TIMEOUT_MS (default 30000) bounds the whole run.
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { createClient as createWsClient } from 'graphql-ws';
import { createClient as createSseClient } from 'graphql-sse';
import WebSocket from 'ws';

const [transport, url, query, variables = '{}'] = process.argv.slice(2);
if (!['ws', 'sse', 'multipart'].includes(transport) || !url || !query) {
  console.error('usage: node subscribe.mjs ws|sse|multipart URL QUERY [VARIABLES_JSON]');
  process.exit(2);
}
const timeout = setTimeout(() => {
  console.log(JSON.stringify({ error: 'timed out' }));
  process.exit(1);
}, Number(process.env.SUBSCRIBE_TIMEOUT_MS ?? 30000));

/** Apollo Client over HttpLink, shaped as the other two clients. */
function createApolloClient() {
  const apollo = new ApolloClient({ link: new HttpLink({ uri: url }), cache: new InMemoryCache() });
  return {
    subscribe: (operation, sink) => {
      apollo
        .subscribe({ query: gql(operation.query), variables: operation.variables, fetchPolicy: 'no-cache' })
        .subscribe({
          next: ({ data, error }) => (error ? sink.error(error) : sink.next({ data })),
          error: (error) => sink.error(error),
          complete: () => sink.complete(),
        });
    },
    dispose: () => apollo.stop(),
  };
}

const client =
  transport === 'ws'
    ? createWsClient({ url, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true })
    : transport === 'sse'
      ? createSseClient({ url, retryAttempts: 0 })
      : createApolloClient();

client.subscribe(
  { query, variables: JSON.parse(variables) },
  {
    next: (result) => console.log(JSON.stringify(result)),
    error: (error) => {
      console.log(JSON.stringify({ error: error?.message ?? String(error), details: error }));
      process.exit(1);
    },
    complete: () => {
      console.log(JSON.stringify({ complete: true }));
      clearTimeout(timeout);
      client.dispose();
      process.exit(0);
    },
  },
);
