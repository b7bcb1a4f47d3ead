//! The `StagedUploads` port where the backends differ by nature: on AWS the client PUTs to S3
//! itself, so the server's `PUT /uploads/{ticket}` takes nothing, and the S3 store's own
//! `write` and `verify` are what its doc comments promise (a PutObject to the staging key, and a
//! refusal). The flow both backends share is in `presigned.rs`.

use resolvers::domain::ticket::{SignedUpload, UploadTicket};
use resolvers::ports::StagedUploads;
use serde_json::Value;

use crate::support::helpers::{error_codes, fixture, spawn_app, Backend};

/// On AWS the route answers NOT_FOUND before it reads anything of the request, even a ticket
/// that would be BAD_USER_INPUT or a URL that would be FORBIDDEN locally: nothing sent there
/// was signed by this server.
#[tokio::test]
async fn on_aws_the_local_upload_route_refuses_every_put_before_reading_it() {
    let aws = spawn_app(Backend::Aws).await;
    let embedded = spawn_app(Backend::Embedded).await;
    for (path, locally) in [
        ("uploads/nonsense", 400),
        ("uploads/cat.0123456789abcdef0123456789abcdef", 403),
    ] {
        let put = |address: String| {
            let client = aws.client.clone();
            async move {
                let response = client.put(format!("{address}/{path}")).body("x").send().await.unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap_or_default())
            }
        };
        let (status, body) = put(aws.address.clone()).await;
        assert_eq!(
            (status, error_codes(&body)),
            (404, vec!["NOT_FOUND".to_owned()]),
            "{path}: {body}"
        );
        assert_eq!(
            put(embedded.address.clone()).await.0,
            locally,
            "{path} on the embedded backend"
        );
    }
    assert_eq!(aws.staged_files().await, 0);
}

/// The S3 store's `write` is a real PutObject to the staging key, allowed to the API's role:
/// what it stages, `completeUpload` files and removes, as it does a client's presigned PUT.
/// Its `verify` refuses every URL (S3's signatures are S3's to check).
#[tokio::test]
async fn on_s3_a_staged_write_is_what_complete_upload_files() {
    let clients = crate::support::moto::MotoServer::shared().await.clients().await;
    let stage = crate::support::moto::unique_stage();
    pawql::adapters::aws::provision(&clients, &stage).await.unwrap();
    let settings = resolvers::CatalogSettings::default();
    let backend = pawql::adapters::aws::open_resources(
        &crate::iam::enforcing(&clients, &[crate::iam::Function::Api], &stage),
        pawql::adapters::aws::Resources::for_stage(&stage),
        &settings,
    );
    let staged: std::sync::Arc<dyn StagedUploads> = backend.images.clone();
    let catalog = resolvers::Catalog::new(backend.images.clone(), staged.clone(), backend.tables, settings.clone());
    let photo = fixture("images/cat_chelsea.png");
    let ticket = UploadTicket::new(settings.labels.parse("cat").unwrap());

    assert!(!staged.takes_puts_here());
    let query = format!("expires={}&size={}&signature={}", i64::MAX, photo.len(), "0".repeat(64));
    let claimed = SignedUpload::from_query(ticket.clone(), Some(&query)).unwrap();
    assert_eq!(staged.verify(&claimed).unwrap_err().code(), "FORBIDDEN");

    staged.write(&ticket, photo.clone().into()).await.unwrap();
    let filed = catalog.complete_upload(&ticket.to_string(), Some(0.5)).await.unwrap();
    assert_eq!(filed.byte_size, photo.len() as u64);
    assert_eq!(
        staged.read(&ticket, photo.len()).await.unwrap(),
        resolvers::ports::Staged::Missing,
        "the staged object is removed once filed"
    );
}
