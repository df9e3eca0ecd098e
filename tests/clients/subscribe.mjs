// Subscribes with a real client library and prints each result as one JSON line, then
// {"complete":true} when the server completes the operation.
//
//   node subscribe.mjs ws  ws://127.0.0.1:8080/graphql/ws  '<query>' '<variables JSON>'
//   node subscribe.mjs sse http://127.0.0.1:8080/graphql    '<query>' '<variables JSON>'
//
// `ws` is graphql-ws (the graphql-transport-ws protocol) over the `ws` package; `sse` is
// graphql-sse in distinct-connections mode. Exits 1 on an error (printed as {"error": ...}),
// 2 on bad arguments; SUBSCRIBE_TIMEOUT_MS (default 30000) bounds the whole run.
import { createClient as createWsClient } from 'graphql-ws';
import { createClient as createSseClient } from 'graphql-sse';
import WebSocket from 'ws';

const [transport, url, query, variables = '{}'] = process.argv.slice(2);
if (!['ws', 'sse'].includes(transport) || !url || !query) {
  console.error('usage: node subscribe.mjs ws|sse URL QUERY [VARIABLES_JSON]');
  process.exit(2);
}
const timeout = setTimeout(() => {
  console.log(JSON.stringify({ error: 'timed out' }));
  process.exit(1);
}, Number(process.env.SUBSCRIBE_TIMEOUT_MS ?? 30000));

const client =
  transport === 'ws'
    ? createWsClient({ url, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true })
    : createSseClient({ url, retryAttempts: 0 });

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
