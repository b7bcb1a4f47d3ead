//! The TypeScript clients against a real server, run by Node (tsx): Apollo Client with
//! apollo-upload-client for the upload, the random pick over HTTP, and the scan followed to its
//! verdict over WebSocket (graphql-ws) and over Server-Sent Events (graphql-sse); and the
//! generated SDK's example (`clients/ts/src/run-examples.ts`). The test command type-checks
//! them first (`npm run check:ts`, which also generates `generated.ts` they import).

use std::process::Command;

use serde_json::Value;

use crate::helpers::{fixtures_dir, spawn_app, Backend};

#[tokio::test]
async fn apollo_graphql_ws_graphql_sse_and_the_sdk_work_against_a_real_server() {
    let app = spawn_app(Backend::Embedded).await;
    let root = env!("CARGO_MANIFEST_DIR");
    let photo = |file: &str| fixtures_dir().join("images").join(file).display().to_string();
    let args = [
        format!("{}/graphql", app.address),
        photo("cat_chelsea.png"),
        photo("cat_kde_tabby.png"),
        photo("dog_kde_golden.png"),
        app.key.clone().unwrap_or_default(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        Command::new("npx")
            .args(["--no-install", "tsx", "clients/ts/src/run-examples.ts"])
            .args(args)
            .current_dir(root)
            .output()
            .expect("running npx tsx")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    for run in ["apollo-ws", "apollo-sse"] {
        let result = &seen[run];
        let uploaded = result["uploaded"].as_str().unwrap();
        assert!(uploaded.starts_with("cat-"), "{seen}");
        assert!(result["picked"].as_str().unwrap().starts_with("cat-"), "{seen}");
        assert_eq!(result["isCat"], true, "{run}: {seen}");
        assert_eq!(
            result["statuses"].as_array().unwrap().last().unwrap(),
            "SUCCEEDED",
            "{seen}"
        );
        // The photo's own scan, followed to its end: it was uploaded by this run.
        let scan = app.catalog.image(uploaded).await.unwrap().unwrap();
        assert_eq!(scan.weight.as_f64(), 0.7, "uploaded through apollo-upload-client");
    }
    assert!(
        seen["sdk"]["oneCat"].as_str().unwrap().contains("/images/cat-"),
        "{seen}"
    );
    assert_eq!(seen["sdk"]["isCat"], false, "the golden retriever is no cat: {seen}");
}
