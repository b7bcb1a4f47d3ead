//! The typed Rust client. `graphql_client` generates request and response types at compile
//! time from `schema.graphql` and the operations in `playground/` (the same ones GraphiQL
//! preloads and the TypeScript client is generated from), so a schema change that breaks a
//! client breaks this build. The CLI and the HTTP tests talk to pawql through it.

pub mod events;
pub mod operations;

use std::time::Duration;

pub use graphql_client::GraphQLQuery;
use graphql_client::QueryBody;
use serde::Deserialize;

/// The header that carries API and admin keys.
pub const API_KEY_HEADER: &str = "x-api-key";

/// How often a request refused with 429 is retried (after the `Retry-After` the server sent).
const RATE_LIMIT_RETRIES: u32 = 5;

/// reqwest is built with rustls but without a bundled crypto provider: this installs the
/// aws-lc one the AWS SDK already links, rather than compile a second (ring). Call it before
/// building any `reqwest::Client` in this process; calling it again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A GraphQL error as pawql sends it.
#[derive(Debug, Clone, Deserialize)]
pub struct GraphqlError {
    pub message: String,
    #[serde(default)]
    pub extensions: Option<Extensions>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Extensions {
    pub code: Option<String>,
}

impl GraphqlError {
    /// `extensions.code`, e.g. `INVALID_IMAGE`; `ERROR` when the server gave none.
    pub fn code(&self) -> &str {
        self.extensions
            .as_ref()
            .and_then(|e| e.code.as_deref())
            .unwrap_or("ERROR")
    }
}

/// Why a request did not give data.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {endpoint}: {source}")]
    Unreachable { endpoint: String, source: reqwest::Error },
    #[error("{}", .errors.iter().map(|e| format!("{}: {}", e.code(), e.message)).collect::<Vec<_>>().join("; "))]
    Refused { status: u16, errors: Vec<GraphqlError> },
    #[error("HTTP {status} without a GraphQL answer: {body}")]
    NotGraphql { status: u16, body: String },
}

impl ClientError {
    /// The first error's code (`UNAUTHENTICATED`, `INVALID_IMAGE`, …), or `NETWORK` / `HTTP`.
    pub fn code(&self) -> &str {
        match self {
            ClientError::Unreachable { .. } => "NETWORK",
            ClientError::Refused { errors, .. } => errors.first().map_or("ERROR", GraphqlError::code),
            ClientError::NotGraphql { .. } => "HTTP",
        }
    }
}

#[derive(Deserialize)]
struct Reply<T> {
    data: Option<T>,
    #[serde(default)]
    errors: Vec<GraphqlError>,
}

/// A file sent with an operation, as the variable `image` (GraphQL multipart request spec).
pub struct Attachment {
    pub file_name: String,
    pub bytes: Vec<u8>,
}

/// A client for one pawql endpoint (`…/graphql`).
#[derive(Clone)]
pub struct PawqlClient {
    http: reqwest::Client,
    endpoint: String,
    api_key: Option<String>,
    /// Where `subscribe` posts: `<endpoint>/stream` unless set (on AWS, the stream URL).
    stream_endpoint: Option<String>,
}

impl PawqlClient {
    /// `endpoint` is the GraphQL URL, e.g. `http://127.0.0.1:8080/graphql`.
    pub fn new(endpoint: impl Into<String>, api_key: Option<String>) -> anyhow::Result<PawqlClient> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build()?;
        Ok(PawqlClient {
            http,
            endpoint: endpoint.into(),
            api_key,
            stream_endpoint: None,
        })
    }

    /// Subscriptions stream from `base` (a server's base URL, as the stream function's URL
    /// is) instead of this endpoint's own `/stream`.
    pub fn with_stream_url(mut self, base: &str) -> PawqlClient {
        self.stream_endpoint = Some(format!("{}/graphql/stream", base.trim_end_matches('/')));
        self
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The server's base URL (the endpoint without `/graphql`), for the REST routes.
    pub fn base_url(&self) -> &str {
        self.endpoint.strip_suffix("/graphql").unwrap_or(&self.endpoint)
    }

    /// Runs operation `Q` with `variables`.
    pub async fn run<Q: GraphQLQuery>(&self, variables: Q::Variables) -> Result<Q::ResponseData, ClientError> {
        let body = serde_json::to_vec(&Q::build_query(variables)).expect("variables serialise");
        self.send(|request| {
            request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        })
        .await
    }

    /// Runs operation `Q` with `attachment` as its `image` variable (which `variables` leaves null).
    pub async fn run_with_file<Q: GraphQLQuery>(
        &self,
        variables: Q::Variables,
        attachment: &Attachment,
    ) -> Result<Q::ResponseData, ClientError> {
        let operations: QueryBody<Q::Variables> = Q::build_query(variables);
        let operations = serde_json::to_string(&operations).expect("variables serialise");
        self.send(|request| {
            let part =
                reqwest::multipart::Part::bytes(attachment.bytes.clone()).file_name(attachment.file_name.clone());
            let form = reqwest::multipart::Form::new()
                .text("operations", operations.clone())
                .text("map", r#"{"0":["variables.image"]}"#)
                .part("0", part);
            request.multipart(form)
        })
        .await
    }

    /// Sends a request built by `build`, again after `Retry-After` when rate-limited.
    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let mut attempt = 0;
        loop {
            let mut request = self
                .http
                .post(&self.endpoint)
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(key) = &self.api_key {
                request = request.header(API_KEY_HEADER, key);
            }
            let response = build(request).send().await.map_err(|source| ClientError::Unreachable {
                endpoint: self.endpoint.clone(),
                source,
            })?;
            let status = response.status().as_u16();
            if status == 429 && attempt < RATE_LIMIT_RETRIES {
                attempt += 1;
                let wait = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait.clamp(1, 30))).await;
                continue;
            }
            let text = response.text().await.map_err(|source| ClientError::Unreachable {
                endpoint: self.endpoint.clone(),
                source,
            })?;
            return match serde_json::from_str::<Reply<T>>(&text) {
                Ok(Reply {
                    data: Some(data),
                    errors,
                }) if errors.is_empty() => Ok(data),
                Ok(Reply { errors, .. }) if !errors.is_empty() => Err(ClientError::Refused { status, errors }),
                _ => Err(ClientError::NotGraphql {
                    status,
                    body: text.chars().take(200).collect(),
                }),
            };
        }
    }

    /// PUTs `bytes` to an upload URL `requestUpload` handed out (presigned S3, or the local
    /// server's `/uploads/{ticket}`: the URL itself is the permission, so no key is sent).
    pub async fn put_file(&self, url: &str, bytes: Vec<u8>) -> Result<(), ClientError> {
        let unreachable = |source| ClientError::Unreachable {
            endpoint: url.to_owned(),
            source,
        };
        let response = self.http.put(url).body(bytes).send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let body = response.text().await.unwrap_or_default();
            return Err(ClientError::NotGraphql {
                status,
                body: body.chars().take(200).collect(),
            });
        }
        Ok(())
    }

    /// GETs a URL the API handed out (an image's `url`), returning its bytes and content type.
    pub async fn fetch(&self, url: &str) -> Result<(Vec<u8>, String), ClientError> {
        let unreachable = |source| ClientError::Unreachable {
            endpoint: url.to_owned(),
            source,
        };
        let response = self.http.get(url).send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let bytes = response.bytes().await.map_err(unreachable)?;
        if status != 200 {
            return Err(ClientError::NotGraphql {
                status,
                body: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            });
        }
        Ok((bytes.to_vec(), content_type))
    }
}
