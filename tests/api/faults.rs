//! Failures half-way through a write leave nothing behind, a scan ends final whatever fails
//! on the way, and concurrent writers keep the chunk invariant exact.

use std::sync::Arc;

use resolvers::domain::chunks::WriteShards;
use resolvers::domain::weight::Weight;
use resolvers::CatalogSettings;
use serde_json::json;

use crate::support::fault_injection::{Fault, Faults};
use crate::support::helpers::{error_codes, Backend, TestApp};

/// Concurrent uploads in the concurrency test, per backend; a third are then deleted (each
/// twice, racing) while the rest are re-weighted, all at once. moto serves one request at a
/// time (scripts/moto-server.py), so its share is smaller to keep the suite's run time sane;
/// the conflicts it resolves are the same.
const UPLOADS_EMBEDDED: u32 = 300;
const UPLOADS_MOTO: u32 = 150;
/// Writers in flight at once on moto. Every write to one label races for one of its two shard
/// items, and moto answers one request at a time: with all 200 deletes and re-weights in flight, each
/// retry queues behind every other writer's, so single requests passed the client's 120 s
/// timeout. Eight still race (conflicts on every round, lost races asserted) and stay inside
/// the 20 s contention budget even while the rest of the suite loads the same moto; with
/// sixteen, a re-weight sometimes used up its budget there.
const IN_FLIGHT_MOTO: usize = 8;

