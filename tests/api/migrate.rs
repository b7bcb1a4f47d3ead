//! `pawql migrate` on moto: a stage written in the layout before write shards (one chunk-info
//! item per label listing its chunks, rows carrying their chunk number) is converted while the
//! API answers `MIGRATION_PENDING` for it; a run cut off before its switch leaves the label
//! waiting and the next run finishes it; a converted stage is left alone; and what the stage
//! held (images, weights, holds, scans) is all there afterwards, with the chunk invariant.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue;
use pawql::adapters::aws::{self, AwsClients, Resources};
use resolvers::domain::chunks::WriteShards;
use resolvers::domain::hold::Hold;
use resolvers::domain::image::{ImageId, ImageRecord};
use resolvers::domain::label::{Label, LabelSet};
use resolvers::CatalogSettings;
use serde_json::json;

use crate::scan_stream::resources;
use crate::support::canned::{CannedAnswers, CONFLICT};
use crate::support::helpers::{error_codes, Backend, TestApp};
use crate::support::moto::MotoServer;

type Item = std::collections::HashMap<String, AttributeValue>;

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Rewrites a label as the code before write shards left it: chunks of 4 in upload order, one
/// chunk-info item under the bare label with every chunk's volume and weight sum, rows with
/// their `chunkNumber` and no place; the shard and slot items gone.
pub(crate) async fn write_old_layout(clients: &AwsClients, resources: &Resources, label: &Label, rows: &[ImageRecord]) {
    let dynamo = &clients.dynamodb;
    let mut volumes: Vec<u64> = Vec::new();
    let mut sums: Vec<u64> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let chunk = i / 4;
        if chunk == volumes.len() {
            volumes.push(0);
            sums.push(0);
        }
        volumes[chunk] += 1;
        sums[chunk] += row.pooled_nanos();
        let mut item = take_spread_row(clients, resources, row).await;
        item.insert("label".to_owned(), AttributeValue::S(label.to_string()));
        item.remove("shard");
        item.remove("slot");
        item.insert("chunkNumber".to_owned(), n(chunk));
        dynamo
            .put_item()
            .table_name(&resources.image_chunks_table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }
    // Everything of the new layout under this label: its shard items and slots.
    let mut start = None;
    loop {
        let page = dynamo
            .scan()
            .table_name(&resources.chunk_info_table)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        for item in page.items() {
            let key = item["label"].as_s().unwrap();
            if key.starts_with(&format!("{label}#")) {
                dynamo
                    .delete_item()
                    .table_name(&resources.chunk_info_table)
                    .key("label", AttributeValue::S(key.clone()))
                    .send()
                    .await
                    .unwrap();
            }
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => break,
        }
    }
    let list = |values: &[u64]| AttributeValue::L(values.iter().map(n).collect());
    let chunks = volumes.len();
    let active: Vec<u64> = (0..chunks as u64).filter(|&c| volumes[c as usize] < 4).collect();
    dynamo
        .put_item()
        .table_name(&resources.chunk_info_table)
        .item("label", AttributeValue::S(label.to_string()))
        .item("chunkNumber", n(chunks))
        .item("chunkMax", n(5))
        .item("chunkThreshold", n(4))
        .item("activeChunks", list(&active))
        .item("chunkVolume", list(&volumes))
        .item("chunkWeightSum", list(&sums))
        .item("revision", n(rows.len()))
        .send()
        .await
        .unwrap();
}

/// Removes an image's row from where this layout keeps it (its row partition) and answers it.
async fn take_spread_row(clients: &AwsClients, resources: &Resources, row: &ImageRecord) -> Item {
    clients
        .dynamodb
        .delete_item()
        .table_name(&resources.image_chunks_table)
        .set_key(Some(aws::image_key(&row.id)))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
        .send()
        .await
        .unwrap()
        .attributes
        .expect("the row was there")
}

