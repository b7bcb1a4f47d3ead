//! `schema.appsync.graphql`: the schema as AWS AppSync loads it, made from the code's own SDL
//! ([`super::export_sdl`]), so the two cannot drift apart (`tests/api/schema.rs` holds the
//! committed file to the code, as it does `schema.graphql`). What changes, and why:
//!
//! - **Scalars.** AppSync has no custom scalars: `DateTime` becomes `AWSDateTime` (the same
//!   RFC 3339 text), `JSON` becomes `AWSJSON` (AppSync hands it to clients as a JSON string),
//!   and a `String` field named `url` or `…Url` becomes `AWSURL`. A custom scalar with no
//!   counterpart here fails the generation, naming it.
//! - **No `Upload`.** A field that needs one (`upload`) is left out, and an optional one is
//!   left off its field (`requestScan(image:)`): on AppSync, files go through `requestUpload`,
//!   a PUT to its URL, then `completeUpload`.
//! - **Auth directives** ([`Mode`]). Every object type and query is open to each of AppSync's
//!   modes used here (API key, IAM, Cognito user pools). Writes are for IAM and user-pool
//!   principals only: an API key names nobody, so the Lambda could never map it to a writer.
//!   `Scan.debug` likewise (admins only). `publishScanUpdate` is IAM-only (the scan handler).
//!   The Lambda checks roles again (`src/appsync/identity.rs`): the directives turn callers
//!   away before they cost an invocation, the Lambda keeps a misconfigured API closed.
//! - **Subscriptions.** The code's own (`scanUpdated`, `scansUpdated`) are streams the server
//!   holds open; AppSync's Lambda resolvers cannot run them. AppSync's is `onScanUpdated(id)`,
//!   pushed by AppSync whenever the scan handler calls `publishScanUpdate` (resolved by a NONE
//!   data source: AppSync hands the input back). Its payload, `ScanUpdate`, is `Scan` without
//!   the fields that take arguments or need an admin, bounded by [`scan_update`].
//! - **No directive definitions.** AppSync defines `@include`, `@skip` and `@deprecated`
//!   itself, and knows no `@oneOf` or `@specifiedBy`: all are left out, and so is `@oneOf` on
//!   input types (the Lambda still enforces it: requests run on the code's schema).

mod print;
pub mod scan_update;

use std::collections::BTreeMap;

use async_graphql::parser::types::{
    BaseType, ConstDirective, FieldDefinition, InputObjectType, InputValueDefinition, ObjectType, Type, TypeDefinition,
    TypeKind, TypeSystemDefinition,
};
use async_graphql::parser::Positioned;
use async_graphql::{Name, Value};

/// One of AppSync's authorization modes, as its directives name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `API_KEY`: AppSync's own keys; the Lambda sees no identity, so a reader.
    ApiKey,
    /// `AWS_IAM`: SigV4-signed callers (roles, users, Cognito identity pools).
    Iam,
    /// `AMAZON_COGNITO_USER_POOLS`: signed-in users, with their groups.
    UserPools,
}

impl Mode {
    fn directive(self) -> &'static str {
        match self {
            Mode::ApiKey => "aws_api_key",
            Mode::Iam => "aws_iam",
            Mode::UserPools => "aws_cognito_user_pools",
        }
    }
}

/// Who may read: every mode.
pub const EVERYONE: &[Mode] = &[Mode::ApiKey, Mode::Iam, Mode::UserPools];
/// Callers the Lambda can map to a writer or an admin: named principals.
pub const PRINCIPALS: &[Mode] = &[Mode::Iam, Mode::UserPools];
/// The scan handler's publish: IAM (its role) only.
pub const PUBLISHER: &[Mode] = &[Mode::Iam];

/// Fields whose modes are not their type's: `Scan.debug` needs an admin, never an API key.
const FIELD_MODES: &[(&str, &str, &[Mode])] = &[("Scan", "debug", PRINCIPALS)];

/// The code's scalars and AppSync's counterparts.
const AWS_SCALARS: &[(&str, &str)] = &[("DateTime", "AWSDateTime"), ("JSON", "AWSJSON")];
/// The multipart upload scalar: AppSync has no way to carry it.
const UPLOAD: &str = "Upload";
/// What a `String` URL field becomes.
const AWS_URL: &str = "AWSURL";
/// GraphQL's own scalars, which AppSync has too.
const BUILT_IN_SCALARS: &[&str] = &["String", "Int", "Float", "Boolean", "ID"];

