//! Failures half-way through a write leave nothing behind, and concurrent writers keep the
//! chunk invariant exact.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use resolvers::domain::chunks::{ChunkInfo, ChunkSizing};
use resolvers::domain::image::{ImageId, ImageRecord, NewImage};
use resolvers::domain::label::Label;
use resolvers::domain::weight::Weight;
use resolvers::ports::{ChunkTables, Inserted};
use resolvers::CatalogSettings;
use serde_json::json;

use crate::helpers::{error_codes, spawn_app_with, spawn_app_wrapping};

/// The real tables, except that `insert_image` fails while `failing` is set.
struct FailingInserts {
    inner: Arc<dyn ChunkTables>,
    failing: Arc<AtomicBool>,
}

#[async_trait]
impl ChunkTables for FailingInserts {
    async fn chunk_info(&self, label: &Label) -> anyhow::Result<Option<ChunkInfo>> {
        self.inner.chunk_info(label).await
    }
    async fn chunk_images(&self, label: &Label, chunk: u32) -> anyhow::Result<Vec<ImageRecord>> {
        self.inner.chunk_images(label, chunk).await
    }
    async fn get_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
        self.inner.get_image(id).await
    }
    async fn insert_image(&self, image: NewImage, sizing: ChunkSizing) -> anyhow::Result<Inserted> {
        if self.failing.load(Ordering::SeqCst) {
            anyhow::bail!("injected: table write failed (secret detail)");
        }
        self.inner.insert_image(image, sizing).await
    }
    async fn remove_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
        self.inner.remove_image(id).await
    }
    async fn set_weight(&self, id: &ImageId, weight: Weight) -> anyhow::Result<Option<ImageRecord>> {
        self.inner.set_weight(id, weight).await
    }
    async fn set_hold(&self, id: &ImageId, hold: Option<String>) -> anyhow::Result<Option<ImageRecord>> {
        self.inner.set_hold(id, hold).await
    }
    async fn all_images(&self, label: &Label) -> anyhow::Result<Vec<ImageRecord>> {
        self.inner.all_images(label).await
    }
}

on_both_backends! {
    async fn a_failed_table_write_removes_the_stored_object_and_hides_the_cause(backend) {
        let failing = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&failing);
        let app = spawn_app_wrapping(backend, move |inner| Arc::new(FailingInserts { inner, failing: flag })).await;

        let bytes = crate::helpers::fixture("images/cat_chelsea.png");
        let (_, body) = app.upload_raw("cat", None, "cat.png", "image/png", bytes.clone()).await;
        assert_eq!(error_codes(&body), vec!["INTERNAL_SERVER_ERROR"], "{body}");
        assert!(
            !body.to_string().contains("secret detail"),
            "internal details must not reach the client"
        );
        assert_eq!(app.residue().await.0, 0, "no orphan object");
        app.assert_chunk_invariant().await;

        // Retrying the same bytes once the fault clears succeeds: uploads are retry-safe.
        failing.store(false, Ordering::SeqCst);
        let (status, body) = app.upload_raw("cat", None, "cat.png", "image/png", bytes).await;
        assert_eq!(status, 200, "{body}");
        app.assert_chunk_invariant().await;
    }
}

on_both_backends! {
    async fn concurrent_uploads_deletes_and_weight_changes_keep_the_invariant_exact(backend) {
        let settings = CatalogSettings {
            sizing: ChunkSizing::new(4, 5).unwrap(),
            ..CatalogSettings::default()
        };
        let app = Arc::new(spawn_app_with(backend, settings).await);
        let pngs: Vec<Vec<u8>> = (0..60u32).map(crate::random::png_number).map(|b| b.to_vec()).collect();

        let uploads = pngs.iter().enumerate().map(|(i, png)| {
            let app = Arc::clone(&app);
            let png = png.clone();
            tokio::spawn(async move {
                let weight = 0.01 + (i % 7) as f64 / 7.0;
                let (status, body) = app.upload_raw("cat", Some(weight), "p.png", "image/png", png).await;
                assert_eq!(status, 200, "{body}");
                body["data"]["upload"]["id"].as_str().unwrap().to_owned()
            })
        });
        let mut ids = Vec::new();
        for task in uploads.collect::<Vec<_>>() {
            ids.push(task.await.unwrap());
        }

        // Delete every third image and re-weight the others, all at once, each delete twice.
        let mut tasks = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let worker = Arc::clone(&app);
            let id = id.clone();
            tasks.push(tokio::spawn(async move {
                let app = worker;
                if i % 3 == 0 {
                    app.delete_image(&id).await;
                } else {
                    let (status, body) = app.set_weight(&id, 0.5 + (i % 5) as f64 / 10.0).await;
                    assert_eq!(status, 200, "{body}");
                }
            }));
            if i % 3 == 0 {
                let app = Arc::clone(&app);
                let id = ids[i].clone();
                tasks.push(tokio::spawn(async move {
                    app.delete_image(&id).await;
                }));
            }
        }
        for task in tasks {
            task.await.unwrap();
        }

        let labels = app.labels().await;
        assert_eq!(
            labels[0]["imageCount"],
            json!(40),
            "60 uploaded, 20 deleted: none lost or duplicated"
        );
        app.assert_chunk_invariant().await;
    }
}
