//! `TestApp::builder(backend)…start()` (or `spawn_app(backend)` at the defaults): a real pawql
//! server on 127.0.0.1:0 over the embedded backend in a fresh temporary data directory, or over
//! S3 + DynamoDB on moto in a fresh stage, wired as `pawql serve` is (`pawql::app::Wiring`),
//! and a `TestApp` with one method per operation. `on_both_backends!` runs a test on each.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pawql::adapters::aws::{self, AwsClients, Resources};
use pawql::app::{self, BackendSpec, ScanWorker, Scanning, Wiring};
use pawql::detectors::offline::DEFAULT_CAT_THRESHOLD;
use pawql::detectors::rekognition::DEFAULT_MIN_CONFIDENCE;
use pawql::server::{Access, ServerOptions};
use resolvers::domain::chunks::Slot;
use resolvers::domain::image::ImageRecord;
use resolvers::ports::{CatDetector, ChunkTables, ImageStore};
use resolvers::{Catalog, CatalogSettings};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::support::fault_injection::{Faults, FaultyDetector};
use crate::support::hooked::{CountReads, Hooked};
use crate::support::moto::{unique_stage, MotoServer};

/// The project's own copy of the shared fixtures.
pub fn fixture(relative: &str) -> Vec<u8> {
    let path = fixtures_dir().join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Rows of a tab-separated manifest, as header → value maps.
pub fn manifest(relative: &str) -> Vec<std::collections::HashMap<String, String>> {
    let text = String::from_utf8(fixture(relative)).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            header
                .iter()
                .map(|h| h.to_string())
                .zip(l.split('\t').map(str::to_owned))
                .collect()
        })
        .collect()
}

/// The image store every test server runs on: the real one, its reads counted.
pub type CountingStore = Hooked<dyn ImageStore, CountReads>;

/// The admin key every test server is started with.
pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

/// Which backend a test app runs on. Every HTTP test runs on both (see [`on_both_backends`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Files and redb in a temporary data directory.
    Embedded,
    /// S3 + DynamoDB on the shared moto server, in a stage of the test's own.
    Aws,
}

impl Backend {
    /// `embedded` on the embedded backend, `aws` on moto: for loops whose cost is per request.
    pub fn pick<T>(self, embedded: T, aws: T) -> T {
        match self {
            Backend::Embedded => embedded,
            Backend::Aws => aws,
        }
    }
}

/// Runs each named `async fn name(backend: Backend)` on both backends, as `<name>::embedded`
/// and `<name>::aws`: it only generates the two `#[tokio::test]` wrappers, so the test itself
/// is a plain function that rustfmt formats. (A module and a function may share a name.)
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn embedded() {
                    super::$name(crate::support::helpers::Backend::Embedded).await
                }

                #[tokio::test]
                async fn aws() {
                    super::$name(crate::support::helpers::Backend::Aws).await
                }
            }
        )*
    };
}

/// Where a test app's data lives, for checking what was (not) stored.
pub enum Storage {
    Embedded { data_dir: PathBuf },
    Aws { clients: AwsClients, resources: Resources },
}

pub struct TestApp {
    pub address: String,
    /// An HTTP client that sends [`TestApp::key`] on every request.
    pub client: reqwest::Client,
    /// The key this app's own requests carry: [`ADMIN_KEY`] on servers started with the
    /// harness' options (any configured key closes writes to callers without one), none on
    /// servers a test configured itself (it sends what it means to test).
    pub key: Option<String>,
    pub storage: Storage,
    pub store: Arc<CountingStore>,
    /// The real tables (unwrapped), for checking what was stored.
    pub tables: Arc<dyn ChunkTables>,
    /// The same tables as DynamoDB's adapter (AWS backend), for its race counter.
    pub dynamo: Option<Arc<aws::DynamoChunkTables>>,
    pub catalog: Catalog,
    /// The AWS backend's stage (its SSM parameters, its tables).
    stage: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    _temp: Option<tempfile::TempDir>,
}

