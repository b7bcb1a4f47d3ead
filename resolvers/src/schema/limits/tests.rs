//! The limits on the schema itself, without a backend: every document here is refused before
//! a resolver runs, or asks only for introspection.

use async_graphql::{Schema, SchemaBuilder};
use serde_json::Value;

use super::super::{Mutation, Query, Subscription};
use super::{apply, MAX_QUERY_COMPLEXITY, MAX_QUERY_DEPTH, TOO_COMPLEX, TOO_DEEP};

/// graphql-js 16's `getIntrospectionQuery` with every option this schema answers
/// (nine levels of `ofType`), as the HTTP suite sends it.
const STANDARD_INTROSPECTION: &str = include_str!("../../../../tests/fixtures/introspection/graphql-js-full.graphql");

type TestSchema = Schema<Query, Mutation, Subscription>;

fn builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query::default(), Mutation::default(), Subscription)
}

/// What `build_schema` serves, without a backend.
fn limited(introspection: bool) -> TestSchema {
    apply(builder(), introspection).finish()
}

/// The schema as it was when async-graphql held both limits itself.
fn library_limited() -> TestSchema {
    builder()
        .limit_depth(MAX_QUERY_DEPTH)
        .limit_complexity(MAX_QUERY_COMPLEXITY)
        .finish()
}

async fn run(schema: &TestSchema, query: &str) -> Value {
    serde_json::to_value(schema.execute(query).await).unwrap()
}

fn messages(body: &Value) -> Vec<&str> {
    body["errors"]
        .as_array()
        .map(|errors| errors.iter().map(|e| e["message"].as_str().unwrap()).collect())
        .unwrap_or_default()
}

/// `__type(name: "Query")` walking `fields { type { ofType { … } } }` `levels` deep in all.
fn type_walk(levels: usize) -> String {
    let steps = ["fields", "type", "ofType"];
    let mut query = String::from("__type(name: \"Query\") { ");
    for level in 1..levels - 1 {
        query.push_str(steps[(level - 1) % 3]);
        query.push_str(" { ");
    }
    query.push_str("name");
    query.push_str(&" }".repeat(levels - 1));
    query
}

/// A selection `levels` deep that is not in the schema (nothing here nests that deep).
fn ordinary_nesting(levels: usize) -> String {
    let mut query = String::from("randomImage(label: \"cat\") { ");
    for _ in 1..levels - 1 {
        query.push_str("scan { ");
    }
    query.push_str("id");
    query.push_str(&" }".repeat(levels - 1));
    query
}

