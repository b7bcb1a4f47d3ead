//! Weighted random images end to end: exact proportions through the real embedded tables.

use std::io::Cursor;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::SeedableRng;
use resolvers::domain::chunks::WriteShards;
use resolvers::domain::stats::{chi_square, chi_square_critical_999};
use resolvers::CatalogSettings;
use serde_json::{json, Value};

use crate::support::helpers::{spawn_app, Backend, TestApp};

/// A distinct tiny PNG per `n`.
pub fn png_number(n: u32) -> Bytes {
    let pixels = image::RgbImage::from_fn(2, 2, |x, y| image::Rgb([n as u8, (n >> 8) as u8, (x + 2 * y) as u8]));
    let mut out = Vec::new();
    pixels
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    Bytes::from(out)
}

async fn random_images_follow_weights_exactly_across_shards_and_chunks(backend: Backend) {
    let settings = CatalogSettings {
        shards: WriteShards::new(3).unwrap(),
        ..CatalogSettings::default()
    };
    let app = TestApp::builder(backend).settings(settings).start().await;
    // Weights 0.02..1 in many weight classes (chunks), over three shards, and one light image.
    let mut weights = Vec::new();
    for n in 0..21u32 {
        let weight = if n == 20 {
            0.02
        } else {
            0.02 + 0.98 * f64::from(n % 5) / 4.0
        };
        let record = app.catalog.upload("cat", Some(weight), png_number(n)).await.unwrap();
        weights.push((record.id.to_string(), record.weight.nanos()));
    }
    let info = app
        .tables
        .chunk_info(&app.catalog.settings().labels.parse("cat").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.shards.len(), 3, "every shard holds images");
    assert!(info.chunks().count() >= 8, "many chunks: {info:?}");
    app.assert_chunk_invariant().await;

    let mut rng = StdRng::seed_from_u64(2026);
    let mut counts = vec![0u64; weights.len()];
    // Fewer rounds on moto, where each round is a few real requests; still 20,000 draws.
    let rounds = backend.pick(1_000u64, 200);
    for _ in 0..rounds {
        for image in app.catalog.random_images_with("cat", 100, &mut rng).await.unwrap() {
            let id = image.id.to_string();
            counts[weights.iter().position(|(w_id, _)| *w_id == id).unwrap()] += 1;
        }
    }
    assert_eq!(counts.iter().sum::<u64>(), rounds * 100);
    let total: u64 = weights.iter().map(|(_, w)| w).sum();
    let expected: Vec<f64> = weights.iter().map(|(_, w)| *w as f64 / total as f64).collect();
    let stat = chi_square(&counts, &expected);
    let critical = chi_square_critical_999(weights.len() - 1);
    assert!(
        stat < critical,
        "chi-square {stat:.1} >= {critical:.1}; counts {counts:?}"
    );
}

on_both_backends!(random_images_follow_weights_exactly_across_shards_and_chunks);

async fn an_empty_label_gives_null_and_an_empty_list(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.random_image("dog", "id").await, json!(null));
    let data = app.data("{ randomImages(label: \"dog\") { id } }", json!({})).await;
    assert_eq!(data["randomImages"], json!([]));
}

on_both_backends!(an_empty_label_gives_null_and_an_empty_list);

async fn random_images_returns_count_draws_of_the_label_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let cat = app.upload("cat", "images/cat_chelsea.png", 0.5).await;
    app.upload("dog", "images/dog_kde_golden.png", 0.5).await;
    let data = app
        .data("{ randomImages(label: \"cat\", count: 7) { id label } }", json!({}))
        .await;
    let images = data["randomImages"].as_array().unwrap();
    assert_eq!(images.len(), 7);
    assert!(images.iter().all(|i| i["id"] == cat["id"]));
    let data = app.data("{ randomImages(label: \"cat\") { id } }", json!({})).await;
    assert_eq!(
        data["randomImages"].as_array().unwrap().len(),
        10,
        "count defaults to 10"
    );
    let data = app
        .data("{ randomImages(label: \"cat\", count: 0) { id } }", json!({}))
        .await;
    assert_eq!(data["randomImages"], json!([]));
}

on_both_backends!(random_images_returns_count_draws_of_the_label_only);

async fn a_deleted_image_is_never_drawn_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let gone = app.upload("cat", "images/cat_chelsea.png", 1.0).await;
    let kept = app.upload("cat", "images/cat_kde_tabby.png", 0.001).await;
    app.delete_image(gone["id"].as_str().unwrap()).await;
    let data = app
        .data("{ randomImages(label: \"cat\", count: 50) { id } }", json!({}))
        .await;
    let drawn = data["randomImages"].as_array().unwrap();
    assert_eq!(drawn.len(), 50, "{data}");
    assert!(drawn.iter().all(|i| i["id"] == kept["id"]), "{data}");
}

on_both_backends!(a_deleted_image_is_never_drawn_again);

async fn picks_see_every_write_at_once(backend: Backend) {
    // The embedded store keeps what picks read in memory (read_cache.rs); each write must
    // show in the very next pick.
    let app = spawn_app(backend).await;
    let first = app.upload("cat", "images/cat_chelsea.png", 0.5).await;
    let picked = app.random_image("cat", "id weight").await;
    assert_eq!((&picked["id"], &picked["weight"]), (&first["id"], &json!(0.5)));
    app.set_weight(first["id"].as_str().unwrap(), 0.25).await;
    assert_eq!(app.random_image("cat", "weight").await["weight"], 0.25);
    assert!(app.delete_image(first["id"].as_str().unwrap()).await);
    assert_eq!(
        app.random_image("cat", "id").await,
        Value::Null,
        "deleted: nothing to pick"
    );
    let second = app.upload("cat", "images/cat_kde_tabby.png", 0.5).await;
    assert_eq!(app.random_image("cat", "id").await["id"], second["id"]);
    assert_eq!(app.labels().await[0]["imageCount"], 1);
}

on_both_backends!(picks_see_every_write_at_once);
