//! Who may do what: API keys for writes, admin keys for debug data, optional private reads.
//!
//! Keys travel in the `x-api-key` header (as AppSync does), or for WebSocket subscriptions in
//! the `connection_init` payload (`{"x-api-key": "…"}`: browsers cannot set headers on a
//! WebSocket). Several keys can be active at once, so a key is rotated by adding the new one,
//! moving clients over, and removing the old one. A presented key is compared with every
//! configured key in constant time, so timing says nothing about how much of a guess matched.
//!
//! - No API keys configured: writes are open (the local default; start-up warns loudly).
//! - A key that matches none (when keys are configured): `UNAUTHENTICATED`, whatever the request.
//! - Admin keys can do everything API keys can, plus `Scan.debug` (`FORBIDDEN` for others).
//! - Reads (random images, lookups, scans) are public unless `public_reads` is off.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use resolvers::schema::{Caller, Role};

use super::responses::error_response;

/// The header carrying a key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The configured keys and read policy.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub api_keys: Vec<String>,
    pub admin_keys: Vec<String>,
    /// Queries without a key are served (the default).
    pub public_reads: bool,
}

impl Access {
    /// Keys as configured: blanks dropped (an empty `PAWQL_API_KEYS=` means none).
    pub fn new(api_keys: Vec<String>, admin_keys: Vec<String>, public_reads: bool) -> Access {
        let clean = |keys: Vec<String>| -> Vec<String> {
            keys.into_iter()
                .map(|k| k.trim().to_owned())
                .filter(|k| !k.is_empty())
                .collect()
        };
        Access {
            api_keys: clean(api_keys),
            admin_keys: clean(admin_keys),
            public_reads,
        }
    }

    /// Everything open: no keys, public reads (tests and tools that build a router directly).
    pub fn open() -> Access {
        Access::new(Vec::new(), Vec::new(), true)
    }

    /// Writes need no key: no API key is configured.
    pub fn writes_open(&self) -> bool {
        self.api_keys.is_empty()
    }

    /// What a presented key (or none) makes the caller. `Err` for a key that matches nothing
    /// while keys are configured.
    pub fn role_of(&self, presented: Option<&[u8]>) -> Result<Role, Refused> {
        let Some(presented) = presented else {
            return Ok(Role::Anonymous);
        };
        // Every key is compared, whatever matched before: no early exit to time.
        let admin = self
            .admin_keys
            .iter()
            .fold(false, |hit, key| hit | same(key.as_bytes(), presented));
        let client = self
            .api_keys
            .iter()
            .fold(false, |hit, key| hit | same(key.as_bytes(), presented));
        match (admin, client) {
            (true, _) => Ok(Role::Admin),
            (false, true) => Ok(Role::Client),
            _ if self.api_keys.is_empty() && self.admin_keys.is_empty() => Ok(Role::Anonymous),
            _ => Err(Refused::UnknownKey),
        }
    }

    /// The caller of an HTTP request, or the refusal to answer it.
    pub fn caller(&self, headers: &HeaderMap) -> Result<Caller, Refused> {
        let role = self.role_of(headers.get(API_KEY_HEADER).map(|v| v.as_bytes()))?;
        self.admit(role)
    }

    /// The caller of a WebSocket connection, from its `connection_init` payload.
    pub fn caller_of_payload(&self, payload: &serde_json::Value) -> Result<Caller, Refused> {
        let presented = payload.get(API_KEY_HEADER).and_then(|v| v.as_str()).map(str::as_bytes);
        self.admit(self.role_of(presented)?)
    }

    /// For routes outside GraphQL: the 401 for a request that may not read, if it may not.
    pub fn refuse_reader(&self, headers: &HeaderMap) -> Option<Response> {
        self.caller(headers).err().map(Refused::response)
    }

