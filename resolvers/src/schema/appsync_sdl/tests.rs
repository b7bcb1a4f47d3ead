//! The AppSync schema's rules, checked on the code's own schema and on small made-up ones.

use async_graphql::parser::types::{FieldDefinition, TypeDefinition, TypeKind, TypeSystemDefinition};

use super::*;

/// The generated schema's type definitions (it must parse: AppSync would refuse it otherwise).
fn generated() -> (String, Vec<TypeDefinition>) {
    let sdl = export_appsync_sdl();
    let document = async_graphql::parser::parse_schema(&sdl).unwrap_or_else(|e| panic!("{e}\n{sdl}"));
    let types = document
        .definitions
        .into_iter()
        .filter_map(|d| match d {
            TypeSystemDefinition::Type(ty) => Some(ty.node),
            TypeSystemDefinition::Schema(_) => None,
            TypeSystemDefinition::Directive(d) => panic!("a directive definition is left: @{}", d.node.name.node),
        })
        .collect();
    (sdl, types)
}

fn type_named<'a>(types: &'a [TypeDefinition], name: &str) -> &'a TypeDefinition {
    types
        .iter()
        .find(|t| t.name.node == name)
        .unwrap_or_else(|| panic!("no type {name}"))
}

fn field_of<'a>(types: &'a [TypeDefinition], ty: &str, field: &str) -> Option<&'a FieldDefinition> {
    match &type_named(types, ty).kind {
        TypeKind::Object(object) => object.fields.iter().map(|f| &f.node).find(|f| f.name.node == field),
        _ => panic!("{ty} is not an object type"),
    }
}

fn directive_names(directives: &[Positioned<ConstDirective>]) -> Vec<String> {
    directives.iter().map(|d| d.node.name.node.to_string()).collect()
}

fn modes(list: &[Mode]) -> Vec<String> {
    list.iter().map(|m| m.directive().to_owned()).collect()
}

#[test]
fn no_custom_scalar_and_no_upload_is_left() {
    let (sdl, types) = generated();
    assert!(types.iter().all(|t| !matches!(t.kind, TypeKind::Scalar)), "{sdl}");
    for gone in [
        ": DateTime",
        ": JSON",
        ": Upload!",
        ": Upload,",
        ": Upload)",
        "scalar ",
        "@oneOf",
        "@specifiedBy",
        "directive @",
    ] {
        assert!(!sdl.contains(gone), "{gone} is still in the AppSync schema:\n{sdl}");
    }
    assert!(
        field_of(&types, "Mutation", "upload").is_none(),
        "upload needs a file: left out"
    );
    let request_scan = field_of(&types, "Mutation", "requestScan").expect("requestScan stays");
    let arguments: Vec<&str> = request_scan
        .arguments
        .iter()
        .map(|a| a.node.name.node.as_str())
        .collect();
    assert_eq!(
        arguments,
        ["imageId", "debug", "force"],
        "its optional upload is left off"
    );
    assert_eq!(
        field_of(&types, "Image", "createdAt").unwrap().ty.node.to_string(),
        "AWSDateTime!"
    );
    assert_eq!(
        field_of(&types, "Scan", "debug").unwrap().ty.node.to_string(),
        "AWSJSON"
    );
}

#[test]
fn url_fields_are_aws_urls() {
    let (_, types) = generated();
    for (ty, field) in [("Image", "url"), ("ImageVariant", "url"), ("UploadTicket", "uploadUrl")] {
        assert_eq!(
            field_of(&types, ty, field).unwrap().ty.node.to_string(),
            "AWSURL!",
            "{ty}.{field}"
        );
    }
    assert_eq!(
        field_of(&types, "Image", "placeholder").unwrap().ty.node.to_string(),
        "String"
    );
}

#[test]
fn reads_are_open_to_every_mode_and_writes_to_principals_only() {
    let (_, types) = generated();
    for ty in [
        "Image",
        "ImageVariant",
        "LabelStats",
        "Scan",
        "ScanLabel",
        "UploadTicket",
        "ScanUpdate",
    ] {
        assert_eq!(
            directive_names(&type_named(&types, ty).directives),
            modes(EVERYONE),
            "{ty}"
        );
    }
    for name in [
        "randomImage",
        "randomImages",
        "image",
        "labels",
        "scanResult",
        "scanResults",
    ] {
        let field = field_of(&types, "Query", name).unwrap();
        assert_eq!(directive_names(&field.directives), modes(EVERYONE), "Query.{name}");
    }
    let TypeKind::Object(mutation) = &type_named(&types, "Mutation").kind else {
        unreachable!()
    };
    for field in &mutation.fields {
        let expected = if field.node.name.node == PUBLISH_MUTATION {
            PUBLISHER
        } else {
            PRINCIPALS
        };
        assert_eq!(
            directive_names(&field.node.directives),
            modes(expected),
            "Mutation.{}",
            field.node.name.node
        );
    }
    let debug = field_of(&types, "Scan", "debug").unwrap();
    assert_eq!(
        directive_names(&debug.directives),
        modes(PRINCIPALS),
        "debug data is for admins"
    );
}

