//! The limits every operation is held to (depth 12, complexity 2,000), and where introspection
//! stands in them: answered within the same limits when it is on, refused with `FORBIDDEN`
//! when it is off.
//!
//! Depth is counted as async-graphql counts it (`validation/visitors/depth.rs`: each field but
//! `__typename` is a level, a fragment counts where it is spread, every operation of the
//! document counts), with one exception. In a document that asks for nothing but
//! introspection (`__schema`, `__type`, `__typename` at the root), an `ofType` directly inside
//! another `ofType` adds no depth. The standard introspection query (graphql-js's
//! `getIntrospectionQuery`, sent by GraphiQL, graphql-codegen and every IDE to load a schema)
//! follows each type reference through seven to nine nested `ofType`s, to unwrap types such as
//! `[Image!]!`, which makes it 13 to 15 deep, past the limit. But each `ofType` is one object,
//! not a list, and the chain is null after the two or three wrappers a type really has, so it
//! costs next to nothing. Counted with the chain as one level the standard query is 7 deep.
//! What does multiply, `fields { type { fields … } }`, is counted as before: no introspection
//! walk reaches further than it could under the plain count.
//!
//! Why an extension on the one schema rather than a second, introspection-only schema with a
//! larger depth: every door (`GET` and `POST /graphql`, batches, the WebSocket, the Server-Sent
//! Events stream, the Lambda) runs the schema `build_schema` made, so a rule inside it holds on
//! all of them, and no door has to pick which schema a request goes to. async-graphql's own
//! depth limit cannot make the exception, so this takes it over: the library still validates
//! every document and counts its depth and complexity, and this compares (and refuses first
//! the fragment expansions the library would take minutes to count, see
//! [`MAX_EXPANDED_SELECTIONS`]). An ordinary document is refused exactly as the library
//! refused it, with the same message, and a too-deep document is still refused for its depth
//! before any validation error it also has.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, Field, FragmentDefinition, Selection, SelectionSet};
use async_graphql::{
    ErrorExtensions, Name, ObjectType, Positioned, Request, SchemaBuilder, ServerError, ServerResult, SubscriptionType,
    ValidationResult, Variables,
};

use crate::error::ApiError;

/// Query depth cap: the deepest legitimate operation is far shallower.
pub(crate) const MAX_QUERY_DEPTH: usize = 12;
/// Query complexity cap: a field costs 1, `base64` 10, and `randomImages` multiplies its
/// selection by `count`. One `randomImages(count: 100)` with `base64` (1,100) fits; a pile of
/// aliased ones, each reading 100 images from storage, does not. The standard introspection
/// query costs about 230.
pub(crate) const MAX_QUERY_COMPLEXITY: usize = 2_000;

/// Most selections a document may hold once each fragment is written out where it is spread.
/// async-graphql walks that expansion, fragment by fragment, several times before it counts
/// complexity (the recursion check, validation), so a few hundred bytes of fragments that each
/// spread the next twice would cost it minutes of CPU before it refused them. Counted here
/// first, in time proportional to the text. Ten times the complexity limit: the complexity of
/// an operation is at least its field count, `__typename` aside.
const MAX_EXPANDED_SELECTIONS: usize = 10 * MAX_QUERY_COMPLEXITY;

/// async-graphql's own refusals, word for word (`validation/mod.rs`), so a client sees the
/// same text whichever of us refuses.
const TOO_DEEP: &str = "Query is nested too deep.";
const TOO_COMPLEX: &str = "Query is too complex.";

/// The root fields that are introspection, and the one that is not but may go with them.
const INTROSPECTION_FIELDS: [&str; 2] = ["__schema", "__type"];
const TYPENAME: &str = "__typename";

/// Holds `builder`'s operations to the limits; `introspection` off refuses `__schema` and
/// `__type` with `FORBIDDEN`.
pub(crate) fn apply<Q, M, S>(builder: SchemaBuilder<Q, M, S>, introspection: bool) -> SchemaBuilder<Q, M, S>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let builder = builder
        .limit_complexity(MAX_QUERY_COMPLEXITY)
        .extension(Limits { introspection });
    if introspection {
        builder
    } else {
        // Also switched off in the library, in case a document ever reaches it past the check.
        builder.disable_introspection()
    }
}

/// Makes a [`RequestCheck`] for each request.
struct Limits {
    introspection: bool,
}

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestCheck {
            introspection: self.introspection,
            shape: Mutex::new(None),
        })
    }
}