    /// For routes outside GraphQL: the 401 for a request that may not write, if it may not.
    pub fn refuse_writer(&self, headers: &HeaderMap) -> Option<Response> {
        match self.caller(headers) {
            Err(refused) => Some(refused.response()),
            Ok(caller) if caller.can_write() => None,
            Ok(_) => Some(error_response(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "uploading needs an API key (header x-api-key)",
            )),
        }
    }

    fn admit(&self, role: Role) -> Result<Caller, Refused> {
        if role == Role::Anonymous && !self.public_reads {
            return Err(Refused::ReadsNeedKey);
        }
        Ok(Caller {
            role,
            writes_open: self.writes_open(),
        })
    }

    /// Says at start-up what is open, loudly where it matters.
    pub fn announce(&self) {
        if self.writes_open() {
            tracing::warn!("NO API KEYS CONFIGURED: anyone who can reach this server can upload, re-weight and delete (set PAWQL_API_KEYS)");
        } else {
            tracing::info!(api_keys = self.api_keys.len(), "writes need an API key (x-api-key)");
        }
        if self.admin_keys.is_empty() {
            tracing::info!("no admin keys: scan debug data is shown to nobody");
        }
        if !self.public_reads {
            tracing::info!("reads need an API key too (PAWQL_PUBLIC_READS=false)");
        }
    }
}

/// Why a request is not served at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    UnknownKey,
    ReadsNeedKey,
}

impl Refused {
    pub fn message(self) -> &'static str {
        match self {
            Refused::UnknownKey => "the x-api-key presented is not a valid key",
            Refused::ReadsNeedKey => "this server needs an API key (header x-api-key) for every request",
        }
    }

    /// A GraphQL-shaped 401.
    pub fn response(self) -> Response {
        error_response(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", self.message())
    }
}

/// Equal bytes, compared in time that depends only on the lengths.
fn same(key: &[u8], presented: &[u8]) -> bool {
    let mut diff = key.len() ^ presented.len();
    for (i, &b) in presented.iter().enumerate() {
        diff |= usize::from(key.get(i).copied().unwrap_or(0) ^ b);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> Access {
        Access::new(
            vec!["client-key-1".into(), " client-key-2 ".into(), "".into()],
            vec!["admin-key-1".into()],
            true,
        )
    }

    #[test]
    fn keys_give_roles_and_unknown_keys_are_refused() {
        let a = access();
        assert_eq!(a.role_of(None), Ok(Role::Anonymous));
        assert_eq!(a.role_of(Some(b"client-key-1")), Ok(Role::Client));
        assert_eq!(
            a.role_of(Some(b"client-key-2")),
            Ok(Role::Client),
            "trimmed; two keys live at once"
        );
        assert_eq!(a.role_of(Some(b"admin-key-1")), Ok(Role::Admin));
        for wrong in [&b"client-key-"[..], b"client-key-10", b"", b"admin-key-1\0"] {
            assert_eq!(a.role_of(Some(wrong)), Err(Refused::UnknownKey), "{wrong:?}");
        }
        assert!(!a.writes_open());
    }

    #[test]
    fn without_keys_writes_are_open_and_private_reads_need_one() {
        let open = Access::open();
        assert!(open.writes_open());
        assert_eq!(open.role_of(Some(b"anything")), Ok(Role::Anonymous));
        let private = Access::new(vec!["k".into()], vec![], false);
        assert_eq!(private.caller(&HeaderMap::new()).unwrap_err(), Refused::ReadsNeedKey);
        let mut headers = HeaderMap::new();
        headers.insert(API_KEY_HEADER, "k".parse().unwrap());
        assert_eq!(private.caller(&headers).unwrap().role, Role::Client);
        let payload = serde_json::json!({ "x-api-key": "k" });
        assert_eq!(private.caller_of_payload(&payload).unwrap().role, Role::Client);
    }

    #[test]
    fn comparison_is_exact() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
        assert!(!same(b"ab", b"abc"));
        assert!(!same(b"", b"a"));
        assert!(same(b"", b""));
    }
}
