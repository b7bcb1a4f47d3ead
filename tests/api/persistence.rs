//! The embedded backend is a real store: what was written survives a restart.

use crate::support::helpers::{fixture, Backend, TestApp};

#[tokio::test]
async fn images_and_bookkeeping_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = TestApp::builder(Backend::Embedded).data_dir(dir.path()).start().await;
    let uploaded = first.upload("dog", "images/dog_farm_german_shepherd.webp", 0.75).await;
    let labels_before = first.labels().await;
    first.stop().await;

    let second = TestApp::builder(Backend::Embedded).data_dir(dir.path()).start().await;
    assert_eq!(second.labels().await, labels_before);
    let drawn = second.random_image("dog", "id url").await;
    assert_eq!(drawn["id"], uploaded["id"]);
    let bytes = second
        .client
        .get(drawn["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        bytes.as_ref(),
        fixture("images/dog_farm_german_shepherd.webp").as_slice()
    );
    second.assert_chunk_invariant().await;
}