/// The subscription, its payload and the mutation it follows.
const SUBSCRIPTION_FIELD: &str = "onScanUpdated";
/// The IAM-only mutation the scan handler calls; [`SUBSCRIPTION_FIELD`] follows it.
pub const PUBLISH_MUTATION: &str = "publishScanUpdate";
const PAYLOAD: &str = "ScanUpdate";
const PAYLOAD_INPUT: &str = "ScanUpdateInput";

/// `schema.appsync.graphql` for the code as built.
pub fn export_appsync_sdl() -> String {
    appsync_sdl(&super::export_sdl()).expect("the code's SDL converts to AppSync's (see the unit tests)")
}

/// The AppSync schema for `sdl` (async-graphql's SDL of the schema), as the module header says.
pub fn appsync_sdl(sdl: &str) -> anyhow::Result<String> {
    let document = async_graphql::parser::parse_schema(sdl)?;
    let mut types = BTreeMap::new();
    let mut roots = vec![("query", "Query".to_owned())];
    for definition in document.definitions {
        match definition {
            TypeSystemDefinition::Type(ty) => {
                types.insert(ty.node.name.node.to_string(), ty.node);
            }
            TypeSystemDefinition::Schema(schema) => {
                let schema = schema.node;
                roots = [
                    ("query", schema.query),
                    ("mutation", schema.mutation),
                    ("subscription", schema.subscription),
                ]
                .into_iter()
                .filter_map(|(operation, name)| name.map(|n| (operation, n.node.to_string())))
                .collect();
            }
            // See the module header.
            TypeSystemDefinition::Directive(_) => {}
        }
    }
    anyhow::ensure!(
        roots
            .iter()
            .map(|(_, name)| name.as_str())
            .eq(["Query", "Mutation", "Subscription"]),
        "the root types are {roots:?}, not Query, Mutation and Subscription"
    );
    check_scalars(&types)?;
    types.retain(|_, ty| !matches!(ty.kind, TypeKind::Scalar));
    for ty in types.values_mut() {
        convert(ty);
    }
    add_scan_updates(&mut types)?;
    let roots: Vec<(&str, &str)> = roots.iter().map(|(op, name)| (*op, name.as_str())).collect();
    print::document(&types.into_values().collect::<Vec<_>>(), &roots)
}

/// Every custom scalar has an AppSync counterpart, or is `Upload` (left out).
fn check_scalars(types: &BTreeMap<String, TypeDefinition>) -> anyhow::Result<()> {
    for (name, ty) in types {
        let known = BUILT_IN_SCALARS.contains(&name.as_str())
            || name == UPLOAD
            || AWS_SCALARS.iter().any(|(ours, _)| ours == name);
        anyhow::ensure!(
            !matches!(ty.kind, TypeKind::Scalar) || known,
            "scalar {name} has no AppSync counterpart: add it to AWS_SCALARS in appsync_sdl.rs"
        );
    }
    Ok(())
}

/// One type as AppSync takes it: scalars renamed, `Upload` left out, auth directives on.
fn convert(ty: &mut TypeDefinition) {
    let type_name = ty.name.node.to_string();
    // Only `@deprecated` is a directive AppSync knows on a definition.
    ty.directives.retain(|d| d.node.name.node == "deprecated");
    match &mut ty.kind {
        TypeKind::Object(object) => {
            object.fields.retain(|field| !needs_upload(&field.node));
            for field in &mut object.fields {
                let field = &mut field.node;
                field
                    .arguments
                    .retain(|argument| named(&argument.node.ty.node) != UPLOAD);
                for argument in &mut field.arguments {
                    rename_scalars(&mut argument.node.ty.node);
                }
                rename_scalars(&mut field.ty.node);
                if is_url_field(field) {
                    set_named(&mut field.ty.node, AWS_URL);
                }
                let modes = match type_name.as_str() {
                    "Query" => Some(EVERYONE),
                    "Mutation" => Some(PRINCIPALS),
                    _ => FIELD_MODES
                        .iter()
                        .find(|(ty, name, _)| *ty == type_name && field.name.node == *name)
                        .map(|(_, _, modes)| *modes),
                };
                if let Some(modes) = modes {
                    field.directives.extend(auth(modes));
                }
            }
            if !matches!(type_name.as_str(), "Query" | "Mutation" | "Subscription") {
                ty.directives.extend(auth(EVERYONE));
            }
        }
        TypeKind::InputObject(input) => {
            input.fields.retain(|field| named(&field.node.ty.node) != UPLOAD);
            for field in &mut input.fields {
                rename_scalars(&mut field.node.ty.node);
            }
        }
        _ => {}
    }
}

