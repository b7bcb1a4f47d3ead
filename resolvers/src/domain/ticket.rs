//! Upload tickets: the handle of a presigned upload, for files larger than one request to the
//! API may carry (Lambda takes at most 6 MB, and base64 through API Gateway shrinks that).
//!
//! `requestUpload` hands out a ticket and a URL to PUT the file to; `completeUpload` then reads
//! the staged file, validates it like a direct upload and files it. A ticket is
//! `{label}.{token}` with a 128-bit random token: it names the staging object
//! `staging/{label}/{token}` and nothing else, so a forged ticket cannot point anywhere else.
//!
//! The ticket only names a place; what lets a PUT in is its URL's signature. On S3 that is
//! S3's own presigned URL. The local server's stand-in signs its URLs with [`UploadSigner`]:
//! HMAC-SHA256 over the ticket, the declared byte size and the expiry, so a URL this server
//! did not hand out, or one altered to take more bytes or live longer, is refused before any
//! of its body is read. The ticket text stays the same on both backends; the signature rides
//! in the URL's query, as S3's does.

use std::fmt;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use sha2::Sha256;

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

/// A ticket with what its upload URL promises: exactly `byte_size` bytes, until `expires`.
/// Built by [`UploadSigner::sign`], or read back from a PUT's URL by [`SignedUpload::from_query`]
/// (then it means nothing until [`UploadSigner::verify`] accepts it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedUpload {
    pub ticket: UploadTicket,
    /// The exact length the body must have.
    pub byte_size: u64,
    /// Unix seconds; the URL is refused from then on.
    pub expires: i64,
    signature: [u8; SIGNATURE_LEN],
}

const SIGNATURE_LEN: usize = 32;

impl SignedUpload {
    /// The URL query that carries the signature: `expires=…&size=…&signature=…`.
    pub fn query(&self) -> String {
        format!(
            "expires={}&size={}&signature={}",
            self.expires,
            self.byte_size,
            hex::encode(self.signature)
        )
    }

    /// Reads the query of a PUT's URL. Anything missing, repeated or malformed is FORBIDDEN,
    /// as an unsigned request to a private S3 bucket is.
    pub fn from_query(ticket: UploadTicket, query: Option<&str>) -> ApiResult<SignedUpload> {
        let unsigned =
            || ApiError::Forbidden("this upload URL is not signed: PUT to the uploadUrl requestUpload returned".into());
        let (mut expires, mut size, mut signature) = (None, None, None);
        for pair in query.unwrap_or_default().split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').ok_or_else(unsigned)?;
            let slot = match name {
                "expires" => &mut expires,
                "size" => &mut size,
                "signature" => &mut signature,
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(unsigned());
            }
        }
        let digits = |value: &str| !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
        let expires = expires
            .filter(|v| digits(v))
            .and_then(|v| v.parse().ok())
            .ok_or_else(unsigned)?;
        let byte_size = size
            .filter(|v| digits(v))
            .and_then(|v| v.parse().ok())
            .ok_or_else(unsigned)?;
        let mut bytes = [0u8; SIGNATURE_LEN];
        hex::decode_to_slice(signature.ok_or_else(unsigned)?, &mut bytes).map_err(|_| unsigned())?;
        Ok(SignedUpload {
            ticket,
            byte_size,
            expires,
            signature: bytes,
        })
    }
}

/// The key the local server signs upload URLs with. One per data directory, kept there, so
/// URLs handed out before a restart still work after it and no other server's do.
pub struct UploadSigner {
    key: [u8; UploadSigner::KEY_LEN],
}

impl fmt::Debug for UploadSigner {
    /// Never the key itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UploadSigner(..)")
    }
}

impl UploadSigner {
    /// Bytes of key: SHA-256's block is larger, its output this size, which is what HMAC needs.
    pub const KEY_LEN: usize = 32;

    /// A new key straight from the operating system's CSPRNG.
    pub fn generate() -> anyhow::Result<UploadSigner> {
        use rand::TryRngCore;
        let mut key = [0u8; Self::KEY_LEN];
        rand::rngs::OsRng
            .try_fill_bytes(&mut key)
            .map_err(|e| anyhow::anyhow!("the OS random source failed: {e}"))?;
        Ok(UploadSigner { key })
    }

    /// The signer of a key kept earlier ([`UploadSigner::key`]).
    pub fn from_key(key: &[u8]) -> anyhow::Result<UploadSigner> {
        let key = key
            .try_into()
            .map_err(|_| anyhow::anyhow!("an upload signing key has {} bytes, not {}", Self::KEY_LEN, key.len()))?;
        Ok(UploadSigner { key })
    }

