//! What a busy DynamoDB says and moto never does, injected on the AWS backend:
//!
//! - [`CannedAnswers`] (`support/canned.rs`), an SDK interceptor, answers chosen requests as a loaded table would:
//!   `TransactGetItems` cancelled for `TransactionConflict` (someone is uploading to the
//!   label), `TransactWriteItems` cancelled for `ThrottlingError` (the write is not sent on),
//!   `GetItem` refused with `ProvisionedThroughputExceededException` more often than the SDK's
//!   own three attempts cover.
//! - [`StaleInfo`], a port wrapper, serves the chunk info as it stood a moment ago, as a read
//!   racing with writers can (and cached chunk info does).
//!
//! Each must end in the right answer, late if need be: no 500, no claim burnt, no deleted or
//! held image handed out.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rand::SeedableRng;
use resolvers::domain::chunks::{LabelChunks, Slot, WriteShards};
use resolvers::domain::image::{ImageId, ImageRecord, NewImage};
use resolvers::domain::label::Label;
use resolvers::ports::{ChunkTables, Inserted, RowChange};
use serde_json::json;

use crate::support::canned::{CannedAnswers, CONFLICT, THROTTLED, THROTTLED_WRITE};
use crate::support::helpers::{fixture, Backend, TestApp};
use crate::support::moto::MotoServer;

/// The app's clients with `trouble` on DynamoDB (and IAM enforced, as everywhere).
async fn troubled_clients(trouble: &CannedAnswers) -> pawql::adapters::aws::AwsClients {
    let plain = MotoServer::shared().await.clients().await;
    let clients = pawql::adapters::aws::AwsClients {
        dynamodb: crate::support::canned::answering(&plain.dynamodb, trouble),
        ..plain
    };
    // The app signs them as the API's role on its stage (`TestApp`).
    clients
}

#[tokio::test]
async fn conflicts_and_throttling_are_retried_to_the_right_answer_not_a_500() {
    let trouble = CannedAnswers::default();
    let app = TestApp::builder(Backend::Aws)
        .clients(troubled_clients(&trouble).await)
        .start()
        .await;

    // More throttled reads than the SDK's own three attempts: the upload still lands.
    trouble.arm("GetItem", 5, THROTTLED);
    let cat = app.upload("cat", "images/cat_chelsea.png", 0.5).await;
    assert_eq!(trouble.injected("GetItem"), 5);
    let id = cat["id"].as_str().unwrap().to_owned();

    // setWeight's snapshot read (row + chunk info) cancelled for a conflict, three times.
    trouble.arm("TransactGetItems", 3, CONFLICT);
    let (status, body) = app.set_weight(&id, 0.25).await;
    assert_eq!((status, body.get("errors")), (200, None), "{body}");
    assert_eq!(body["data"]["setWeight"]["weight"], 0.25);
    assert_eq!(trouble.injected("TransactGetItems"), 3);

    // Its write cancelled for throttling (not applied), twice.
    trouble.arm("TransactWriteItems", 2, THROTTLED_WRITE);
    let (_, body) = app.set_weight(&id, 0.75).await;
    assert_eq!(body["data"]["setWeight"]["weight"], 0.75, "{body}");
    assert_eq!(trouble.injected("TransactWriteItems"), 2);

    // A delete through both.
    let dog = app.upload("dog", "images/dog_kde_golden.png", 0.5).await;
    trouble.arm("TransactGetItems", 2, CONFLICT);
    trouble.arm("TransactWriteItems", 2, CONFLICT);
    assert!(app.delete_image(dog["id"].as_str().unwrap()).await);
    // Both met by the delete itself, not left over for what follows.
    assert_eq!(trouble.injected("TransactGetItems"), 3 + 2);
    assert_eq!(trouble.injected("TransactWriteItems"), 2 + 2);

    // The label check's hold (what the scan handler writes) through conflicts: no error, so
    // no claim is burnt toward GAVE_UP.
    trouble.arm("TransactGetItems", 3, CONFLICT);
    let parsed = ImageId::parse(&id, &resolvers::domain::label::LabelSet::default_pets()).unwrap();
    let held = app
        .dynamo
        .as_ref()
        .unwrap()
        .set_hold(&parsed, Some(resolvers::domain::hold::Hold::AwaitingScan))
        .await
        .unwrap();
    assert_eq!(held.unwrap().hold, Some(resolvers::domain::hold::Hold::AwaitingScan));
    assert_eq!(
        trouble.injected("TransactGetItems"),
        3 + 2 + 3,
        "the hold met its conflicts"
    );

    // A pick whose chunk-info read is throttled past the SDK's own attempts: the label's only
    // image is held now, so the answer is "none", not an error.
    trouble.arm("BatchGetItem", 4, THROTTLED);
    let (status, body) = app.graphql("{ randomImage(label: \"cat\") { id } }", json!({})).await;
    assert_eq!((status, body.get("errors")), (200, None), "{body}");
    assert_eq!(body["data"]["randomImage"], serde_json::Value::Null);
    assert_eq!(trouble.injected("BatchGetItem"), 4, "throttled shard reads");
    let labels = app.labels().await;
    assert_eq!(
        labels[0]["totalWeight"], 0.0,
        "the held cat's weight left its chunk: {labels}"
    );
    app.assert_chunk_invariant().await;
    // Retried by pawql (beyond the SDK's own attempts): 1 + 3 + 2 + 4 + 3 + 1.
    assert!(
        app.dynamo.as_ref().unwrap().lost_races() >= 14,
        "every injection was retried"
    );
}