/// A field that cannot be called without an upload (a non-null `Upload` argument).
fn needs_upload(field: &FieldDefinition) -> bool {
    named(&field.ty.node) == UPLOAD
        || field
            .arguments
            .iter()
            .any(|a| named(&a.node.ty.node) == UPLOAD && !a.node.ty.node.nullable)
}

/// A `String` field that holds a URL: named `url`, or ending in `Url`.
fn is_url_field(field: &FieldDefinition) -> bool {
    let name = field.name.node.as_str();
    (name == "url" || name.ends_with("Url")) && named(&field.ty.node) == "String"
}

/// The named type under any list and non-null wrappers.
fn named(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(inner) => named(inner),
    }
}

fn set_named(ty: &mut Type, to: &str) {
    match &mut ty.base {
        BaseType::Named(name) => *name = Name::new(to),
        BaseType::List(inner) => set_named(inner, to),
    }
}

fn rename_scalars(ty: &mut Type) {
    if let Some((_, aws)) = AWS_SCALARS.iter().find(|(ours, _)| *ours == named(ty)) {
        set_named(ty, aws);
    }
}

/// The directives of `modes`, one each.
fn auth(modes: &[Mode]) -> impl Iterator<Item = Positioned<ConstDirective>> + '_ {
    modes.iter().map(|mode| directive(mode.directive(), Vec::new()))
}

fn directive(name: &str, arguments: Vec<(&str, Value)>) -> Positioned<ConstDirective> {
    let arguments = arguments
        .into_iter()
        .map(|(name, value)| (positioned(Name::new(name)), positioned(value)))
        .collect();
    positioned(ConstDirective {
        name: positioned(Name::new(name)),
        arguments,
    })
}

fn positioned<T>(node: T) -> Positioned<T> {
    Positioned::new(node, Default::default())
}

fn object_fields<'a>(types: &'a BTreeMap<String, TypeDefinition>, name: &str) -> anyhow::Result<&'a ObjectType> {
    match types.get(name).map(|ty| &ty.kind) {
        Some(TypeKind::Object(object)) => Ok(object),
        _ => anyhow::bail!("the schema has no object type {name}"),
    }
}

