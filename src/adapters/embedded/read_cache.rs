//! Decoded chunk info and chunk rows, kept in memory between picks.
//!
//! A random pick reads a label's chunk info and one chunk's rows; on the embedded store that
//! is a redb read plus a JSON decode per row, most of a pick's cost. The store is opened by
//! one process only (redb locks the file), and every write to it goes through
//! [`super::chunk_tables::RedbChunkTables`], so the cache can be exact rather than "fresh
//! enough": a write *invalidates* its label after it commits, and a reader only stores what it
//! read if no write to that label was invalidated since the reader started.
//!
//! Why that is exact: a reader notes the label's generation, then opens its read transaction.
//! A write that commits before that transaction starts has either bumped the generation
//! already (the reader's store is refused) or will bump it before anyone reads the cache
//! again (the bump clears the entry). A snapshot stored is therefore never older than the
//! last committed write that has been acknowledged to its caller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use resolvers::domain::chunks::ChunkInfo;
use resolvers::domain::image::ImageRecord;

/// Rows kept across all labels before the chunk entries are dropped and refilled (about
/// 200 bytes a row: some 40 MB).
const MAX_CACHED_ROWS: usize = 200_000;

#[derive(Default)]
pub struct ReadCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    labels: HashMap<String, LabelEntry>,
    cached_rows: usize,
}

#[derive(Default)]
struct LabelEntry {
    generation: u64,
    info: Option<Arc<Option<ChunkInfo>>>,
    chunks: HashMap<u32, Arc<Vec<ImageRecord>>>,
}

/// What a reader noted before it read: pass it back to store what it read.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl ReadCache {
    /// Call before opening the read transaction whose result may be stored.
    pub fn ticket(&self, label: &str) -> Ticket {
        let inner = self.inner.lock().expect("cache lock");
        Ticket(inner.labels.get(label).map_or(0, |e| e.generation))
    }

    pub fn info(&self, label: &str) -> Option<Arc<Option<ChunkInfo>>> {
        let inner = self.inner.lock().expect("cache lock");
        inner.labels.get(label).and_then(|e| e.info.clone())
    }

    pub fn store_info(&self, label: &str, ticket: Ticket, info: Arc<Option<ChunkInfo>>) {
        let mut inner = self.inner.lock().expect("cache lock");
        let entry = inner.labels.entry(label.to_owned()).or_default();
        if entry.generation == ticket.0 {
            entry.info = Some(info);
        }
    }

    pub fn chunk(&self, label: &str, chunk: u32) -> Option<Arc<Vec<ImageRecord>>> {
        let inner = self.inner.lock().expect("cache lock");
        inner.labels.get(label).and_then(|e| e.chunks.get(&chunk).cloned())
    }

    pub fn store_chunk(&self, label: &str, chunk: u32, ticket: Ticket, rows: Arc<Vec<ImageRecord>>) {
        let mut inner = self.inner.lock().expect("cache lock");
        if inner.cached_rows + rows.len() > MAX_CACHED_ROWS {
            for entry in inner.labels.values_mut() {
                entry.chunks.clear();
            }
            inner.cached_rows = 0;
        }
        let added = rows.len();
        let entry = inner.labels.entry(label.to_owned()).or_default();
        if entry.generation == ticket.0 {
            if let Some(replaced) = entry.chunks.insert(chunk, rows) {
                inner.cached_rows -= replaced.len();
            }
            inner.cached_rows += added;
        }
    }

    /// After a write to `label` committed (or may have): forget what was read of it.
    pub fn invalidate(&self, label: &str) {
        let mut inner = self.inner.lock().expect("cache lock");
        let entry = inner.labels.entry(label.to_owned()).or_default();
        entry.generation += 1;
        entry.info = None;
        let dropped: usize = entry.chunks.drain().map(|(_, rows)| rows.len()).sum();
        inner.cached_rows -= dropped;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_started_before_a_write_is_not_stored_after_it() {
        let cache = ReadCache::default();
        let ticket = cache.ticket("cat");
        cache.invalidate("cat"); // a write committed while the read ran
        cache.store_info("cat", ticket, Arc::new(None));
        assert!(cache.info("cat").is_none(), "the stale read was refused");

        let ticket = cache.ticket("cat");
        cache.store_info("cat", ticket, Arc::new(None));
        assert!(cache.info("cat").is_some());
        cache.store_chunk("cat", 0, ticket, Arc::new(Vec::new()));
        assert!(cache.chunk("cat", 0).is_some());
        cache.invalidate("cat");
        assert!(cache.info("cat").is_none() && cache.chunk("cat", 0).is_none());
        assert!(cache.info("dog").is_none(), "labels are separate");
    }
}
