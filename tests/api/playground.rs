//! Every operation in `playground/` is preloaded in GraphiQL and runs without errors.

use std::path::Path;

use pawql::server::playground::OPERATIONS;

use crate::support::helpers::{fixture, spawn_app, Backend};

#[test]
fn graphiql_preloads_every_file_in_the_playground_folder() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("playground");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".graphql"))
        .collect();
    let mut compiled: Vec<String> = OPERATIONS.iter().map(|(name, _)| name.to_string()).collect();
    on_disk.sort();
    compiled.sort();
    assert_eq!(
        on_disk, compiled,
        "add new playground files to src/server/playground.rs"
    );
}

/// The HTML of one of `app`'s pages.
pub(crate) async fn page(app: &crate::support::helpers::TestApp, path: &str) -> String {
    let response = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.unwrap()
}

async fn graphiql_page_carries_the_operations(backend: Backend) {
    let app = spawn_app(backend).await;
    let page = page(&app, "/graphql").await;
    assert!(page.contains("GraphiQL"));
    assert!(page.contains("query RandomCat"), "playground operations are preloaded");
}

on_both_backends!(graphiql_page_carries_the_operations);

async fn every_playground_operation_executes_through_the_typed_client(backend: Backend) {
    use futures_util::StreamExt;
    use pawql::client::operations::*;
    use pawql::client::{Attachment, GraphQLQuery};

    let app = spawn_app(backend).await;
    let client = app.typed();
    let mut ran: Vec<&str> = Vec::new();
    let photo = |file: &str| Attachment {
        file_name: file.to_owned(),
        bytes: fixture(&format!("images/{file}")),
    };

    let uploaded = client
        .run_with_file::<UploadImage>(
            upload_image::Variables {
                image: (),
                label: "cat".into(),
                weight: Some(0.5),
            },
            &photo("cat_chelsea.png"),
        )
        .await
        .unwrap()
        .upload;
    ran.push(upload_image::OPERATION_NAME);
    let id = uploaded.id.clone();
    assert_eq!((uploaded.width, uploaded.height), (451, 300));

    let cat = client
        .run::<RandomCat>(random_cat::Variables { label: "cat".into() })
        .await
        .unwrap();
    assert_eq!(cat.random_image.unwrap().id, id);
    ran.push(random_cat::OPERATION_NAME);
    let many = client
        .run::<RandomImages>(random_images::Variables {
            label: "cat".into(),
            count: 3,
        })
        .await
        .unwrap();
    assert_eq!(many.random_images.len(), 3);
    ran.push(random_images::OPERATION_NAME);
    let labels = client.run::<Labels>(labels::Variables).await.unwrap().labels;
    assert_eq!((labels[0].label.as_str(), labels[0].image_count), ("cat", 1));
    ran.push(labels::OPERATION_NAME);
    let image = client
        .run::<ImageById>(image_by_id::Variables { id: id.clone() })
        .await
        .unwrap();
    assert_eq!(image.image.unwrap().byte_size, 240_512);
    ran.push(image_by_id::OPERATION_NAME);
    let weighted = client
        .run::<SetWeight>(set_weight::Variables {
            id: id.clone(),
            weight: 0.8,
        })
        .await
        .unwrap();
    assert_eq!(weighted.set_weight.weight, 0.8);
    ran.push(set_weight::OPERATION_NAME);

    // Scans: request, follow through the subscription, look up two ways.
    let scan = client
        .run::<RequestScan>(request_scan::Variables { id: id.clone() })
        .await
        .unwrap()
        .request_scan;
    ran.push(request_scan::OPERATION_NAME);
    let subscription = ScanUpdated::build_query(scan_updated::Variables {
        scan_id: scan.id.clone(),
    });
    let updates = crate::scan::subscribe_at(
        &app.address,
        subscription.query,
        serde_json::to_value(&subscription.variables).unwrap(),
    )
    .await;
    let last: scan_updated::ResponseData = serde_json::from_value(updates.last().unwrap()["data"].clone()).unwrap();
    assert_eq!(last.scan_updated.is_cat, Some(true), "{updates:?}");
    ran.push(scan_updated::OPERATION_NAME);
    let result = client
        .run::<ScanResult>(scan_result::Variables {
            scan_id: scan.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(result.scan_result.unwrap().is_cat, Some(true));
    ran.push(scan_result::OPERATION_NAME);
    let unknown = "0".repeat(64);
    let many = client
        .run::<ScanResults>(scan_results::Variables {
            scan_ids: vec![unknown.clone(), scan.id.clone()],
        })
        .await
        .unwrap()
        .scan_results;
    assert_eq!(many.len(), 2);
    assert!(many[0].is_none(), "in the order asked, null where there is none");
    assert_eq!(many[1].as_ref().unwrap().is_cat, Some(true));
    ran.push(scan_results::OPERATION_NAME);
    // The set subscription over Server-Sent Events, through the typed client: a final scan is
    // sent once, and the stream completes.
    let updates: Vec<_> = client
        .subscribe::<ScansUpdated>(scans_updated::Variables {
            scan_ids: vec![scan.id.clone()],
        })
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].as_ref().unwrap().scans_updated.is_cat, Some(true));
    ran.push(scans_updated::OPERATION_NAME);
    let of_image = client
        .run::<ScanOfImage>(scan_of_image::Variables { id: id.clone() })
        .await
        .unwrap();
    assert_eq!(of_image.image.unwrap().scan.unwrap().id, scan.id);
    ran.push(scan_of_image::OPERATION_NAME);
    let file_scan = client
        .run_with_file::<ScanFile>(scan_file::Variables { image: () }, &photo("dog_kde_golden.png"))
        .await
        .unwrap();
    assert_eq!(file_scan.request_scan.id.len(), 64);
    ran.push(scan_file::OPERATION_NAME);

    // Presigned upload: ticket, PUT, complete.
    let ticket = client
        .run::<RequestUpload>(request_upload::Variables {
            label: "dog".into(),
            byte_size: fixture("images/dog_kde_golden.png").len() as i64,
        })
        .await
        .unwrap()
        .request_upload;
    ran.push(request_upload::OPERATION_NAME);
    let put = app
        .client
        .put(&ticket.upload_url)
        .body(fixture("images/dog_kde_golden.png"))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let completed = client
        .run::<CompleteUpload>(complete_upload::Variables {
            ticket: ticket.ticket,
            weight: Some(0.3),
        })
        .await
        .unwrap();
    assert_eq!(completed.complete_upload.label, "dog");
    ran.push(complete_upload::OPERATION_NAME);

    assert!(
        client
            .run::<DeleteImage>(delete_image::Variables { id })
            .await
            .unwrap()
            .delete_image
    );
    ran.push(delete_image::OPERATION_NAME);

    // Every file in playground/ was run: its operation name is in `ran`.
    let mut in_folder: Vec<String> = OPERATIONS
        .iter()
        .map(|(_, text)| {
            let header = text.lines().find(|l| !l.starts_with('#')).unwrap();
            header.split(['(', ' ', '{']).nth(1).unwrap().to_owned()
        })
        .collect();
    in_folder.sort();
    ran.sort();
    assert_eq!(in_folder, ran);
}

on_both_backends!(every_playground_operation_executes_through_the_typed_client);
