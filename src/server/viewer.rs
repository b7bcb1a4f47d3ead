//! `GET /`: the pet viewer, one self-contained page (`viewer.html`) for phones: a random pet
//! per label, an upload form with a weight, and a scan button whose verdict arrives through
//! the `scanUpdated` subscription: over WebSocket where there is one, else over Server-Sent
//! Events (on AWS at the stream function's URL, which the page is told), else by polling
//! `scanResult`. It only uses the public GraphQL API, so it needs no access of its own; with
//! keys configured, the user pastes one into the page.

use axum::extract::State;
use axum::response::Html;

use super::AppState;

const PAGE: &str = include_str!("viewer.html");

pub async fn page(State(state): State<AppState>) -> Html<String> {
    // The stream URL comes from configuration, never from a request; escaped all the same.
    let stream_url = state.stream_url.as_deref().unwrap_or("");
    let escaped = stream_url
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    Html(PAGE.replace("{{STREAM_URL}}", &escaped))
}
