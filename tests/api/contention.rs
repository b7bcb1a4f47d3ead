//! What a busy DynamoDB says and moto never does, injected on the AWS backend:
//!
//! - [`DynamoTrouble`], an SDK interceptor, answers chosen requests as a loaded table would:
//!   `TransactGetItems` cancelled for `TransactionConflict` (someone is uploading to the
//!   label), `TransactWriteItems` cancelled for `ThrottlingError` (the write is not sent on),
//!   `GetItem` refused with `ProvisionedThroughputExceededException` more often than the SDK's
//!   own three attempts cover.
//! - [`LaggingIndex`], a port wrapper, serves `LabelChunkIndex` as it stood a while ago, as an
//!   eventually consistent index can.
//!
//! Each must end in the right answer, late if need be: no 500, no claim burnt, no deleted or
//! held image handed out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::body::SdkBody;
use rand::SeedableRng;
use resolvers::domain::chunks::{ChunkInfo, ChunkSizing};
use resolvers::domain::image::{ImageId, ImageRecord, NewImage};
use resolvers::domain::label::Label;
use resolvers::domain::weight::Weight;
use resolvers::ports::{ChunkTables, Inserted};
use resolvers::CatalogSettings;
use serde_json::json;

use crate::helpers::{fixture, spawn_aws_app_with_clients, spawn_aws_app_wrapping, TestApp};
use crate::moto::MotoServer;

/// How an armed operation is answered.
#[derive(Debug, Clone, Copy)]
enum Trouble {
    /// `TransactionCanceledException` with these reasons; the request is not sent on.
    Cancelled(&'static [&'static str]),
    /// An error with this code (a throttling exception); the request is not sent on.
    Refused(&'static str),
}

/// Answers the next armed calls of an operation with trouble instead of moto's answer.
#[derive(Debug, Clone, Default)]
struct DynamoTrouble {
    armed: Arc<Mutex<HashMap<String, (u32, Trouble)>>>,
    injected: Arc<Mutex<HashMap<String, u32>>>,
}

impl DynamoTrouble {
    fn arm(&self, operation: &str, times: u32, trouble: Trouble) {
        self.armed
            .lock()
            .unwrap()
            .insert(operation.to_owned(), (times, trouble));
    }

    fn injected(&self, operation: &str) -> u32 {
        self.injected.lock().unwrap().get(operation).copied().unwrap_or(0)
    }

    /// The trouble for this call of `operation`, if armed (and counts it).
    fn take(&self, operation: &str) -> Option<Trouble> {
        let mut armed = self.armed.lock().unwrap();
        let (left, trouble) = armed.get_mut(operation)?;
        if *left == 0 {
            return None;
        }
        *left -= 1;
        *self.injected.lock().unwrap().entry(operation.to_owned()).or_default() += 1;
        Some(*trouble)
    }
}

/// The trouble decided for one call, kept between the request and the response.
#[derive(Debug, Clone, Copy)]
struct Decided(Trouble);

impl aws_smithy_types::config_bag::Storable for Decided {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Decided>;
}

impl Intercept for DynamoTrouble {
    fn name(&self) -> &'static str {
        "DynamoTrouble"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Metadata>().unwrap().name().to_owned();
        let Some(trouble) = self.take(&operation) else {
            return Ok(());
        };
        cfg.interceptor_state().store_put(Decided(trouble));
        // The table never sees it: moto answers a harmless ListTables instead, and the answer
        // is replaced below.
        let request = context.request_mut();
        request
            .headers_mut()
            .insert("x-amz-target", "DynamoDB_20120810.ListTables");
        request.headers_mut().insert("content-length", "2");
        *request.body_mut() = SdkBody::from("{}");
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Decided(trouble)) = cfg.load::<Decided>().copied() else {
            return Ok(());
        };
        let body = match trouble {
            Trouble::Cancelled(reasons) => json!({
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "Message": format!("Transaction cancelled, please refer cancellation reasons for specific reasons {reasons:?}"),
                "CancellationReasons": reasons.iter().map(|code| json!({ "Code": code })).collect::<Vec<_>>(),
            }),
            Trouble::Refused(code) => json!({
                "__type": format!("com.amazonaws.dynamodb.v20120810#{code}"),
                "message": "Throughput exceeds the current capacity of your table or index.",
            }),
        };
        let response = context.response_mut();
        *response.status_mut() = 400u16.try_into().unwrap();
        response
            .headers_mut()
            .insert("content-type", "application/x-amz-json-1.0");
        response.headers_mut().remove("x-amzn-crc32");
        *response.body_mut() = SdkBody::from(body.to_string());
        Ok(())
    }
}

