// Composes the gateway as an Apollo Federation 2 subgraph with a second, small subgraph that
// extends `TaskExecution` by `id` with an `owner`, behind a real federation gateway
// (@apollo/gateway with IntrospectAndCompose, which reads each subgraph's `_service { sdl }`),
// runs QUERY through it, and prints one JSON line: {"supergraph": <SDL>, "result": <response>}.
//
//   node federation.mjs http://127.0.0.1:8080/graphql '<query>'
//
// The second subgraph also answers `ownedExecutions`: references (ids only) to the executions
// listed in OWNED_EXECUTIONS (comma-separated ARNs), which the federation gateway resolves
// through the gateway's `_entities`.
//
// Exits 1 when composition or the query fails (printed as {"error": ...}).
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { ApolloGateway, IntrospectAndCompose } from '@apollo/gateway';
import { parse } from 'graphql';

const [subgraphUrl, query] = process.argv.slice(2);
if (!subgraphUrl || !query) {
  console.error('usage: node federation.mjs SUBGRAPH_URL QUERY');
  process.exit(2);
}
const fail = (error) => {
  console.log(JSON.stringify({ error: String(error?.stack ?? error) }));
  process.exit(1);
};

try {
  const owners = new ApolloServer({
    schema: buildSubgraphSchema({
      typeDefs: parse(`
        extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key"])
        type TaskExecution @key(fields: "id") {
          id: ID!
          "The team that owns the task, from this other service."
          owner: String!
        }
        type Query {
          "Executions this service knows by id only."
          ownedExecutions: [TaskExecution!]!
        }
      `),
      resolvers: {
        Query: {
          ownedExecutions: () =>
            (process.env.OWNED_EXECUTIONS ?? '').split(',').filter(Boolean).map((id) => ({ id, owner: `team-${id.slice(-4)}` })),
        },
        TaskExecution: {
          __resolveReference: (reference) => ({ id: reference.id, owner: `team-${reference.id.slice(-4)}` }),
        },
      },
    }),
  });
  const { url: ownersUrl } = await startStandaloneServer(owners, { listen: { port: 0, host: '127.0.0.1' } });

  let supergraph = '';
  const gateway = new ApolloGateway({
    supergraphSdl: new IntrospectAndCompose({
      subgraphs: [
        { name: 'datasync', url: subgraphUrl },
        { name: 'owners', url: ownersUrl },
      ],
    }),
  });
  gateway.onSchemaLoadOrUpdate(({ coreSupergraphSdl }) => {
    supergraph = coreSupergraphSdl;
  });
  const router = new ApolloServer({ gateway });
  const { url: routerUrl } = await startStandaloneServer(router, { listen: { port: 0, host: '127.0.0.1' } });

  const response = await fetch(routerUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
  });
  const result = await response.json();
  console.log(JSON.stringify({ supergraph, result }));
  await router.stop();
  await owners.stop();
  process.exit(0);
} catch (error) {
  fail(error);
}
