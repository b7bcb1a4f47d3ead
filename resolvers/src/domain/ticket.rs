//! Upload tickets: the handle of a presigned upload, for files larger than one request to the
//! API may carry (Lambda takes at most 6 MB, and base64 through API Gateway shrinks that).
//!
//! `requestUpload` hands out a ticket and a URL to PUT the file to; `completeUpload` then reads
//! the staged file, validates it like a direct upload and files it. A ticket is
//! `{label}.{token}` with a 128-bit random token: it names the staging object
//! `staging/{label}/{token}` and nothing else, so a forged ticket cannot point anywhere else.

use std::fmt;

use rand::Rng;

use super::label::{Label, LabelSet};
use crate::error::{ApiError, ApiResult};

/// Where staged uploads live, beside (never among) the content-addressed image keys.
pub const STAGING_PREFIX: &str = "staging/";

/// A parsed, well-formed upload ticket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UploadTicket {
    pub label: Label,
    token: String,
}

impl UploadTicket {
    /// A fresh ticket with a token from the OS-seeded CSPRNG.
    pub fn new(label: Label) -> UploadTicket {
        let bytes: [u8; 16] = rand::rng().random();
        UploadTicket {
            label,
            token: hex::encode(bytes),
        }
    }

    /// Parses a ticket a client sent back; anything else is BAD_USER_INPUT.
    pub fn parse(text: &str, labels: &LabelSet) -> ApiResult<UploadTicket> {
        let malformed = || ApiError::BadUserInput(format!("{text:?} is not an upload ticket"));
        let (label, token) = text.rsplit_once('.').ok_or_else(malformed)?;
        let label = labels.parse(label).map_err(|_| malformed())?;
        let well_formed = token.len() == 32 && token.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !well_formed {
            return Err(malformed());
        }
        Ok(UploadTicket {
            label,
            token: token.to_owned(),
        })
    }

    /// The object key (S3) or relative path (embedded) of the staged file.
    pub fn staging_key(&self) -> String {
        format!("{STAGING_PREFIX}{}/{}", self.label, self.token)
    }
}

impl fmt::Display for UploadTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.label, self.token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_round_trip_and_forgeries_are_refused() {
        let labels = LabelSet::default_pets();
        let ticket = UploadTicket::new(labels.parse("cat").unwrap());
        let text = ticket.to_string();
        assert_eq!(UploadTicket::parse(&text, &labels).unwrap(), ticket);
        assert!(ticket.staging_key().starts_with("staging/cat/"));
        assert_ne!(UploadTicket::new(ticket.label.clone()), ticket, "tokens are random");
        for forged in [
            "cat.../../etc/passwd",
            "cat.ABCDEF0123456789abcdef0123456789",
            "cat.0123",
            "../cat.0123456789abcdef0123456789abcdef",
            "bird.0123456789abcdef0123456789abcdef",
            "",
        ] {
            assert!(UploadTicket::parse(forged, &labels).is_err(), "{forged}");
        }
    }
}
