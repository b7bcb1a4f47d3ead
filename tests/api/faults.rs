//! Failures half-way through a write leave nothing behind, a scan ends final whatever fails
//! on the way, and concurrent writers keep the chunk invariant exact.

use std::sync::Arc;

use resolvers::domain::chunks::ChunkSizing;
use resolvers::domain::weight::Weight;
use resolvers::CatalogSettings;
use serde_json::json;

use crate::fault_injection::Fault;
use crate::helpers::{error_codes, spawn_app_with, spawn_app_with_faults};

/// Concurrent uploads in the concurrency test, per backend; a third are then deleted (each
/// twice, racing) while the rest are re-weighted, all at once. moto serves one request at a
/// time (scripts/moto-server.py), so its share is smaller to keep the suite's run time sane;
/// the conflicts it resolves are the same.
const UPLOADS_EMBEDDED: u32 = 300;
const UPLOADS_MOTO: u32 = 150;
/// Writers in flight at once on moto. Every write to one label races for one chunk info item,
/// and moto answers one request at a time: with all 200 deletes and re-weights in flight, each
/// retry queues behind every other writer's, so single requests passed the client's 120 s
/// timeout. Sixteen still race (conflicts on every round) and finish in under a minute.
const IN_FLIGHT_MOTO: usize = 16;

on_both_backends! {
    async fn concurrent_uploads_deletes_and_weight_changes_keep_the_invariant_exact(backend) {
        let settings = CatalogSettings {
            sizing: ChunkSizing::new(4, 5).unwrap(),
            ..CatalogSettings::default()
        };
        let app = Arc::new(spawn_app_with(backend, settings).await);
        let count = backend.pick(UPLOADS_EMBEDDED, UPLOADS_MOTO);
        // Embedded: everything at once. The chunk tables serialise writers in-process.
        let in_flight = Arc::new(tokio::sync::Semaphore::new(backend.pick(count as usize * 2, IN_FLIGHT_MOTO)));
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

        // Delete every third image and re-weight the others, all at once, each delete twice.
        let mut tasks = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let worker = Arc::clone(&app);
            let id = id.clone();
            let turn = Arc::clone(&in_flight);
            tasks.push(tokio::spawn(async move {
                let _turn = turn.acquire_owned().await.unwrap();
                let app = worker;
                if i % 3 == 0 {
                    app.delete_image(&id).await;
                } else {
                    let (status, body) = app.set_weight(&id, 0.5 + (i % 5) as f64 / 10.0).await;
                    assert_eq!(status, 200, "{body}");
                }
            }));
            if i % 3 == 0 {
                let app = Arc::clone(&app);
                let id = ids[i].clone();
                let turn = Arc::clone(&in_flight);
                tasks.push(tokio::spawn(async move {
                    let _turn = turn.acquire_owned().await.unwrap();
                    app.delete_image(&id).await;
                }));
            }
        }
        for task in tasks {
            task.await.unwrap();
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
            .map(|(i, id)| (id.clone(), Weight::from_f64(0.5 + (i % 5) as f64 / 10.0).unwrap().nanos()))
            .collect();
        expected.sort();
        assert_eq!(rows, expected);
        app.assert_chunk_invariant().await;
    }
}

/// Uploads PNG number `n` under `cat`; returns (status, body).
async fn upload_png(app: &crate::helpers::TestApp, n: u32) -> (u16, serde_json::Value) {
    app.upload_raw(
        "cat",
        Some(0.5),
        "p.png",
        "image/png",
        crate::random::png_number(n).to_vec(),
    )
    .await
}

