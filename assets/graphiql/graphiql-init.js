// Starts GraphiQL on the gateway's /graphiql page (index.html beside this file). A separate file,
// not an inline script, so that the page runs under `script-src 'self'`.
//
// Configuration, first found wins:
//   endpoint: "endpoint" of the JSON in <script type="application/json" id="graphiql-config">,
//             then the data-endpoint attribute of #graphiql, then <meta name="graphql-endpoint">,
//             then "/graphql". It must be same-origin (the page's CSP has connect-src 'self').
//   subscriptions: "subscriptionEndpoint" of the JSON config (a same-origin path, default
//             endpoint + "/ws"), over graphql-transport-ws with graphql-ws's client
//             (window.graphqlWs, vendored); without that global, subscriptions are sent like
//             queries and the gateway says where they belong.
//   editors:  ?query=, ?variables= and ?headers= in the page's URL, then "defaultQuery" and
//             "defaultHeaders" of the JSON config, then GraphiQL's own default.
// While you edit, the URL's ?query= and ?variables= follow the editors (history.replaceState), so
// the address can be shared; this script never writes headers into the URL (they may hold
// credentials; a ?headers= given in the URL stays there). shouldPersistHeaders stays false, so
// GraphiQL's saved tabs hold no headers, but its history plugin still records the headers of
// each executed query in localStorage ("graphiql:queries"), as GraphiQL 3 always does.
(function () {
  'use strict';

  var root = document.getElementById('graphiql');

  function fail(message) {
    if (root) {
      root.textContent = 'GraphiQL could not start: ' + message;
    }
    throw new Error('graphiql-init: ' + message);
  }

  function readConfig() {
    var element = document.getElementById('graphiql-config');
    var text = element ? element.textContent.trim() : '';
    if (text === '' || text === '{{CONFIG_JSON}}') {
      return {};
    }
    var config;
    try {
      config = JSON.parse(text);
    } catch (error) {
      console.error('graphiql-init: #graphiql-config is not valid JSON', error);
      return {};
    }
    return config !== null && typeof config === 'object' && !Array.isArray(config) ? config : {};
  }

  function nonEmptyString(value) {
    return typeof value === 'string' && value !== '' ? value : undefined;
  }

  if (!root) {
    fail('the page has no #graphiql element');
  }
  if (!window.React || !window.ReactDOM || !window.GraphiQL) {
    fail('React, ReactDOM or GraphiQL did not load (see /graphiql/assets/)');
  }

  var config = readConfig();
  var meta = document.querySelector('meta[name="graphql-endpoint"]');
  var endpoint =
    nonEmptyString(config.endpoint) ||
    nonEmptyString(root.getAttribute('data-endpoint')) ||
    (meta && nonEmptyString(meta.getAttribute('content'))) ||
    '/graphql';

  var params = new URLSearchParams(window.location.search);
  var query = params.has('query') ? params.get('query') : undefined;
  var variables = params.has('variables') ? params.get('variables') : undefined;
  var headers = params.has('headers')
    ? params.get('headers')
    : nonEmptyString(config.defaultHeaders);

  function updateUrl(name, value) {
    var next = new URLSearchParams(window.location.search);
    if (value) {
      next.set(name, value);
    } else {
      next.delete(name);
    }
    var search = next.toString();
    window.history.replaceState(
      null,
      '',
      window.location.pathname + (search ? '?' + search : '') + window.location.hash,
    );
  }

  // The WebSocket opens with the first subscription, not with the page, and sends the Headers
  // tab (an Authorization or X-API-Key) in its connection_init, where the gateway looks for
  // credentials. Headers edited later open a new socket with them.
  var socket = null;
  function socketFor(headers) {
    if (!window.graphqlWs) {
      return undefined;
    }
    var sent = JSON.stringify(headers || {});
    if (socket && socket.headers !== sent) {
      socket.client.dispose();
      socket = null;
    }
    if (!socket) {
      var url = new URL(nonEmptyString(config.subscriptionEndpoint) || endpoint + '/ws', window.location.href);
      url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
      var client = window.graphqlWs.createClient({
        url: url.href,
        lazy: true,
        retryAttempts: 3,
        connectionParams: JSON.parse(sent),
      });
      socket = { headers: sent, client: client };
    }
    return socket.client;
  }

  function fetcher(params, options) {
    var headers = options && options.headers;
    return window.GraphiQL.createFetcher({ url: endpoint, wsClient: socketFor(headers) })(params, options);
  }

  var props = {
    fetcher: fetcher,
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: false,
    onEditQuery: function (value) {
      updateUrl('query', value);
    },
    onEditVariables: function (value) {
      updateUrl('variables', value);
    },
  };
  if (query !== undefined) {
    props.query = query;
  } else if (nonEmptyString(config.defaultQuery)) {
    props.defaultQuery = config.defaultQuery;
  }
  if (variables !== undefined) {
    props.variables = variables;
  }
  if (headers !== undefined) {
    props.headers = headers;
  }
  if (variables !== undefined || headers !== undefined) {
    props.defaultEditorToolsVisibility = variables !== undefined ? 'variables' : 'headers';
  }

  // GraphiQL fills its container; give it the whole viewport (CSSOM, which CSP does not restrict,
  // rather than a style attribute or element).
  document.documentElement.style.height = '100%';
  document.body.style.height = '100%';
  document.body.style.margin = '0';
  root.style.height = '100vh';

  window.ReactDOM.createRoot(root).render(window.React.createElement(window.GraphiQL, props));
})();
