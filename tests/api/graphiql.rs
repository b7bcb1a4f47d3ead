//! GraphiQL (`GET /graphql`) in headless Chromium with every non-loopback request blocked
//! (`tests/browser/graphiql.mjs`): the page loads from the server's own assets, loads the
//! schema by introspection (the docs explorer lists `Query`'s fields, autocompletion offers
//! them, and the first screen shows no error), shows every playground tab, runs a query,
//! streams a subscription to its end (over Server-Sent Events) and uploads a file through its
//! upload bar.

use crate::support::helpers::{fixtures_dir, Backend, TestApp};

#[tokio::test]
async fn graphiql_works_offline_in_a_real_browser() {
    let app = TestApp::builder(Backend::Embedded).without_keys().start().await;
    let image = app.upload("cat", "images/cat_kde_tabby.png", 0.5).await;
    let scan = crate::scan::request_scan_of(&app, image["id"].as_str().unwrap(), false, false).await;
    let root = env!("CARGO_MANIFEST_DIR");
    let artifacts = std::path::Path::new(root).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("graphiql.png");
    let args = vec![
        "tests/browser/graphiql.mjs".to_owned(),
        app.address.clone(),
        fixtures_dir().join("images/dog_kde_golden.png").display().to_string(),
        scan["id"].as_str().unwrap().to_owned(),
        screenshot.display().to_string(),
    ];
    let seen = crate::support::helpers::run_node_json("node", args).await;

    assert_eq!(seen["offsite"], serde_json::json!([]), "nothing left loopback: {seen}");
    assert_eq!(seen["pageErrors"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["docsError"], serde_json::Value::Null, "the schema loaded: {seen}");
    assert_eq!(seen["firstResult"], "", "the first screen shows no error: {seen}");
    let fields = seen["queryFields"].as_array().unwrap();
    for field in ["randomImage", "randomImages", "image", "labels"] {
        assert!(fields.iter().any(|f| f == field), "docs list Query.{field}: {seen}");
    }
    let completions = seen["completions"].as_array().unwrap();
    assert!(
        completions.iter().any(|c| c == "randomImage"),
        "autocompletion offers a field: {seen}"
    );
    let tabs: Vec<&str> = seen["tabs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for (_, text) in pawql::server::playground::OPERATIONS {
        let header = text.lines().find(|l| !l.starts_with('#')).unwrap();
        let name = header.split(['(', ' ', '{']).nth(1).unwrap();
        assert!(tabs.iter().any(|t| t.contains(name)), "tab {name} missing: {tabs:?}");
    }
    assert_eq!(seen["query"]["data"]["labels"][0]["label"], "cat", "{seen}");
    assert_eq!(
        seen["subscription"]["data"]["scanUpdated"]["status"], "SUCCEEDED",
        "{seen}"
    );
    assert_eq!(seen["upload"]["data"]["upload"]["label"], "cat", "{seen}");
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);
}