/// One request's check: its document's expansion is measured before anything walks it, its
/// shape read when it is parsed (introspection refused here when off), and its depth compared
/// with the limit once the library has validated it.
struct RequestCheck {
    introspection: bool,
    shape: Mutex<Option<Shape>>,
}

/// What the check needs to know of a parsed document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    /// Its root fields are all `__schema`, `__type` or `__typename`.
    introspection_only: bool,
    /// Its depth as async-graphql counts it.
    depth: usize,
    /// Its depth with each `ofType` chain counted as one level (only for introspection-only
    /// documents; otherwise the plain depth).
    depth_for_limit: usize,
}

#[async_trait::async_trait]
impl Extension for RequestCheck {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        // Parsed once here and kept on the request; a text that does not parse is left to
        // the library, which reports the syntax error.
        if let Ok(document) = request.parsed_query() {
            match expanded_size(document) {
                Err(cycle) => {
                    return Err(ServerError::new(
                        format!("Cannot spread fragment \"{cycle}\" within itself."),
                        None,
                    ))
                }
                Ok(size) if size > MAX_EXPANDED_SELECTIONS => return Err(ServerError::new(TOO_COMPLEX, None)),
                Ok(_) => {}
            }
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let roots = root_fields(&document);
        if !self.introspection {
            if let Some(asked) = roots
                .iter()
                .find(|f| INTROSPECTION_FIELDS.contains(&f.node.name.node.as_str()))
            {
                return Err(introspection_refusal(asked));
            }
        }
        let introspection_only = roots
            .iter()
            .all(|f| INTROSPECTION_FIELDS.contains(&f.node.name.node.as_str()) || f.node.name.node == TYPENAME);
        let depth = depth_of(&document, false);
        let depth_for_limit = if introspection_only {
            depth_of(&document, true)
        } else {
            depth
        };
        *self.shape.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Shape {
            introspection_only,
            depth,
            depth_for_limit,
        });
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let validated = next.run(ctx).await;
        let shape = *self.shape.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(shape) = shape else {
            // Every document is parsed before it is validated; nothing to compare without one.
            return validated;
        };
        let depth = match &validated {
            _ if shape.introspection_only => shape.depth_for_limit,
            Ok(valid) => valid.depth,
            Err(_) => shape.depth,
        };
        // The library checks complexity first: a document too complex and too deep is
        // refused as too complex, as it was when the library held both limits.
        let too_complex = matches!(&validated, Err(errors) if errors.iter().any(|e| e.message == TOO_COMPLEX));
        if depth > MAX_QUERY_DEPTH && !too_complex {
            return Err(vec![ServerError::new(TOO_DEEP, None)]);
        }
        validated
    }
}

/// The refusal of `__schema` / `__type` where introspection is off, at the field asked for.
fn introspection_refusal(asked: &Positioned<Field>) -> ServerError {
    ApiError::Forbidden(format!(
        "introspection (`{}`) is switched off on this server (setting PAWQL_INTROSPECTION); \
         the schema is published as schema.graphql",
        asked.node.name.node
    ))
    .extend()
    .into_server_error(asked.pos)
}

/// The root fields of every operation of `document`, through fragments.
fn root_fields(document: &ExecutableDocument) -> Vec<&Positioned<Field>> {
    let mut fields = Vec::new();
    let mut spread = HashSet::new();
    for (_, operation) in document.operations.iter() {
        collect_fields(
            &operation.node.selection_set.node,
            &document.fragments,
            &mut spread,
            &mut fields,
        );
    }
    fields
}

fn collect_fields<'a>(
    set: &'a SelectionSet,
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    spread: &mut HashSet<&'a str>,
    fields: &mut Vec<&'a Positioned<Field>>,
) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => fields.push(field),
            Selection::InlineFragment(inline) => {
                collect_fields(&inline.node.selection_set.node, fragments, spread, fields)
            }
            Selection::FragmentSpread(named) => {
                let name = named.node.fragment_name.node.as_str();
                // Each fragment once: enough for a set of names, and a cycle cannot loop.
                if let Some(fragment) = fragments.get(name).filter(|_| spread.insert(name)) {
                    collect_fields(&fragment.node.selection_set.node, fragments, spread, fields);
                }
            }
        }
    }
}

