//! An AppSync event as an operation on the schema: `info.parentTypeName`, `info.fieldName`,
//! `arguments` and `info.selectionSetGraphQL` make a GraphQL operation run on the same schema
//! and resolvers as `/graphql`, so both doors answer alike.
//!
//! - **A root field** (`Query.x`, `Mutation.x`) is that field, its arguments passed as
//!   variables typed from the schema (AppSync has resolved the client's variables into them),
//!   its selection rewritten for AppSync ([`super::selection`]).
//! - **`Image.scan`** is the scan whose id is the image's content hash (`Image.scan` is "the
//!   scan of these bytes", `Query.scanResult(id)` "the scan with this id": the same record,
//!   through the same `Scan` resolvers). A batch of them is one operation of aliased
//!   `scanResults(ids:)` fields, 100 ids each (`MAX_SCAN_RESULTS`, DynamoDB's `BatchGetItem`
//!   limit too): one batched read per 100 parents, and no read of the images themselves.
//! - **Another field of an image** is resolved on the image `image(id: source.id)` finds:
//!   the same resolver, one lookup per parent.

use aws_lambda_events::appsync::AppSyncDirectResolverEvent;
use resolvers::domain::image::Sha256Hex;
use resolvers::schema::MAX_SCAN_RESULTS;
use resolvers::ApiError;
use serde_json::{Map, Value};

use super::identity::{identity_of, Identity};
use super::selection::{rewrite, Variables};
use super::types::{named, SchemaTypes};

/// One resolver call, as AppSync sent it.
#[derive(Debug, Clone)]
pub struct Call {
    pub parent: String,
    pub field: String,
    pub arguments: Map<String, Value>,
    /// The parent's value, for a field of a type.
    pub source: Option<Value>,
    pub selection: String,
    /// The client's variables, which the selection may use.
    pub variables: Map<String, Value>,
    pub identity: Identity,
}

impl Call {
    /// Whether AppSync batches this field into one call here (a batch of `Image.scan`).
    pub fn is_image_scan(&self) -> bool {
        self.parent == "Image" && self.field == "scan"
    }
}

/// Reads one event of AppSync's direct Lambda resolver payload.
pub fn call_of(mut raw: Value) -> Result<Call, ApiError> {
    let Some(object) = raw.as_object_mut() else {
        return Err(ApiError::BadUserInput("an AppSync event is a JSON object".into()));
    };
    // Read apart (see `identity_of`), and parsed by its own rules.
    let identity = identity_of(object.remove("identity").as_ref());
    object.entry("stash").or_insert_with(|| Value::Object(Map::new()));
    object
        .entry("request")
        .or_insert_with(|| serde_json::json!({ "headers": {} }));
    let event: AppSyncDirectResolverEvent = serde_json::from_value(raw)
        .map_err(|e| ApiError::BadUserInput(format!("not an AppSync direct Lambda resolver event: {e}")))?;
    let object = |value: Option<Value>| match value {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    Ok(Call {
        parent: event.info.parent_type_name,
        field: event.info.field_name,
        arguments: object(event.arguments),
        source: event.source.filter(|s| !s.is_null()),
        selection: event.info.selection_set_graphql,
        variables: object(Some(event.info.variables)),
        identity,
    })
}

/// A GraphQL operation to run, and its variables' values.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub text: String,
    pub variables: Map<String, Value>,
}

/// Where one call's answer is in the operation's data.
pub type Path = Vec<PathKey>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathKey {
    Field(String),
    Index(usize),
}

/// A root field's operation and where its answer is.
pub fn root(types: &SchemaTypes, call: &Call) -> Result<(Operation, Path), ApiError> {
    let kind = match call.parent.as_str() {
        "Query" => "query",
        "Mutation" => "mutation",
        other => return Err(ApiError::BadUserInput(format!("{other} is not a root type here"))),
    };
    let mut declared = Variables::new();
    let mut values = Map::new();
    let arguments = arguments(types, call, "pawqlArgument", &mut declared, &mut values)?;
    let field_type = types.field(&call.parent, &call.field).expect("checked by `arguments`");
    let selection = rewrite(types, named(&field_type.ty), &call.selection, &mut declared)?;
    client_values(call, &declared, &mut values);
    let text = format!(
        "{kind}{} {{ {}{arguments}{} }}",
        declarations(&declared),
        call.field,
        spaced(&selection)
    );
    Ok((
        Operation {
            text,
            variables: values,
        },
        vec![PathKey::Field(call.field.clone())],
    ))
}

