//! Who may do what: API keys for writes, admin keys for debug data, optional private reads.
//!
//! Keys travel in the `x-api-key` header (as AppSync does), or for WebSocket subscriptions in
//! the `connection_init` payload (`{"x-api-key": "…"}`: browsers cannot set headers on a
//! WebSocket). Several keys can be active at once, so a key is rotated by adding the new one,
//! moving clients over, and removing the old one. A presented key is compared with every
//! configured key in constant time, so timing says nothing about how much of a guess matched.
//!
//! - Any key configured (API or admin): writes need one of them (`UNAUTHENTICATED` otherwise).
//! - No key of either kind: writes are open on the local server (start-up warns loudly), and
//!   closed on the Lambda ([`WritePolicy::ClosedUntilKeyConfigured`]): a public endpoint does
//!   not take anonymous writes because an operator forgot a parameter.
//! - A key that matches none (when keys are configured): `UNAUTHENTICATED`, whatever the request.
//! - Admin keys can do everything API keys can, plus `Scan.debug` (`FORBIDDEN` for others).
//! - Reads (random images, lookups, scans) are public unless `public_reads` is off.
//!
//! Keys from SSM are re-read while the process lives ([`LiveAccess`]), so a revoked key stops
//! working within the refresh interval instead of living as long as a warm Lambda. Keys are
//! trusted for that interval and no longer: while re-reads fail, requests that present a key
//! get `KEYS_UNAVAILABLE` (503) once it has passed, rather than a revoked key working on.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use resolvers::schema::{Caller, Role, WritePolicy};
use resolvers::ApiError;

use super::responses::HttpError;

/// The header carrying a key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Configured keys. Its `Debug` says how many, never which: keys end up in logs otherwise.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Keys(Vec<String>);

impl Keys {
    /// Keys as configured: trimmed, blanks dropped (an empty `PAWQL_API_KEYS=` means none).
    pub fn new(keys: impl IntoIterator<Item = String>) -> Keys {
        Keys(
            keys.into_iter()
                .map(|k| k.trim().to_owned())
                .filter(|k| !k.is_empty())
                .collect(),
        )
    }

    /// A comma-separated list (how SSM and the environment hold them).
    pub fn parse(list: &str) -> Keys {
        Keys::new(list.split(',').map(str::to_owned))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Both sets of keys.
    pub fn and(&self, other: &Keys) -> Keys {
        Keys([self.0.clone(), other.0.clone()].concat())
    }

    /// Whether `presented` is one of the keys. Every key is compared, whatever matched before:
    /// no early exit to time.
    fn matches(&self, presented: &[u8]) -> bool {
        self.0
            .iter()
            .fold(false, |hit, key| hit | same(key.as_bytes(), presented))
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys({} configured)", self.0.len())
    }
}

/// What writes do when no key of either kind is configured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WithoutKeys {
    /// Writes are open (the local server's default, petAPI's behaviour).
    #[default]
    OpenWrites,
    /// Writes are refused, and the refusal names what to set (the Lambda).
    ClosedWrites { set: Arc<str> },
}

/// The configured keys and read policy.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub api_keys: Keys,
    pub admin_keys: Keys,
    /// Queries without a key are served (the default).
    pub public_reads: bool,
    pub without_keys: WithoutKeys,
    /// The keys are older than they may be trusted (re-reads failing): a presented key is
    /// refused with [`Refused::KeysUnavailable`], whichever it is.
    pub keys_unavailable: bool,
}

impl Access {
    /// Keys as configured, open writes when there are none (the local default).
    pub fn new(api_keys: Vec<String>, admin_keys: Vec<String>, public_reads: bool) -> Access {
        Access {
            api_keys: Keys::new(api_keys),
            admin_keys: Keys::new(admin_keys),
            public_reads,
            without_keys: WithoutKeys::OpenWrites,
            keys_unavailable: false,
        }
    }

    /// Everything open: no keys, public reads (tests and tools that build a router directly).
    pub fn open() -> Access {
        Access::new(Vec::new(), Vec::new(), true)
    }

    /// The same access, refusing writes while no key is configured; `set` says what an
    /// operator should set (e.g. the SSM parameter's name).
    pub fn closed_without_keys(self, set: &str) -> Access {
        Access {
            without_keys: WithoutKeys::ClosedWrites { set: set.into() },
            ..self
        }
    }

    /// The same policy with these keys added.
    pub fn with_keys(&self, api_keys: &Keys, admin_keys: &Keys) -> Access {
        Access {
            api_keys: self.api_keys.and(api_keys),
            admin_keys: self.admin_keys.and(admin_keys),
            ..self.clone()
        }
    }

    fn has_keys(&self) -> bool {
        !self.api_keys.is_empty() || !self.admin_keys.is_empty()
    }

    /// What a caller without a key needs to write.
    pub fn write_policy(&self) -> WritePolicy {
        match &self.without_keys {
            _ if self.has_keys() => WritePolicy::KeyRequired,
            WithoutKeys::OpenWrites => WritePolicy::Open,
            WithoutKeys::ClosedWrites { set } => WritePolicy::ClosedUntilKeyConfigured(set.clone()),
        }
    }