/// A plain HTTP client for tests (TLS set up as the typed client does it), sending no key.
pub fn http_client() -> reqwest::Client {
    keyed_http_client(None)
}

/// An HTTP client whose every request carries `key` as `x-api-key` (unless it sets one).
pub fn keyed_http_client(key: Option<&str>) -> reqwest::Client {
    pawql::client::install_crypto_provider();
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(key) = key {
        headers.insert("x-api-key", key.parse().unwrap());
    }
    reqwest::Client::builder().default_headers(headers).build().unwrap()
}

/// A test server at the harness' defaults on `backend`: `TestApp::builder(backend).start()`.
pub async fn spawn_app(backend: Backend) -> TestApp {
    TestApp::builder(backend).start().await
}

/// What test servers run with unless a test says otherwise: [`ADMIN_KEY`] as the only key
/// (so writes need it, and [`TestApp`] sends it), public reads.
pub fn test_options() -> ServerOptions {
    ServerOptions {
        access: Access::new(Vec::new(), vec![ADMIN_KEY.to_owned()], true),
        ..ServerOptions::default()
    }
}

/// A test's wrapper around one port (a table that lags, a detector that fails).
type Wrap<T> = Box<dyn FnOnce(Arc<T>) -> Arc<T> + Send>;

/// How to start a test server: the one way, through the wiring `pawql serve` runs
/// ([`pawql::app::Wiring::serve`]), whose ports the builder's hooks wrap before the router is
/// built. Unless told otherwise: default settings, [`test_options`], scans worked in-process
/// by the offline detector, a fresh data directory or stage.
pub struct AppBuilder {
    backend: Backend,
    settings: CatalogSettings,
    options: ServerOptions,
    worker: ScanWorker,
    faults: Option<Arc<Faults>>,
    wrap_tables: Option<Wrap<dyn ChunkTables>>,
    wrap_detector: Option<Wrap<dyn CatDetector>>,
    data_dir: Option<PathBuf>,
    clients: Option<AwsClients>,
}

impl AppBuilder {
    pub fn settings(self, settings: CatalogSettings) -> Self {
        AppBuilder { settings, ..self }
    }

    /// Access options of its own (keys, private reads, introspection, CORS).
    /// `ServerOptions::default()` is the local default: no key, writes open.
    pub fn options(self, options: ServerOptions) -> Self {
        AppBuilder { options, ..self }
    }

    /// No key at all: the local default, writes open (petAPI's curl commands, the viewer in
    /// a browser).
    pub fn without_keys(self) -> Self {
        self.options(ServerOptions::default())
    }

    /// As the Lambda API runs (AWS backend): Rekognition as the detector, and `requestScan`
    /// only records the pending scan, for the stream handler to pick up.
    pub fn stream_handler_scans(self) -> Self {
        assert_eq!(self.backend, Backend::Aws, "the scan stream is an AWS deployment's");
        AppBuilder {
            worker: ScanWorker::StreamHandler,
            ..self
        }
    }

    /// Every port fails the steps armed in `faults`; scans retry quickly and time out the
    /// detector after 2 s, so faults play out in seconds.
    pub fn faults(self, faults: Arc<Faults>) -> Self {
        AppBuilder {
            faults: Some(faults),
            ..self
        }
    }

    /// The server's chunk tables wrapped by `wrap` (an index that lags, a table that races).
    /// [`TestApp::tables`] stays the real ones.
    pub fn wrap_tables(self, wrap: impl FnOnce(Arc<dyn ChunkTables>) -> Arc<dyn ChunkTables> + Send + 'static) -> Self {
        AppBuilder {
            wrap_tables: Some(Box::new(wrap)),
            ..self
        }
    }