/// Rewrites a label as the code before rows were spread left it: shard items and slots as
/// now but without `rowPartitions`, every row under the bare label.
async fn write_unspread_layout(clients: &AwsClients, resources: &Resources, label: &Label, rows: &[ImageRecord]) {
    for row in rows {
        let mut item = take_spread_row(clients, resources, row).await;
        item.insert("label".to_owned(), AttributeValue::S(label.to_string()));
        clients
            .dynamodb
            .put_item()
            .table_name(&resources.image_chunks_table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }
    for shard in 0..WriteShards::default().count() {
        clients
            .dynamodb
            .update_item()
            .table_name(&resources.chunk_info_table)
            .key("label", AttributeValue::S(format!("{label}#{shard}")))
            .update_expression("REMOVE #partitions")
            .condition_expression("attribute_exists(#partitions)")
            .expression_attribute_names("#partitions", aws::ROW_PARTITIONS_ATTRIBUTE)
            .send()
            .await
            .unwrap();
    }
}

/// How many rows sit under the bare label (where only a label awaiting migration has any).
async fn unspread_rows(clients: &AwsClients, resources: &Resources, label: &str) -> i32 {
    clients
        .dynamodb
        .query()
        .table_name(&resources.image_chunks_table)
        .key_condition_expression("#label = :label")
        .expression_attribute_names("#label", "label")
        .expression_attribute_values(":label", AttributeValue::S(label.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .count()
}

/// What the stage's images are, label by label: (id, weight, hold), sorted.
pub(crate) async fn catalogue(app: &TestApp) -> Vec<(String, u64, Option<Hold>)> {
    let mut out = Vec::new();
    for label in app.catalog.settings().labels.iter() {
        for row in app.tables.all_images(label).await.unwrap() {
            out.push((row.id.to_string(), row.weight.nanos(), row.hold));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[tokio::test]
async fn migrate_converts_a_stage_of_the_old_layout_resumably_and_once() {
    let plain = MotoServer::shared().await.clients().await;
    let settings = CatalogSettings::default();
    let app = TestApp::builder(Backend::Aws)
        .clients(plain.clone())
        .settings(settings.clone())
        .start()
        .await;
    let labels = LabelSet::default_pets();
    let (cat, dog) = (labels.parse("cat").unwrap(), labels.parse("dog").unwrap());

    // Two labels (more than one old chunk each), varied weights, a held cat, a finished scan.
    let mut ids = Vec::new();
    for n in 0..9u32 {
        let (status, body) = app
            .upload_raw(
                if n < 6 { "cat" } else { "dog" },
                Some(0.1 + f64::from(n) / 10.0),
                "p.png",
                "image/png",
                crate::random::png_number(n).to_vec(),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        ids.push(body["data"]["upload"]["id"].as_str().unwrap().to_owned());
    }
    let held = ImageId::parse(&ids[2], &labels).unwrap();
    app.tables.set_hold(&held, Some(Hold::AwaitingScan)).await.unwrap();
    let scan = crate::scan::request_scan_of(&app, &ids[7], false, false).await;
    let scan_id = scan["id"].as_str().unwrap().to_owned();
    crate::scan::wait_for_final(&app, &scan_id, false).await;
    let stage_before = catalogue(&app).await;
    let totals_before = app.labels().await;

    let (resources, _) = resources(&app);
    for label in [&cat, &dog] {
        let mut rows = app.tables.all_images(label).await.unwrap();
        rows.sort_by_key(|row| row.created_at);
        write_old_layout(&plain, &resources, label, &rows).await;
    }

    // Deployed, not yet migrated: picks, uploads and weight changes wait, and leave nothing.
    let (status, body) = app.graphql("{ randomImage(label: \"cat\") { id } }", json!({})).await;
    assert_eq!(
        (status, error_codes(&body)),
        (200, vec!["MIGRATION_PENDING".to_owned()]),
        "{body}"
    );
    // (`residue` would ask `labels`, which waits too.)
    let residue = (app.stored_files().await, catalogue(&app).await);
    let (status, body) = app
        .upload_raw(
            "dog",
            None,
            "p.png",
            "image/png",
            crate::random::png_number(99).to_vec(),
        )
        .await;
    assert_eq!(error_codes(&body), ["MIGRATION_PENDING"], "{status} {body}");
    let (_, body) = app.set_weight(&ids[0], 0.9).await;
    assert_eq!(error_codes(&body), ["MIGRATION_PENDING"], "{body}");
    assert_eq!(
        (app.stored_files().await, catalogue(&app).await),
        residue,
        "a waiting label's refused writes left nothing"
    );
    let (_, body) = app.graphql("{ labels { label imageCount } }", json!({})).await;
    assert_eq!(error_codes(&body), ["MIGRATION_PENDING"], "{body}");
    let rest = app
        .client
        .get(format!("{}/random?label=dog", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 503, "petAPI's /random says: try again");

    // A run whose switch is refused every time it converts the label (after the slots and
    // rows went in): it gives up saying so, and the label is still waiting.
    let trouble = CannedAnswers::default();
    trouble.arm("TransactWriteItems", aws::migrate::ATTEMPTS, CONFLICT);
    // Under the stage role's IAM (serverless.yml), as the Lambda is: migrate needs no more.
    let enforced = crate::iam::enforcing(&plain, &[crate::iam::Function::Api], &crate::iam::stage_of(&resources));
    let troubled = crate::support::canned::answering(&enforced.dynamodb, &trouble);
    let shards = WriteShards::default();
    let err = aws::migrate::migrate(&troubled, &resources, &labels, shards)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("run pawql migrate again"), "{err:#}");
    assert_eq!(trouble.injected("TransactWriteItems"), aws::migrate::ATTEMPTS);
    let (_, body) = app.graphql("{ randomImage(label: \"cat\") { id } }", json!({})).await;
    assert_eq!(error_codes(&body), ["MIGRATION_PENDING"], "{body}");

    // The next run finishes it, through the command users run.
    let moto = MotoServer::shared().await;
    // With the API role's rights on this stage only, enforced by moto's server.
    let migrating_key = crate::iam::acting_as(&[crate::iam::Function::Api], &crate::iam::stage_of(&resources));
    let output = Command::new(env!("CARGO_BIN_EXE_pawql"))
        .arg("migrate")
        .envs([
            ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", migrating_key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("PAWQL_STAGE", crate::iam::stage_of(&resources).as_str()),
        ])
        .env_remove("PAWQL_BUCKET")
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(output.status.success());
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("cat: 6 images filed in 3 write shards"), "{said}");
    assert!(said.contains("dog: 3 images filed in 3 write shards"), "{said}");

    // Everything is there, as it was, and served.
    app.assert_chunk_invariant().await;
    assert_eq!(catalogue(&app).await, stage_before);
    assert_eq!(app.labels().await, totals_before);
    let drawn = app
        .data("{ randomImages(label: \"cat\", count: 100) { id } }", json!({}))
        .await;
    let drawn = drawn["randomImages"].as_array().unwrap();
    assert_eq!(drawn.len(), 100);
    assert!(
        drawn.iter().all(|image| image["id"] != ids[2].as_str()),
        "the held cat stays out"
    );
    let result = app
        .data(
            "query($id: ID!) { scanResult(id: $id) { status } }",
            json!({ "id": scan_id }),
        )
        .await;
    assert_eq!(result["scanResult"]["status"], "SUCCEEDED");
    let (_, body) = app.set_weight(&ids[0], 0.9).await;
    assert_eq!(body["data"]["setWeight"]["weight"], 0.9, "{body}");
    app.upload("dog", "images/dog_kde_golden.png", 0.5).await;
    app.assert_chunk_invariant().await;

    // Once converted, a stage is left alone.
    let again = aws::migrate::migrate(&enforced.dynamodb, &resources, &labels, shards)
        .await
        .unwrap();
    assert!(again.iter().all(|label| label.images.is_none()), "{again:?}");
    app.assert_chunk_invariant().await;
}

/// A pick, a re-weight of `some_cat` and an upload of a new cat (PNG number `new_cat`) all
/// answer `MIGRATION_PENDING`, and leave the stored files and the catalogue as `stored`.
async fn assert_the_cats_wait(
    app: &TestApp,
    some_cat: &str,
    new_cat: u32,
    stored: (usize, Vec<(String, u64, Option<Hold>)>),
) {
    let (_, body) = app.graphql("{ randomImage(label: \"cat\") { id } }", json!({})).await;
    assert_eq!(error_codes(&body), ["MIGRATION_PENDING"], "{body}");
    let (_, body) = app.set_weight(some_cat, 0.9).await;
    assert_eq!(error_codes(&body), ["MIGRATION_PENDING"], "{body}");
    let png = crate::random::png_number(new_cat).to_vec();
    let (_, body) = app.upload_raw("cat", None, "p.png", "image/png", png).await;
    assert_eq!(error_codes(&body), ["MIGRATION_PENDING"], "{body}");
    assert_eq!((app.stored_files().await, catalogue(app).await), stored);
}

/// Today's layout, rows under the bare label: `pawql migrate` closes the label to every
/// writer, spreads the rows, and reopens it, losing nothing; a run cut off after closing it
/// leaves it closed and the next run finishes it.
#[tokio::test]
async fn migrate_spreads_the_rows_of_a_label_written_before_they_were_spread() {
    let plain = MotoServer::shared().await.clients().await;
    let app = TestApp::builder(Backend::Aws).clients(plain.clone()).start().await;
    let labels = LabelSet::default_pets();
    let cat = labels.parse("cat").unwrap();
    upload_cats(&app, 6).await;
    let (_, body) = app.graphql("{ randomImage(label: \"cat\") { id } }", json!({})).await;
    let some_cat = body["data"]["randomImage"]["id"].as_str().unwrap().to_owned();
    app.tables
        .set_hold(&ImageId::parse(&some_cat, &labels).unwrap(), Some(Hold::AwaitingScan))
        .await
        .unwrap();
    let stage_before = catalogue(&app).await;
    let totals_before = app.labels().await;
    let (resources, _) = resources(&app);
    let rows = app.tables.all_images(&cat).await.unwrap();
    write_unspread_layout(&plain, &resources, &cat, &rows).await;
    assert_eq!(unspread_rows(&plain, &resources, "cat").await, 6);
    assert_eq!(
        catalogue(&app).await,
        stage_before,
        "maintenance still sees the label whole"
    );

    // Deployed, not yet migrated: picks and writes wait, and leave nothing.
    let files = app.stored_files().await;
    assert_the_cats_wait(&app, &some_cat, 77, (files, stage_before.clone())).await;

    // A run whose reopening is refused every time: the label stays closed, to every writer.
    let trouble = CannedAnswers::default();
    trouble.arm_when(
        "TransactWriteItems",
        Some("rowPartitions"),
        aws::migrate::ATTEMPTS,
        CONFLICT,
    );
    let enforced = crate::iam::enforcing(&plain, &[crate::iam::Function::Api], &crate::iam::stage_of(&resources));
    let troubled = crate::support::canned::answering(&enforced.dynamodb, &trouble);
    let shards = WriteShards::default();
    let err = aws::migrate::migrate(&troubled, &resources, &labels, shards)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("run pawql migrate again"), "{err:#}");
    assert_eq!(trouble.injected("TransactWriteItems"), aws::migrate::ATTEMPTS);
    assert_the_cats_wait(&app, &some_cat, 78, (files, stage_before.clone())).await;

    // The next run finishes it.
    let report = aws::migrate::migrate(&enforced.dynamodb, &resources, &labels, shards)
        .await
        .unwrap();
    assert_eq!(
        report.iter().find(|m| m.label == "cat").unwrap().images,
        Some(6),
        "{report:?}"
    );
    assert_eq!(
        unspread_rows(&plain, &resources, "cat").await,
        0,
        "the old rows are gone"
    );
    app.assert_chunk_invariant().await;
    assert_eq!(catalogue(&app).await, stage_before);
    assert_eq!(app.labels().await, totals_before);
    let drawn = app
        .data("{ randomImages(label: \"cat\", count: 50) { id } }", json!({}))
        .await;
    let drawn = drawn["randomImages"].as_array().unwrap();
    assert_eq!(drawn.len(), 50);
    assert!(
        drawn.iter().all(|image| image["id"] != some_cat.as_str()),
        "the held cat stays out"
    );
    let (_, body) = app.set_weight(&some_cat, 0.9).await;
    assert_eq!(body["data"]["setWeight"]["weight"], 0.9, "{body}");
    let (status, body) = app
        .upload_raw(
            "cat",
            None,
            "p.png",
            "image/png",
            crate::random::png_number(79).to_vec(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.assert_chunk_invariant().await;
    let again = aws::migrate::migrate(&enforced.dynamodb, &resources, &labels, shards)
        .await
        .unwrap();
    assert!(again.iter().all(|label| label.images.is_none()), "{again:?}");
}

/// The embedded store converts itself when opened: a data directory written before write
/// shards (chunk info under the bare label, `LabelChunkIndex`, rows with their chunk number)
/// is served afterwards with everything it held, and opening it again changes nothing.
#[tokio::test]
async fn an_embedded_store_of_the_old_layout_is_converted_when_opened() {
    use redb::{ReadableDatabase, ReadableTable, TableDefinition};
    const CHUNK_INFO: TableDefinition<&str, &[u8]> = TableDefinition::new("chunkInfoTable");
    const CHUNK_SLOTS: TableDefinition<&str, &str> = TableDefinition::new("chunkSlots");
    const IMAGE_CHUNKS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("imageChunksTable");
    const INDEX: TableDefinition<(&str, u32, &str), ()> = TableDefinition::new("LabelChunkIndex");

    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::builder(Backend::Embedded).data_dir(dir.path()).start().await;
    let mut ids = Vec::new();
    for n in 0..7u32 {
        let record = app
            .catalog
            .upload("cat", Some(0.05 + f64::from(n) / 8.0), crate::random::png_number(n))
            .await
            .unwrap();
        ids.push(record.id);
    }
    app.tables
        .set_hold(&ids[3], Some(Hold::NotACat { confidence: 0.01 }))
        .await
        .unwrap();
    let before = catalogue(&app).await;
    let totals = app.labels().await;
    app.stop().await;

    // Rewrite the file as the code before write shards left it.
    {
        let db = redb::Database::create(dir.path().join("pawql.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        let rows: Vec<(String, serde_json::Value)> = {
            let table = txn.open_table(IMAGE_CHUNKS).unwrap();
            let mut rows: Vec<(String, serde_json::Value)> = table
                .iter()
                .unwrap()
                .map(|entry| {
                    let (key, value) = entry.unwrap();
                    (key.value().1.to_owned(), serde_json::from_slice(value.value()).unwrap())
                })
                .collect();
            rows.sort_by(|a, b| a.1["createdAt"].as_str().cmp(&b.1["createdAt"].as_str()));
            rows
        };
        let (mut volumes, mut sums) = (Vec::<u64>::new(), Vec::<u64>::new());
        for (i, (s3key, mut row)) in rows.into_iter().enumerate() {
            let chunk = (i / 4) as u32;
            if chunk as usize == volumes.len() {
                volumes.push(0);
                sums.push(0);
            }
            let object = row.as_object_mut().unwrap();
            let pooled = if object.contains_key("heldReason") {
                0
            } else {
                resolvers::domain::weight::decimal_string_to_nanos(object["weight"].as_str().unwrap()).unwrap()
            };
            volumes[chunk as usize] += 1;
            sums[chunk as usize] += pooled;
            object.remove("shard");
            object.remove("slot");
            object.insert("chunkNumber".to_owned(), json!(chunk));
            txn.open_table(IMAGE_CHUNKS)
                .unwrap()
                .insert(("cat", s3key.as_str()), serde_json::to_vec(&row).unwrap().as_slice())
                .unwrap();
            txn.open_table(INDEX)
                .unwrap()
                .insert(("cat", chunk, s3key.as_str()), ())
                .unwrap();
        }
        txn.delete_table(CHUNK_SLOTS).unwrap();
        let mut infos = txn.open_table(CHUNK_INFO).unwrap();
        let shard_keys: Vec<String> = infos.iter().unwrap().map(|e| e.unwrap().0.value().to_owned()).collect();
        for key in shard_keys {
            infos.remove(key.as_str()).unwrap();
        }
        let old = json!({
            "label": "cat", "chunkNumber": volumes.len(), "chunkMax": 5, "chunkThreshold": 4,
            "activeChunks": [volumes.len() - 1], "chunkVolume": volumes, "chunkWeightSum": sums,
        });
        infos
            .insert("cat", serde_json::to_vec(&old).unwrap().as_slice())
            .unwrap();
        drop(infos);
        txn.commit().unwrap();
    }

    for _ in 0..2 {
        let app = TestApp::builder(Backend::Embedded).data_dir(dir.path()).start().await;
        app.assert_chunk_invariant().await;
        assert_eq!(catalogue(&app).await, before);
        assert_eq!(app.labels().await, totals);
        let drawn = app.catalog.random_images("cat", 100).await.unwrap();
        assert!(drawn.iter().all(|image| image.id != ids[3]), "the held cat stays out");
        app.stop().await;
    }
    let db = redb::Database::create(dir.path().join("pawql.redb")).unwrap();
    let txn = db.begin_read().unwrap();
    assert!(txn.open_table(INDEX).is_err(), "the old index is gone");
    assert!(
        txn.open_table(CHUNK_INFO).unwrap().get("cat").unwrap().is_none(),
        "and the old chunk info"
    );
}

/// An old deployment's writer that acts once, just as the migration sends its first row copy:
/// it deletes that very row (and its object), as the old code's delete did, and re-weights
/// another, each bumping the old chunk info's `revision` in the same transaction.
#[derive(Clone)]
struct OldWriterAtFirstCopy {
    fired: Arc<std::sync::atomic::AtomicBool>,
    act: Arc<dyn Fn(String) + Send + Sync>,
}

impl std::fmt::Debug for OldWriterAtFirstCopy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OldWriterAtFirstCopy")
    }
}

impl aws_sdk_dynamodb::config::Intercept for OldWriterAtFirstCopy {
    fn name(&self) -> &'static str {
        "OldWriterAtFirstCopy"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let metadata = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .unwrap();
        let body: serde_json::Value =
            serde_json::from_slice(context.request().body().bytes().unwrap_or_default()).unwrap_or_default();
        let is_row_copy = metadata.name() == "PutItem"
            && body["TableName"]
                .as_str()
                .is_some_and(|t| t.ends_with("imageChunksTable"));
        if is_row_copy && !self.fired.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let key = body["Item"]["s3key"]["S"].as_str().unwrap().to_owned();
            let act = self.act.clone();
            // The writer is another process: it runs to the end before this request goes on.
            std::thread::spawn(move || act(key)).join().unwrap();
        }
        Ok(())
    }
}

/// `count` small distinct cats with varied weights (0.2, 0.3, …).
pub(crate) async fn upload_cats(app: &TestApp, count: u32) {
    for n in 0..count {
        let (status, body) = app
            .upload_raw(
                "cat",
                Some(0.2 + f64::from(n) / 10.0),
                "p.png",
                "image/png",
                crate::random::png_number(n).to_vec(),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

#[tokio::test]
async fn migrate_beside_an_old_writer_loses_nothing_and_brings_nothing_back() {
    let plain = MotoServer::shared().await.clients().await;
    let app = TestApp::builder(Backend::Aws).start().await;
    let labels = LabelSet::default_pets();
    let cat = labels.parse("cat").unwrap();
    crate::migrate::upload_cats(&app, 5).await;
    let before = catalogue(&app).await;
    let (resources, _) = resources(&app);
    let mut rows = app.tables.all_images(&cat).await.unwrap();
    rows.sort_by_key(|row| row.created_at);
    write_old_layout(&plain, &resources, &cat, &rows).await;

    let keys: Vec<String> = rows.iter().map(|row| row.id.storage_key()).collect();
    // (deleted, re-weighted) as the old writer chose them.
    let touched: Arc<Mutex<Option<(String, String)>>> = Arc::default();
    let act = {
        let (plain, resources, keys, touched) = (plain.clone(), resources.clone(), keys.clone(), touched.clone());
        move |deleted: String| {
            let other = keys.iter().find(|k| **k != deleted).unwrap().clone();
            *touched.lock().unwrap() = Some((deleted.clone(), other.clone()));
            let (plain, resources) = (plain.clone(), resources.clone());
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                old_layout_write(&plain, &resources, "cat", &deleted, None).await;
                plain
                    .s3
                    .delete_object()
                    .bucket(&resources.bucket)
                    .key(&deleted)
                    .send()
                    .await
                    .unwrap();
                old_layout_write(&plain, &resources, "cat", &other, Some("0.95")).await;
            });
        }
    };
    let writer = OldWriterAtFirstCopy {
        fired: Arc::default(),
        act: Arc::new(act),
    };
    let enforced = crate::iam::enforcing(&plain, &[crate::iam::Function::Api], &crate::iam::stage_of(&resources));
    let beside_old_writer = aws_sdk_dynamodb::Client::from_conf(
        enforced
            .dynamodb
            .config()
            .to_builder()
            .interceptor(writer.clone())
            .build(),
    );
    let report = aws::migrate::migrate(&beside_old_writer, &resources, &labels, WriteShards::default())
        .await
        .expect("converted again once the old writer's changes were seen");
    assert!(
        writer.fired.load(std::sync::atomic::Ordering::SeqCst),
        "the old writer acted mid-migration"
    );
    assert_eq!(
        report.iter().find(|m| m.label == "cat").unwrap().images,
        Some(4),
        "{report:?}"
    );

    // Nothing lost: the new weight stands. Nothing back: the deleted image is gone for good.
    let (deleted, reweighted) = touched.lock().unwrap().clone().unwrap();
    let key_of = |id: &str| ImageId::parse(id, &labels).unwrap().storage_key();
    let expected: Vec<_> = before
        .iter()
        .filter(|(id, _, _)| key_of(id) != deleted)
        .map(|(id, weight, hold)| {
            let weight = if key_of(id) == reweighted { 950_000_000 } else { *weight };
            (id.clone(), weight, hold.clone())
        })
        .collect();
    assert_eq!(catalogue(&app).await, expected);
    let stored: Vec<String> = app
        .tables
        .all_images(&cat)
        .await
        .unwrap()
        .iter()
        .map(|row| row.id.storage_key())
        .collect();
    assert_eq!(stored.len(), 4);
    assert_eq!(
        app.stored_files().await,
        4,
        "every row has its object, and no row lacks one"
    );
    app.assert_chunk_invariant().await;
    let labels_now = app.labels().await;
    let cat_now = labels_now
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["label"] == "cat")
        .unwrap()
        .clone();
    assert_eq!(cat_now["imageCount"], 4, "{labels_now}");
    for _ in 0..20 {
        let (_, body) = app.graphql("{ randomImage(label: \"cat\") { id } }", json!({})).await;
        let id = body["data"]["randomImage"]["id"].as_str().unwrap().to_owned();
        assert!(
            stored
                .iter()
                .any(|key| ImageId::parse(&id, &labels).unwrap().storage_key() == *key),
            "{id}"
        );
    }
}

/// What the old layout's code wrote for a delete (`weight: None`) or a re-weight: the row,
/// and the bump of the old chunk info's `revision`, in one transaction.
async fn old_layout_write(clients: &AwsClients, resources: &Resources, label: &str, s3key: &str, weight: Option<&str>) {
    use aws_sdk_dynamodb::types::{Delete, TransactWriteItem, Update};
    let row_key = std::collections::HashMap::from([
        ("label".to_owned(), AttributeValue::S(label.to_owned())),
        ("s3key".to_owned(), AttributeValue::S(s3key.to_owned())),
    ]);
    let row = match weight {
        None => TransactWriteItem::builder()
            .delete(
                Delete::builder()
                    .table_name(&resources.image_chunks_table)
                    .set_key(Some(row_key))
                    .build()
                    .unwrap(),
            )
            .build(),
        Some(weight) => TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(&resources.image_chunks_table)
                    .set_key(Some(row_key))
                    .update_expression("SET #weight = :weight")
                    .expression_attribute_names("#weight", "weight")
                    .expression_attribute_values(":weight", n(weight))
                    .build()
                    .unwrap(),
            )
            .build(),
    };
    let info = TransactWriteItem::builder()
        .update(
            Update::builder()
                .table_name(&resources.chunk_info_table)
                .key("label", AttributeValue::S(label.to_owned()))
                .update_expression("SET #revision = #revision + :one")
                .expression_attribute_names("#revision", "revision")
                .expression_attribute_values(":one", n(1))
                .build()
                .unwrap(),
        )
        .build();
    clients
        .dynamodb
        .transact_write_items()
        .transact_items(row)
        .transact_items(info)
        .send()
        .await
        .unwrap();
}