/// A field of an image other than `scan`: resolved on `image(id: source.id)`.
pub fn on_parent_image(types: &SchemaTypes, call: &Call) -> Result<(Operation, Path), ApiError> {
    if call.parent != "Image" {
        return Err(ApiError::BadUserInput(format!(
            "{}.{} has no resolver behind this Lambda",
            call.parent, call.field
        )));
    }
    let id = call
        .source
        .as_ref()
        .and_then(|s| s.get("id"))
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::BadUserInput(format!("Image.{} needs its parent's id in `source`", call.field)))?;
    let mut declared = Variables::new();
    let mut values = Map::new();
    let arguments = arguments(types, call, "pawqlArgument", &mut declared, &mut values)?;
    let field_type = types.field(&call.parent, &call.field).expect("checked by `arguments`");
    let selection = rewrite(types, named(&field_type.ty), &call.selection, &mut declared)?;
    client_values(call, &declared, &mut values);
    declared.insert(
        "pawqlParent".into(),
        async_graphql::parser::types::Type::new("ID!").expect("a type"),
    );
    values.insert("pawqlParent".into(), Value::String(id.to_owned()));
    let text = format!(
        "query{} {{ pawqlParent: image(id: $pawqlParent) {{ {}{arguments}{} }} }}",
        declarations(&declared),
        call.field,
        spaced(&selection)
    );
    let path = vec![PathKey::Field("pawqlParent".into()), PathKey::Field(call.field.clone())];
    Ok((
        Operation {
            text,
            variables: values,
        },
        path,
    ))
}

/// `Image.scan` for `calls` (the same selection and variables): one operation, and where each
/// call's answer is (or why it has none).
pub fn image_scans(types: &SchemaTypes, calls: &[&Call]) -> (Option<Operation>, Vec<Result<Path, ApiError>>) {
    let Some(first) = calls.first() else {
        return (None, Vec::new());
    };
    let mut declared = Variables::new();
    let selection = match rewrite(types, "Scan", &first.selection, &mut declared) {
        Ok(selection) => selection,
        Err(e) => {
            let message = e.to_string();
            return (
                None,
                calls
                    .iter()
                    .map(|_| Err(ApiError::BadUserInput(message.clone())))
                    .collect(),
            );
        }
    };
    let hashes: Vec<Result<Sha256Hex, ApiError>> =
        calls.iter().map(|call| content_hash(call.source.as_ref())).collect();
    let mut unique: Vec<&Sha256Hex> = Vec::new();
    for hash in hashes.iter().flatten() {
        if !unique.contains(&hash) {
            unique.push(hash);
        }
    }
    if unique.is_empty() {
        return (None, hashes.into_iter().map(|h| h.map(|_| Vec::new())).collect());
    }
    let mut values = Map::new();
    let mut fields = Vec::new();
    for (chunk, ids) in unique.chunks(MAX_SCAN_RESULTS).enumerate() {
        let alias = format!("pawqlScans{chunk}");
        declared.insert(
            alias.clone(),
            async_graphql::parser::types::Type::new("[ID!]!").expect("a type"),
        );
        values.insert(
            alias.clone(),
            ids.iter().map(|id| Value::String(id.to_string())).collect(),
        );
        fields.push(format!("{alias}: scanResults(ids: ${alias}) {selection}"));
    }
    client_values(first, &declared, &mut values);
    let text = format!("query{} {{ {} }}", declarations(&declared), fields.join(" "));
    let places = hashes
        .iter()
        .map(|hash| {
            let hash = hash.as_ref().map_err(|e| ApiError::BadUserInput(e.to_string()))?;
            let at = unique.iter().position(|u| *u == hash).expect("every hash is listed");
            Ok(vec![
                PathKey::Field(format!("pawqlScans{}", at / MAX_SCAN_RESULTS)),
                PathKey::Index(at % MAX_SCAN_RESULTS),
            ])
        })
        .collect();
    (
        Some(Operation {
            text,
            variables: values,
        }),
        places,
    )
}

/// The content hash of an image's `source`: its `sha256`, or the hash its id ends with.
fn content_hash(source: Option<&Value>) -> Result<Sha256Hex, ApiError> {
    let text = |key: &str| source.and_then(|s| s.get(key)).and_then(Value::as_str);
    let hash = text("sha256").or_else(|| text("id").and_then(|id| id.rsplit('-').next()));
    hash.and_then(Sha256Hex::parse)
        .ok_or_else(|| ApiError::BadUserInput("Image.scan needs its parent's sha256 or id in `source`".into()))
}

/// `(name: $prefix_name, …)` for the call's arguments, declared with the schema's types.
fn arguments(
    types: &SchemaTypes,
    call: &Call,
    prefix: &str,
    declared: &mut Variables,
    values: &mut Map<String, Value>,
) -> Result<String, ApiError> {
    let Some(field) = types.field(&call.parent, &call.field) else {
        return Err(ApiError::BadUserInput(format!(
            "{} has no field {}",
            call.parent, call.field
        )));
    };
    let mut list = Vec::new();
    for (name, value) in &call.arguments {
        let Some(ty) = field.arguments.get(name) else {
            return Err(ApiError::BadUserInput(format!(
                "{}.{} has no argument {name}",
                call.parent, call.field
            )));
        };
        let variable = format!("{prefix}_{name}");
        declared.insert(variable.clone(), ty.clone());
        values.insert(variable.clone(), value.clone());
        list.push(format!("{name}: ${variable}"));
    }
    Ok(if list.is_empty() {
        String::new()
    } else {
        format!("({})", list.join(", "))
    })
}

