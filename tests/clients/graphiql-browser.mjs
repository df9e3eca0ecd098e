#!/usr/bin/env node
// Drives the gateway's GraphiQL page in a real headless Chromium, with the network cut off
// from everything but the gateway:
//
//   node graphiql-browser.mjs <gatewayBaseUrl> <query> <expectText> <screenshotPath>
//
// Opens <gatewayBaseUrl>/graphiql?query=<query>, waits for the editor, clicks the run button,
// waits (30 s at most) until the result pane contains <expectText>, saves a PNG screenshot and
// prints one line of JSON: {ok, url, blocked, cspViolations, pageErrors, consoleErrors, csp,
// requests, resultSnippet[, error]}. Exits 0 on success; 1 if the page failed (the JSON says
// why, and so does the last line on stderr); 2 on bad arguments or when Chromium cannot start.
//
// Fails when: the page asks for any URL outside the gateway's origin (every such request is
// aborted and listed in "blocked"), the browser reports a Content-Security-Policy violation,
// the page throws an uncaught error, the editor or the run button does not appear, or the
// result does not show <expectText> in time. Console errors are reported but not fatal (GraphiQL
// logs some for failed schema fetches).
//
// Environment: CHROMIUM_PATH (default /usr/bin/chromium); GRAPHIQL_TIMEOUT_MS (default 30000,
// the wait for the result; page load and editor get the same); GRAPHIQL_HEADERS, a JSON object
// put in GraphiQL's Headers tab (through ?headers=); GRAPHIQL_DEBUG=1 logs every request and
// console message on stderr.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const USAGE = 'usage: node graphiql-browser.mjs <gatewayBaseUrl> <query> <expectText> <screenshotPath>';
const args = process.argv.slice(2);
if (args.length !== 4 || args.some((a) => a === '')) {
  console.error(USAGE);
  process.exit(2);
}
const [baseArg, query, expectText, screenshotPath] = args;

let base;
try {
  base = new URL(baseArg.endsWith('/') ? baseArg : `${baseArg}/`);
} catch {
  console.error(`graphiql-browser: not a URL: ${baseArg}\n${USAGE}`);
  process.exit(2);
}
if (base.protocol !== 'http:' && base.protocol !== 'https:') {
  console.error(`graphiql-browser: not an http(s) URL: ${baseArg}`);
  process.exit(2);
}
const origin = base.origin;
const headersParam = process.env.GRAPHIQL_HEADERS ? `&headers=${encodeURIComponent(process.env.GRAPHIQL_HEADERS)}` : '';
const pageUrl = new URL(`graphiql?query=${encodeURIComponent(query)}${headersParam}`, base).href;
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const timeout = Number(process.env.GRAPHIQL_TIMEOUT_MS || 30000);
const debug = process.env.GRAPHIQL_DEBUG === '1';

const blocked = [];
const cspViolations = [];
const pageErrors = [];
const consoleErrors = [];
const requests = [];
let csp = null;

function debugLog(...parts) {
  if (debug) console.error('graphiql-browser:', ...parts);
}

function isSameOrigin(url) {
  try {
    return new URL(url).origin === origin;
  } catch {
    return false;
  }
}

function looksLikeCsp(text) {
  return /Content[- ]Security[- ]Policy/i.test(text);
}

const userDataDir = mkdtempSync(join(tmpdir(), 'graphiql-browser-'));
let context;
let summary = { ok: false, url: pageUrl };
let failure = null;

