//! What the AppSync tests stand on: the AppSync function under test ([`Function`]: the binary
//! behind a stand-in Lambda Runtime API on moto, the door in process on the embedded
//! backend), and what watches it (a port-step [`Counter`], DynamoDB's operations as
//! [`DynamoCalls`], counted as budget.rs counts them).

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::future::BoxFuture;
use pawql::app::{BackendSpec, Ports, Scanning, Wiring};
use pawql::appsync::{AppSyncAccess, AppSyncDoor};
use resolvers::CatalogSettings;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::deployment::Running;
use crate::support::helpers::{Storage, TestApp};
use crate::support::hooked::Hook;
use crate::support::moto::MotoServer;

/// What a function answered: its value, or its error (`errorType`, `errorMessage`).
pub(super) type Outcome = Result<Value, (String, String)>;

/// The AppSync function under test.
pub(super) enum Function {
    /// The binary, behind the stand-in Runtime API.
    Process {
        events: mpsc::Sender<Value>,
        outcomes: mpsc::UnboundedReceiver<Outcome>,
        _child: Running,
        _app: Box<TestApp>,
    },
    /// The door in process (the embedded backend), over the stopped app's data.
    InProcess { door: AppSyncDoor, _kept: Kept },
}

impl Function {
    /// The door over `app`'s data: the binary on moto, in process on the embedded backend.
    pub(super) async fn over(app: TestApp, access: AppSyncAccess) -> Function {
        match &app.storage {
            Storage::Aws { .. } => Function::process(app, &access).await,
            Storage::Embedded { .. } => {
                let (door, kept) = in_process(app, access, |_| {}).await;
                Function::InProcess { door, _kept: kept }
            }
        }
    }

    async fn process(app: TestApp, access: &AppSyncAccess) -> Function {
        let (event_tx, event_rx) = mpsc::channel(4);
        let (outcome_tx, outcomes) = mpsc::unbounded_channel();
        let runtime = RuntimeApi {
            events: Arc::new(tokio::sync::Mutex::new(event_rx)),
            outcomes: outcome_tx,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(answered))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(failed))
            .route("/2018-06-01/runtime/init/error", post(init_failed))
            .with_state(runtime);
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let stage = app.stage().to_owned();
        let moto = MotoServer::shared().await;
        // The API function's role: the AppSync function reads and writes what it does.
        let key = crate::iam::acting_as(&[crate::iam::Function::Api], &stage);
        let (admins, writers) = (access.admin_arns.join(","), access.writer_groups.join(","));
        let child = Command::new(env!("CARGO_BIN_EXE_pawql"))
            .envs([
                ("AWS_LAMBDA_RUNTIME_API", address.as_str()),
                ("AWS_LAMBDA_FUNCTION_NAME", "pawql-test-appsync"),
                ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"),
                ("PAWQL_HANDLER", "appsync"),
                ("PAWQL_STAGE", stage.as_str()),
                ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
                ("AWS_ACCESS_KEY_ID", key.as_str()),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
                ("AWS_REGION", "us-east-1"),
                ("PAWQL_APPSYNC_ADMIN_ARNS", admins.as_str()),
                ("PAWQL_APPSYNC_WRITER_GROUPS", writers.as_str()),
            ])
            .env_remove("PAWQL_BUCKET")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Function::Process {
            events: event_tx,
            outcomes,
            _child: Running(child),
            _app: Box::new(app),
        }
    }

    pub(super) async fn invoke(&mut self, event: Value) -> Outcome {
        match self {
            Function::Process { events, outcomes, .. } => {
                events.send(event).await.unwrap();
                tokio::time::timeout(std::time::Duration::from_secs(60), outcomes.recv())
                    .await
                    .expect("an answer within 60 s")
                    .expect("the stand-in runtime stopped")
            }
            Function::InProcess { door, .. } => door.answer(event).await.map_err(|e| (e.error_type, e.error_message)),
        }
    }

    /// An invocation that must succeed.
    pub(super) async fn value(&mut self, event: Value) -> Value {
        self.invoke(event)
            .await
            .unwrap_or_else(|e| panic!("the function failed: {e:?}"))
    }
}

/// What the stand-in hands out and what it received.
#[derive(Clone)]
struct RuntimeApi {
    events: Arc<tokio::sync::Mutex<mpsc::Receiver<Value>>>,
    outcomes: mpsc::UnboundedSender<Outcome>,
}

