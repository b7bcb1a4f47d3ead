//! `Query.scanResult`: a scan by id (poll it until `status` is final, e.g. every second).

use async_graphql::{Context, Object, Result, ResultExt, ID};

use crate::schema::scanner;
use crate::schema::types::Scan;

#[derive(Default)]
pub struct ScanResultQuery;

#[Object]
impl ScanResultQuery {
    /// The scan with this id (the SHA-256 of the scanned bytes); null if there is none.
    async fn scan_result(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Scan>> {
        Ok(scanner(ctx)?.scan(&id).await.extend()?.map(Scan))
    }
}