/// The app's clients with `trouble` on DynamoDB (and IAM enforced, as everywhere).
async fn troubled_clients(trouble: &DynamoTrouble) -> pawql::adapters::aws::AwsClients {
    let plain = MotoServer::shared().await.clients().await;
    let clients = pawql::adapters::aws::AwsClients {
        dynamodb: aws_sdk_dynamodb::Client::from_conf(
            plain
                .dynamodb
                .config()
                .to_builder()
                .interceptor(trouble.clone())
                .build(),
        ),
        ..plain
    };
    crate::iam::enforcing(&clients)
}

const CONFLICT: Trouble = Trouble::Cancelled(&["None", "TransactionConflict"]);
const THROTTLED_WRITE: Trouble = Trouble::Cancelled(&["None", "ThrottlingError"]);
const THROTTLED: Trouble = Trouble::Refused("ProvisionedThroughputExceededException");

#[tokio::test]
async fn conflicts_and_throttling_are_retried_to_the_right_answer_not_a_500() {
    let trouble = DynamoTrouble::default();
    let app = spawn_aws_app_with_clients(troubled_clients(&trouble).await, CatalogSettings::default()).await;

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

    // A pick whose chunk-info read is throttled past the SDK's own attempts: the label's only
    // image is held now, so the answer is "none", not an error.
    trouble.arm("GetItem", 4, THROTTLED);
    let (status, body) = app.graphql("{ randomImage(label: \"cat\") { id } }", json!({})).await;
    assert_eq!((status, body.get("errors")), (200, None), "{body}");
    assert_eq!(body["data"]["randomImage"], serde_json::Value::Null);
    assert_eq!(trouble.injected("GetItem"), 9, "5 + 4 throttled reads");
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

/// A view of the index: each (label, chunk)'s rows as they stood.
type IndexView = HashMap<(String, u32), Arc<Vec<ImageRecord>>>;

/// A chunk index that can be frozen: afterwards it answers as it stood then, as an
/// eventually consistent index may for a while. Everything else is the real table.
struct LaggingIndex {
    inner: Arc<dyn ChunkTables>,
    frozen: Mutex<Option<IndexView>>,
}

impl LaggingIndex {
    async fn freeze(&self, label: &Label) {
        let info = self.inner.chunk_info(label).await.unwrap().unwrap();
        let mut view = HashMap::new();
        for chunk in 0..info.chunk_number {
            view.insert(
                (label.to_string(), chunk),
                self.inner.chunk_images(label, chunk).await.unwrap(),
            );
        }
        *self.frozen.lock().unwrap() = Some(view);
    }
}

#[async_trait]
impl ChunkTables for LaggingIndex {
    async fn chunk_info(&self, label: &Label) -> anyhow::Result<Option<ChunkInfo>> {
        self.inner.chunk_info(label).await
    }
    async fn chunk_images(&self, label: &Label, chunk: u32) -> anyhow::Result<Arc<Vec<ImageRecord>>> {
        let stale = self
            .frozen
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|view| view.get(&(label.to_string(), chunk)).cloned());
        match stale {
            Some(rows) => Ok(rows),
            None => self.inner.chunk_images(label, chunk).await,
        }
    }
    async fn get_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
        self.inner.get_image(id).await
    }
    async fn current_rows(&self, picked: &[ImageRecord]) -> anyhow::Result<Vec<Option<ImageRecord>>> {
        self.inner.current_rows(picked).await
    }
    fn chunk_reads_may_lag(&self) -> bool {
        self.inner.chunk_reads_may_lag()
    }
    async fn insert_image(&self, image: NewImage, sizing: ChunkSizing) -> anyhow::Result<Inserted> {
        self.inner.insert_image(image, sizing).await
    }
    async fn remove_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
        self.inner.remove_image(id).await
    }
    async fn set_weight(&self, id: &ImageId, weight: Weight) -> anyhow::Result<Option<ImageRecord>> {
        self.inner.set_weight(id, weight).await
    }
    async fn set_hold(
        &self,
        id: &ImageId,
        hold: Option<resolvers::domain::hold::Hold>,
    ) -> anyhow::Result<Option<ImageRecord>> {
        self.inner.set_hold(id, hold).await
    }
    async fn all_images(&self, label: &Label) -> anyhow::Result<Vec<ImageRecord>> {
        self.inner.all_images(label).await
    }
}

