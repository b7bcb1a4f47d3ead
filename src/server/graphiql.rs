//! `GET /graphql`: GraphiQL with every `playground/` operation preloaded as a tab, and a
//! small upload bar (GraphiQL itself cannot attach files to the multipart request spec).
//! GraphiQL's scripts load from the unpkg CDN in the user's browser; the server needs none.

use axum::response::Html;

use super::playground::OPERATIONS;

pub async fn page() -> Html<String> {
    Html(render())
}

fn render() -> String {
    let tabs: Vec<serde_json::Value> = OPERATIONS
        .iter()
        .map(|(_, query)| serde_json::json!({ "query": query }))
        .collect();
    // `</` inside a <script> would end it early; JSON allows the escaped form.
    let tabs = serde_json::to_string(&tabs)
        .expect("tabs serialise")
        .replace("</", "<\\/");
    TEMPLATE.replace("__TABS__", &tabs)
}

const TEMPLATE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <meta name="viewport" content="width=device-width, initial-scale=1" />
  <title>pawql · GraphiQL</title>
  <link rel="stylesheet" href="https://unpkg.com/graphiql@3.8.3/graphiql.min.css" />
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
  <script crossorigin src="https://unpkg.com/react@18.3.1/umd/react.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/react-dom@18.3.1/umd/react-dom.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/graphiql@3.8.3/graphiql.min.js"></script>
  <script>
    const endpoint = window.location.pathname;
    const tabs = __TABS__;
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
    if (window.GraphiQL) {
      const fetcher = GraphiQL.createFetcher({ url: endpoint });
      ReactDOM.createRoot(document.getElementById('graphiql')).render(
        React.createElement(GraphiQL, { fetcher, defaultTabs: tabs, defaultEditorToolsVisibility: true }),
      );
    } else {
      document.getElementById('graphiql').textContent = 'GraphiQL could not load from unpkg.com; POST queries to ' + endpoint + ' directly.';
    }
  </script>
</body>
</html>
"#;
