//! The S3 image store against moto's server: real SDK requests over the wire.

use pawql::adapters::aws::{provision, S3ImageStore, DEFAULT_URL_TTL};
use resolvers::domain::image::{ImageId, ImageKind, Sha256Hex};
use resolvers::domain::label::LabelSet;
use resolvers::ports::ImageStore;

use crate::support::helpers::fixture;
use crate::support::moto::{unique_stage, MotoServer};

#[tokio::test]
async fn s3_image_store_puts_gets_presigns_and_deletes_against_moto() {
    let clients = MotoServer::shared().await.clients().await;
    let resources = provision(&clients, &unique_stage()).await.unwrap();
    let s3 = clients.s3.clone();
    let bucket = resources.bucket.as_str();
    // The store as the API function runs it: with its role's IAM.
    let acting = crate::iam::enforcing(
        &clients,
        &[crate::iam::Function::Api],
        &crate::iam::stage_of(&resources),
    );
    let store = S3ImageStore::new(acting.s3.clone(), bucket, DEFAULT_URL_TTL);

    let bytes = fixture("images/cat_chelsea.png");
    let id = ImageId::new(LabelSet::default_pets().parse("cat").unwrap(), Sha256Hex::of(&bytes));
    assert_eq!(
        store.get(&id).await.unwrap(),
        None,
        "a missing object is None, not an error"
    );

    store.put(&id, ImageKind::Png, bytes.clone().into()).await.unwrap();
    let head = s3
        .head_object()
        .bucket(bucket)
        .key(id.storage_key())
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("image/png"));
    assert_eq!(head.metadata().unwrap()["s3key"], id.storage_key());
    assert!(
        id.storage_key().starts_with(id.sha256.as_str()),
        "keys start with the hash"
    );
    assert_eq!(store.get(&id).await.unwrap().unwrap().as_ref(), bytes.as_slice());

    // A presigned GET fetches the bytes without credentials.
    let record = resolvers::domain::image::NewImage {
        id: id.clone(),
        weight: resolvers::domain::weight::Weight::DEFAULT,
        facts: resolvers::domain::validation::validate_image(&bytes, &Default::default()).unwrap(),
        created_at: chrono::Utc::now(),
        hold: None,
        variants: Vec::new(),
        placeholder: None,
    }
    .into_record();
    let url = store.url(&record, None).await.unwrap();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let fetched = crate::support::helpers::http_client().get(&url).send().await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), bytes.as_slice());

    store.delete(&id).await.unwrap();
    assert_eq!(store.get(&id).await.unwrap(), None);
    store.delete(&id).await.unwrap();
}

#[tokio::test]
async fn provisioned_buckets_are_private_and_encrypted() {
    let clients = MotoServer::shared().await.clients().await;
    let resources = provision(&clients, &unique_stage()).await.unwrap();
    let block = clients
        .s3
        .get_public_access_block()
        .bucket(&resources.bucket)
        .send()
        .await
        .unwrap();
    let block = block.public_access_block_configuration().unwrap();
    assert_eq!(block.block_public_acls(), Some(true));
    assert_eq!(block.restrict_public_buckets(), Some(true));
    let encryption = clients
        .s3
        .get_bucket_encryption()
        .bucket(&resources.bucket)
        .send()
        .await
        .unwrap();
    assert!(encryption.server_side_encryption_configuration().is_some());
}
