//! Wiring: where the data is and how a door is configured in, a ready door out. Backends are
//! chosen here and nowhere else.
//!
//! There is one way to build each door, [`Wiring`], and every caller goes through it: `main`
//! (`pawql serve` on either backend, the three Lambda functions, `pawql variants`) and the
//! tests (`TestApp`, and the tests that build a Lambda's router or the scan handler). A
//! [`Wiring`] holds the backend ([`BackendSpec`]), the catalogue settings and the server
//! options, and one method per door finishes it: [`Wiring::serve`], [`Wiring::lambda_api`] and
//! [`Wiring::lambda_stream`] build routers, [`Wiring::scan_handler`] the scan handler's
//! scanner, [`Wiring::appsync`] AppSync's resolver function, [`Wiring::catalog`] the
//! catalogue alone (for maintenance commands). We chose a
//! method per door over one `build(door)` so that each door returns what it runs; with one
//! function, every caller would have to match on an answer that can only be one thing.
//!
//! Every door is built the same way: open the backend, make its [`Ports`] with the scanning
//! that door needs, hand them to the [`Wiring::wrap`] hook, then build. Tests change the ports
//! in that hook (a counting image store, fault injection, a lagging table, a stand-in
//! detector) before the router exists, instead of putting ports together themselves. That way
//! a test runs the wiring production runs.
//!
//! The local rate limit is not part of the wiring. It limits each client by address, and only
//! the socket `main` serves knows the address (`into_make_service_with_connect_info`).

mod ports;

use std::path::PathBuf;

use axum::Router;
use resolvers::scanning::{ScanSettings, Scanner};
use resolvers::{build_schema, Catalog, CatalogSettings, Deps};

use crate::adapters::aws::{self, AwsBackend, AwsClients, Resources};
use crate::server::{router, AppState, LiveAccess, Routes, ServerOptions};

use ports::{aws_ports, embedded_ports, ensure_detector_for_label_check, scanner_over, Detector, ScanPlan};
pub use ports::{Ports, ScanParts, ScanWorker};

/// Where a door's data is.
pub enum BackendSpec {
    /// Image files and redb tables in `data_dir`; image URLs start with `public_url`.
    Embedded { data_dir: PathBuf, public_url: String },
    /// A stage's AWS resources and keys, found through SSM (see [`aws::open`]).
    Aws { clients: AwsClients, stage: String },
    /// AWS resources named directly: SSM is not asked, and there are no stage keys. This is for
    /// a scan handler over resources that are not a stage's own (tests break one this way).
    AwsResources { clients: AwsClients, resources: Resources },
}

impl BackendSpec {
    /// [`BackendSpec::Aws`] for `stage`, its calls made through `clients`.
    pub fn aws(clients: &AwsClients, stage: &str) -> BackendSpec {
        BackendSpec::Aws {
            clients: clients.clone(),
            stage: stage.to_owned(),
        }
    }
}

/// How the server of [`Wiring::serve`] gets its scans worked on.
#[derive(Debug, Clone, Copy)]
pub enum Scanning {
    /// `pawql serve`: the offline detector (P(cat) threshold) in the [`ScanWorker::InProcess`]
    /// worker, on either backend.
    InProcess { cat_threshold: f64 },
    /// The Lambda API's scanning (AWS backend only): Rekognition (minimum confidence in
    /// percent), and `requestScan` only records the pending scan for the
    /// [`ScanWorker::StreamHandler`]. Tests serve with it to drive the scan handler by hand.
    StreamHandler { min_confidence: f64 },
}

/// A built door, and the AWS adapters under it.
pub struct Wired<T> {
    /// What the door runs: a router, the scan handler's scanner, or the catalogue.
    pub door: T,
    /// On the AWS backend, the stage's adapters and resource names as opened, before any
    /// [`Wiring::wrap`] (tests check through them what was stored).
    pub aws: Option<AwsBackend>,
}

/// A test's change to the ports, made before the door is built.
type WrapPorts<'a> = Box<dyn FnOnce(&mut Ports) + Send + 'a>;

