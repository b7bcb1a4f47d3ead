//! `GET /graphql`: GraphiQL with every `playground/` operation preloaded as a tab, and a
//! small upload bar (GraphiQL itself cannot attach files to the multipart request spec).
//!
//! Its scripts come from this binary (`/graphql/assets/…`, feature `graphiql-assets`, on for
//! the local server), so the page works with no network at all; the Lambda build leaves the
//! 4 MB out and its page loads the same pinned files from unpkg.com (`graphiql/PROVENANCE.md`).
//! Subscriptions run over Server-Sent Events (`/graphql/stream`, at the stream URL the server
//! names where that is elsewhere), so a subscription tab streams wherever the API is served.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use super::playground::OPERATIONS;
use super::AppState;

/// The pinned GraphiQL release (and the path its assets are served under).
const GRAPHIQL_VERSION: &str = "3.8.3";

pub fn page(state: &AppState) -> Html<String> {
    Html(render(state.stream_url.as_deref()))
}

fn render(stream_url: Option<&str>) -> String {
    let tabs: Vec<serde_json::Value> = OPERATIONS
        .iter()
        .map(|(_, query)| serde_json::json!({ "query": query }))
        .collect();
    // `</` inside a <script> would end it early; JSON allows the escaped form.
    let json = |value: &serde_json::Value| value.to_string().replace("</", "<\\/");
    let tabs = json(&serde_json::Value::from(tabs));
    let stream_url = json(&serde_json::Value::from(stream_url.unwrap_or("")));
    let mut page = TEMPLATE
        .replace("__TABS__", &tabs)
        .replace("__STREAM_URL__", &stream_url);
    for (placeholder, local, unpkg) in [
        (
            "__GRAPHIQL_CSS__",
            "graphiql.min.css",
            "graphiql@3.8.3/graphiql.min.css",
        ),
        ("__GRAPHIQL_JS__", "graphiql.min.js", "graphiql@3.8.3/graphiql.min.js"),
        (
            "__REACT_JS__",
            "react.production.min.js",
            "react@18.3.1/umd/react.production.min.js",
        ),
        (
            "__REACT_DOM_JS__",
            "react-dom.production.min.js",
            "react-dom@18.3.1/umd/react-dom.production.min.js",
        ),
    ] {
        let url = if cfg!(feature = "graphiql-assets") {
            format!("/graphql/assets/{GRAPHIQL_VERSION}/{local}")
        } else {
            format!("https://unpkg.com/{unpkg}")
        };
        page = page.replace(placeholder, &url);
    }
    page
}

/// `GET /graphql/assets/{version}/{file}`: the embedded files, cached for good (the version is
/// in the path).
pub async fn asset(Path((version, file)): Path<(String, String)>) -> Response {
    let found = (version == GRAPHIQL_VERSION)
        .then(|| ASSETS.iter().find(|(name, _, _)| *name == file))
        .flatten();
    match found {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(feature = "graphiql-assets")]
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("graphiql/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("graphiql/graphiql.min.css"),
    ),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("graphiql/react-dom.production.min.js"),
    ),
    (
        "LICENSE-graphiql",
        "text/plain; charset=utf-8",
        include_bytes!("graphiql/LICENSE-graphiql"),
    ),
    (
        "LICENSE-react",
        "text/plain; charset=utf-8",
        include_bytes!("graphiql/LICENSE-react"),
    ),
];

#[cfg(not(feature = "graphiql-assets"))]
const ASSETS: &[(&str, &str, &[u8])] = &[];

const TEMPLATE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <meta name="viewport" content="width=device-width, initial-scale=1" />
  <title>pawql · GraphiQL</title>
  <link rel="stylesheet" href="__GRAPHIQL_CSS__" />
  <style>
    body { margin: 0; height: 100vh; display: flex; flex-direction: column; font-family: system-ui, sans-serif; }
    #upload { padding: 6px 10px; border-bottom: 1px solid #ddd; display: flex; gap: 8px; align-items: center; flex-wrap: wrap; font-size: 14px; }
    #upload output { font-family: monospace; white-space: pre-wrap; max-width: 60em; }
    #graphiql { flex: 1; }
  </style>
