//! `GET /`: the pet viewer, one self-contained page (`viewer.html`) for phones: a random pet
//! per label, an upload form with a weight, and a scan button whose verdict arrives through
//! the `scanUpdated` subscription (or by polling `scanResult` where WebSockets are missing,
//! as on the Lambda). It only uses the public GraphQL API, so it needs no access of its own;
//! with keys configured, the user pastes one into the page.

use axum::response::Html;

const PAGE: &str = include_str!("viewer.html");

pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}