    /// The cat detector wrapped by `wrap` (fault injection).
    pub fn wrap_detector(
        self,
        wrap: impl FnOnce(Arc<dyn CatDetector>) -> Arc<dyn CatDetector> + Send + 'static,
    ) -> Self {
        AppBuilder {
            wrap_detector: Some(Box::new(wrap)),
            ..self
        }
    }

    /// Embedded backend over an existing data directory (restart tests); the caller owns it.
    pub fn data_dir(self, dir: &Path) -> Self {
        assert_eq!(
            self.backend,
            Backend::Embedded,
            "a data directory is the embedded backend's"
        );
        AppBuilder {
            data_dir: Some(dir.to_owned()),
            ..self
        }
    }

    /// AWS backend whose server calls go through `clients` (instrumented ones, in the budget
    /// test); the stage is provisioned and checked with plain clients.
    pub fn clients(self, clients: AwsClients) -> Self {
        assert_eq!(self.backend, Backend::Aws, "clients are the AWS backend's");
        AppBuilder {
            clients: Some(clients),
            ..self
        }
    }

    pub async fn start(self) -> TestApp {
        // Warnings and internal errors show in a failing test's output (RUST_LOG for more).
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
            .try_init();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let mut temp = None;
        let mut stage = None;
        let mut plain = None;
        let mut data_dir = None;
        let backend = match self.backend {
            Backend::Embedded => {
                let dir = self.data_dir.clone().unwrap_or_else(|| {
                    let dir = tempfile::tempdir().unwrap();
                    let path = dir.path().to_owned();
                    temp = Some(dir);
                    path
                });
                data_dir = Some(dir.clone());
                BackendSpec::Embedded {
                    data_dir: dir,
                    public_url: address.clone(),
                }
            }
            Backend::Aws => {
                let clients = MotoServer::shared().await.clients().await;
                let name = unique_stage();
                aws::provision(&clients, &name).await.unwrap();
                // The server's own calls go through IAM as deployed (serverless.yml's roles:
                // the API's, and the scan handler's too when it scans in process, as
                // `pawql serve --backend aws` does); checks of what was stored use plain clients.
                let roles: &'static [crate::iam::Function] = match self.worker {
                    ScanWorker::InProcess => &[crate::iam::Function::Api, crate::iam::Function::Scan],
                    ScanWorker::StreamHandler => &[crate::iam::Function::Api],
                };
                let enforced = crate::iam::enforcing(self.clients.as_ref().unwrap_or(&clients), roles, &name);
                let backend = BackendSpec::aws(&enforced, &name);
                stage = Some(name);
                plain = Some(clients);
                backend
            }
        };
        let scanning = match self.worker {
            ScanWorker::InProcess => Scanning::InProcess {
                cat_threshold: DEFAULT_CAT_THRESHOLD,
            },
            ScanWorker::StreamHandler => Scanning::StreamHandler {
                min_confidence: DEFAULT_MIN_CONFIDENCE,
            },
        };
        let key = (self.options.access.admin_keys == pawql::server::Keys::new([ADMIN_KEY.to_owned()])
            && self.options.access.api_keys.is_empty())
        .then(|| ADMIN_KEY.to_owned());
        let (wrap_detector, faults, wrap_tables) = (self.wrap_detector, self.faults, self.wrap_tables);
        // What the hook made: the counting store, the staged uploads, the tables before
        // `wrap_tables`, and after.
        let mut hooked = None;
        let wired = Wiring::new(backend, self.settings.clone())
            .options(self.options)
            // The harness' keys are the test's own, in its options (the stage has none in SSM).
            .without_stage_keys()
            .wrap(|ports| {
                if let Some(wrap) = wrap_detector {
                    if let Some(parts) = ports.scanning.as_mut() {
                        parts.detector = wrap(parts.detector.clone());
                    }
                }
                if let Some(faults) = &faults {
                    inject(ports, faults);
                }
                let store = Arc::new(CountingStore::new(ports.images.clone(), Arc::default()));
                ports.images = store.clone();
                let real_tables = ports.tables.clone();
                if let Some(wrap) = wrap_tables {
                    ports.tables = wrap(real_tables.clone());
                }
                hooked = Some((store, ports.staged.clone(), real_tables, ports.tables.clone()));
            })
            .serve(scanning)
            .await
            .unwrap();
        let (store, staged, real_tables, served_tables) = hooked.expect("the wiring runs its hook");
        let catalog = Catalog::new(store.clone(), staged, served_tables, self.settings);
        let router = wired.door;
        let dynamo = wired.aws.as_ref().map(|backend| backend.tables.clone());
        let storage = match (wired.aws, plain) {
            (Some(backend), Some(clients)) => Storage::Aws {
                clients,
                resources: backend.resources,
            },
            _ => Storage::Embedded {
                data_dir: data_dir.expect("an embedded app's data directory"),
            },
        };
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        TestApp {
            address,
            client: keyed_http_client(key.as_deref()),
            key,
            storage,
            store,
            tables: real_tables,
            dynamo,
            stage,
            catalog,
            shutdown: Some(tx),
            server: Some(server),
            _temp: temp,
        }
    }
}