/// How many selections `document` holds with every fragment written out where it is spread,
/// or the name of a fragment that spreads itself.
fn expanded_size(document: &ExecutableDocument) -> Result<usize, String> {
    let mut expansion = Expansion {
        fragments: &document.fragments,
        sizes: HashMap::new(),
        expanding: HashSet::new(),
    };
    let mut total = 0usize;
    for (_, operation) in document.operations.iter() {
        total = total.saturating_add(expansion.of(&operation.node.selection_set.node)?);
    }
    Ok(total)
}

/// Sizes of fragments' expansions, each counted once.
struct Expansion<'a> {
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    sizes: HashMap<&'a str, usize>,
    expanding: HashSet<&'a str>,
}

impl<'a> Expansion<'a> {
    fn of(&mut self, set: &'a SelectionSet) -> Result<usize, String> {
        let mut size = 0usize;
        for item in &set.items {
            let inside = match &item.node {
                Selection::Field(field) => self.of(&field.node.selection_set.node)?,
                Selection::InlineFragment(inline) => self.of(&inline.node.selection_set.node)?,
                Selection::FragmentSpread(named) => self.fragment(named.node.fragment_name.node.as_str())?,
            };
            size = size.saturating_add(1).saturating_add(inside);
        }
        Ok(size)
    }

    fn fragment(&mut self, name: &'a str) -> Result<usize, String> {
        if let Some(size) = self.sizes.get(name) {
            return Ok(*size);
        }
        // An unknown fragment: validation refuses the document.
        let Some((name, fragment)) = self.fragments.get_key_value(name) else {
            return Ok(0);
        };
        if !self.expanding.insert(name.as_str()) {
            return Err(name.to_string());
        }
        let size = self.of(&fragment.node.selection_set.node)?;
        self.expanding.remove(name.as_str());
        self.sizes.insert(name.as_str(), size);
        Ok(size)
    }
}

/// The depth of `document` as async-graphql counts it, or with `ofType` chains as one level.
fn depth_of(document: &ExecutableDocument, chains_as_one: bool) -> usize {
    let mut counter = DepthCounter {
        fragments: &document.fragments,
        chains_as_one,
        known: HashMap::new(),
        expanding: HashSet::new(),
    };
    let operations = document
        .operations
        .iter()
        .map(|(_, operation)| counter.below(&operation.node.selection_set.node, false))
        .collect::<Vec<_>>();
    // The library also walks each fragment definition on its own, from the top.
    let fragments = document
        .fragments
        .keys()
        .map(|name| counter.fragment(name.as_str(), false))
        .collect::<Vec<_>>();
    operations.into_iter().chain(fragments).max().unwrap_or(0)
}

/// Counts levels below a selection set. A fragment's count is kept per name and context (under
/// an `ofType` or not), so a document that spreads fragments into fragments costs its size,
/// not the size of its expansion.
struct DepthCounter<'a> {
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    chains_as_one: bool,
    known: HashMap<(&'a str, bool), usize>,
    expanding: HashSet<&'a str>,
}

impl<'a> DepthCounter<'a> {
    /// How many levels `set` adds; `under_of_type`: it is the selection of an `ofType`.
    fn below(&mut self, set: &'a SelectionSet, under_of_type: bool) -> usize {
        let mut deepest = 0;
        for item in &set.items {
            let levels = match &item.node {
                Selection::Field(field) if field.node.name.node == TYPENAME => 0,
                Selection::Field(field) => {
                    let of_type = field.node.name.node == "ofType";
                    let own = usize::from(!(self.chains_as_one && of_type && under_of_type));
                    own + self.below(&field.node.selection_set.node, of_type)
                }
                Selection::InlineFragment(inline) => self.below(&inline.node.selection_set.node, under_of_type),
                Selection::FragmentSpread(named) => {
                    self.fragment(named.node.fragment_name.node.as_str(), under_of_type)
                }
            };
            deepest = deepest.max(levels);
        }
        deepest
    }

    fn fragment(&mut self, name: &'a str, under_of_type: bool) -> usize {
        if let Some(levels) = self.known.get(&(name, under_of_type)) {
            return *levels;
        }
        // An unknown fragment or a cycle adds nothing here; validation refuses the document.
        let Some((name, fragment)) = self.fragments.get_key_value(name) else {
            return 0;
        };
        if !self.expanding.insert(name.as_str()) {
            return 0;
        }
        let levels = self.below(&fragment.node.selection_set.node, under_of_type);
        self.expanding.remove(name.as_str());
        self.known.insert((name.as_str(), under_of_type), levels);
        levels
    }
}

#[cfg(test)]
mod tests;
