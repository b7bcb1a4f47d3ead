//! Labels: the categories images are filed under (`cat`, `dog` by default).
//! The allowed set is configuration; a label outside it is a client error.

use std::fmt;

use crate::error::{ApiError, ApiResult};

/// Longest label accepted; keeps ids and storage keys short and predictable.
pub const MAX_LABEL_LEN: usize = 32;

/// A label from the configured set. Only [`LabelSet::parse`] makes one, so holding a
/// `Label` means it is allowed and safe to put in keys and paths (`[a-z][a-z0-9_]*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(String);

impl Label {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A label read back from a record pawql wrote itself (a scan's image id). It was in the
    /// configured set when written; it is checked here only for being well formed, so it is
    /// still safe in keys. Whether it is configured *now* is the reader's question: an image
    /// under a label since removed is simply not found.
    pub(crate) fn from_stored(name: &str) -> Option<Label> {
        is_well_formed(name).then(|| Label(name.to_owned()))
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The configured labels, in the order they were configured.
#[derive(Debug, Clone)]
pub struct LabelSet(Vec<Label>);

impl LabelSet {
    /// Builds the set from configuration. Fails (at start-up) on a malformed or repeated name,
    /// because a label ends up inside image ids and storage keys.
    pub fn new<I, S>(names: I) -> anyhow::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut labels: Vec<Label> = Vec::new();
        for name in names {
            let name = name.as_ref().trim();
            anyhow::ensure!(
                is_well_formed(name),
                "label {name:?} must match [a-z][a-z0-9_]* and be at most {MAX_LABEL_LEN} characters"
            );
            anyhow::ensure!(
                !labels.iter().any(|l| l.0 == name),
                "label {name:?} is configured twice"
            );
            labels.push(Label(name.to_owned()));
        }
        anyhow::ensure!(!labels.is_empty(), "at least one label must be configured");
        Ok(LabelSet(labels))
    }

    /// The product's default: `cat` and `dog`.
    pub fn default_pets() -> Self {
        Self::new(["cat", "dog"]).expect("the default labels are well formed")
    }

    /// Accepts a label the client sent, or says which labels exist.
    pub fn parse(&self, raw: &str) -> ApiResult<Label> {
        self.0.iter().find(|l| l.0 == raw).cloned().ok_or_else(|| {
            ApiError::BadUserInput(format!(
                "unknown label {:?}; allowed labels: {}",
                truncate_for_message(raw),
                self.names().join(", ")
            ))
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.0.iter()
    }

    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(Label::as_str).collect()
    }
}

fn is_well_formed(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_LABEL_LEN
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Echoing a hostile megabyte-long argument back is pointless; keep messages short.
pub(crate) fn truncate_for_message(raw: &str) -> String {
    const KEEP: usize = 40;
    match raw.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}…", &raw[..cut]),
        None => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_set_accepts_cat_and_dog_only() {
        let labels = LabelSet::default_pets();
        assert_eq!(labels.parse("cat").unwrap().as_str(), "cat");
        assert_eq!(labels.parse("dog").unwrap().as_str(), "dog");
        let err = labels.parse("Cat").unwrap_err();
        assert_eq!(err.code(), "BAD_USER_INPUT");
        assert!(err.to_string().contains("cat, dog"));
    }

    #[test]
    fn malformed_configured_labels_are_refused_at_start_up() {
        for bad in ["", "Cat", "9lives", "cat-dog", "ca t", "🐱", &"a".repeat(33)] {
            assert!(LabelSet::new([bad]).is_err(), "{bad:?} should be refused");
        }
        assert!(LabelSet::new(["cat", "cat"]).is_err());
        assert!(LabelSet::new(["bird", "fish_2"]).is_ok());
    }

    #[test]
    fn hostile_label_is_echoed_truncated() {
        let long = "x".repeat(10_000);
        let message = LabelSet::default_pets().parse(&long).unwrap_err().to_string();
        assert!(message.len() < 200, "{message}");
    }
}