async fn next_invocation(State(api): State<RuntimeApi>) -> Response {
    let Some(event) = api.events.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
    (
        [
            ("lambda-runtime-aws-request-id", "req-appsync".to_owned()),
            ("lambda-runtime-deadline-ms", deadline.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:pawql-test-appsync".to_owned(),
            ),
        ],
        event.to_string(),
    )
        .into_response()
}

async fn answered(State(api): State<RuntimeApi>, Path(_id): Path<String>, body: String) -> StatusCode {
    let _ = api.outcomes.send(Ok(serde_json::from_str(&body).unwrap()));
    StatusCode::ACCEPTED
}

async fn failed(State(api): State<RuntimeApi>, Path(_id): Path<String>, body: String) -> StatusCode {
    let error: Value = serde_json::from_str(&body).unwrap();
    let text = |key: &str| error[key].as_str().unwrap_or_default().to_owned();
    let _ = api.outcomes.send(Err((text("errorType"), text("errorMessage"))));
    StatusCode::ACCEPTED
}

async fn init_failed(State(api): State<RuntimeApi>, body: String) -> StatusCode {
    let _ = api.outcomes.send(Err(("init".into(), body)));
    StatusCode::ACCEPTED
}

/// What an in-process door's data needs kept: the stopped app's data directory, or the app.
#[allow(dead_code)]
pub(super) enum Kept {
    Data(Option<tempfile::TempDir>),
    App(Box<TestApp>),
}

/// The door built in process over `app`'s data, `hook` changing its ports first. On the
/// embedded backend the app is stopped (its database takes one process); on moto it keeps
/// running beside, and the door's DynamoDB calls go through the API's role.
pub(super) async fn in_process(
    app: TestApp,
    access: AppSyncAccess,
    hook: impl FnOnce(&mut Ports) + Send + 'static,
) -> (AppSyncDoor, Kept) {
    in_process_with(app, access, None, hook).await
}

pub(super) async fn in_process_with(
    app: TestApp,
    access: AppSyncAccess,
    clients: Option<pawql::adapters::aws::AwsClients>,
    hook: impl FnOnce(&mut Ports) + Send + 'static,
) -> (AppSyncDoor, Kept) {
    let (backend, scanning, kept) = match &app.storage {
        Storage::Embedded { data_dir } => {
            let spec = BackendSpec::Embedded {
                data_dir: data_dir.clone(),
                public_url: app.address.clone(),
            };
            let scanning = Scanning::InProcess {
                cat_threshold: pawql::detectors::DEFAULT_CAT_THRESHOLD,
            };
            (spec, scanning, Kept::Data(app.stop().await))
        }
        Storage::Aws { .. } => {
            let stage = app.stage().to_owned();
            let plain = match clients {
                Some(clients) => clients,
                None => MotoServer::shared().await.clients().await,
            };
            let clients = crate::iam::enforcing(&plain, &[crate::iam::Function::Api], &stage);
            let scanning = Scanning::StreamHandler { min_confidence: 80.0 };
            (BackendSpec::aws(&clients, &stage), scanning, Kept::App(Box::new(app)))
        }
    };
    let wired = Wiring::new(backend, CatalogSettings::default())
        .wrap(hook)
        .appsync(scanning, access)
        .await
        .unwrap();
    (wired.door, kept)
}

/// Counts the calls of each port step it sees.
#[derive(Default)]
pub(super) struct Counter(Mutex<HashMap<&'static str, usize>>);

impl Counter {
    pub(super) fn of(&self, step: &str) -> usize {
        self.0.lock().unwrap().get(step).copied().unwrap_or(0)
    }
}

impl Hook for Counter {
    fn around<'a, T: Send + 'a>(
        &'a self,
        step: &'static str,
        work: BoxFuture<'a, anyhow::Result<T>>,
    ) -> BoxFuture<'a, anyhow::Result<T>> {
        *self.0.lock().unwrap().entry(step).or_default() += 1;
        work
    }
}

/// DynamoDB's operations as their responses arrive (the way budget.rs counts them).
#[derive(Debug, Clone, Default)]
pub(super) struct DynamoCalls(pub(super) Arc<Mutex<Vec<String>>>);

impl Intercept for DynamoCalls {
    fn name(&self) -> &'static str {
        "DynamoCalls"
    }

    fn read_before_deserialization(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let metadata = cfg.load::<Metadata>().expect("every SDK operation has metadata");
        self.0.lock().unwrap().push(metadata.name().to_owned());
        Ok(())
    }
}