    /// What a presented key (or none) makes the caller. `Err` for a key that matches nothing
    /// while keys are configured.
    pub fn role_of(&self, presented: Option<&[u8]>) -> Result<Role, Refused> {
        let Some(presented) = presented else {
            return Ok(Role::Anonymous);
        };
        if self.keys_unavailable {
            return Err(Refused::KeysUnavailable);
        }
        let admin = self.admin_keys.matches(presented);
        let client = self.api_keys.matches(presented);
        match (admin, client) {
            (true, _) => Ok(Role::Admin),
            (false, true) => Ok(Role::Client),
            _ if !self.has_keys() => Ok(Role::Anonymous),
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
    pub fn refuse_reader(&self, headers: &HeaderMap) -> Result<(), HttpError> {
        self.caller(headers).map(|_| ()).map_err(Refused::into)
    }

    /// For routes outside GraphQL: the 401 for a request that may not write, if it may not.
    pub fn refuse_writer(&self, headers: &HeaderMap) -> Result<(), HttpError> {
        match self.caller(headers)? {
            caller if caller.can_write() => Ok(()),
            caller => Err(ApiError::Unauthenticated(caller.write_refusal()).into()),
        }
    }

    fn admit(&self, role: Role) -> Result<Caller, Refused> {
        if role == Role::Anonymous && !self.public_reads {
            return Err(Refused::ReadsNeedKey);
        }
        Ok(Caller {
            role,
            writes: self.write_policy(),
        })
    }

    /// Says at start-up what is open, loudly where it matters.
    pub fn announce(&self) {
        match self.write_policy() {
            WritePolicy::Open => tracing::warn!(
                "NO KEYS CONFIGURED: anyone who can reach this server can upload, re-weight and delete (set PAWQL_API_KEYS)"
            ),
            WritePolicy::ClosedUntilKeyConfigured(set) => {
                tracing::warn!("no keys configured: writes are refused until an operator sets {set}")
            }
            WritePolicy::KeyRequired => tracing::info!(
                api_keys = self.api_keys.len(),
                admin_keys = self.admin_keys.len(),
                "writes need a key (x-api-key)"
            ),
        }
        if self.admin_keys.is_empty() {
            tracing::info!("no admin keys: scan debug data is shown to nobody");
        }
        if !self.public_reads {
            tracing::info!("reads need an API key too (PAWQL_PUBLIC_READS=false)");
        }
    }
}

/// Where keys that can change while the process runs come from (the stage's SSM parameters).
#[async_trait]
pub trait KeySource: Send + Sync {
    /// The current (API keys, admin keys).
    async fn keys(&self) -> anyhow::Result<(Keys, Keys)>;
}

/// How long keys from a [`KeySource`] are trusted: a revoked key works at most this long.
pub const DEFAULT_KEY_REFRESH: Duration = Duration::from_secs(60);

/// How long a request that finds the keys past their trust waits for the re-read under way
/// before it is answered without them: one SSM call's worth, not its retries.
const STALE_KEYS_WAIT: Duration = Duration::from_secs(2);

/// The access in force now: fixed keys (flags, environment) plus keys from a source that is
/// re-read while the process lives.
///
/// Keys read at time t are trusted until t + `every`. From t + `every`/2 a re-read runs in the
/// background: the request that notices starts it and goes on with the keys it has, so no
/// request waits on SSM and its retries. A warm Lambda gets no timer ticks between
/// invocations, so after a long idle spell the first request finds the keys past their trust:
/// it waits up to [`STALE_KEYS_WAIT`] for the re-read, and if that has not succeeded, a
/// presented key is refused with `KEYS_UNAVAILABLE` (reads that need no key still answer).
pub enum LiveAccess {
    /// Keys that never change (the local server, the embedded backend): no lock per request.
    Fixed(Arc<Access>),
    /// Keys re-read from a source while the process lives.
    Refreshed(Arc<Refresh>),
}

/// What a [`LiveAccess::Refreshed`] re-reads, and what it read last.
pub struct Refresh {
    fixed: Access,
    source: Arc<dyn KeySource>,
    every: Duration,
    last: RwLock<LastRead>,
    /// A background re-read is under way.
    reading: std::sync::atomic::AtomicBool,
    /// Woken when a re-read ends, whatever its outcome.
    read_ended: tokio::sync::Notify,
}

/// The last keys read successfully, and when.
struct LastRead {
    access: Arc<Access>,
    at: Instant,
}

impl LiveAccess {
    /// Access that never changes.
    pub fn fixed(access: Access) -> LiveAccess {
        LiveAccess::Fixed(Arc::new(access))
    }

    /// `fixed` plus `first` read from `source` just now; trusted for `every`.
    pub fn refreshed(fixed: Access, first: (Keys, Keys), source: Arc<dyn KeySource>, every: Duration) -> LiveAccess {
        LiveAccess::Refreshed(Arc::new(Refresh {
            last: RwLock::new(LastRead {
                access: Arc::new(fixed.with_keys(&first.0, &first.1)),
                at: Instant::now(),
            }),
            fixed,
            source,
            every,
            reading: Default::default(),
            read_ended: tokio::sync::Notify::new(),
        }))
    }

    /// The access in force: the last keys read while they are trusted, a re-read started in
    /// the background when they are half way there.
    pub async fn current(&self) -> Arc<Access> {
        let LiveAccess::Refreshed(refresh) = self else {
            return self.now();
        };
        let age = refresh.age();
        if age >= refresh.every / 2 {
            Refresh::start_reading(refresh);
        }
        if age < refresh.every {
            return self.now();
        }
        // Past their trust: give the re-read under way a moment, then answer without keys.
        let ended = refresh.read_ended.notified();
        if refresh.reading.load(std::sync::atomic::Ordering::Acquire) {
            let _ = tokio::time::timeout(STALE_KEYS_WAIT, ended).await;
        }
        if refresh.age() < refresh.every {
            return self.now();
        }
        let mut stale = (*self.now()).clone();
        stale.keys_unavailable = true;
        Arc::new(stale)
    }

    /// The last access read, without re-reading or judging its age (start-up messages).
    pub fn now(&self) -> Arc<Access> {
        match self {
            LiveAccess::Fixed(access) => access.clone(),
            LiveAccess::Refreshed(refresh) => refresh.last.read().unwrap_or_else(|e| e.into_inner()).access.clone(),
        }
    }
}

impl Refresh {
    /// How long ago the keys in force were read.
    fn age(&self) -> Duration {
        self.last.read().unwrap_or_else(|e| e.into_inner()).at.elapsed()
    }

    /// Starts a re-read on the runtime unless one is under way. A failure keeps the last keys
    /// (and their age: they are no more trusted for it) and is tried again by the next request.
    fn start_reading(refresh: &Arc<Refresh>) {
        use std::sync::atomic::Ordering;
        if refresh.reading.swap(true, Ordering::AcqRel) {
            return;
        }
        let refresh = refresh.clone();
        tokio::spawn(async move {
            match refresh.source.keys().await {
                Ok((api, admin)) => {
                    let access = Arc::new(refresh.fixed.with_keys(&api, &admin));
                    *refresh.last.write().unwrap_or_else(|e| e.into_inner()) = LastRead {
                        access,
                        at: Instant::now(),
                    };
                }
                Err(e) => tracing::warn!(
                    age_s = refresh.age().as_secs(),
                    "re-reading keys failed; keys are refused once older than {:?}: {e:#}",
                    refresh.every
                ),
            }
            refresh.reading.store(false, Ordering::Release);
            refresh.read_ended.notify_waiters();
        });
    }
}

/// Why a request is not served at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    UnknownKey,
    ReadsNeedKey,
    /// Keys could not be re-read for longer than they are trusted.
    KeysUnavailable,
}

impl Refused {
    pub fn message(self) -> &'static str {
        match self {
            Refused::UnknownKey => "the x-api-key presented is not a valid key",
            Refused::ReadsNeedKey => "this server needs an API key (header x-api-key) for every request",
            Refused::KeysUnavailable => {
                "keys cannot be checked right now (their store is not answering); retry shortly"
            }
        }
    }