async fn lagging_app() -> (TestApp, Arc<LaggingIndex>) {
    let slot: Arc<Mutex<Option<Arc<LaggingIndex>>>> = Arc::default();
    let app = spawn_aws_app_wrapping(CatalogSettings::default(), {
        let slot = slot.clone();
        move |inner| {
            let lagging = Arc::new(LaggingIndex {
                inner,
                frozen: Mutex::new(None),
            });
            *slot.lock().unwrap() = Some(lagging.clone());
            lagging
        }
    })
    .await;
    let lagging = slot.lock().unwrap().take().unwrap();
    (app, lagging)
}

#[tokio::test]
async fn a_lagging_index_never_hands_out_a_deleted_or_held_image() {
    let (app, index) = lagging_app().await;
    let deleted = app.upload("cat", "images/cat_chelsea.png", 0.5).await;
    let held = app.upload("cat", "images/cat_kde_tabby.png", 0.5).await;
    let kept = app.upload("cat", "images/cat_kde_tabby_q85.jpg", 0.5).await;
    let cat = resolvers::domain::label::LabelSet::default_pets().parse("cat").unwrap();
    index.freeze(&cat).await;
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

    // The index still lists all three, equally weighted; only `kept` may come back.
    let data = app
        .data("{ randomImages(label: \"cat\", count: 100) { id } }", json!({}))
        .await;
    let drawn = data["randomImages"].as_array().unwrap();
    assert_eq!(drawn.len(), 100);
    assert!(drawn.iter().all(|image| image["id"] == kept["id"]), "{data}");
    // petAPI's /random hands out bytes: never the deleted image's (whose object is gone).
    for _ in 0..10 {
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
    }
}

#[tokio::test]
async fn a_weight_lowered_behind_a_lagging_index_counts_as_lowered() {
    let (app, index) = lagging_app().await;
    let lowered = app.upload("cat", "images/cat_chelsea.png", 0.5).await;
    app.upload("cat", "images/cat_kde_tabby.png", 0.5).await;
    let cat = resolvers::domain::label::LabelSet::default_pets().parse("cat").unwrap();
    index.freeze(&cat).await;
    app.set_weight(lowered["id"].as_str().unwrap(), 0.05).await;

    // Fresh weights 0.05 : 0.5, so `lowered` is 1/11 of the draws; the index still says 1/2.
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut hits = 0;
    let draws = 1000;
    for _ in 0..draws / 100 {
        for image in app.catalog.random_images_with("cat", 100, &mut rng).await.unwrap() {
            hits += usize::from(image.id.to_string() == lowered["id"].as_str().unwrap());
        }
    }
    // Binomial(1000, 1/11): mean 90.9, sd 9.1; the stale weights would give ~500.
    assert!((55..=130).contains(&hits), "{hits} of {draws}");
}