/// Chunk info that can be frozen: its next reads answer as it stood then, as a read racing
/// with writers does (or a cached one, with `PAWQL_CHUNK_INFO_MAX_AGE`). It counts the stale
/// answers it gave, so a test shows that each path it claims really met one. Everything else
/// is the real table.
struct StaleInfo {
    inner: Arc<dyn ChunkTables>,
    /// The label, its chunk info as frozen, and how many more reads get it.
    frozen: Mutex<Option<(Label, LabelChunks, usize)>>,
    stale_served: std::sync::atomic::AtomicUsize,
}

impl StaleInfo {
    /// Takes the label's chunk info as it is now; the next `stale_reads` reads answer it.
    async fn freeze(&self, label: &Label, stale_reads: usize) {
        let info = self.inner.chunk_info(label).await.unwrap().unwrap();
        *self.frozen.lock().unwrap() = Some((label.clone(), info, stale_reads));
    }

    /// The next `stale_reads` reads answer the chunk info frozen earlier, again: a path's
    /// first read is stale, and the re-read it makes on finding the slots changed is fresh,
    /// as a strongly consistent re-read is.
    fn stale_again(&self, stale_reads: usize) {
        if let Some((_, _, left)) = self.frozen.lock().unwrap().as_mut() {
            *left = stale_reads;
        }
    }

    /// Stale chunk infos answered so far.
    fn stale_served(&self) -> usize {
        self.stale_served.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait]
impl ChunkTables for StaleInfo {
    async fn chunk_info(&self, label: &Label) -> anyhow::Result<Option<LabelChunks>> {
        let stale = match self.frozen.lock().unwrap().as_mut() {
            Some((frozen, info, left)) if frozen == label && *left > 0 => {
                *left -= 1;
                Some(info.clone())
            }
            _ => None,
        };
        match stale {
            Some(info) => {
                self.stale_served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(Some(info))
            }
            None => self.inner.chunk_info(label).await,
        }
    }
    async fn slots(&self, label: &Label, slots: &[Slot]) -> anyhow::Result<Vec<Option<ImageRecord>>> {
        self.inner.slots(label, slots).await
    }
    async fn get_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
        self.inner.get_image(id).await
    }
    async fn insert_image(&self, image: NewImage, shards: WriteShards) -> anyhow::Result<Inserted> {
        self.inner.insert_image(image, shards).await
    }
    async fn remove_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
        self.inner.remove_image(id).await
    }
    async fn update_image(&self, id: &ImageId, change: RowChange) -> anyhow::Result<Option<ImageRecord>> {
        self.inner.update_image(id, change).await
    }
    async fn all_images(&self, label: &Label) -> anyhow::Result<Vec<ImageRecord>> {
        self.inner.all_images(label).await
    }
}

