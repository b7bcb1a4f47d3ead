//! Every operation in `playground/` is preloaded in GraphiQL and runs without errors.

use std::path::Path;

use pawql::server::playground::OPERATIONS;
use serde_json::json;

use crate::helpers::{fixture, spawn_app};

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

on_both_backends! {
    async fn graphiql_page_carries_the_operations(backend) {
        let app = spawn_app(backend).await;
        let page = app
            .client
            .get(format!("{}/graphql", app.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("GraphiQL"));
        assert!(page.contains("query RandomCat"), "playground operations are preloaded");
    }
}

on_both_backends! {
    async fn every_playground_operation_executes_without_errors(backend) {
        let app = spawn_app(backend).await;
        // Upload through the playground's own Upload operation (multipart).
        let (_, upload_text) = OPERATIONS.iter().find(|(n, _)| *n == "upload.graphql").unwrap();
        let part = reqwest::multipart::Part::bytes(fixture("images/cat_chelsea.png")).file_name("cat.png");
        let form = reqwest::multipart::Form::new()
            .text(
                "operations",
                json!({ "query": upload_text, "variables": { "image": null } }).to_string(),
            )
            .text("map", json!({ "0": ["variables.image"] }).to_string())
            .part("0", part);
        let (_, body) = app.post_form("/graphql", form).await;
        assert!(body.get("errors").is_none(), "upload.graphql: {body}");
        let id = body["data"]["upload"]["id"].clone();

        // The rest, delete last; operations take the variables they declare and ignore the rest.
        let mut rest: Vec<&(&str, &str)> = OPERATIONS.iter().filter(|(n, _)| *n != "upload.graphql").collect();
        rest.sort_by_key(|(name, _)| *name == "delete_image.graphql");
        for (name, text) in rest {
            let (status, body) = app.graphql(text, json!({ "id": id, "weight": 0.8 })).await;
            assert!(status == 200 && body.get("errors").is_none(), "{name}: {body}");
        }
        assert_eq!(
            app.labels().await[0]["imageCount"],
            0,
            "DeleteImage ran last and removed the upload"
        );
    }
}
