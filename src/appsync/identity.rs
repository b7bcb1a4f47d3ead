//! Who calls through AppSync, and what pawql lets them do: AppSync's `identity` mapped onto
//! pawql's roles ([`Role`]: reader, writer, admin), checked here in the Lambda as well as by
//! the schema's auth directives, so an AppSync API configured too openly still refuses writes.
//!
//! - **API key** (no identity): a reader. AppSync's API keys are shared by every client of an
//!   app; they say which app calls, not who, so they never write.
//! - **IAM** (`userArn`, `accountId`, and for Cognito identity pools `cognitoIdentity*`): an
//!   admin or a writer when its principal is named in [`AppSyncAccess`] (a role ARN matches
//!   the sessions of that role, `arn:aws:sts::…:assumed-role/NAME/…`), otherwise a reader.
//!   Unauthenticated identity-pool guests are readers whatever their role.
//! - **Cognito user pools** (`sub`, `username`, `groups`): an admin or a writer when one of its
//!   groups is named, otherwise a reader.
//! - **Anything else** (OIDC, a Lambda authorizer, a shape this version does not know): a
//!   reader. Nothing is allowed by default: an unset setting names nobody.

use aws_lambda_events::appsync::{AppSyncCognitoIdentity, AppSyncIamIdentity};
use resolvers::schema::{Caller, Role, WritePolicy};
use resolvers::ApiError;
use serde_json::Value;

/// Which IAM principals and user-pool groups are writers and admins.
#[derive(Debug, Clone, Default)]
pub struct AppSyncAccess {
    /// IAM role or user ARNs that are admins (writes and scan debug data).
    pub admin_arns: Vec<String>,
    /// IAM role or user ARNs that are writers.
    pub writer_arns: Vec<String>,
    /// Cognito user-pool groups whose members are admins.
    pub admin_groups: Vec<String>,
    /// Cognito user-pool groups whose members are writers.
    pub writer_groups: Vec<String>,
}

/// AppSync's caller, as far as pawql needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// No identity: the API-key mode.
    ApiKey,
    /// IAM: the principal's ARN, and whether it is an identity pool's unauthenticated guest.
    Iam { arn: Option<String>, guest: bool },
    /// Cognito user pools: the user and their groups.
    UserPool { sub: String, groups: Vec<String> },
    /// A mode pawql maps no roles from (OIDC, a Lambda authorizer, an unknown shape).
    Other(&'static str),
}

/// The identity in an event's `identity` (`null` or absent: the API key).
///
/// `aws_lambda_events`' `AppSyncIdentity` is an untagged enum that tries IAM first, and a
/// user-pool identity (it has `sourceIp` and `username` too) reads as an IAM one without an
/// ARN; so the mode is told from the fields only that mode has, then read with its own type.
pub fn identity_of(raw: Option<&Value>) -> Identity {
    let Some(object) = raw.and_then(Value::as_object) else {
        return Identity::ApiKey;
    };
    let has = |key: &str| object.contains_key(key);
    if has("resolverContext") {
        return Identity::Other("Lambda authorizer");
    }
    if has("userArn") || has("accountId") || has("cognitoIdentityPoolId") {
        let mut raw = raw.cloned().unwrap_or_default();
        raw.as_object_mut()
            .map(|o| o.entry("sourceIp").or_insert(Value::Array(Vec::new())));
        return match serde_json::from_value::<AppSyncIamIdentity>(raw) {
            Ok(iam) => Identity::Iam {
                guest: iam.cognito_identity_auth_type.as_deref() == Some("unauthenticated"),
                arn: iam.user_arn,
            },
            Err(_) => Identity::Other("malformed IAM identity"),
        };
    }
    if has("sub") && (has("username") || has("groups") || has("defaultAuthStrategy")) {
        let mut raw = raw.cloned().unwrap_or_default();
        raw.as_object_mut()
            .map(|o| o.entry("sourceIp").or_insert(Value::Array(Vec::new())));
        let groups_field = strings(object.get("groups"));
        return match serde_json::from_value::<AppSyncCognitoIdentity>(raw) {
            Ok(user) => {
                let mut groups = groups_field;
                for group in strings(user.claims.get("cognito:groups")) {
                    if !groups.contains(&group) {
                        groups.push(group);
                    }
                }
                Identity::UserPool {
                    sub: user.sub.unwrap_or_default(),
                    groups,
                }
            }
            Err(_) => Identity::Other("malformed user-pool identity"),
        };
    }
    if has("sub") && has("issuer") {
        return Identity::Other("OIDC");
    }
    Identity::Other("unknown identity")
}

/// A JSON list of strings (anything else: none).
fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

impl AppSyncAccess {
    /// What `identity` may do.
    pub fn role_of(&self, identity: &Identity) -> Role {
        let (admin, writer) = match identity {
            Identity::Iam {
                arn: Some(arn),
                guest: false,
            } => (
                self.admin_arns.iter().any(|p| same_principal(p, arn)),
                self.writer_arns.iter().any(|p| same_principal(p, arn)),
            ),
            Identity::UserPool { groups, .. } => (
                groups.iter().any(|g| self.admin_groups.contains(g)),
                groups.iter().any(|g| self.writer_groups.contains(g)),
            ),
            _ => (false, false),
        };
        match (admin, writer) {
            (true, _) => Role::Admin,
            (false, true) => Role::Client,
            _ => Role::Anonymous,
        }
    }