/// The client's values of the variables the selection uses (absent ones stay absent).
fn client_values(call: &Call, declared: &Variables, values: &mut Map<String, Value>) {
    for name in declared.keys() {
        if let (false, Some(value)) = (values.contains_key(name), call.variables.get(name)) {
            values.insert(name.clone(), value.clone());
        }
    }
}

/// ` { … }` for a selection, nothing for a leaf.
fn spaced(selection: &str) -> String {
    if selection.is_empty() {
        String::new()
    } else {
        format!(" {selection}")
    }
}

/// `($a: T, $b: U)`, or nothing.
fn declarations(declared: &Variables) -> String {
    if declared.is_empty() {
        return String::new();
    }
    let list: Vec<String> = declared.iter().map(|(name, ty)| format!("${name}: {ty}")).collect();
    format!("({})", list.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn types() -> SchemaTypes {
        SchemaTypes::of(&resolvers::export_sdl()).unwrap()
    }

    fn event(parent: &str, field: &str, arguments: Value, selection: &str, source: Value) -> Call {
        call_of(json!({
            "arguments": arguments,
            "identity": null,
            "source": source,
            "request": { "headers": { "x-api-key": "da2-…" } },
            "info": {
                "fieldName": field,
                "parentTypeName": parent,
                "selectionSetList": [],
                "selectionSetGraphQL": selection,
                "variables": { "size": "THUMB" },
            },
            "stash": {},
            "prev": null,
        }))
        .unwrap()
    }

    #[test]
    fn a_root_field_is_that_field_with_its_arguments_as_variables() {
        let call = event(
            "Query",
            "randomImage",
            json!({ "label": "cat" }),
            "{ x: url(size: $size) }",
            json!(null),
        );
        let (operation, path) = root(&types(), &call).unwrap();
        assert_eq!(
            operation.text,
            "query($pawqlArgument_label: String!, $size: ImageSize!) { randomImage(label: $pawqlArgument_label) { url(size: $size) id sha256 } }"
        );
        assert_eq!(
            operation.variables,
            *json!({ "pawqlArgument_label": "cat", "size": "THUMB" })
                .as_object()
                .unwrap()
        );
        assert_eq!(path, [PathKey::Field("randomImage".into())]);
    }

    #[test]
    fn image_scans_are_scan_results_of_their_hashes_in_order() {
        let hash = |c: char| c.to_string().repeat(64);
        let calls = [
            event(
                "Image",
                "scan",
                json!({}),
                "{ status }",
                json!({ "id": format!("cat-{}", hash('b')) }),
            ),
            event("Image", "scan", json!({}), "{ status }", json!({ "sha256": hash('a') })),
            event("Image", "scan", json!({}), "{ status }", json!({ "sha256": hash('b') })),
            event("Image", "scan", json!({}), "{ status }", json!({ "label": "cat" })),
        ];
        let calls: Vec<&Call> = calls.iter().collect();
        let (operation, places) = image_scans(&types(), &calls);
        let operation = operation.unwrap();
        assert_eq!(
            operation.text,
            "query($pawqlScans0: [ID!]!) { pawqlScans0: scanResults(ids: $pawqlScans0) { status } }"
        );
        assert_eq!(operation.variables["pawqlScans0"], json!([hash('b'), hash('a')]));
        let at = |i| vec![PathKey::Field("pawqlScans0".into()), PathKey::Index(i)];
        assert_eq!(places[0].as_ref().unwrap(), &at(0));
        assert_eq!(places[1].as_ref().unwrap(), &at(1));
        assert_eq!(places[2].as_ref().unwrap(), &at(0));
        assert_eq!(places[3].as_ref().unwrap_err().code(), "BAD_USER_INPUT");
    }

    #[test]
    fn more_than_a_hundred_parents_take_one_field_per_hundred() {
        let sources: Vec<Call> = (0..250)
            .map(|i| {
                event(
                    "Image",
                    "scan",
                    json!({}),
                    "{ id }",
                    json!({ "sha256": format!("{i:064x}") }),
                )
            })
            .collect();
        let calls: Vec<&Call> = sources.iter().collect();
        let (operation, places) = image_scans(&types(), &calls);
        assert_eq!(operation.unwrap().text.matches("scanResults").count(), 3);
        assert_eq!(
            places[249].as_ref().unwrap(),
            &vec![PathKey::Field("pawqlScans2".into()), PathKey::Index(49)]
        );
    }

    #[test]
    fn other_image_fields_are_resolved_on_the_parent_by_id() {
        let call = event("Image", "url", json!({ "size": "SMALL" }), "", json!({ "id": "cat-x" }));
        let (operation, _) = on_parent_image(&types(), &call).unwrap();
        assert_eq!(
            operation.text,
            "query($pawqlArgument_size: ImageSize!, $pawqlParent: ID!) { pawqlParent: image(id: $pawqlParent) { url(size: $pawqlArgument_size) } }"
        );
    }
}