#[tokio::test]
async fn the_standard_introspection_query_is_answered_within_the_limits() {
    let library = run(&library_limited(), STANDARD_INTROSPECTION).await;
    assert_eq!(messages(&library), [TOO_DEEP], "the library's limit refused it");

    let body = run(&limited(true), STANDARD_INTROSPECTION).await;
    assert_eq!(body.get("errors"), None, "{body}");
    let types = body["data"]["__schema"]["types"].as_array().unwrap();
    let query = types.iter().find(|t| t["name"] == "Query").unwrap();
    assert!(
        query["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "randomImage"),
        "{query}"
    );
}

#[tokio::test]
async fn ordinary_documents_are_refused_exactly_as_the_library_refused_them() {
    let mixed_with_the_standard_query = STANDARD_INTROSPECTION.replacen("__schema {", "labels { label } __schema {", 1);
    let documents = [
        format!("{{ {} }}", ordinary_nesting(MAX_QUERY_DEPTH + 1)),
        format!("{{ {} }}", ordinary_nesting(40)),
        format!("{{ __typename {} }}", type_walk(MAX_QUERY_DEPTH)),
        format!("{{ __typename {} }}", type_walk(MAX_QUERY_DEPTH + 1)),
        format!("{{ labels {{ label }} {} }}", type_walk(MAX_QUERY_DEPTH + 1)),
        // Too deep and invalid: refused for its depth first, as before.
        format!("{{ nope {} }}", ordinary_nesting(MAX_QUERY_DEPTH + 3)),
        // Too deep through fragments, in an operation that is not run.
        format!(
            "query A {{ __typename }} query B {{ ...Deep }} fragment Deep on Query {{ {} }}",
            ordinary_nesting(MAX_QUERY_DEPTH + 1)
        ),
        // Too complex and too deep: refused as too complex, as before.
        format!(
            "{{ a: randomImages(label: \"cat\", count: 100) {{ base64 }} b: randomImages(label: \"cat\", count: 100) {{ base64 }} {} }}",
            ordinary_nesting(MAX_QUERY_DEPTH + 1)
        ),
        mixed_with_the_standard_query,
    ];
    let (ours, library) = (limited(true), library_limited());
    for document in &documents {
        let (refused_now, refused_before) = (run(&ours, document).await, run(&library, document).await);
        assert!(refused_before.get("errors").is_some() || refused_before["data"]["__type"].is_object());
        assert_eq!(refused_now, refused_before, "{document}");
    }
    let mixed = run(&ours, &documents[8]).await;
    assert_eq!(
        messages(&mixed),
        [TOO_DEEP],
        "introspection mixed with ordinary fields is counted in full"
    );
}

#[tokio::test]
async fn an_introspection_walk_that_multiplies_is_held_to_the_plain_limit() {
    let schema = limited(true);
    let fits = run(&schema, &format!("{{ {} }}", type_walk(MAX_QUERY_DEPTH))).await;
    assert_eq!(fits.get("errors"), None, "{fits}");
    // fields { type { fields { type … } } }: no ofType chain to discount.
    let mut walk = String::from("{ __type(name: \"Query\") { ");
    walk.push_str(&"fields { type { ".repeat(6));
    walk.push_str("name");
    walk.push_str(&" } }".repeat(6));
    walk.push_str(" } }");
    assert_eq!(messages(&run(&schema, &walk).await), [TOO_DEEP], "{walk}");
    // A chain counts once, and is a level like any field: 1 + 8 + 1 + 2 (14 counted plainly).
    let chained = format!(
        "{{ __type(name: \"Query\") {{ {} ofType {{ ofType {{ ofType {{ fields {{ name }} }} }} }}{} }} }}",
        "fields { type { ".repeat(4),
        " } }".repeat(4)
    );
    assert_eq!(messages(&run(&schema, &chained).await), Vec::<&str>::new(), "{chained}");
    let one_more = chained.replacen("{ name }", "{ type { name } }", 1);
    assert_eq!(messages(&run(&schema, &one_more).await), [TOO_DEEP], "{one_more}");
}

#[tokio::test]
async fn switched_off_introspection_is_refused_with_a_code() {
    let schema = limited(false);
    for document in [
        STANDARD_INTROSPECTION.to_owned(),
        "{ __type(name: \"Query\") { name } }".to_owned(),
        "query { ...Root } fragment Root on Query { __schema { queryType { name } } }".to_owned(),
    ] {
        let body = run(&schema, &document).await;
        assert_eq!(body["data"], Value::Null, "{body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{body}");
        assert!(messages(&body)[0].contains("introspection"), "{body}");
    }
    let typename = run(&schema, "{ __typename }").await;
    assert_eq!(typename["data"]["__typename"], "Query", "{typename}");
}

#[tokio::test]
async fn fragments_that_double_at_each_step_are_refused_before_they_are_walked() {
    let mut document = String::from("{ ...F0 }\n");
    for level in 0..40 {
        document.push_str(&format!(
            "fragment F{level} on Query {{ ...F{next} ...F{next} }}\n",
            next = level + 1
        ));
    }
    document.push_str("fragment F40 on Query { __typename }\n");
    let started = std::time::Instant::now();
    let body = run(&limited(true), &document).await;
    assert_eq!(messages(&body), [TOO_COMPLEX], "{body}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    let cycle = run(&limited(true), "{ ...A } fragment A on Query { labels { label } ...A }").await;
    assert_eq!(
        messages(&cycle),
        ["Cannot spread fragment \"A\" within itself."],
        "{cycle}"
    );
}