    /// The key, to be kept where only this server reads it.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// Signs a ticket for exactly `byte_size` bytes until `expires` (kept in whole seconds,
    /// rounded up, so the URL lives at least until `expires`).
    pub fn sign(&self, ticket: &UploadTicket, byte_size: u64, expires: DateTime<Utc>) -> SignedUpload {
        let seconds = expires.timestamp() + i64::from(expires.timestamp_subsec_nanos() > 0);
        let mut signed = SignedUpload {
            ticket: ticket.clone(),
            byte_size,
            expires: seconds,
            signature: [0; SIGNATURE_LEN],
        };
        signed.signature = self.mac(&signed).finalize().into_bytes().into();
        signed
    }

    /// Accepts an upload this key signed and whose expiry is after `now`. The signature is
    /// compared in constant time, and before the expiry, so "expired" is only ever said of a
    /// URL this server really issued.
    pub fn verify(&self, upload: &SignedUpload, now: DateTime<Utc>) -> ApiResult<()> {
        self.mac(upload).verify_slice(&upload.signature).map_err(|_| {
            ApiError::Forbidden(format!(
                "the upload URL for ticket {} was not issued by this server, or was altered",
                upload.ticket
            ))
        })?;
        if now.timestamp() >= upload.expires {
            let at = DateTime::from_timestamp(upload.expires, 0)
                .map_or_else(|| upload.expires.to_string(), |at| at.to_rfc3339());
            return Err(ApiError::Forbidden(format!(
                "upload ticket {} expired at {at}; ask requestUpload for a new one",
                upload.ticket
            )));
        }
        Ok(())
    }

    /// The MAC over everything the URL promises. Newline-separated: none of the fields can
    /// hold one, so no two different uploads sign the same text.
    fn mac(&self, upload: &SignedUpload) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        let text = format!(
            "pawql-upload-v1\n{}\n{}\n{}",
            upload.ticket, upload.byte_size, upload.expires
        );
        mac.update(text.as_bytes());
        mac
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

    fn a_ticket() -> UploadTicket {
        UploadTicket::new(LabelSet::default_pets().parse("cat").unwrap())
    }

    fn code(result: ApiResult<()>) -> &'static str {
        result.map_or_else(|e| e.code(), |()| "OK")
    }

    #[test]
    fn a_signed_ticket_is_accepted_until_it_expires() {
        let signer = UploadSigner::generate().unwrap();
        let now = Utc::now();
        let signed = signer.sign(&a_ticket(), 1234, now + chrono::Duration::minutes(15));
        let read = SignedUpload::from_query(signed.ticket.clone(), Some(&signed.query())).unwrap();
        assert_eq!(read, signed);
        assert_eq!(code(signer.verify(&read, now)), "OK");
        let late = signer.verify(&read, now + chrono::Duration::minutes(16)).unwrap_err();
        assert_eq!(late.code(), "FORBIDDEN");
        assert!(late.to_string().contains("expired"), "{late}");
    }

    #[test]
    fn an_altered_or_foreign_signature_is_refused() {
        let signer = UploadSigner::generate().unwrap();
        let now = Utc::now();
        let signed = signer.sign(&a_ticket(), 1234, now + chrono::Duration::minutes(15));
        let altered = |query: String| SignedUpload::from_query(signed.ticket.clone(), Some(&query)).unwrap();
        let bigger = altered(signed.query().replace("size=1234", "size=99999"));
        let later = altered(
            signed
                .query()
                .replace(&format!("expires={}", signed.expires), "expires=99999999999"),
        );
        let other_ticket = SignedUpload::from_query(a_ticket(), Some(&signed.query())).unwrap();
        for forged in [bigger, later, other_ticket] {
            let refused = signer.verify(&forged, now).unwrap_err();
            assert_eq!(refused.code(), "FORBIDDEN");
            assert!(refused.to_string().contains("not issued by this server"), "{refused}");
        }
        let another_server = UploadSigner::generate().unwrap();
        assert_eq!(code(another_server.verify(&signed, now)), "FORBIDDEN");
        let restarted = UploadSigner::from_key(signer.key()).unwrap();
        assert_eq!(
            code(restarted.verify(&signed, now)),
            "OK",
            "the same key after a restart"
        );
        assert!(UploadSigner::from_key(&[0; 16]).is_err());
        assert!(!format!("{signer:?}").contains(&hex::encode(signer.key())));
    }

    #[test]
    fn an_unsigned_or_malformed_query_is_refused() {
        let signature = "ab".repeat(32);
        for query in [
            None,
            Some(String::new()),
            Some("expires=1&size=2".to_owned()),
            Some(format!("expires=1&size=-2&signature={signature}")),
            Some(format!("expires=+1&size=2&signature={signature}")),
            Some(format!("expires=1&size=2&signature={}", "ab".repeat(31))),
            Some(format!("expires=1&size=2&signature={}", "zz".repeat(32))),
            Some(format!("expires=1&size=2&size=3&signature={signature}")),
        ] {
            let refused = SignedUpload::from_query(a_ticket(), query.as_deref()).unwrap_err();
            assert_eq!(refused.code(), "FORBIDDEN", "{query:?}");
        }
    }
}