async fn stale_info_app() -> (TestApp, Arc<StaleInfo>) {
    let slot: Arc<Mutex<Option<Arc<StaleInfo>>>> = Arc::default();
    let app = TestApp::builder(Backend::Aws)
        .wrap_tables({
            let slot = slot.clone();
            move |inner| {
                let stale = Arc::new(StaleInfo {
                    inner,
                    frozen: Mutex::new(None),
                    stale_served: Default::default(),
                });
                *slot.lock().unwrap() = Some(stale.clone());
                stale
            }
        })
        .start()
        .await;
    let stale = slot.lock().unwrap().take().unwrap();
    (app, stale)
}

#[tokio::test]
async fn stale_chunk_info_never_hands_out_a_deleted_or_held_image() {
    let (app, info) = stale_info_app().await;
    let deleted = app.upload("cat", "images/cat_chelsea.png", 0.5).await;
    let held = app.upload("cat", "images/cat_kde_tabby.png", 0.5).await;
    let kept = app.upload("cat", "images/cat_kde_tabby_q85.jpg", 0.5).await;
    let cat = resolvers::domain::label::LabelSet::default_pets().parse("cat").unwrap();
    info.freeze(&cat, 0).await;
    assert!(app.delete_image(deleted["id"].as_str().unwrap()).await);
    let held_id = ImageId::parse(
        held["id"].as_str().unwrap(),
        &resolvers::domain::label::LabelSet::default_pets(),
    )
    .unwrap();
    app.tables
        .set_hold(&held_id, Some(resolvers::domain::hold::Hold::AwaitingScan))
        .await
        .unwrap();

    // The chunk info read still counts all three, equally weighted; only `kept` may come
    // back (the slots, read strongly, say what is there now).
    info.stale_again(1);
    let data = app
        .data("{ randomImages(label: \"cat\", count: 100) { id } }", json!({}))
        .await;
    let drawn = data["randomImages"].as_array().unwrap();
    assert_eq!(drawn.len(), 100);
    assert!(drawn.iter().all(|image| image["id"] == kept["id"]), "{data}");
    assert!(info.stale_served() >= 1, "randomImages read the stale chunk info");
    // petAPI's /random hands out bytes: never the deleted image's (whose object is gone),
    // each call behind the stale chunk info too.
    for call in 0..10 {
        info.stale_again(1);
        let served = info.stale_served();
        let response = app
            .client
            .get(format!("{}/random?label=cat", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.bytes().await.unwrap().to_vec(),
            fixture("images/cat_kde_tabby_q85.jpg")
        );
        assert!(
            info.stale_served() > served,
            "/random call {call} read the stale chunk info"
        );
    }
}

#[tokio::test]
async fn a_weight_lowered_behind_stale_chunk_info_counts_as_lowered() {
    let (app, info) = stale_info_app().await;
    let lowered = app.upload("cat", "images/cat_chelsea.png", 0.5).await;
    app.upload("cat", "images/cat_kde_tabby.png", 0.5).await;
    let cat = resolvers::domain::label::LabelSet::default_pets().parse("cat").unwrap();
    app.set_weight(lowered["id"].as_str().unwrap(), 0.5).await;
    info.freeze(&cat, 0).await;
    app.set_weight(lowered["id"].as_str().unwrap(), 0.05).await;

    // Fresh weights 0.05 : 0.5, so `lowered` is 1/11 of the draws; each batch's first
    // chunk-info read says 1/2.
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut hits = 0;
    let draws = 1000;
    for _ in 0..draws / 100 {
        info.stale_again(1);
        for image in app.catalog.random_images_with("cat", 100, &mut rng).await.unwrap() {
            hits += usize::from(image.id.to_string() == lowered["id"].as_str().unwrap());
        }
    }
    // Binomial(1000, 1/11): mean 90.9, sd 9.1; the stale weights would give ~500.
    assert!((55..=130).contains(&hits), "{hits} of {draws}");
    assert!(
        info.stale_served() >= draws / 100,
        "every batch drew behind the stale chunk info"
    );
}