async fn concurrent_uploads_deletes_and_weight_changes_keep_the_invariant_exact(backend: Backend) {
    // Two write shards: writers race within a shard (on its chunk info) and across them.
    let settings = CatalogSettings {
        shards: WriteShards::new(2).unwrap(),
        ..CatalogSettings::default()
    };
    let app = Arc::new(TestApp::builder(backend).settings(settings).start().await);
    let count = backend.pick(UPLOADS_EMBEDDED, UPLOADS_MOTO);
    // Embedded: everything at once. The chunk tables serialise writers in-process.
    let in_flight = Arc::new(tokio::sync::Semaphore::new(
        backend.pick(count as usize * 2, IN_FLIGHT_MOTO),
    ));
    let pngs: Vec<Vec<u8>> = (0..count).map(crate::random::png_number).map(|b| b.to_vec()).collect();

    let uploads = pngs.iter().enumerate().map(|(i, png)| {
        let app = Arc::clone(&app);
        let png = png.clone();
        let in_flight = Arc::clone(&in_flight);
        tokio::spawn(async move {
            let _turn = in_flight.acquire_owned().await.unwrap();
            let weight = 0.01 + (i % 7) as f64 / 7.0;
            let (status, body) = app.upload_raw("cat", Some(weight), "p.png", "image/png", png).await;
            assert_eq!(status, 200, "{body}");
            body["data"]["upload"]["id"].as_str().unwrap().to_owned()
        })
    });
    let mut ids = Vec::new();
    for task in uploads.collect::<Vec<_>>() {
        ids.push(task.await.unwrap());
    }
    // However the uploads raced, every image has its own slot and the sums are exact.
    app.assert_chunk_invariant().await;

    // Delete every third image and re-weight the others, all at once, each delete twice.
    // Each task answers (index, Some(deleted?)) for a delete, (index, None) for a re-weight;
    // `running` / `most_at_once` show the writers really overlapped.
    let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let most_at_once = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let deletes = if i % 3 == 0 { 2 } else { 1 };
        for _ in 0..deletes {
            let (app, id, turn) = (Arc::clone(&app), id.clone(), Arc::clone(&in_flight));
            let (running, most_at_once) = (Arc::clone(&running), Arc::clone(&most_at_once));
            tasks.push(tokio::spawn(async move {
                let _turn = turn.acquire_owned().await.unwrap();
                let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                most_at_once.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                let outcome = if i % 3 == 0 {
                    Some(app.delete_image(&id).await)
                } else {
                    let weight = 0.5 + (i % 5) as f64 / 10.0;
                    let (status, body) = app.set_weight(&id, weight).await;
                    assert_eq!((status, body.get("errors")), (200, None), "{body}");
                    assert_eq!(body["data"]["setWeight"]["weight"], weight, "{body}");
                    None
                };
                running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                (i, outcome)
            }));
        }
    }
    let mut deleted = std::collections::BTreeMap::<usize, Vec<bool>>::new();
    for task in tasks {
        if let (i, Some(existed)) = task.await.unwrap() {
            deleted.entry(i).or_default().push(existed);
        }
    }
    assert_eq!(deleted.len(), count.div_ceil(3) as usize);
    for (i, answers) in &deleted {
        let mut answers = answers.clone();
        answers.sort_unstable();
        assert_eq!(
            answers,
            [false, true],
            "image {i}: exactly one of its two racing deletes removed it"
        );
    }
    let most_at_once = most_at_once.load(std::sync::atomic::Ordering::SeqCst);
    assert!(most_at_once > 1, "the writers never overlapped: nothing raced");
    if let Some(dynamo) = &app.dynamo {
        assert!(
            dynamo.lost_races() > 0,
            "{most_at_once} writers at once, yet no transaction lost a race"
        );
    }

    let labels = app.labels().await;
    let kept = count - count.div_ceil(3);
    assert_eq!(
        labels[0]["imageCount"],
        json!(kept),
        "{count} uploaded, every third deleted: none lost or duplicated"
    );
    // Exactly the survivors, each once, each with the weight it was last given.
    let cat = resolvers::domain::label::LabelSet::default_pets().parse("cat").unwrap();
    let mut rows: Vec<(String, u64)> = app
        .tables
        .all_images(&cat)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.id.to_string(), r.weight.nanos()))
        .collect();
    rows.sort();
    let mut expected: Vec<(String, u64)> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(i, id)| {
            (
                id.clone(),
                Weight::from_f64(0.5 + (i % 5) as f64 / 10.0).unwrap().nanos(),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(rows, expected);
    app.assert_chunk_invariant().await;
}

on_both_backends!(concurrent_uploads_deletes_and_weight_changes_keep_the_invariant_exact);

/// The client's whole view of an internal fault: one `INTERNAL_SERVER_ERROR` with the generic
/// message, and not a word of what failed inside (injected text, contexts, AWS errors).
fn assert_internal_error_without_detail(body: &serde_json::Value, what: &str) {
    assert_eq!(error_codes(body), ["INTERNAL_SERVER_ERROR"], "{what}: {body}");
    let errors = body["errors"].as_array().unwrap();
    assert!(
        errors.iter().all(|e| e["message"] == "internal server error"),
        "{what}: {body}"
    );
    let text = body.to_string();
    for internal in ["injected", "recording", "row removed", "object", "dynamodb", "s3"] {
        assert!(
            !text.to_lowercase().contains(internal),
            "{what}: {internal:?} leaked: {body}"
        );
    }
}

/// After a delete and its retry: exactly one image (a 2×2 PNG, so no variant) fewer than
/// `before`, and no orphan object or staged file.
async fn assert_one_image_gone(
    app: &crate::support::helpers::TestApp,
    before: &(usize, usize, usize, usize, serde_json::Value),
) {
    let (files, variants, staged, rows, _) = app.residue().await;
    assert_eq!(
        (files, variants, staged, rows),
        (before.0 - 1, before.1, before.2, before.3 - 1),
        "no orphan object after the retry"
    );
}

/// `deleteImage` as the client sees it: (status, body), errors included.
async fn delete_answer(app: &crate::support::helpers::TestApp, id: &str) -> (u16, serde_json::Value) {
    app.graphql("mutation($id: ID!) { deleteImage(id: $id) }", json!({ "id": id }))
        .await
}

/// Uploads PNG number `n` under `cat`; returns (status, body).
async fn upload_png(app: &crate::support::helpers::TestApp, n: u32) -> (u16, serde_json::Value) {
    app.upload_raw(
        "cat",
        Some(0.5),
        "p.png",
        "image/png",
        crate::random::png_number(n).to_vec(),
    )
    .await
}

async fn a_fault_at_any_step_of_upload_delete_or_set_weight_leaves_nothing_half_done(backend: Backend) {
    let faults = Arc::new(Faults::default());
    let app = TestApp::builder(backend).faults(faults.clone()).start().await;
    let (_, kept) = upload_png(&app, 1).await;
    let kept_id = kept["data"]["upload"]["id"].as_str().unwrap().to_owned();

    // Upload: each step fails once; the client gets a retryable error, nothing is left,
    // and the retry (same bytes, same id) succeeds.
    for (n, step) in [(10, "store.put"), (11, "tables.get_image"), (12, "tables.insert_image")] {
        let before = app.residue().await;
        faults.arm(step, 1, Fault::Error);
        let (_, body) = upload_png(&app, n).await;
        assert_internal_error_without_detail(&body, step);
        assert_eq!(faults.injected(step), 1, "{step} was really hit");
        assert_eq!(app.residue().await, before, "{step}: nothing left behind");
        app.assert_chunk_invariant().await;
        let (status, retried) = upload_png(&app, n).await;
        assert_eq!(status, 200, "{step}: retry {retried}");
        assert!(retried["data"]["upload"]["id"].is_string(), "{step}: retry {retried}");
    }

    // A sized variant's put fails, before or after it stored (a photo large enough to have
    // one): the original and every variant go, and the retry stores them all.
    let golden = crate::support::helpers::fixture("images/dog_kde_golden.png");
    for fault in [Fault::Error, Fault::AfterCommit] {
        let before = app.residue().await;
        let hits_before = faults.injected("store.put_variant");
        faults.arm("store.put_variant", 1, fault);
        let (_, body) = app
            .upload_raw("cat", Some(0.5), "g.png", "image/png", golden.clone())
            .await;
        assert_internal_error_without_detail(&body, "store.put_variant");
        assert_eq!(faults.injected("store.put_variant"), hits_before + 1, "really hit");
        assert_eq!(
            app.residue().await,
            before,
            "store.put_variant: nothing left, variants included"
        );
        app.assert_chunk_invariant().await;
    }
    let (status, retried) = app.upload_raw("cat", Some(0.5), "g.png", "image/png", golden).await;
    assert_eq!(status, 200, "{retried}");
    assert!(app.stored_variants().await > 0, "the retry stored the variant");
    app.assert_chunk_invariant().await;

    // Upload, failing after the write committed (the answer lost on the way back): the
    // client is told to retry; what was written is whole (the object kept because its row
    // exists, or removed because no row points at it), and the retry returns the image.
    for (n, step, kept) in [(30, "store.put", false), (31, "tables.insert_image", true)] {
        let (files, _variants, staged, rows, _) = app.residue().await;
        let hits_before = faults.injected(step);
        faults.arm(step, 1, Fault::AfterCommit);
        let (_, body) = upload_png(&app, n).await;
        assert_internal_error_without_detail(&body, step);
        assert_eq!(faults.injected(step), hits_before + 1, "{step} was really hit");
        let (files_after, _variants_after, staged_after, rows_after, _) = app.residue().await;
        let added = usize::from(kept);
        assert_eq!(
            (files_after, staged_after, rows_after),
            (files + added, staged, rows + added),
            "{step} after commit: a row and its object, or neither"
        );
        app.assert_chunk_invariant().await;
        let (_, retried) = upload_png(&app, n).await;
        assert!(retried["data"]["upload"]["id"].is_string(), "{step}: retry {retried}");
        assert_eq!(app.residue().await.3, rows + 1, "{step}: the retry adds the image once");
    }

    // setWeight: refused whole, weight unchanged; the retry really sets it.
    let q = "query($id: ID!) { image(id: $id) { weight } }";
    faults.arm("tables.set_weight", 1, Fault::Error);
    let (_, body) = app.set_weight(&kept_id, 0.9).await;
    assert_internal_error_without_detail(&body, "tables.set_weight");
    assert_eq!(app.data(q, json!({ "id": kept_id })).await["image"]["weight"], 0.5);
    app.assert_chunk_invariant().await;
    let (_, retried) = app.set_weight(&kept_id, 0.9).await;
    assert_eq!(retried["data"]["setWeight"]["weight"], 0.9, "{retried}");
    // Failing after it committed: the new weight holds, bookkeeping whole, retry idempotent.
    faults.arm("tables.set_weight", 1, Fault::AfterCommit);
    let (_, body) = app.set_weight(&kept_id, 0.7).await;
    assert_internal_error_without_detail(&body, "tables.set_weight after commit");
    assert_eq!(app.data(q, json!({ "id": kept_id })).await["image"]["weight"], 0.7);
    app.assert_chunk_invariant().await;
    let (_, retried) = app.set_weight(&kept_id, 0.7).await;
    assert_eq!(retried["data"]["setWeight"]["weight"], 0.7, "{retried}");

    // Delete, row step: nothing changes. Object step: the row is gone, the client is told
    // to retry, and the retry removes the bytes.
    let (_, doomed) = upload_png(&app, 20).await;
    let doomed_id = doomed["data"]["upload"]["id"].as_str().unwrap().to_owned();
    let before = app.residue().await;
    faults.arm("tables.remove_image", 1, Fault::Error);
    let (_, body) = delete_answer(&app, &doomed_id).await;
    assert_internal_error_without_detail(&body, "tables.remove_image");
    assert_eq!(app.residue().await, before, "a failed row delete changes nothing");
    faults.arm("store.delete", 1, Fault::Error);
    let (_, body) = delete_answer(&app, &doomed_id).await;
    assert_internal_error_without_detail(&body, "store.delete");
    // The bytes outlive the row until the client retries, as the error told it to.
    assert!(!app.delete_image(&doomed_id).await, "the row was already gone");
    assert_one_image_gone(&app, &before).await;
    app.assert_chunk_invariant().await;

    // The row delete commits, then the call fails: the client retries as told, and the
    // retry removes the bytes the first attempt did not reach.
    let (_, doomed) = upload_png(&app, 21).await;
    let doomed_id = doomed["data"]["upload"]["id"].as_str().unwrap().to_owned();
    let before = app.residue().await;
    faults.arm("tables.remove_image", 1, Fault::AfterCommit);
    let (_, body) = delete_answer(&app, &doomed_id).await;
    assert_internal_error_without_detail(&body, "tables.remove_image after commit");
    assert_eq!(faults.injected("tables.remove_image"), 2, "really hit");
    assert!(!app.delete_image(&doomed_id).await, "the row was already gone");
    assert_one_image_gone(&app, &before).await;
    app.assert_chunk_invariant().await;
}

on_both_backends!(a_fault_at_any_step_of_upload_delete_or_set_weight_leaves_nothing_half_done);

async fn a_fault_at_any_step_of_a_scan_ends_in_a_final_state(backend: Backend) {
    let faults = Arc::new(Faults::default());
    let app = TestApp::builder(backend).faults(faults.clone()).start().await;
    // (step, how often, how, what the scan ends as)
    let cases = [
        ("scans.claim", 1, Fault::Error, "SUCCEEDED"),
        ("store.get", 1, Fault::Error, "SUCCEEDED"),
        ("detector.detect", 2, Fault::Error, "SUCCEEDED"),
        ("detector.detect", 1, Fault::Hang, "SUCCEEDED"),
        ("scans.finish", 1, Fault::Error, "SUCCEEDED"),
        ("detector.detect", 99, Fault::Error, "FAILED"),
    ];
    for (n, (step, times, fault, outcome)) in cases.into_iter().enumerate() {
        let (_, up) = upload_png(&app, 100 + n as u32).await;
        let id = up["data"]["upload"]["id"].as_str().unwrap().to_owned();
        let hits_before = faults.injected(step);
        faults.arm(step, times, fault);
        let scan = crate::scan::request_scan_of(&app, &id, false, false).await;
        let done = crate::scan::wait_for_final(&app, scan["id"].as_str().unwrap(), false).await;
        faults.clear();
        assert_eq!(done["status"], outcome, "{step} {fault:?}: {done}");
        assert!(faults.injected(step) > hits_before, "{step} was really hit");
        if outcome == "FAILED" {
            assert!(
                done["error"].as_str().unwrap().starts_with("DETECTOR_UNAVAILABLE"),
                "{done}"
            );
        }
        assert!(
            !done.to_string().contains("injected"),
            "a scan's public fields carry no internal text: {done}"
        );
    }

    // Recording the request fails: the client is told, nothing is recorded, a retry works.
    let (_, up) = upload_png(&app, 200).await;
    let id = up["data"]["upload"]["id"].as_str().unwrap().to_owned();
    faults.arm("scans.request", 1, Fault::Error);
    let (_, body) = app
        .graphql(
            "mutation($id: ID!) { requestScan(imageId: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_internal_error_without_detail(&body, "scans.request");
    let sha = id.rsplit_once('-').unwrap().1;
    let q = format!("{{ scanResult(id: \"{sha}\") {{ status }} }}");
    assert_eq!(app.data(&q, json!({})).await["scanResult"], serde_json::Value::Null);
    let scan = crate::scan::request_scan_of(&app, &id, false, false).await;
    let done = crate::scan::wait_for_final(&app, scan["id"].as_str().unwrap(), false).await;
    assert_eq!(done["status"], "SUCCEEDED");
    app.assert_chunk_invariant().await;
}

on_both_backends!(a_fault_at_any_step_of_a_scan_ends_in_a_final_state);