    /// A GraphQL-shaped 401.
    pub fn response(self) -> Response {
        HttpError::from(self).into_response()
    }
}

impl From<Refused> for HttpError {
    fn from(refused: Refused) -> HttpError {
        match refused {
            Refused::KeysUnavailable => ApiError::KeysUnavailable(refused.message().to_owned()).into(),
            _ => ApiError::Unauthenticated(refused.message().to_owned()).into(),
        }
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
        assert_eq!(a.write_policy(), WritePolicy::KeyRequired);
        assert_eq!(
            format!("{a:?}").matches("key-").count(),
            0,
            "Debug never prints a key: {a:?}"
        );
    }

    #[test]
    fn any_configured_key_closes_writes_to_callers_without_one() {
        let none = Access::open();
        let api_only = Access::new(vec!["k".into()], vec![], true);
        let admin_only = Access::new(vec![], vec!["a".into()], true);
        let both = Access::new(vec!["k".into()], vec!["a".into()], true);
        assert_eq!(none.write_policy(), WritePolicy::Open);
        for keyed in [&api_only, &admin_only, &both] {
            assert_eq!(keyed.write_policy(), WritePolicy::KeyRequired, "{keyed:?}");
            let anonymous = keyed.caller(&HeaderMap::new()).unwrap();
            assert!(!anonymous.can_write(), "{keyed:?}");
        }
        let lambda = Access::open().closed_without_keys("/pawql/prod/apiKeys");
        let anonymous = lambda.caller(&HeaderMap::new()).unwrap();
        assert!(!anonymous.can_write());
        assert!(anonymous.write_refusal().contains("/pawql/prod/apiKeys"));
        assert_eq!(
            lambda.with_keys(&Keys::parse("k"), &Keys::default()).write_policy(),
            WritePolicy::KeyRequired
        );
    }

    #[test]
    fn without_keys_writes_are_open_and_private_reads_need_one() {
        let open = Access::open();
        assert_eq!(open.write_policy(), WritePolicy::Open);
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
