//! Strongly consistent `BatchGetItem` over any number of keys: DynamoDB takes at most 100
//! keys a request and may leave some unprocessed under load; those are asked again after a
//! pause, so the caller gets every item that exists or an error, never a silent gap.

use anyhow::Context;
use aws_sdk_dynamodb::types::KeysAndAttributes;
use aws_sdk_dynamodb::Client;

use super::dynamo_chunk_tables::{back_off, MAX_ATTEMPTS};
use super::items::Item;

/// DynamoDB's limit of keys in one `BatchGetItem`.
const KEYS_PER_REQUEST: usize = 100;

/// The items of `table` under `keys` (in no particular order; keys with no item are absent).
pub(super) async fn batch_get_consistent(client: &Client, table: &str, keys: Vec<Item>) -> anyhow::Result<Vec<Item>> {
    let mut found = Vec::with_capacity(keys.len());
    for batch in keys.chunks(KEYS_PER_REQUEST) {
        let mut pending = batch.to_vec();
        let mut attempt = 0;
        while !pending.is_empty() {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(true)
                .build()?;
            let output = client
                .batch_get_item()
                .request_items(table, request)
                .send()
                .await
                .with_context(|| format!("DynamoDB BatchGetItem {table}"))?;
            found.extend(output.responses.unwrap_or_default().remove(table).unwrap_or_default());
            pending = output
                .unprocessed_keys
                .unwrap_or_default()
                .remove(table)
                .map(|rest| rest.keys)
                .unwrap_or_default();
            if !pending.is_empty() {
                attempt += 1;
                anyhow::ensure!(
                    attempt < MAX_ATTEMPTS,
                    "BatchGetItem {table} left keys unprocessed {attempt} times"
                );
                back_off(attempt).await;
            }
        }
    }
    Ok(found)
}