on_both_backends! {
    async fn a_fault_at_any_step_of_upload_delete_or_set_weight_leaves_nothing_half_done(backend) {
        let (app, faults) = spawn_app_with_faults(backend).await;
        let (_, kept) = upload_png(&app, 1).await;
        let kept_id = kept["data"]["upload"]["id"].as_str().unwrap().to_owned();

        // Upload: each step fails once; the client gets a retryable error, nothing is left,
        // and the retry (same bytes, same id) succeeds.
        for (n, step) in [(10, "store.put"), (11, "tables.get_image"), (12, "tables.insert_image")] {
            let before = app.residue().await;
            faults.arm(step, 1, Fault::Error);
            let (_, body) = upload_png(&app, n).await;
            assert_eq!(error_codes(&body), ["INTERNAL_SERVER_ERROR"], "{step}: {body}");
            assert!(!body.to_string().contains("injected"), "internals stay in the log");
            assert_eq!(faults.injected(step), 1, "{step} was really hit");
            assert_eq!(app.residue().await, before, "{step}: nothing left behind");
            app.assert_chunk_invariant().await;
            let (status, retried) = upload_png(&app, n).await;
            assert_eq!(status, 200, "{step}: retry {retried}");
            assert!(retried.get("errors").is_none(), "{step}: retry {retried}");
        }

        // setWeight: refused whole, weight unchanged.
        faults.arm("tables.set_weight", 1, Fault::Error);
        let (_, body) = app.set_weight(&kept_id, 0.9).await;
        assert_eq!(error_codes(&body), ["INTERNAL_SERVER_ERROR"], "{body}");
        let q = "query($id: ID!) { image(id: $id) { weight } }";
        assert_eq!(app.data(q, json!({ "id": kept_id })).await["image"]["weight"], 0.5);
        app.assert_chunk_invariant().await;
        assert_eq!(app.set_weight(&kept_id, 0.9).await.0, 200);

        // Delete, row step: nothing changes. Object step: the row is gone, the client is told
        // to retry, and the retry removes the bytes.
        let (_, doomed) = upload_png(&app, 20).await;
        let doomed_id = doomed["data"]["upload"]["id"].as_str().unwrap().to_owned();
        let before = app.residue().await;
        faults.arm("tables.remove_image", 1, Fault::Error);
        let (_, body) = app.graphql("mutation($id: ID!) { deleteImage(id: $id) }", json!({ "id": doomed_id })).await;
        assert_eq!(error_codes(&body), ["INTERNAL_SERVER_ERROR"]);
        assert_eq!(app.residue().await, before, "a failed row delete changes nothing");
        faults.arm("store.delete", 1, Fault::Error);
        let (_, body) = app.graphql("mutation($id: ID!) { deleteImage(id: $id) }", json!({ "id": doomed_id })).await;
        assert_eq!(error_codes(&body), ["INTERNAL_SERVER_ERROR"], "{body}");
        // The bytes outlive the row until the client retries, as the error told it to.
        assert!(!app.delete_image(&doomed_id).await, "the row was already gone");
        let (files, staged, rows, _) = app.residue().await;
        assert_eq!((files, staged, rows), (before.0 - 1, before.1, before.2 - 1), "no orphan object after the retry");
        app.assert_chunk_invariant().await;
    }
}

on_both_backends! {
    async fn a_fault_at_any_step_of_a_scan_ends_in_a_final_state(backend) {
        let (app, faults) = spawn_app_with_faults(backend).await;
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
                assert!(done["error"].as_str().unwrap().starts_with("DETECTOR_UNAVAILABLE"), "{done}");
            }
        }

        // Recording the request fails: the client is told, nothing is recorded, a retry works.
        let (_, up) = upload_png(&app, 200).await;
        let id = up["data"]["upload"]["id"].as_str().unwrap().to_owned();
        faults.arm("scans.request", 1, Fault::Error);
        let (_, body) = app
            .graphql("mutation($id: ID!) { requestScan(imageId: $id) { id } }", json!({ "id": id }))
            .await;
        assert_eq!(error_codes(&body), ["INTERNAL_SERVER_ERROR"], "{body}");
        let sha = id.rsplit_once('-').unwrap().1;
        let q = format!("{{ scanResult(id: \"{sha}\") {{ status }} }}");
        assert_eq!(app.data(&q, json!({})).await["scanResult"], serde_json::Value::Null);
        let scan = crate::scan::request_scan_of(&app, &id, false, false).await;
        let done = crate::scan::wait_for_final(&app, scan["id"].as_str().unwrap(), false).await;
        assert_eq!(done["status"], "SUCCEEDED");
        app.assert_chunk_invariant().await;
    }
}
