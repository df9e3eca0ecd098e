// A webhook endpoint for the tests: checks each delivery's signature with the Standard Webhooks
// reference library (not the gateway's own code, so a signing bug cannot hide behind itself) and
// answers from a script, so retries, back-off and timeouts can be driven from Rust.
//
//   node webhook-receiver.mjs        # prints {"port":N} once listening on 127.0.0.1 (PORT, or any free one), then only stderr
//
//   PUT  /_config/<name>   {"secrets": ["whsec_..."], "responses": [{"status": 500, "delayMs": 0, "headers": {}}]}
//                          -> 204 (400 with the reason for a bad config)
//   POST /hooks/<name>     one delivery: recorded, then answered with the next scripted response (200 after)
//   GET  /_received/<name> -> the recorded deliveries, in arrival order
import http from 'node:http';
import { Webhook } from 'standardwebhooks';

/** name -> {secrets: [string], webhooks: [Webhook], responses: [...]}; received: name -> [entry]. */
const endpoints = new Map();
const received = new Map();

const json = (res, status, value) =>
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));

// Rejected at PUT time so a typo in a test's script fails there, not as a mystery mid-delivery.
function parseConfig(raw) {
  const config = JSON.parse(raw);
  const secrets = config?.secrets ?? [];
  const responses = config?.responses ?? [];
  if (!Array.isArray(secrets) || !secrets.every((s) => typeof s === 'string')) throw new Error('secrets: strings');
  if (!Array.isArray(responses)) throw new Error('responses: an array');
  const script = responses.map(({ status = 200, delayMs = 0, headers = {} } = {}) => {
    if (!Number.isInteger(status) || status < 200 || status > 599) throw new Error(`bad status ${status}`);
    if (!(Number.isFinite(delayMs) && delayMs >= 0)) throw new Error(`bad delayMs ${delayMs}`);
    for (const [k, v] of Object.entries(headers)) {
      http.validateHeaderName(k);
      http.validateHeaderValue(k, String(v));
    }
    return { status, delayMs, headers };
  });
  // The constructor base64-decodes the key (whsec_ prefix optional) and throws on a bad one.
  return { secrets, webhooks: secrets.map((s) => new Webhook(s)), responses: script };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function deliver(req, res, name, raw) {
  const receivedAtMs = Date.now();
  const endpoint = endpoints.get(name);
  const verifiedWith = [];
  const verifyErrors = [];
  for (const [i, webhook] of (endpoint?.webhooks ?? []).entries()) {
    try {
      // jsonParse: false, or a correctly signed non-JSON body would throw as if unverified.
      webhook.verify(raw, req.headers, { jsonParse: false });
      verifiedWith.push(i);
      verifyErrors.push(null);
    } catch (e) {
      verifyErrors.push(String(e?.message ?? e));
    }
  }
  let body = null;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {}
  const response = endpoint?.responses.shift() ?? { status: 200, delayMs: 0, headers: {} };
  const entry = {
    id: req.headers['webhook-id'] ?? null,
    timestamp: req.headers['webhook-timestamp'] ?? null,
    signature: req.headers['webhook-signature'] ?? null,
    verifiedWith,
    verifyErrors,
    body,
    status: response.status,
    receivedAtMs,
  };
  // Recorded before the delay so a test can see a delivery the gateway is still waiting on.
  if (!received.has(name)) received.set(name, []);
  received.get(name).push(entry);
  if (response.delayMs > 0) await new Promise((r) => setTimeout(r, response.delayMs));
  res.writeHead(response.status, response.headers).end();
  entry.answeredAtMs = Date.now();
}

const server = http.createServer(async (req, res) => {
  try {
    const path = new URL(req.url, 'http://receiver').pathname;
    const notFound = () => json(res, 404, { error: `no route for ${req.method} ${path}` });
    const route = /^\/(_config|hooks|_received)\/(.+)$/.exec(path);
    let name = null;
    try {
      name = route && decodeURIComponent(route[2]);
    } catch {} // bad percent-encoding: no such name, so a 404 below
    const raw = await readBody(req);
    if (name === null) return notFound();
    if (route[1] === '_config' && req.method === 'PUT') {
      let config;
      try {
        config = parseConfig(raw.toString('utf8'));
      } catch (e) {
        return json(res, 400, { error: String(e?.message ?? e) });
      }
      endpoints.set(name, config);
      return res.writeHead(204).end();
    }
    if (route[1] === 'hooks' && req.method === 'POST') return await deliver(req, res, name, raw);
    if (route[1] === '_received' && req.method === 'GET') return json(res, 200, received.get(name) ?? []);
    notFound();
  } catch (e) {
    // An aborted upload (nothing is recorded then), a bug...: answer if still possible, never crash.
    console.error('webhook-receiver:', e);
    if (!res.headersSent && !res.destroyed) json(res, 500, { error: String(e?.message ?? e) });
  }
});

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});

// A test process that dies without killing us (panic=abort, SIGKILL of cargo) would otherwise
// leave this server running and holding any inherited pipe open: exit once we are orphaned.
const parent = process.ppid;
setInterval(() => process.ppid !== parent && process.exit(0), 1000).unref();
