//! Subscriptions over Server-Sent Events (`POST …/graphql/stream`, the graphql-sse protocol's
//! distinct connections mode): what the client uses where there is no WebSocket, as on AWS.
//! Each `next` event carries one execution result; `complete` ends the stream.

use std::time::Duration;

use futures_util::stream::{self, Stream, StreamExt};
use graphql_client::GraphQLQuery;

use super::{ClientError, PawqlClient, Reply, API_KEY_HEADER};

/// The longest one stream may last (a subscription gives up after 15 minutes on the server).
const STREAM_TIMEOUT: Duration = Duration::from_secs(16 * 60);

/// One event of an event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEvent {
    pub event: String,
    pub data: String,
}

/// Splits an event stream's text into complete events; what is left is an unfinished one.
/// Comment lines (`:`, the keep-alive) and events with no name are skipped.
pub fn take_events(buffer: &mut String) -> Vec<ServerEvent> {
    let mut events = Vec::new();
    while let Some(end) = buffer.find("\n\n") {
        let block: String = buffer.drain(..end + 2).collect();
        let (mut event, mut data) = (String::new(), Vec::new());
        for line in block.lines() {
            if let Some(value) = line.strip_prefix("event:") {
                event = value.trim_start().to_owned();
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push(value.strip_prefix(' ').unwrap_or(value).to_owned());
            }
        }
        if !event.is_empty() {
            events.push(ServerEvent {
                event,
                data: data.join("\n"),
            });
        }
    }
    events
}

impl PawqlClient {
    /// Runs operation `Q` (a subscription, typically) over Server-Sent Events: each result as
    /// it comes, ending when the server completes the stream.
    pub async fn subscribe<Q: GraphQLQuery>(
        &self,
        variables: Q::Variables,
    ) -> Result<impl Stream<Item = Result<Q::ResponseData, ClientError>>, ClientError> {
        let url = self
            .stream_endpoint
            .clone()
            .unwrap_or_else(|| format!("{}/stream", self.endpoint));
        let unreachable = |source| ClientError::Unreachable {
            endpoint: url.clone(),
            source,
        };
        let mut request = self
            .http
            .post(&url)
            .timeout(STREAM_TIMEOUT)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .json(&Q::build_query(variables));
        if let Some(key) = &self.api_key {
            request = request.header(API_KEY_HEADER, key);
        }
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        if status != 200 {
            let text = response.text().await.unwrap_or_default();
            return Err(match serde_json::from_str::<Reply<serde_json::Value>>(&text) {
                Ok(Reply { errors, .. }) if !errors.is_empty() => ClientError::Refused { status, errors },
                _ => ClientError::NotGraphql {
                    status,
                    body: text.chars().take(200).collect(),
                },
            });
        }
        let bytes = response.bytes_stream();
        let state = (bytes, String::new(), Vec::<ServerEvent>::new(), false);
        Ok(stream::unfold(
            state,
            move |(mut bytes, mut buffer, mut ready, done)| {
                let url = url.clone();
                async move {
                    loop {
                        if done {
                            return None;
                        }
                        if !ready.is_empty() {
                            let event = ready.remove(0);
                            if event.event == "complete" {
                                return None;
                            }
                            let item = match serde_json::from_str::<Reply<Q::ResponseData>>(&event.data) {
                                Ok(Reply {
                                    data: Some(data),
                                    errors,
                                }) if errors.is_empty() => Ok(data),
                                Ok(Reply { errors, .. }) if !errors.is_empty() => {
                                    Err(ClientError::Refused { status: 200, errors })
                                }
                                _ => Err(ClientError::NotGraphql {
                                    status: 200,
                                    body: event.data.chars().take(200).collect(),
                                }),
                            };
                            return Some((item, (bytes, buffer, ready, false)));
                        }
                        match bytes.next().await {
                            Some(Ok(chunk)) => {
                                buffer.push_str(&String::from_utf8_lossy(&chunk).replace('\r', ""));
                                ready.extend(take_events(&mut buffer));
                            }
                            Some(Err(source)) => {
                                let err = ClientError::Unreachable { endpoint: url, source };
                                return Some((Err(err), (bytes, buffer, ready, true)));
                            }
                            None => return None,
                        }
                    }
                }
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_and_keep_alives_skipped() {
        let mut buffer =
            String::from(": keep-alive\n\nevent: next\ndata: {\"data\":1}\n\nevent: complete\ndata:\n\nevent: ne");
        let events = take_events(&mut buffer);
        assert_eq!(
            events,
            [
                ServerEvent {
                    event: "next".into(),
                    data: "{\"data\":1}".into()
                },
                ServerEvent {
                    event: "complete".into(),
                    data: String::new()
                }
            ]
        );
        assert_eq!(buffer, "event: ne", "an unfinished event waits for the rest");
    }

    #[test]
    fn subscriptions_go_to_the_stream_url_when_one_is_given() {
        let client = PawqlClient::new("https://api.example/graphql", None).unwrap();
        assert_eq!(client.stream_endpoint, None, "<endpoint>/stream by default");
        let client = client.with_stream_url("https://abc.lambda-url.eu-west-1.on.aws/");
        assert_eq!(
            client.stream_endpoint.as_deref(),
            Some("https://abc.lambda-url.eu-west-1.on.aws/graphql/stream")
        );
    }
}
