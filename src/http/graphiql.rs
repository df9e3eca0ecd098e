//! GraphiQL, served entirely from the binary: the page and the vendored production builds of
//! GraphiQL, React and graphql-ws (for subscriptions over `/graphql/ws`) (`assets/graphiql/`, see its README for versions and updating). Nothing is
//! fetched from another origin, and the page's Content-Security-Policy would block it if it were.

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::AppState;

/// What the page may load: only this origin. Inline styles are allowed because GraphiQL inserts
/// a `<style>` element for its dialogs; fonts are `data:` URLs inside its CSS.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

const PAGE: &str = include_str!("../../assets/graphiql/index.html");

const ASSETS: [(&str, &str, &[u8]); 6] = [
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
    ),
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql.min.js"),
    ),
    ("graphiql.min.css", "text/css; charset=utf-8", include_bytes!("../../assets/graphiql/graphiql.min.css")),
    (
        "graphql-ws.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphql-ws.min.js"),
    ),
    (
        "graphiql-init.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql-init.js"),
    ),
];

/// The page with its settings: the endpoint, and the editor's first query.
pub fn page(default_query: Option<&str>) -> String {
    let config = serde_json::json!({
        "endpoint": "/graphql",
        "subscriptionEndpoint": "/graphql/ws",
        "defaultQuery": default_query,
    });
    // `<` escaped so the JSON cannot close its <script> element.
    PAGE.replacen("{{CONFIG_JSON}}", &config.to_string().replace('<', "\\u003c"), 1)
}

pub async fn show(State(state): State<AppState>) -> Response {
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CONTENT_SECURITY_POLICY, CSP),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (CACHE_CONTROL, "no-cache"),
        ],
        state.graphiql_page.to_string(),
    )
        .into_response()
}

pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, bytes)) => (
            [
                (CONTENT_TYPE, *content_type),
                (X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (CACHE_CONTROL, "public, max-age=86400"),
            ],
            *bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `/` is not an API: send people to the explorer.
pub async fn root() -> Redirect {
    Redirect::to("/graphiql")
}
