//! Writes whose answer is lost: DynamoDB documents an `InternalServerError` on a write as
//! "the outcome is unknown", and it may well have committed. [`APPLIED_THEN_LOST`] lets the
//! transaction act on moto and then answers 500, once (the SDK's own retry meets it) or past
//! the SDK's attempts (pawql's own resend meets it). moto-server.py keeps DynamoDB's
//! `ClientRequestToken` rule, which moto itself ignores, so a resend with the first try's token
//! is the same transaction. Every answer and every count must be what the first try would
//! have answered, and no lost write may be re-planned as if someone else had made it.

use resolvers::domain::chunks::WriteShards;
use resolvers::domain::hold::Hold;
use resolvers::domain::image::ImageId;
use resolvers::domain::label::LabelSet;
use resolvers::ports::ChunkTables;
use serde_json::json;

use crate::support::canned::{answering, CannedAnswers, APPLIED_THEN_LOST};
use crate::support::helpers::{Backend, TestApp};
use crate::support::moto::MotoServer;

/// Lost once (the SDK's second attempt meets the token), and more often than the SDK tries.
const LOSSES: [u32; 2] = [1, 5];

async fn app_losing_answers(trouble: &CannedAnswers) -> TestApp {
    let plain = MotoServer::shared().await.clients().await;
    let clients = pawql::adapters::aws::AwsClients {
        dynamodb: answering(&plain.dynamodb, trouble),
        ..plain
    };
    TestApp::builder(Backend::Aws).clients(clients).start().await
}

#[tokio::test]
async fn uploads_reweights_holds_and_deletes_whose_answer_is_lost_answer_as_the_first_try() {
    let trouble = CannedAnswers::default();
    let app = app_losing_answers(&trouble).await;
    let labels = LabelSet::default_pets();
    let races = || app.dynamo.as_ref().unwrap().lost_races();
    let mut injected = 0;
    for (round, losses) in LOSSES.into_iter().enumerate() {
        let before = app.labels().await;
        let photo = ["images/cat_chelsea.png", "images/cat_kde_tabby.png"][round];

        trouble.arm("TransactWriteItems", losses, APPLIED_THEN_LOST);
        let uploaded = app.upload("cat", photo, 0.5).await;
        injected += losses;
        assert_eq!(
            trouble.injected("TransactWriteItems"),
            injected,
            "the upload's write was lost {losses}×"
        );
        let id = uploaded["id"].as_str().unwrap().to_owned();
        assert_eq!(uploaded["weight"], 0.5);

        trouble.arm("TransactWriteItems", losses, APPLIED_THEN_LOST);
        let (_, body) = app.set_weight(&id, 0.25).await;
        injected += losses;
        assert_eq!(body["data"]["setWeight"]["weight"], 0.25, "{body}");

        trouble.arm("TransactWriteItems", losses, APPLIED_THEN_LOST);
        let parsed = ImageId::parse(&id, &labels).unwrap();
        let held = app
            .dynamo
            .as_ref()
            .unwrap()
            .set_hold(&parsed, Some(Hold::AwaitingScan))
            .await
            .unwrap();
        injected += losses;
        assert_eq!(held.unwrap().hold, Some(Hold::AwaitingScan));
        trouble.arm("TransactWriteItems", losses, APPLIED_THEN_LOST);
        let released = app.dynamo.as_ref().unwrap().set_hold(&parsed, None).await.unwrap();
        injected += losses;
        assert_eq!(released.unwrap().hold, None);

        trouble.arm("TransactWriteItems", losses, APPLIED_THEN_LOST);
        assert!(app.delete_image(&id).await, "the delete happened, and says so");
        injected += losses;
        assert_eq!(trouble.injected("TransactWriteItems"), injected);

        // Nothing was re-planned as a lost race (a resend is the same transaction), and the
        // label is exactly as before the round.
        assert_eq!(races(), 0, "a lost answer was taken for someone else's write");
        assert_eq!(app.labels().await, before, "round {round}");
        app.assert_chunk_invariant().await;
    }
}

#[tokio::test]
async fn a_migration_switch_whose_answer_is_lost_is_done_once() {
    let plain = MotoServer::shared().await.clients().await;
    let app = TestApp::builder(Backend::Aws).start().await;
    let labels = LabelSet::default_pets();
    let cat = labels.parse("cat").unwrap();
    crate::migrate::upload_cats(&app, 5).await;
    let catalogue_before = crate::migrate::catalogue(&app).await;
    let totals_before = app.labels().await;
    let (resources, _) = crate::scan_stream::resources(&app);
    let mut rows = app.tables.all_images(&cat).await.unwrap();
    rows.sort_by_key(|row| row.created_at);
    crate::migrate::write_old_layout(&plain, &resources, &cat, &rows).await;

    let trouble = CannedAnswers::default();
    let enforced = crate::iam::enforcing(&plain, &[crate::iam::Function::Api], &crate::iam::stage_of(&resources));
    let losing = answering(&enforced.dynamodb, &trouble);
    trouble.arm("TransactWriteItems", *LOSSES.last().unwrap(), APPLIED_THEN_LOST);
    let migrated = pawql::adapters::aws::migrate::migrate(&losing, &resources, &labels, WriteShards::default())
        .await
        .expect("the switch applied; its lost answer is not a failure");
    assert_eq!(trouble.injected("TransactWriteItems"), *LOSSES.last().unwrap());
    let cat_report = migrated.iter().find(|m| m.label == "cat").expect("cat was converted");
    assert_eq!(cat_report.images, Some(5), "{migrated:?}");
    app.assert_chunk_invariant().await;
    assert_eq!(crate::migrate::catalogue(&app).await, catalogue_before);
    assert_eq!(app.labels().await, totals_before);
    let (_, body) = app.graphql("{ randomImage(label: \"cat\") { id } }", json!({})).await;
    assert!(body["data"]["randomImage"]["id"].is_string(), "served again: {body}");
}

/// A resend that meets the first attempt still running is answered
/// `TransactionInProgressException`: still unknown, so resent again with the token, never
/// re-planned (a delete that happened says so).
#[tokio::test]
async fn a_resend_that_meets_the_first_still_in_progress_waits_for_it() {
    let trouble = CannedAnswers::default();
    let app = app_losing_answers(&trouble).await;
    let uploaded = app.upload("dog", "images/dog_kde_golden.png", 0.5).await;
    let before = app.labels().await;
    let dog = app.upload("dog", "images/dog_darknet_bicycle.jpg", 0.5).await;
    trouble.arm("TransactWriteItems", 1, APPLIED_THEN_LOST);
    trouble.arm_when(
        "TransactWriteItems",
        Some("ClientRequestToken"),
        5,
        crate::support::canned::Answer::Error("TransactionInProgressException"),
    );
    assert!(
        app.delete_image(dog["id"].as_str().unwrap()).await,
        "the delete happened, and says so"
    );
    assert_eq!(trouble.injected("TransactWriteItems"), 1 + 5);
    assert_eq!(app.dynamo.as_ref().unwrap().lost_races(), 0);
    assert_eq!(app.labels().await, before);
    assert!(uploaded["id"].is_string());
    app.assert_chunk_invariant().await;
}