/// Wraps every port in fault injectors armed through `faults`.
fn inject(ports: &mut app::Ports, faults: &Arc<Faults>) {
    if let Some(parts) = ports.scanning.as_mut() {
        parts.scans = Arc::new(Hooked::new(parts.scans.clone(), faults.clone()));
        parts.detector = Arc::new(FaultyDetector {
            inner: parts.detector.clone(),
            faults: faults.clone(),
        });
        // Quick retries and a short detector timeout, so faults play out in seconds.
        parts.settings.retry_base = Duration::from_millis(20);
        parts.settings.detect_timeout = Duration::from_secs(2);
    }
    ports.images = Arc::new(Hooked::new(ports.images.clone(), faults.clone()));
    ports.staged = Arc::new(Hooked::new(ports.staged.clone(), faults.clone()));
    ports.tables = Arc::new(Hooked::new(ports.tables.clone(), faults.clone()));
}

pub const IMAGE_FIELDS: &str = "id label weight contentType width height byteSize sha256 createdAt url";

impl TestApp {
    pub fn builder(backend: Backend) -> AppBuilder {
        AppBuilder {
            backend,
            settings: CatalogSettings::default(),
            options: test_options(),
            worker: ScanWorker::InProcess,
            faults: None,
            wrap_tables: None,
            wrap_detector: None,
            data_dir: None,
            clients: None,
        }
    }

    /// How many times the server has read image bytes (originals or variants) so far.
    pub fn image_reads(&self) -> usize {
        self.store.hook.gets.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The stage of an app on the AWS backend.
    pub fn stage(&self) -> &str {
        self.stage.as_deref().expect("an AWS-backend app")
    }

    /// Stops the server and releases the database, keeping the data directory.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        self.shutdown.take().unwrap().send(()).ok();
        self.server.take().unwrap().await.unwrap();
        self._temp.take()
    }

    /// POSTs a JSON GraphQL request; returns (HTTP status, body).
    /// The typed client (graphql_client, from schema.graphql and playground/) on this server.
    pub fn typed(&self) -> pawql::client::PawqlClient {
        pawql::client::PawqlClient::new(format!("{}/graphql", self.address), self.key.clone()).unwrap()
    }

    pub async fn graphql(&self, query: &str, variables: Value) -> (u16, Value) {
        self.graphql_as(None, query, variables).await
    }

    /// [`TestApp::graphql`] with `key` in `x-api-key` instead of the app's own (`None`: as the
    /// app's client sends it).
    pub async fn graphql_as(&self, key: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// Runs a query that must succeed; returns `data`.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let (status, body) = self.graphql(query, variables).await;
        assert!(body.get("errors").is_none() && status == 200, "{status} {body}");
        body["data"].clone()
    }