/// How to build a door: the backend, the catalogue settings, the server options and the
/// tests' hooks. Finish it with the method of the door to build.
pub struct Wiring<'a> {
    backend: BackendSpec,
    settings: CatalogSettings,
    options: ServerOptions,
    stage_keys: bool,
    wrap: Option<WrapPorts<'a>>,
}

impl<'a> Wiring<'a> {
    /// A door over `backend` serving `settings`, with [`ServerOptions::default`].
    pub fn new(backend: BackendSpec, settings: CatalogSettings) -> Wiring<'a> {
        Wiring {
            backend,
            settings,
            options: ServerOptions::default(),
            stage_keys: true,
            wrap: None,
        }
    }

    /// Keys, limits, CORS and routes of the door (the Lambda doors adjust some, as they say).
    pub fn options(self, options: ServerOptions) -> Self {
        Wiring { options, ..self }
    }

    /// Accepts only the keys in the options, and not the stage's SSM keys, which are then
    /// never re-read. The test harness uses this: its stages have no keys in SSM, and a
    /// re-read in the background would add SSM calls to the request budgets the tests count.
    pub fn without_stage_keys(self) -> Self {
        Wiring {
            stage_keys: false,
            ..self
        }
    }

    /// Lets `hook` change the ports once they are made and before the door is built: tests
    /// wrap the stores, inject faults, or put another detector in.
    pub fn wrap(self, hook: impl FnOnce(&mut Ports) + Send + 'a) -> Self {
        Wiring {
            wrap: Some(Box::new(hook)),
            ..self
        }
    }

    /// The router of `pawql serve`, on either backend, its scans worked on as `scanning` says.
    /// On AWS the keys are those in the options plus the stage's SecureString parameters
    /// `apiKeys` and `adminKeys` (comma-separated), read at start-up and re-read every
    /// `options.key_refresh`.
    pub async fn serve(self, scanning: Scanning) -> anyhow::Result<Wired<Router>> {
        let plan = match scanning {
            Scanning::InProcess { cat_threshold } => ScanPlan {
                detector: Detector::Offline {
                    threshold: cat_threshold,
                },
                worker: ScanWorker::InProcess,
                settings: ScanSettings::default(),
            },
            Scanning::StreamHandler { min_confidence } => ScanPlan::lambda_api(min_confidence),
        };
        self.router("local server", plan).await
    }

    /// The router of the API function (buffered responses), set up as every Lambda that
    /// serves requests is (`for_lambda`: Rekognition scans left to the scan handler, the 6 MB
    /// payload limit, writes closed while the stage has no key); every response is held to
    /// the Lambda's 6 MB payload.
    pub async fn lambda_api(self, min_confidence: f64) -> anyhow::Result<Wired<Router>> {
        let wired = self
            .for_lambda()?
            .router("Lambda API", ScanPlan::lambda_api(min_confidence))
            .await?;
        Ok(Wired {
            door: crate::lambda::cap_responses(wired.door, crate::lambda::PAYLOAD_LIMIT),
            aws: wired.aws,
        })
    }

    /// The router of the stream function (responses streamed), set up as the API function's
    /// is. It serves `POST /graphql/stream` alone, since its URL is public and outside the
    /// HTTP API's throttle.
    pub async fn lambda_stream(self, min_confidence: f64) -> anyhow::Result<Wired<Router>> {
        let mut wiring = self.for_lambda()?;
        wiring.options.routes = Routes::StreamOnly;
        wiring
            .router("Lambda stream", ScanPlan::lambda_api(min_confidence))
            .await
    }

    /// The AppSync door (`PAWQL_HANDLER=appsync`, src/appsync/): AppSync's direct Lambda
    /// resolver events answered on the schema the API door serves, over the same ports, with
    /// scans worked on as `scanning` says (the Lambda's: [`Scanning::StreamHandler`]; tests
    /// run it on either backend). Callers are who AppSync says they are, mapped by `access`
    /// (no key is read: AppSync authenticated them), and an answer is held to the Lambda's
    /// 6 MB payload, whatever the backend, since AppSync always calls a Lambda.
    pub async fn appsync(
        mut self,
        scanning: Scanning,
        access: crate::appsync::AppSyncAccess,
    ) -> anyhow::Result<Wired<crate::appsync::AppSyncDoor>> {
        let plan = match scanning {
            Scanning::InProcess { cat_threshold } => ScanPlan {
                detector: Detector::Offline {
                    threshold: cat_threshold,
                },
                worker: ScanWorker::InProcess,
                settings: ScanSettings::default(),
            },
            Scanning::StreamHandler { min_confidence } => ScanPlan::lambda_api(min_confidence),
        };
        let (ports, aws) = self.open("AppSync", Some(plan)).await?;
        ensure_detector_for_label_check(&self.settings, &ports.scanning)?;
        let Ports {
            images,
            tables,
            staged,
            scanning,
        } = ports;
        let mut deps = Deps::new(images.clone(), staged, tables.clone(), self.settings.clone());
        if let Some(parts) = scanning {
            let scanner = scanner_over(parts, images, tables, &self.settings);
            deps.catalog = deps.catalog.with_label_check(scanner.label_check());
            deps.scanner = Some(scanner);
        }
        let door = crate::appsync::AppSyncDoor::new(build_schema(deps), access, crate::lambda::PAYLOAD_LIMIT)?;
        Ok(Wired { door, aws })
    }

    /// The scanner of the stream-invoked scan handler (AWS backend): Rekognition, and no
    /// dispatch, because the stream already is the dispatch.
    pub async fn scan_handler(mut self, min_confidence: f64) -> anyhow::Result<Wired<Scanner>> {
        // Rekognition calls end at the SDK's operation timeout, so that bounds a detector
        // call, and with it the longest scan the handler plans its deadline around
        // (`ScanSettings::longest_run`).
        let sdk_call_limit = aws::default_timeouts()
            .operation_timeout()
            .unwrap_or(std::time::Duration::from_secs(25));
        let plan = ScanPlan {
            detector: Detector::Rekognition { min_confidence },
            worker: ScanWorker::StreamHandler,
            settings: ScanSettings::for_sdk_detector(sdk_call_limit),
        };
        let (ports, aws) = self.open("scan handler", Some(plan)).await?;
        let Ports {
            images,
            tables,
            scanning,
            ..
        } = ports;
        let parts = scanning.ok_or_else(|| anyhow::anyhow!("the scan handler's ports have no scanning"))?;
        Ok(Wired {
            door: scanner_over(parts, images, tables, &self.settings),
            aws,
        })
    }

    /// The catalogue alone, with no scanning and no server (`pawql variants`).
    pub async fn catalog(mut self) -> anyhow::Result<Wired<Catalog>> {
        let (ports, aws) = self.open("catalog", None).await?;
        Ok(Wired {
            door: Catalog::new(ports.images, ports.staged, ports.tables, self.settings),
            aws,
        })
    }

    /// What the Lambda functions that serve requests share: the stage's backend, Rekognition
    /// scans worked on by the scan handler, the 6 MB payload limit, and writes closed while
    /// the stage has no key at all. A Lambda behind API Gateway is on the internet, so an
    /// operator who has not set keys yet gets a stage that refuses writes with a message
    /// naming the parameter, not one that anybody can fill or empty.
    fn for_lambda(mut self) -> anyhow::Result<Self> {
        let BackendSpec::Aws { stage, .. } = &self.backend else {
            anyhow::bail!("a Lambda function runs on a stage found through SSM");
        };
        let parameter = format!(
            "the SSM SecureString parameter {}{} (comma-separated keys)",
            aws::resources::parameter_path(stage),
            aws::resources::API_KEYS_PARAMETER
        );
        self.options.access = self.options.access.closed_without_keys(&parameter);
        let options = &mut self.options;
        options.response_limit = Some(crate::lambda::PAYLOAD_LIMIT);
        options.request_limit = Some(crate::lambda::PAYLOAD_LIMIT);
        // CORS is answered at the edge on AWS (the HTTP API's CorsConfiguration, the Function
        // URL's Cors), which adds its own headers: the router adding them too would send
        // `Access-Control-Allow-Origin` twice, and browsers refuse a response that does.
        if !options.cors_origins.is_empty() {
            tracing::info!(origins = ?options.cors_origins, "CORS is answered by API Gateway and the Function URL, not here");
            options.cors_origins.clear();
        }
        Ok(self)
    }

    /// Every router door: the ports, the label check's detector, the access in force, the router.
    async fn router(mut self, door: &'static str, plan: ScanPlan) -> anyhow::Result<Wired<Router>> {
        let (ports, aws) = self.open(door, Some(plan)).await?;
        ensure_detector_for_label_check(&self.settings, &ports.scanning)?;
        let access = self.access(aws.as_ref());
        access.now().announce();
        Ok(Wired {
            door: router_with_access(ports, self.settings, self.options, access),
            aws,
        })
    }

    /// The keys in the options, plus, on a stage, the stage's own (re-read while it runs).
    fn access(&self, aws: Option<&AwsBackend>) -> LiveAccess {
        let access = &self.options.access;
        match aws {
            Some(backend) if self.stage_keys => match &backend.key_source {
                Some(source) => LiveAccess::refreshed(
                    access.clone(),
                    (backend.api_keys.clone(), backend.admin_keys.clone()),
                    source.clone(),
                    self.options.key_refresh,
                ),
                None => LiveAccess::fixed(access.with_keys(&backend.api_keys, &backend.admin_keys)),
            },
            _ => LiveAccess::fixed(access.clone()),
        }
    }

    /// Opens the backend and makes its ports, scanning as `plan` says (none without one),
    /// then runs the [`Wiring::wrap`] hook on them.
    async fn open(
        &mut self,
        door: &'static str,
        plan: Option<ScanPlan>,
    ) -> anyhow::Result<(Ports, Option<AwsBackend>)> {
        let (mut ports, aws) = match &self.backend {
            BackendSpec::Embedded { data_dir, public_url } => {
                (embedded_ports(data_dir, public_url, &self.settings, plan)?, None)
            }
            BackendSpec::Aws { clients, stage } => {
                let backend = aws::open(clients, stage, &self.settings).await?;
                tracing::info!(stage, door, resources = ?backend.resources, "AWS backend");
                (aws_ports(clients, &backend, plan)?, Some(backend))
            }
            BackendSpec::AwsResources { clients, resources } => {
                let backend = aws::open_resources(clients, resources.clone(), &self.settings);
                (aws_ports(clients, &backend, plan)?, Some(backend))
            }
        };
        if let Some(wrap) = self.wrap.take() {
            wrap(&mut ports);
        }
        Ok((ports, aws))
    }
}

/// The router over `ports` with `access`.
fn router_with_access(ports: Ports, settings: CatalogSettings, options: ServerOptions, access: LiveAccess) -> Router {
    let Ports {
        images,
        tables,
        staged,
        scanning,
    } = ports;
    let mut deps = Deps::new(images.clone(), staged.clone(), tables.clone(), settings.clone());
    deps.introspection = options.introspection;
    if let Some(parts) = scanning {
        let scanner = scanner_over(parts, images, tables, &settings);
        deps.catalog = deps.catalog.with_label_check(scanner.label_check());
        deps.scanner = Some(scanner);
    }
    let catalog = deps.catalog.clone();
    let mut state = AppState::new(build_schema(deps), catalog, staged, access);
    state.response_limit = options.response_limit;
    state.request_limit = options.request_limit;
    // Resolved against it as a base: it must end in `/` (a Function URL does).
    state.stream_url = options.stream_url.map(|url| format!("{}/", url.trim_end_matches('/')));
    router(state, options.routes, &options.cors_origins)
}
