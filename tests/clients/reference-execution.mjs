// graphql-js as the reference for how field errors shape `data` (the spec's "Handling Field
// Errors", as graphql-js implements it). Given the gateway's answer to a query, it executes
// the same query over the committed schema with resolvers that return what the gateway
// returned and throw where the gateway reported an error, and prints graphql-js's `data`.
// Equal to the gateway's `data` (key for key, nulls included) means the gateway completed its
// errors as graphql-js does.
//
//   node reference-execution.mjs <path/to/schema.graphql> <case.json>   ({query, variables, response})
import { readFileSync } from 'node:fs';
import { buildSchema, execute, parse } from 'graphql';

const [schemaPath, casePath] = process.argv.slice(2);
const input = JSON.parse(readFileSync(casePath, 'utf8'));
const schema = buildSchema(readFileSync(schemaPath, 'utf8'));
const failing = new Set((input.response.errors ?? []).filter((e) => e.path).map((e) => JSON.stringify(e.path)));

const pathOf = (path) => {
  const segments = [];
  for (let at = path; at; at = at.prev) segments.unshift(at.key);
  return segments;
};

const result = await execute({
  schema,
  document: parse(input.query),
  variableValues: input.variables ?? {},
  rootValue: input.response.data ?? {},
  fieldResolver: (source, _args, _context, info) => {
    if (failing.has(JSON.stringify(pathOf(info.path)))) {
      throw new Error('the gateway reported an error here');
    }
    return source?.[info.path.key];
  },
  // Abstract types (Node, _Entity): the gateway's answer names them where the query asks.
  typeResolver: (value) => value?.__typename,
});
console.log(JSON.stringify({ data: result.data ?? null }));