    /// The `upload` mutation over the multipart request spec, with what a client claims.
    pub async fn upload_raw(
        &self,
        label: &str,
        weight: Option<f64>,
        file_name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> (u16, Value) {
        let query = format!(
            "mutation Upload($image: Upload!, $label: String!, $weight: Float) {{ upload(label: $label, image: $image, weight: $weight) {{ {IMAGE_FIELDS} }} }}"
        );
        let operations =
            json!({ "query": query, "variables": { "image": null, "label": label, "weight": weight.unwrap_or(0.5) } });
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(file_name.to_owned())
            .mime_str(content_type)
            .unwrap();
        let form = reqwest::multipart::Form::new()
            .text("operations", operations.to_string())
            .text("map", json!({ "0": ["variables.image"] }).to_string())
            .part("0", part);
        self.post_form("/graphql", form).await
    }

    /// POSTs a multipart form to `path`; returns (HTTP status, JSON body).
    pub async fn post_form(&self, path: &str, form: reqwest::multipart::Form) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.address))
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// Uploads a fixture that must be accepted; returns the `Image`.
    pub async fn upload(&self, label: &str, relative: &str, weight: f64) -> Value {
        let (status, body) = self
            .upload_raw(
                label,
                Some(weight),
                relative,
                "application/octet-stream",
                fixture(relative),
            )
            .await;
        assert!(
            status == 200 && body.get("errors").is_none(),
            "{relative}: {status} {body}"
        );
        body["data"]["upload"].clone()
    }

    /// petAPI's `POST /upload` form (`label`, `img`, `weight`); returns (HTTP status, body).
    pub async fn petapi_upload(
        &self,
        label: &str,
        file_name: &str,
        bytes: Vec<u8>,
        weight: Option<&str>,
    ) -> (u16, Value) {
        let mut form = reqwest::multipart::Form::new().text("label", label.to_owned()).part(
            "img",
            reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_owned()),
        );
        if let Some(weight) = weight {
            form = form.text("weight", weight.to_owned());
        }
        self.post_form("/upload", form).await
    }

    pub async fn random_image(&self, label: &str, fields: &str) -> Value {
        let q = format!("query($label: String!) {{ randomImage(label: $label) {{ {fields} }} }}");
        self.data(&q, json!({ "label": label })).await["randomImage"].clone()
    }

    pub async fn labels(&self) -> Value {
        self.data("{ labels { label imageCount totalWeight } }", json!({}))
            .await["labels"]
            .clone()
    }

    pub async fn set_weight(&self, id: &str, weight: f64) -> (u16, Value) {
        self.graphql(
            "mutation($id: ID!, $w: Float!) { setWeight(id: $id, weight: $w) { id weight } }",
            json!({ "id": id, "w": weight }),
        )
        .await
    }

    /// Deletes through the typed client: true if the image existed.
    pub async fn delete_image(&self, id: &str) -> bool {
        use pawql::client::operations::{delete_image, DeleteImage};
        let variables = delete_image::Variables { id: id.to_owned() };
        self.typed().run::<DeleteImage>(variables).await.unwrap().delete_image
    }

    /// Stored image objects (files in the data directory, or S3 objects outside `staging/`).
    /// Original image files or objects (not staged uploads, not sized variants).
    pub async fn stored_files(&self) -> usize {
        self.objects()
            .await
            .iter()
            .filter(|key| !key.starts_with("staging") && !key.starts_with("variants/"))
            .count()
    }

    /// Sized variants stored (`variants/…`).
    pub async fn stored_variants(&self) -> usize {
        self.objects()
            .await
            .iter()
            .filter(|key| key.starts_with("variants/"))
            .count()
    }

    /// Staged uploads not completed (or not cleaned up).
    pub async fn staged_files(&self) -> usize {
        self.objects()
            .await
            .iter()
            .filter(|key| key.starts_with("staging"))
            .count()
    }

    /// Every object or file the image store holds, as a relative path or key.
    async fn objects(&self) -> Vec<String> {
        match &self.storage {
            Storage::Embedded { data_dir } => {
                fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
                    for entry in std::fs::read_dir(dir).into_iter().flatten() {
                        let path = entry.unwrap().path();
                        if path.is_dir() {
                            walk(root, &path, out);
                        } else {
                            out.push(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
                        }
                    }
                }
                let mut out = Vec::new();
                for dir in ["images", "staging"] {
                    walk(data_dir, &data_dir.join(dir), &mut out);
                }
                out.into_iter().map(|p| p.replace("images/", "")).collect()
            }
            Storage::Aws { clients, resources } => {
                let mut out = Vec::new();
                let mut pages = clients
                    .s3
                    .list_objects_v2()
                    .bucket(&resources.bucket)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    for object in page.unwrap().contents() {
                        out.push(object.key().unwrap().to_owned());
                    }
                }
                out
            }
        }
    }

    /// Everything a refused request must not change: files, their variants, staged files,
    /// rows, counts and weight sums.
    pub async fn residue(&self) -> (usize, usize, usize, usize, Value) {
        let mut rows = 0;
        for label in self.catalog.settings().labels.iter() {
            rows += self.tables.all_images(label).await.unwrap().len();
        }
        (
            self.stored_files().await,
            self.stored_variants().await,
            self.staged_files().await,
            rows,
            self.labels().await,
        )
    }

    /// The chunk invariant: per label and write shard, the chunk info's volumes, weight sums
    /// and held count equal what the image rows hold; each chunk's slots `0..chunkVolume` hold
    /// exactly its images (copies equal to the rows) and the slot after them is empty; no
    /// weight is above its chunk's ceiling; and every row's bytes exist.
    pub async fn assert_chunk_invariant(&self) {
        let mut total_rows = 0;
        for label in self.catalog.settings().labels.iter() {
            let rows = self.tables.all_images(label).await.unwrap();
            total_rows += rows.len();
            let Some(info) = self.tables.chunk_info(label).await.unwrap() else {
                assert!(rows.is_empty(), "{label}: rows without chunk info");
                continue;
            };
            for shard in &info.shards {
                let mine: Vec<&ImageRecord> = rows.iter().filter(|r| r.shard == shard.shard).collect();
                let held = mine.iter().filter(|r| r.slot.is_none()).count() as u64;
                assert_eq!(shard.held_volume, held, "{label}#{}: heldVolume", shard.shard);
                let mut chunks: std::collections::BTreeMap<u32, (u64, u64)> = Default::default();
                for row in mine.iter().filter(|r| r.slot.is_some()) {
                    let slot = row.slot.unwrap();
                    assert_eq!(
                        Some(slot.chunk),
                        resolvers::domain::chunks::chunk_of(row.pooled_nanos()),
                        "{}: filed in the wrong chunk",
                        row.id
                    );
                    let tally = chunks.entry(slot.chunk).or_default();
                    tally.0 += 1;
                    tally.1 += row.pooled_nanos();
                }
                let numbers: Vec<u32> = chunks.keys().copied().collect();
                assert_eq!(shard.chunk_numbers, numbers, "{label}#{}: chunkNumbers", shard.shard);
                let volumes: Vec<u64> = chunks.values().map(|t| t.0).collect();
                let sums: Vec<u64> = chunks.values().map(|t| t.1).collect();
                assert_eq!(
                    shard.chunk_volume, volumes,
                    "{label}#{}: chunkVolume vs rows",
                    shard.shard
                );
                assert_eq!(
                    shard.chunk_weight_sum, sums,
                    "{label}#{}: chunkWeightSum vs rows",
                    shard.shard
                );
                for tally in shard.chunks() {
                    let slots: Vec<Slot> = (0..=tally.volume)
                        .map(|index| Slot {
                            shard: shard.shard,
                            chunk: tally.chunk,
                            index,
                        })
                        .collect();
                    let found = self.tables.slots(label, &slots).await.unwrap();
                    assert_eq!(
                        found[tally.volume as usize], None,
                        "{label}: a slot past the chunk's end"
                    );
                    for (slot, copy) in slots.iter().zip(&found).take(tally.volume as usize) {
                        let copy = copy.as_ref().unwrap_or_else(|| panic!("{label}: empty slot {slot:?}"));
                        let row = mine.iter().find(|r| r.id == copy.id).expect("a slot of a row");
                        assert_eq!(*row, copy, "{label}: slot {slot:?} copy vs row");
                        assert_eq!(row.slot, Some(*slot));
                        assert!(
                            row.pooled_nanos() <= tally.ceiling,
                            "{}: above its chunk's ceiling",
                            row.id
                        );
                    }
                }
            }
            let counted: u64 = info.image_count();
            assert_eq!(
                counted,
                rows.len() as u64,
                "{label}: images counted vs rows (rows in no shard read?)"
            );
            for row in &rows {
                assert!(
                    self.store.inner.get(&row.id).await.unwrap().is_some(),
                    "{}: row without bytes",
                    row.id
                );
            }
        }
        assert_eq!(
            self.stored_files().await,
            total_rows,
            "image files vs rows (orphans or missing bytes)"
        );
        let mut named = 0;
        for label in self.catalog.settings().labels.iter() {
            for row in self.tables.all_images(label).await.unwrap() {
                for variant in &row.variants {
                    let bytes = self.store.inner.get_variant(&row.id, variant.size).await.unwrap();
                    assert_eq!(
                        bytes.map(|b| b.len() as u64),
                        Some(variant.byte_size),
                        "{}: the {} variant the row names",
                        row.id,
                        variant.size.as_str()
                    );
                    named += 1;
                }
            }
        }
        assert_eq!(
            self.stored_variants().await,
            named,
            "variant files vs the variants rows name"
        );
    }
}

