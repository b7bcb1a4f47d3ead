//! `/graphql/ws`: subscriptions over WebSocket (graphql-transport-ws, and the older
//! graphql-ws). The caller is decided from the `connection_init` payload's `x-api-key` (a
//! browser cannot put headers on a WebSocket), or from the upgrade request's header; an
//! unknown key, or none where reads need one, ends the connection at `connection_init`.

use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::access::API_KEY_HEADER;
use super::AppState;

pub async fn subscribe(
    State(state): State<AppState>,
    protocol: GraphQLProtocol,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let header_key = headers
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            let access = state.access.clone();
            // Each operation on the connection is its own request, prepared as every door's.
            let schema = resolvers::schema::PreparingSchema(state.schema.clone());
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |mut payload| async move {
                    if let (Some(key), Some(object)) = (header_key, payload.as_object_mut()) {
                        object.entry(API_KEY_HEADER).or_insert(key.into());
                    }
                    let caller = access
                        .current()
                        .await
                        .caller_of_payload(&payload)
                        .map_err(|refused| async_graphql::Error::new(refused.message()))?;
                    let mut data = Data::default();
                    data.insert(caller);
                    Ok(data)
                })
                .serve()
        })
        .into_response()
}
