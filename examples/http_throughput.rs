//! The local server's `randomImage { url }` under load, beside an axum hello-world in the same
//! process, so the ratio between the two is the figure (this machine is noisy; a ratio is not).
//! Serves both on loopback and waits; `scripts/bench-http` drives them with wrk.
//!
//!     cargo run --release --example http_throughput [images]   (default 100000)
//!
//! The embedded store with `images` rows under `cat` is seeded once into
//! `target/bench-data/<images>/` and reused. The rows are real catalogue rows (sizes, weights,
//! chunks as uploads make them); no image files are written, because `url` never reads them.

use std::path::{Path, PathBuf};
use std::time::Instant;

use axum::routing::post;
use axum::Router;
use pawql::adapters::embedded;
use pawql::server::ServerOptions;
use resolvers::domain::chunks::WriteShards;
use resolvers::domain::image::{ImageFacts, ImageId, ImageKind, NewImage, Sha256Hex};
use resolvers::domain::weight::Weight;
use resolvers::ports::ChunkTables;
use resolvers::CatalogSettings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let images: u32 = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100_000);
    let data_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("target/bench-data/{images}"));
    let settings = CatalogSettings::default();
    seed(&data_dir, images, &settings).await?;

    let pawql_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let public_url = format!("http://{}", pawql_listener.local_addr()?);
    let options = ServerOptions::default();
    let backend = pawql::app::BackendSpec::Embedded {
        data_dir: data_dir.clone(),
        public_url,
    };
    let router = pawql::app::Wiring::new(backend, settings)
        .options(options)
        .serve(pawql::app::Scanning::InProcess { cat_threshold: 0.2 })
        .await?
        .door;
    let hello_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    // The baseline: the same stack (tokio, hyper, axum) answering a constant JSON body.
    let hello = Router::new().route(
        "/graphql",
        post(|| async { axum::Json(serde_json::json!({ "data": { "hello": "world" } })) }),
    );
    println!("pawql http://{}/graphql", pawql_listener.local_addr()?);
    println!("hello http://{}/graphql", hello_listener.local_addr()?);
    let pawql = tokio::spawn(async move { axum::serve(pawql_listener, router).await });
    let hello = tokio::spawn(async move { axum::serve(hello_listener, hello).await });
    tokio::select! {
        served = pawql => served??,
        served = hello => served??,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

/// Inserts `images` rows under `cat` unless the store already holds them.
async fn seed(data_dir: &Path, images: u32, settings: &CatalogSettings) -> anyhow::Result<()> {
    let (_, tables) = embedded::open(data_dir, "http://seed", settings)?;
    let cat = settings.labels.parse("cat")?;
    let have = tables.chunk_info(&cat).await?.map_or(0, |info| info.image_count());
    if u64::from(images) <= have {
        eprintln!("store at {} holds {have} images", data_dir.display());
        return Ok(());
    }
    let started = Instant::now();
    let shards = WriteShards::default();
    for n in have as u32..images {
        let sha256 = Sha256Hex::of(&n.to_le_bytes());
        let image = NewImage {
            id: ImageId::new(cat.clone(), sha256.clone()),
            weight: Weight::from_f64(0.05 + f64::from(n % 19) / 20.0)?,
            facts: ImageFacts {
                kind: ImageKind::Jpeg,
                width: 640,
                height: 480,
                byte_size: 50_000,
                sha256,
            },
            created_at: chrono::Utc::now(),
            hold: None,
            variants: Vec::new(),
            placeholder: None,
        };
        tables.insert_image(image, shards).await?;
        if n % 10_000 == 0 {
            eprintln!("seeded {n} of {images} ({:.0} s)", started.elapsed().as_secs_f64());
        }
    }
    eprintln!("seeded {images} images in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}