/// An `Image` without its `url`: a presigned S3 URL carries its signing time, so two reads
/// of the same image differ there and only there.
pub fn without_url(image: &Value) -> Value {
    let mut image = image.clone();
    image.as_object_mut().unwrap().remove("url");
    image
}

/// The error codes of a GraphQL response.
pub fn error_codes(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["extensions"]["code"].as_str().unwrap_or("<none>").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs a Node tool from the repository root (`node <script> …`, or `npx --no-install …`),
/// off the async runtime, as the browser, client and audit tests do: the one JSON line it
/// prints on stdout. Fails the test, with everything the tool said, unless it succeeded and
/// printed JSON.
pub async fn run_node_json(program: &str, args: Vec<String>) -> Value {
    let root = env!("CARGO_MANIFEST_DIR");
    let (program, label) = (
        program.to_owned(),
        format!("{program} {}", args.first().cloned().unwrap_or_default()),
    );
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(program)
            .args(args)
            .current_dir(root)
            .output()
            .expect("running a Node tool")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{label}:\n{stdout}\n{stderr}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{label}: {e}\n{stdout}\n{stderr}"))
}

/// The body of a GraphQL multipart request (the multipart request spec), as a mobile client
/// sends it: `query` whose one `Upload` variable `image` is the file part `0`.
pub fn multipart_body(boundary: &str, query: &str, image: &[u8]) -> Vec<u8> {
    let operations = json!({ "query": query, "variables": { "image": null } });
    let mut body = Vec::new();
    for (name, value) in [
        ("operations", operations.to_string()),
        ("map", json!({ "0": ["variables.image"] }).to_string()),
    ] {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").bytes(),
        );
    }
    body.extend(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"0\"; filename=\"c.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n")
            .bytes(),
    );
    body.extend(image);
    body.extend(format!("\r\n--{boundary}--\r\n").bytes());
    body
}