</head>
<body>
  <form id="upload">
    <strong>Upload</strong>
    <input type="file" name="file" accept="image/jpeg,image/png,image/webp" required />
    <label>label <input name="label" value="cat" size="6" required /></label>
    <label>weight <input name="weight" type="number" min="0.000000001" max="1" step="any" value="0.5" /></label>
    <button type="submit">upload</button>
    <output id="upload-result"></output>
  </form>
  <div id="graphiql">Loading GraphiQL…</div>
  <script src="__REACT_JS__"></script>
  <script src="__REACT_DOM_JS__"></script>
  <script src="__GRAPHIQL_JS__"></script>
  <script>
    const endpoint = window.location.pathname;
    const tabs = __TABS__;
    const streamBase = __STREAM_URL__ || window.location.href;
    const form = document.getElementById('upload');
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const query = 'mutation Upload($image: Upload!, $label: String!, $weight: Float) { upload(label: $label, image: $image, weight: $weight) { id label weight contentType width height url } }';
      const body = new FormData();
      body.append('operations', JSON.stringify({ query, variables: { image: null, label: data.get('label'), weight: Number(data.get('weight')) } }));
      body.append('map', JSON.stringify({ 0: ['variables.image'] }));
      body.append('0', data.get('file'));
      const out = document.getElementById('upload-result');
      out.textContent = 'uploading…';
      try {
        const response = await fetch(endpoint, { method: 'POST', body });
        out.textContent = JSON.stringify(await response.json(), null, 1);
      } catch (error) {
        out.textContent = String(error);
      }
    });
    // Subscriptions over Server-Sent Events (graphql-sse, distinct connections): each `next`
    // event is one result; GraphiQL shows them as they come.
    async function* subscribe(params, headers) {
      const response = await fetch(new URL('graphql/stream', streamBase), {
        method: 'POST',
        headers: Object.assign({ accept: 'text/event-stream', 'content-type': 'application/json' }, headers),
        body: JSON.stringify(params),
      });
      if (!response.ok || !response.body) { yield await response.json(); return; }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value.replace(/\r/g, '');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = (block.match(/^event: ?(.*)$/m) || [])[1];
          const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
          if (event === 'next') yield JSON.parse(data);
          if (event === 'complete') return;
        }
      }
    }
    // The operation to run is a subscription (by its keyword; comments and strings aside,
    // the playground's documents hold one operation each).
    function isSubscription(params) {
      const text = (params.query || '').replace(/#.*$/gm, '');
      const ops = [...text.matchAll(/(?:^|[}\s])(query|mutation|subscription)\b\s*([A-Za-z_][A-Za-z0-9_]*)?/g)];
      const op = params.operationName ? ops.find((m) => m[2] === params.operationName) : ops[0];
      return !!op && op[1] === 'subscription';
    }
    if (window.GraphiQL) {
      const http = GraphiQL.createFetcher({ url: endpoint });
      const fetcher = (params, options) =>
        isSubscription(params) ? subscribe(params, (options && options.headers) || {}) : http(params, options);
      // The fullest introspection this schema answers: deprecated arguments and input
      // fields, and the schema's description, in the docs.
      ReactDOM.createRoot(document.getElementById('graphiql')).render(
        React.createElement(GraphiQL, {
          fetcher, defaultTabs: tabs, defaultEditorToolsVisibility: true,
          inputValueDeprecation: true, schemaDescription: true,
        }),
      );
    } else {
      document.getElementById('graphiql').textContent = 'GraphiQL could not load; POST queries to ' + endpoint + ' directly.';
    }
  </script>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_assets_tabs_and_the_stream_url() {
        let page = render(Some("https://abc.lambda-url.eu-west-1.on.aws/"));
        assert!(page.contains("\"https://abc.lambda-url.eu-west-1.on.aws/\""));
        assert!(!page.contains("__"), "every placeholder filled");
        if cfg!(feature = "graphiql-assets") {
            assert!(!page.contains("unpkg.com"), "nothing from the network");
            for (name, _, bytes) in ASSETS {
                assert!(bytes.len() > 1000 || name.starts_with("LICENSE"), "{name}");
            }
        }
    }
}
