//! Parsed GraphQL documents, kept by query text. Parsing is most of what a small query like
//! `randomImage { url }` costs async-graphql; clients send the same few query texts again and
//! again (generated clients, the viewer, GraphiQL tabs), so each is parsed once. Validation
//! still runs on every request: only the text → syntax tree step is cached, and a document is
//! a pure function of its text, so nothing can go stale.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::ExecutableDocument;

/// Distinct query texts kept; past this the cache starts over (a client generating a new text
/// per request must not grow it without bound).
const MAX_DOCUMENTS: usize = 512;
/// Longer texts are parsed every time rather than kept.
const MAX_QUERY_LEN: usize = 8 * 1024;

#[derive(Default)]
pub struct DocumentCache {
    documents: Mutex<HashMap<String, Arc<ExecutableDocument>>>,
}

impl DocumentCache {
    /// Gives `request` its parsed document from the cache, or parses and keeps it. A query
    /// that does not parse is left alone: execution reports the syntax error as usual.
    pub fn prepare(&self, request: &mut async_graphql::Request) {
        if request.query.len() > MAX_QUERY_LEN {
            return;
        }
        let cached = self.documents.lock().expect("cache lock").get(&request.query).cloned();
        if let Some(document) = cached {
            request.set_parsed_query((*document).clone());
            return;
        }
        if let Ok(document) = request.parsed_query() {
            let document = Arc::new(document.clone());
            let mut documents = self.documents.lock().expect("cache lock");
            if documents.len() >= MAX_DOCUMENTS {
                documents.clear();
            }
            documents.insert(request.query.clone(), document);
        }
    }

    /// Every request of a batch.
    pub fn prepare_batch(&self, batch: &mut async_graphql::BatchRequest) {
        match batch {
            async_graphql::BatchRequest::Single(request) => self.prepare(request),
            async_graphql::BatchRequest::Batch(requests) => requests.iter_mut().for_each(|r| self.prepare(r)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_text_is_parsed_once_and_bad_ones_are_left_to_execution() {
        let cache = DocumentCache::default();
        let mut first = async_graphql::Request::new("{ labels { label } }");
        cache.prepare(&mut first);
        let mut second = async_graphql::Request::new("{ labels { label } }");
        cache.prepare(&mut second);
        assert_eq!(cache.documents.lock().unwrap().len(), 1);
        assert!(second.parsed_query().is_ok());

        let mut broken = async_graphql::Request::new("{ labels {");
        cache.prepare(&mut broken);
        assert_eq!(cache.documents.lock().unwrap().len(), 1, "not kept");
        assert!(broken.parsed_query().is_err(), "the syntax error is still reported");
    }
}