    /// The caller the schema's guards see. Writes always need the role: on AppSync nobody
    /// writes for want of a configured key.
    pub fn caller(&self, identity: &Identity) -> Caller {
        Caller {
            role: self.role_of(identity),
            writes: WritePolicy::KeyRequired,
        }
    }

    /// Why `identity` may not write: `UNAUTHENTICATED` for callers AppSync names nobody by,
    /// `FORBIDDEN` for principals this deployment does not name.
    pub fn write_refusal(identity: &Identity) -> ApiError {
        match identity {
            Identity::Iam { .. } | Identity::UserPool { .. } => ApiError::Forbidden(
                "this identity may not write: its IAM role must be in PAWQL_APPSYNC_WRITER_ARNS, or its user in a group of PAWQL_APPSYNC_WRITER_GROUPS".into(),
            ),
            _ => ApiError::Unauthenticated(
                "writes through AppSync need an IAM or Cognito user-pool identity this deployment names as a writer; an API key only reads".into(),
            ),
        }
    }
}

/// Whether the configured principal `configured` (a role or user ARN) is the caller `arn`:
/// the same ARN, or the role a session (`assumed-role/NAME/session`) was assumed from.
fn same_principal(configured: &str, arn: &str) -> bool {
    let configured = configured.trim();
    configured == arn || principal_key(configured).is_some_and(|key| Some(key) == principal_key(arn))
}

/// (partition, account, kind, name) of a role, assumed-role session or user ARN. A role's path
/// is not part of its sessions' ARNs, so it is dropped.
fn principal_key(arn: &str) -> Option<(&str, &str, &str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some(service), _, Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let mut path = resource.split('/');
    let kind = path.next()?;
    match (service, kind) {
        ("iam", "role") => Some((partition, account, "role", resource.rsplit('/').next()?)),
        ("sts", "assumed-role") => Some((partition, account, "role", path.next()?)),
        ("iam", "user") => Some((partition, account, "user", resource.rsplit('/').next()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn access() -> AppSyncAccess {
        AppSyncAccess {
            admin_arns: vec!["arn:aws:iam::111122223333:role/ops/pawql-admin".into()],
            writer_arns: vec!["arn:aws:iam::111122223333:user/uploader".into()],
            admin_groups: vec!["admins".into()],
            writer_groups: vec!["writers".into()],
        }
    }

    fn role(identity: Value) -> Role {
        access().role_of(&identity_of(Some(&identity)))
    }

    #[test]
    fn an_api_key_reads_only() {
        assert_eq!(identity_of(None), Identity::ApiKey);
        assert_eq!(access().role_of(&identity_of(Some(&Value::Null))), Role::Anonymous);
    }

    #[test]
    fn iam_sessions_of_a_named_role_are_admins() {
        let session = json!({
            "accountId": "111122223333",
            "userArn": "arn:aws:sts::111122223333:assumed-role/pawql-admin/ci",
            "sourceIp": ["203.0.113.1"],
            "username": "AROAEXAMPLE:ci",
        });
        assert_eq!(role(session), Role::Admin);
        let user = json!({ "accountId": "111122223333", "userArn": "arn:aws:iam::111122223333:user/uploader" });
        assert_eq!(role(user), Role::Client);
        let other_account = json!({ "userArn": "arn:aws:sts::999999999999:assumed-role/pawql-admin/x" });
        assert_eq!(role(other_account), Role::Anonymous);
        let guest = json!({
            "userArn": "arn:aws:sts::111122223333:assumed-role/pawql-admin/CognitoIdentityCredentials",
            "cognitoIdentityPoolId": "eu-west-1:pool",
            "cognitoIdentityAuthType": "unauthenticated",
        });
        assert_eq!(role(guest), Role::Anonymous, "guests never write, whatever their role");
    }

    #[test]
    fn user_pool_groups_make_writers_and_admins() {
        let user = |groups: Value| {
            json!({
                "sub": "b8a7-…",
                "username": "ada",
                "issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_pool",
                "sourceIp": ["203.0.113.1"],
                "defaultAuthStrategy": "ALLOW",
                "groups": groups,
                "claims": { "cognito:groups": ["readers"] },
            })
        };
        // Read as a user pool's, not as the IAM identity the untagged enum would make of it.
        assert!(matches!(
            identity_of(Some(&user(json!(null)))),
            Identity::UserPool { .. }
        ));
        assert_eq!(role(user(json!(["writers"]))), Role::Client);
        assert_eq!(role(user(json!(["writers", "admins"]))), Role::Admin);
        assert_eq!(role(user(json!(["readers"]))), Role::Anonymous);
    }

    #[test]
    fn other_modes_and_unknown_shapes_read_only() {
        assert_eq!(
            role(json!({ "sub": "x", "issuer": "https://oidc.example", "claims": {} })),
            Role::Anonymous
        );
        assert_eq!(role(json!({ "resolverContext": { "role": "admin" } })), Role::Anonymous);
        assert_eq!(role(json!({ "admin": true })), Role::Anonymous);
        assert_eq!(
            AppSyncAccess::default().role_of(&Identity::UserPool {
                sub: "x".into(),
                groups: vec!["".into()]
            }),
            Role::Anonymous
        );
    }
}
