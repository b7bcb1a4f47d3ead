//! `Query.scanResult` and `Query.scanResults`: scans by id (poll until `status` is final, e.g.
//! every second; or follow them with `scanUpdated` / `scansUpdated`).

use async_graphql::{Context, Object, Result, ResultExt, ID};

use crate::schema::scanner;
use crate::schema::types::Scan;
use tracing::instrument;

/// Most ids one `scanResults` takes.
pub const MAX_SCAN_RESULTS: usize = 100;

#[derive(Default)]
pub struct ScanResultQuery;

#[Object]
impl ScanResultQuery {
    /// The scan with this id (the SHA-256 of the scanned bytes); null if there is none.
    #[instrument(level = "debug", skip_all, fields(id = id.as_str()))]
    async fn scan_result(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Scan>> {
        Ok(scanner(ctx)?.scan(&id).await.extend()?.map(Scan))
    }

    /// The scans with these ids, in the order asked, null where there is none: a batch's
    /// results in one request (at most 100 ids; one batched read on DynamoDB).
    #[instrument(level = "debug", skip_all, fields(ids = ids.len()))]
    async fn scan_results(&self, ctx: &Context<'_>, ids: Vec<ID>) -> Result<Vec<Option<Scan>>> {
        let scans = scanner(ctx)?.scans_by_id(&ids, MAX_SCAN_RESULTS).await.extend()?;
        Ok(scans.into_iter().map(|scan| scan.map(Scan)).collect())
    }
}