#[test]
fn subscribers_follow_the_scan_handlers_publish() {
    let (sdl, types) = generated();
    let TypeKind::Object(subscription) = &type_named(&types, "Subscription").kind else {
        unreachable!()
    };
    assert_eq!(subscription.fields.len(), 1, "only AppSync's own subscription:\n{sdl}");
    assert!(
        sdl.contains("onScanUpdated(id: ID!): ScanUpdate @aws_subscribe(mutations: [\"publishScanUpdate\"]) @aws_api_key @aws_iam @aws_cognito_user_pools"),
        "{sdl}"
    );
    assert!(
        sdl.contains("publishScanUpdate(update: ScanUpdateInput!): ScanUpdate @aws_iam\n"),
        "{sdl}"
    );
    // The payload is Scan without debug data, and what the publisher sends fills it exactly.
    let TypeKind::Object(scan) = &type_named(&types, "Scan").kind else {
        unreachable!()
    };
    let TypeKind::Object(update) = &type_named(&types, "ScanUpdate").kind else {
        unreachable!()
    };
    let names = |fields: &[Positioned<FieldDefinition>]| -> Vec<String> {
        fields.iter().map(|f| f.node.name.node.to_string()).collect()
    };
    let mut expected = names(&scan.fields);
    expected.retain(|name| name != "debug");
    assert_eq!(names(&update.fields), expected);
    let TypeKind::InputObject(input) = &type_named(&types, "ScanUpdateInput").kind else {
        unreachable!()
    };
    let input_names: Vec<String> = input.fields.iter().map(|f| f.node.name.node.to_string()).collect();
    assert_eq!(input_names, expected);
    let labels = input.fields.iter().find(|f| f.node.name.node == "labels").unwrap();
    assert_eq!(labels.node.ty.node.to_string(), "[ScanLabelInput!]!");
    let scan = crate::domain::scan::ScanRecord::pending(
        crate::domain::image::Sha256Hex::parse(&"0".repeat(64)).unwrap(),
        crate::domain::scan::ScanSource::Upload {
            content_type: "image/png".into(),
        },
        false,
        chrono::Utc::now(),
    );
    let published = scan_update::scan_update(&scan);
    let published: Vec<&String> = published.as_object().unwrap().keys().collect();
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(
        published,
        sorted.iter().collect::<Vec<_>>(),
        "scan_update sends every field"
    );
}

#[test]
fn the_code_schemas_other_types_carry_over_unchanged() {
    let (sdl, _) = generated();
    for kept in [
        "randomImages(label: String!, count: Int! = 10): [Image!]! @aws_api_key",
        "url(size: ImageSize! = ORIGINAL): AWSURL!",
        "enum ImageSize {",
        "schema {\n\tquery: Query\n\tmutation: Mutation\n\tsubscription: Subscription\n}",
    ] {
        assert!(sdl.contains(kept), "lost `{kept}`:\n{sdl}");
    }
}

const SMALL: &str = r#"
directive @oneOf on INPUT_OBJECT
scalar DateTime
scalar Upload
input Pick @oneOf { id: ID, file: Upload, at: DateTime }
type Thing { id: ID! at: DateTime! imageUrl: String! }
type Scan { id: ID! status: String! labels: [ScanLabel!]! debug: String }
type ScanLabel { name: String! }
type Query { thing(pick: Pick!): Thing }
type Mutation { put(file: Upload!): Thing! touch(id: ID!, file: Upload): Thing! }
type Subscription { things: Thing! }
schema { query: Query mutation: Mutation subscription: Subscription }
"#;

#[test]
fn one_of_inputs_lose_the_directive_and_their_upload_fields() {
    let sdl = appsync_sdl(SMALL).unwrap();
    assert!(sdl.contains("input Pick {\n\tid: ID\n\tat: AWSDateTime\n}"), "{sdl}");
    assert!(sdl.contains("imageUrl: AWSURL!"), "{sdl}");
    assert!(!sdl.contains("put("), "{sdl}");
    assert!(
        sdl.contains("touch(id: ID!): Thing! @aws_iam @aws_cognito_user_pools"),
        "{sdl}"
    );
    assert!(
        !sdl.contains("things"),
        "the code's subscriptions are AppSync's no more: {sdl}"
    );
}

#[test]
fn a_scalar_without_an_aws_counterpart_fails_naming_it() {
    let sdl = SMALL.replace("scalar Upload", "scalar Upload\nscalar Colour");
    let error = appsync_sdl(&sdl).unwrap_err().to_string();
    assert!(error.contains("scalar Colour has no AppSync counterpart"), "{error}");
}