try {
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      // Playwright adds --headless and --user-data-dir itself; these are the rest.
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1280, height: 800 },
      serviceWorkers: 'block',
    });
  } catch (error) {
    console.error(`graphiql-browser: cannot start Chromium at ${executablePath}: ${error.message}`);
    process.exitCode = 2;
    throw null;
  }

  // Every request of every page and worker in the context goes through here.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (isSameOrigin(url)) {
      return route.continue();
    }
    blocked.push(url);
    debugLog('BLOCKED', url);
    return route.abort('blockedbyclient');
  });
  // Reported by the page itself, so that violations are seen even where the console is quiet.
  await context.exposeBinding('__reportCspViolation', (_source, violation) => {
    cspViolations.push(violation);
  });
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__reportCspViolation({
        directive: e.effectiveDirective,
        blockedURI: e.blockedURI,
        sample: e.sample,
        source: e.sourceFile ? `${e.sourceFile}:${e.lineNumber}` : undefined,
      });
    });
  });

  const page = context.pages()[0] ?? (await context.newPage());
  page.on('request', (request) => {
    requests.push(`${request.method()} ${request.url()}`);
    debugLog('request', request.method(), request.url());
  });
  page.on('websocket', (ws) => {
    if (!isSameOrigin(ws.url().replace(/^ws/, 'http'))) blocked.push(ws.url());
  });
  page.on('pageerror', (error) => {
    pageErrors.push(String(error && error.stack ? error.stack.split('\n')[0] : error));
  });
  page.on('console', (message) => {
    const text = message.text();
    debugLog(`console.${message.type()}`, text);
    if (looksLikeCsp(text)) {
      cspViolations.push({ console: text });
    } else if (message.type() === 'error') {
      consoleErrors.push(text);
    }
  });

  const response = await page.goto(pageUrl, { waitUntil: 'load', timeout });
  if (!response || !response.ok()) {
    throw new Error(`GET ${pageUrl} answered ${response ? response.status() : 'nothing'}`);
  }
  csp = (await response.allHeaders())['content-security-policy'] ?? null;

  const editor = page.locator('.graphiql-query-editor .CodeMirror');
  try {
    await editor.first().waitFor({ state: 'visible', timeout });
  } catch {
    const text = ((await page.locator('body').innerText().catch(() => '')) || '').slice(0, 200);
    throw new Error(`the query editor did not appear within ${timeout} ms; page shows: ${JSON.stringify(text)}`);
  }
  const editorValue = await editor.first().evaluate((el) => (el.CodeMirror ? el.CodeMirror.getValue() : el.innerText));
  if (editorValue.trim() !== query.trim()) {
    throw new Error(`the editor shows ${JSON.stringify(editorValue.slice(0, 200))}, not the ?query= given`);
  }

  await page.locator('.graphiql-execute-button').first().click({ timeout });

  // The result pane is a read-only CodeMirror; its full text is on the CodeMirror instance
  // (the DOM holds only the visible lines).
  const resultText = () =>
    page
      .locator('.graphiql-response .CodeMirror')
      .first()
      .evaluate((el) => (el.CodeMirror ? el.CodeMirror.getValue() : el.innerText))
      .catch(() => '');
  try {
    await page.waitForFunction(
      (expected) => {
        const el = document.querySelector('.graphiql-response .CodeMirror');
        const text = el ? (el.CodeMirror ? el.CodeMirror.getValue() : el.innerText) : '';
        return text.includes(expected);
      },
      expectText,
      { timeout, polling: 100 },
    );
  } catch {
    const shown = await resultText();
    summary.resultSnippet = shown.slice(0, 300);
    throw new Error(`the result did not show ${JSON.stringify(expectText)} within ${timeout} ms`);
  }
  summary.resultSnippet = (await resultText()).slice(0, 300);
  // A moment for late violations (styles, fonts) to be reported.
  await page.waitForTimeout(250);
} catch (error) {
  if (error !== null) failure = error.message || String(error);
} finally {
  if (context) {
    try {
      const page = context.pages()[0];
      if (page) await page.screenshot({ path: screenshotPath, fullPage: false });
    } catch (error) {
      failure = failure ?? `cannot save the screenshot to ${screenshotPath}: ${error.message}`;
    }
    await context.close().catch(() => {});
  }
  rmSync(userDataDir, { recursive: true, force: true });
}

if (process.exitCode === 2) process.exit(2);

// Most telling first: a page that reached outside, violated its CSP or threw explains why a
// later step (editor, result) failed.
const failures = [];
if (blocked.length > 0) {
  failures.push(`the page tried to load ${blocked.length} URL(s) outside ${origin}: ${blocked.join(', ')}`);
}
if (cspViolations.length > 0) {
  failures.push(`Content-Security-Policy violation(s): ${JSON.stringify(cspViolations)}`);
}
if (pageErrors.length > 0) {
  failures.push(`uncaught page error(s): ${pageErrors.join(' | ')}`);
}
if (failure) {
  // Playwright appends a multi-line call log; the first line says it.
  failures.push(failure.split('\n')[0]);
}
failure = failures.length > 0 ? failures.join('; ') : null;

summary = {
  ...summary,
  ok: failure === null,
  blocked,
  cspViolations,
  pageErrors,
  consoleErrors,
  csp,
  requests: requests.length,
  screenshot: screenshotPath,
  ...(failure ? { error: failure } : {}),
};
process.stdout.write(`${JSON.stringify(summary)}\n`);
if (failure) {
  console.error(`graphiql-browser: FAILED: ${failure}`);
  process.exit(1);
}
