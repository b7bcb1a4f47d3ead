//! Strongly consistent `BatchGetItem` over any number of keys: DynamoDB takes at most 100
//! keys a request and may leave some unprocessed under load; those are asked again after a
//! pause, so the caller gets every item that exists or an error, never a silent gap.

use aws_sdk_dynamodb::types::KeysAndAttributes;
use aws_sdk_dynamodb::Client;
use resolvers::deadline;

use super::contention::{self, Budget};
use super::items::Item;

/// DynamoDB's limit of keys in one `BatchGetItem`.
const KEYS_PER_REQUEST: usize = 100;

/// The items of `table` under `keys` (in no particular order; keys with no item are absent).
pub(super) async fn batch_get_consistent(client: &Client, table: &str, keys: Vec<Item>) -> anyhow::Result<Vec<Item>> {
    batch_get_projected(client, table, keys, None).await
}

/// [`batch_get_consistent`] reading only `attributes` of each item (names, not placeholders:
/// they are mapped to `#a0`, `#a1`, … so reserved words are safe).
pub(super) async fn batch_get_projected(
    client: &Client,
    table: &str,
    keys: Vec<Item>,
    attributes: Option<&[&str]>,
) -> anyhow::Result<Vec<Item>> {
    let mut found = Vec::with_capacity(keys.len());
    for batch in keys.chunks(KEYS_PER_REQUEST) {
        let mut pending = batch.to_vec();
        let mut budget = Budget::start();
        while !pending.is_empty() {
            let mut request = KeysAndAttributes::builder()
                .set_keys(Some(pending.clone()))
                .consistent_read(true);
            if let Some(attributes) = attributes {
                let placeholders: Vec<String> = (0..attributes.len()).map(|i| format!("#a{i}")).collect();
                request = request.projection_expression(placeholders.join(", "));
                for (placeholder, name) in placeholders.iter().zip(attributes) {
                    request = request.expression_attribute_names(placeholder, *name);
                }
            }
            let request = request.build()?;
            let call = client.batch_get_item().request_items(table, request).send();
            let what = format!("DynamoDB BatchGetItem {table}");
            let output = match deadline::bounded(&what, async {
                call.await.map_err(|e| contention::classify(e, &what))
            })
            .await
            {
                Ok(output) => output,
                Err(err) => {
                    // Throttled as a whole: nothing was read, ask again for the same keys.
                    if !contention::is_transient(&err) {
                        return Err(err);
                    }
                    budget.pause(&format!("BatchGetItem {table}")).await?;
                    continue;
                }
            };
            found.extend(output.responses.unwrap_or_default().remove(table).unwrap_or_default());
            pending = output
                .unprocessed_keys
                .unwrap_or_default()
                .remove(table)
                .map(|rest| rest.keys)
                .unwrap_or_default();
            if !pending.is_empty() {
                budget
                    .pause(&format!("BatchGetItem {table}: keys left unprocessed"))
                    .await?;
            }
        }
    }
    Ok(found)
}
