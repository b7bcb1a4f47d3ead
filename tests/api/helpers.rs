//! `spawn_app()`: a real pawql server on 127.0.0.1:0 over the embedded backend in a fresh
//! temporary data directory, and a `TestApp` with one method per operation.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use pawql::adapters::embedded;
use resolvers::domain::image::{ImageId, ImageKind, ImageRecord};
use resolvers::ports::{ChunkTables, ImageStore};
use resolvers::{Catalog, CatalogSettings};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

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

/// An image store wrapper that counts reads, to prove `url` never reads the bytes.
pub struct CountingStore {
    pub inner: Arc<dyn ImageStore>,
    pub gets: AtomicUsize,
}

#[async_trait]
impl ImageStore for CountingStore {
    async fn put(&self, id: &ImageId, kind: ImageKind, bytes: Bytes) -> anyhow::Result<()> {
        self.inner.put(id, kind, bytes).await
    }
    async fn get(&self, id: &ImageId) -> anyhow::Result<Option<Bytes>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(id).await
    }
    async fn delete(&self, id: &ImageId) -> anyhow::Result<()> {
        self.inner.delete(id).await
    }
    async fn url(&self, image: &ImageRecord) -> anyhow::Result<String> {
        self.inner.url(image).await
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    pub store: Arc<CountingStore>,
    /// The real tables (unwrapped), for checking what was stored.
    pub tables: Arc<dyn ChunkTables>,
    pub catalog: Catalog,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    _temp: Option<tempfile::TempDir>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(CatalogSettings::default()).await
}

pub async fn spawn_app_with(settings: CatalogSettings) -> TestApp {
    let temp = tempfile::tempdir().unwrap();
    let mut app = spawn_app_in(temp.path(), settings).await;
    app._temp = Some(temp);
    app
}

/// A server whose chunk tables are wrapped by `wrap` (fault injection); its own temp directory.
pub async fn spawn_app_wrapping(wrap: impl FnOnce(Arc<dyn ChunkTables>) -> Arc<dyn ChunkTables>) -> TestApp {
    let temp = tempfile::tempdir().unwrap();
    let mut app = start(temp.path(), CatalogSettings::default(), wrap).await;
    app._temp = Some(temp);
    app
}

/// A server over an existing data directory (for restart tests); the caller owns the directory.
pub async fn spawn_app_in(data_dir: &Path, settings: CatalogSettings) -> TestApp {
    start(data_dir, settings, |tables| tables).await
}

async fn start(
    data_dir: &Path,
    settings: CatalogSettings,
    wrap: impl FnOnce(Arc<dyn ChunkTables>) -> Arc<dyn ChunkTables>,
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let (images, tables) = embedded::open(data_dir, &address, settings.labels.clone()).unwrap();
    let store = Arc::new(CountingStore {
        inner: images,
        gets: AtomicUsize::new(0),
    });
    let real_tables: Arc<dyn ChunkTables> = tables;
    let tables = wrap(real_tables.clone());
    let catalog = Catalog::new(store.clone(), tables.clone(), settings.clone());
    let router = pawql::app::router_over(store.clone(), tables, settings);
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
        client: reqwest::Client::new(),
        data_dir: data_dir.to_owned(),
        store,
        tables: real_tables,
        catalog,
        shutdown: Some(tx),
        server: Some(server),
        _temp: None,
    }
}

pub const IMAGE_FIELDS: &str = "id label weight contentType width height byteSize sha256 createdAt url";

impl TestApp {
    /// Stops the server and releases the database, keeping the data directory.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        self.shutdown.take().unwrap().send(()).ok();
        self.server.take().unwrap().await.unwrap();
        self._temp.take()
    }

    /// POSTs a JSON GraphQL request; returns (HTTP status, body).
    pub async fn graphql(&self, query: &str, variables: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap();
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

    pub async fn delete_image(&self, id: &str) -> Value {
        self.data("mutation($id: ID!) { deleteImage(id: $id) }", json!({ "id": id }))
            .await["deleteImage"]
            .clone()
    }

    /// Image files currently in the data directory.
    pub fn stored_files(&self) -> usize {
        fn count(dir: &Path) -> usize {
            std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .map(|e| e.unwrap().path())
                        .map(|p| if p.is_dir() { count(&p) } else { 1 })
                        .sum()
                })
                .unwrap_or(0)
        }
        count(&self.data_dir.join("images"))
    }

    /// Everything a refused request must not change: files, rows, counts and weight sums.
    pub async fn residue(&self) -> (usize, usize, Value) {
        let mut rows = 0;
        for label in self.catalog.settings().labels.iter() {
            rows += self.tables.all_images(label).await.unwrap().len();
        }
        (self.stored_files(), rows, self.labels().await)
    }

    /// The chunk invariant: per label, chunk counts and weight sums in chunk info equal what
    /// the image table holds, the index agrees with the rows, `activeChunks` is exactly the
    /// chunks below the threshold, and every row's bytes exist.
    pub async fn assert_chunk_invariant(&self) {
        let mut total_rows = 0;
        for label in self.catalog.settings().labels.iter() {
            let rows = self.tables.all_images(label).await.unwrap();
            total_rows += rows.len();
            let Some(info) = self.tables.chunk_info(label).await.unwrap() else {
                assert!(rows.is_empty(), "{label}: rows without chunk info");
                continue;
            };
            let chunks = info.chunk_number as usize;
            assert_eq!(info.chunk_volume.len(), chunks, "{label}: chunkVolume length");
            assert_eq!(info.chunk_weight_sum.len(), chunks, "{label}: chunkWeightSum length");
            let mut volume = vec![0u64; chunks];
            let mut weight = vec![0u64; chunks];
            for row in &rows {
                volume[row.chunk_number as usize] += 1;
                weight[row.chunk_number as usize] += row.weight.nanos();
                assert!(
                    self.store.inner.get(&row.id).await.unwrap().is_some(),
                    "{}: row without bytes",
                    row.id
                );
            }
            assert_eq!(info.chunk_volume, volume, "{label}: chunkVolume vs rows");
            assert_eq!(info.chunk_weight_sum, weight, "{label}: chunkWeightSum vs rows");
            for chunk in 0..info.chunk_number {
                let indexed = self.tables.chunk_images(label, chunk).await.unwrap();
                assert_eq!(
                    indexed.len() as u64,
                    volume[chunk as usize],
                    "{label}: LabelChunkIndex of chunk {chunk}"
                );
            }
            let active: Vec<u32> = (0..info.chunk_number)
                .filter(|&c| volume[c as usize] < u64::from(info.chunk_threshold))
                .collect();
            assert_eq!(info.active_chunks, active, "{label}: activeChunks");
        }
        assert_eq!(
            self.stored_files(),
            total_rows,
            "image files vs rows (orphans or missing bytes)"
        );
    }
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
