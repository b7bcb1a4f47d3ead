//! Decoded chunk info and slots, kept in memory between picks.
//!
//! A random pick reads a label's chunk info and a few slots; on the embedded store that is
//! a redb read plus a JSON decode each, most of a pick's cost. The store is opened by
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

use resolvers::domain::chunks::{LabelChunks, Slot};
use resolvers::domain::image::ImageRecord;

/// Slots kept across all labels before they are dropped and refilled (about 300 bytes a
/// slot: some 60 MB).
const MAX_CACHED_SLOTS: usize = 200_000;

#[derive(Default)]
pub struct ReadCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    labels: HashMap<String, LabelEntry>,
    cached_slots: usize,
}

#[derive(Default)]
struct LabelEntry {
    generation: u64,
    info: Option<Arc<Option<LabelChunks>>>,
    slots: HashMap<Slot, Option<ImageRecord>>,
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

    pub fn info(&self, label: &str) -> Option<Arc<Option<LabelChunks>>> {
        let inner = self.inner.lock().expect("cache lock");
        inner.labels.get(label).and_then(|e| e.info.clone())
    }

    pub fn store_info(&self, label: &str, ticket: Ticket, info: Arc<Option<LabelChunks>>) {
        let mut inner = self.inner.lock().expect("cache lock");
        let entry = inner.labels.entry(label.to_owned()).or_default();
        if entry.generation == ticket.0 {
            entry.info = Some(info);
        }
    }

    /// The cached images of `slots`, in order; `None` for the first slot not cached (the
    /// caller then reads them all).
    pub fn slots(&self, label: &str, slots: &[Slot]) -> Option<Vec<Option<ImageRecord>>> {
        let inner = self.inner.lock().expect("cache lock");
        let entry = inner.labels.get(label)?;
        slots.iter().map(|slot| entry.slots.get(slot).cloned()).collect()
    }

    pub fn store_slots(
        &self,
        label: &str,
        ticket: Ticket,
        found: impl IntoIterator<Item = (Slot, Option<ImageRecord>)>,
    ) {
        let mut inner = self.inner.lock().expect("cache lock");
        if inner.cached_slots > MAX_CACHED_SLOTS {
            for entry in inner.labels.values_mut() {
                entry.slots.clear();
            }
            inner.cached_slots = 0;
        }
        let entry = inner.labels.entry(label.to_owned()).or_default();
        if entry.generation != ticket.0 {
            return;
        }
        let before = entry.slots.len();
        entry.slots.extend(found);
        let added = entry.slots.len() - before;
        inner.cached_slots += added;
    }

    /// After a write to `label` committed (or may have): forget what was read of it.
    pub fn invalidate(&self, label: &str) {
        let mut inner = self.inner.lock().expect("cache lock");
        let entry = inner.labels.entry(label.to_owned()).or_default();
        entry.generation += 1;
        entry.info = None;
        let dropped = entry.slots.len();
        entry.slots.clear();
        inner.cached_slots -= dropped;
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
        let slot = Slot {
            shard: 0,
            chunk: 57,
            index: 0,
        };
        cache.store_slots("cat", ticket, [(slot, None)]);
        assert_eq!(cache.slots("cat", &[slot]), Some(vec![None]));
        cache.invalidate("cat");
        assert!(cache.info("cat").is_none() && cache.slots("cat", &[slot]).is_none());
        assert!(cache.info("dog").is_none(), "labels are separate");
    }
}