/// `ScanUpdate` (from `Scan`), its input types, `Mutation.publishScanUpdate`, and the
/// `Subscription` type AppSync serves in place of the code's.
fn add_scan_updates(types: &mut BTreeMap<String, TypeDefinition>) -> anyhow::Result<()> {
    let fields: Vec<Positioned<FieldDefinition>> = object_fields(types, "Scan")?
        .fields
        .iter()
        .filter(|field| {
            field.node.arguments.is_empty() && !FIELD_MODES.iter().any(|(_, name, _)| field.node.name.node == *name)
        })
        .map(|field| {
            let mut field = field.clone();
            field.node.directives.clear();
            field
        })
        .collect();
    let input_fields = input_fields_of(types, &fields)?;
    let (limits, bound) = (scan_update::LIMITS, scan_update::MAX_PAYLOAD_BYTES);
    types.insert(
        PAYLOAD.to_owned(),
        definition(
            PAYLOAD,
            &format!(
                "A scan as `{SUBSCRIPTION_FIELD}` pushes it: the fields of `Scan` that need no read and no admin\n(no `debug`). The scan handler publishes one at each status change. At most {} labels,\nand {} characters a text, so a payload stays under {bound} bytes, far inside AppSync's\n240 KB subscription limit.",
                limits.labels, limits.text_chars
            ),
            auth(EVERYONE).collect(),
            TypeKind::Object(ObjectType {
                implements: Vec::new(),
                fields,
            }),
        ),
    );
    types.insert(
        PAYLOAD_INPUT.to_owned(),
        definition(
            PAYLOAD_INPUT,
            &format!("What the scan handler publishes: a `{PAYLOAD}`'s fields."),
            Vec::new(),
            TypeKind::InputObject(InputObjectType { fields: input_fields }),
        ),
    );
    let label_fields = object_fields(types, "ScanLabel")?.fields.clone();
    let label_inputs = input_fields_of(types, &label_fields)?;
    types.insert(
        "ScanLabelInput".to_owned(),
        definition(
            "ScanLabelInput",
            "A `ScanLabel` as the scan handler publishes it.",
            Vec::new(),
            TypeKind::InputObject(InputObjectType { fields: label_inputs }),
        ),
    );
    let Some(TypeKind::Object(mutation)) = types.get_mut("Mutation").map(|ty| &mut ty.kind) else {
        anyhow::bail!("the schema has no Mutation type");
    };
    mutation.fields.push(field(
        PUBLISH_MUTATION,
        &format!("Publishes a scan's new state to its `{SUBSCRIPTION_FIELD}` subscribers: IAM only (the scan\nhandler's role). AppSync answers it itself (a NONE data source) and stores nothing."),
        vec![argument("update", &format!("{PAYLOAD_INPUT}!"))?],
        PAYLOAD,
        auth(PUBLISHER).collect(),
    )?);
    let mut subscribe = vec![directive(
        "aws_subscribe",
        vec![(
            "mutations",
            Value::List(vec![Value::String(PUBLISH_MUTATION.to_owned())]),
        )],
    )];
    subscribe.extend(auth(EVERYONE));
    let subscription = ObjectType {
        implements: Vec::new(),
        fields: vec![field(
            SUBSCRIPTION_FIELD,
            "The scan's updates as the scan handler publishes them: each status change, ending with\nits final one. AppSync pushes them, so nothing polls. Updates published before the\nsubscription started are not replayed: read `scanResult` once subscribed.",
            vec![argument("id", "ID!")?],
            PAYLOAD,
            subscribe,
        )?],
    };
    let Some(existing) = types.get_mut("Subscription") else {
        anyhow::bail!("the schema has no Subscription type");
    };
    existing.kind = TypeKind::Object(subscription);
    Ok(())
}

/// Input fields for `fields`: the same names and types, an object type `T` as the input `TInput`.
fn input_fields_of(
    types: &BTreeMap<String, TypeDefinition>,
    fields: &[Positioned<FieldDefinition>],
) -> anyhow::Result<Vec<Positioned<InputValueDefinition>>> {
    fields
        .iter()
        .map(|field| {
            let mut ty = field.node.ty.node.clone();
            let inner = named(&ty).to_owned();
            if matches!(types.get(&inner).map(|t| &t.kind), Some(TypeKind::Object(_))) {
                set_named(&mut ty, &format!("{inner}Input"));
            }
            Ok(positioned(InputValueDefinition {
                description: None,
                name: field.node.name.clone(),
                ty: positioned(ty),
                default_value: None,
                directives: Vec::new(),
            }))
        })
        .collect()
}

fn definition(
    name: &str,
    description: &str,
    directives: Vec<Positioned<ConstDirective>>,
    kind: TypeKind,
) -> TypeDefinition {
    TypeDefinition {
        extend: false,
        description: Some(positioned(description.to_owned())),
        name: positioned(Name::new(name)),
        directives,
        kind,
    }
}

fn field(
    name: &str,
    description: &str,
    arguments: Vec<Positioned<InputValueDefinition>>,
    ty: &str,
    directives: Vec<Positioned<ConstDirective>>,
) -> anyhow::Result<Positioned<FieldDefinition>> {
    Ok(positioned(FieldDefinition {
        description: Some(positioned(description.to_owned())),
        name: positioned(Name::new(name)),
        arguments,
        ty: positioned(Type::new(ty).ok_or_else(|| anyhow::anyhow!("type {ty}"))?),
        directives,
    }))
}

fn argument(name: &str, ty: &str) -> anyhow::Result<Positioned<InputValueDefinition>> {
    Ok(positioned(InputValueDefinition {
        description: None,
        name: positioned(Name::new(name)),
        ty: positioned(Type::new(ty).ok_or_else(|| anyhow::anyhow!("type {ty}"))?),
        default_value: None,
        directives: Vec::new(),
    }))
}

#[cfg(test)]
mod tests;
