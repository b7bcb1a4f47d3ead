//! The TypeScript clients against a real server, run by Node (tsx): Apollo Client with
//! apollo-upload-client for the upload, the random pick over HTTP, and the scan followed to its
//! verdict over WebSocket (graphql-ws) and over Server-Sent Events (graphql-sse); and the
//! generated SDK's example (`clients/ts/src/run-examples.ts`). The test command type-checks
//! them first (`npm run check:ts`, which also generates `generated.ts` they import).

use crate::support::helpers::{fixtures_dir, spawn_app, Backend};

#[tokio::test]
async fn apollo_graphql_ws_graphql_sse_and_the_sdk_work_against_a_real_server() {
    let app = spawn_app(Backend::Embedded).await;
    let photo = |file: &str| fixtures_dir().join("images").join(file).display().to_string();
    let args = vec![
        "--no-install".to_owned(),
        "tsx".to_owned(),
        "clients/ts/src/run-examples.ts".to_owned(),
        format!("{}/graphql", app.address),
        photo("cat_chelsea.png"),
        photo("cat_kde_tabby.png"),
        photo("dog_kde_golden.png"),
        app.key.clone().unwrap_or_default(),
    ];
    let seen = crate::support::helpers::run_node_json("npx", args).await;
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
