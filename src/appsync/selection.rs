//! AppSync's `selectionSetGraphQL`, rewritten for the schema and printed back: what the Lambda
//! answers must be shaped the way AppSync reads it, which is not the way the client asked.
//!
//! - **No aliases.** AppSync reads a resolver's answer by *field name* and applies the
//!   client's aliases itself, so the answer is keyed by field names. Fields asked twice (under
//!   two aliases) become one, their selections merged; where they differ in arguments the
//!   first one's arguments win, as AppSync would give both aliases the same value anyway.
//! - **Inline fragments** on the type itself are merged in (the schema has no interfaces or
//!   unions, so every valid one is); one with a directive is kept as it is.
//! - **Named fragments** cannot be resolved: AppSync does not send their definitions. They are
//!   refused (`BAD_USER_INPUT`), naming the fragment.
//! - **Fields AppSync resolves itself** ([`OWN_RESOLVERS`]: `Image.scan`, a batched resolver of
//!   its own) are left out of a parent's answer: AppSync calls their resolver anyway, and the
//!   answer here would be a read thrown away. Their parent gets the fields those resolvers read
//!   from `source` ([`SOURCE_KEYS`]) whether asked or not; AppSync shows the client only what
//!   it asked for.
//! - **Variables** in arguments and directives are collected with the type of the place they
//!   are used in, for the operation to declare.

use std::collections::BTreeMap;

use async_graphql::parser::types::{Directive, Field, Selection, Type};
use async_graphql::parser::Positioned;
use async_graphql::Value;
use resolvers::ApiError;

use super::types::{item, named, SchemaTypes};

/// Marks a variable in an argument value made constant for [`Printer::collect`]: the parser's
/// own value type (which has variables) is not one this crate can name.
const VARIABLE_MARK: &str = "\u{0}pawql-variable:";

/// An argument's value with each `$name` replaced by a marked string, for [`Printer::collect`].
macro_rules! marked {
    ($value:expr) => {
        $value
            .clone()
            .into_const_with(|name| Ok::<_, std::convert::Infallible>(Value::String(format!("{VARIABLE_MARK}{name}"))))
            .unwrap_or_else(|never| match never {})
    };
}

/// Fields with a resolver of their own in the AppSync API (the deployment attaches one to each
/// root field and to these).
pub const OWN_RESOLVERS: &[(&str, &str)] = &[("Image", "scan")];

/// What the resolvers of [`OWN_RESOLVERS`] (and of any other field of the type) read from their
/// parent: an image's id and content hash.
pub const SOURCE_KEYS: &[(&str, &[&str])] = &[("Image", &["id", "sha256"])];

/// Variables found so far, by name, with the type to declare.
pub type Variables = BTreeMap<String, Type>;

/// `selection` (AppSync's text, possibly empty) rewritten for a field of type `ty`: the
/// selection set to print after the field, or an empty string for a leaf.
pub fn rewrite(types: &SchemaTypes, ty: &str, selection: &str, variables: &mut Variables) -> Result<String, ApiError> {
    if selection.trim().is_empty() {
        return Ok(String::new());
    }
    let document = async_graphql::parser::parse_query(selection)
        .map_err(|e| ApiError::BadUserInput(format!("the selection set AppSync sent does not parse: {e}")))?;
    let Some((_, operation)) = document.operations.iter().next() else {
        return Err(ApiError::BadUserInput("the selection set AppSync sent is empty".into()));
    };
    let mut printer = Printer { types, variables };
    let items: Vec<&Positioned<Selection>> = operation.node.selection_set.node.items.iter().collect();
    printer.selection_set(ty, &items)
}

struct Printer<'a> {
    types: &'a SchemaTypes,
    variables: &'a mut Variables,
}

/// One field of the answer: the first occurrence and every occurrence's selections.
struct Merged<'a> {
    first: &'a Field,
    selections: Vec<&'a Positioned<Selection>>,
}

impl Printer<'_> {
    fn selection_set(&mut self, ty: &str, items: &[&Positioned<Selection>]) -> Result<String, ApiError> {
        let mut fields: Vec<(String, Merged)> = Vec::new();
        let mut kept_fragments = Vec::new();
        self.flatten(ty, items, &mut fields, &mut kept_fragments)?;
        let mut out = String::from("{");
        for (name, merged) in &fields {
            if OWN_RESOLVERS.contains(&(ty, name.as_str())) {
                continue;
            }
            out.push(' ');
            out.push_str(&self.field(ty, merged)?);
        }
        for (source_ty, keys) in SOURCE_KEYS {
            if *source_ty == ty {
                for key in *keys {
                    if !fields.iter().any(|(name, _)| name == key) {
                        out.push(' ');
                        out.push_str(key);
                    }
                }
            }
        }
        for fragment in kept_fragments {
            out.push(' ');
            out.push_str(&fragment);
        }
        if out == "{" {
            // Only fields AppSync resolves itself were asked: answer something AppSync ignores.
            out.push_str(" __typename");
        }
        out.push_str(" }");
        Ok(out)
    }

    /// Fields by name (first occurrence first), inline fragments on `ty` merged in.
    fn flatten<'s>(
        &mut self,
        ty: &str,
        items: &[&'s Positioned<Selection>],
        fields: &mut Vec<(String, Merged<'s>)>,
        kept: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        for item in items {
            match &item.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.to_string();
                    let selections = field.node.selection_set.node.items.iter();
                    match fields.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, merged)) => merged.selections.extend(selections),
                        None => fields.push((
                            name,
                            Merged {
                                first: &field.node,
                                selections: selections.collect(),
                            },
                        )),
                    }
                }
                Selection::InlineFragment(fragment) => {
                    let on = fragment.node.type_condition.as_ref().map(|c| c.node.on.node.as_str());
                    if on.is_some_and(|on| on != ty) {
                        return Err(ApiError::BadUserInput(format!(
                            "a fragment on {} inside a selection of {ty}",
                            on.unwrap_or_default()
                        )));
                    }
                    let inner: Vec<&Positioned<Selection>> = fragment.node.selection_set.node.items.iter().collect();
                    if fragment.node.directives.is_empty() {
                        self.flatten(ty, &inner, fields, kept)?;
                    } else {
                        let directives = self.directives(&fragment.node.directives)?;
                        let set = self.selection_set(ty, &inner)?;
                        kept.push(format!("...{directives} {set}"));
                    }
                }
                Selection::FragmentSpread(spread) => {
                    return Err(ApiError::BadUserInput(format!(
                        "the selection uses the fragment `{}`, which AppSync does not pass to resolvers; use an inline fragment (`... on {ty} {{ … }}`)",
                        spread.node.fragment_name.node
                    )))
                }
            }
        }
        Ok(())
    }

    /// `name(arguments) @directives { … }`.
    fn field(&mut self, ty: &str, merged: &Merged) -> Result<String, ApiError> {
        let field = merged.first;
        let name = field.name.node.as_str();
        if name.starts_with("__") {
            return Ok(name.to_owned());
        }
        let Some(schema_field) = self.types.field(ty, name) else {
            return Err(ApiError::BadUserInput(format!("{ty} has no field {name}")));
        };
        let mut out = name.to_owned();
        if !field.arguments.is_empty() {
            let mut arguments = Vec::new();
            for (argument, value) in &field.arguments {
                let Some(argument_ty) = schema_field.arguments.get(argument.node.as_str()) else {
                    return Err(ApiError::BadUserInput(format!(
                        "{ty}.{name} has no argument {}",
                        argument.node
                    )));
                };
                self.collect(&marked!(value.node), argument_ty)?;
                arguments.push(format!("{}: {}", argument.node, value.node));
            }
            out.push_str(&format!("({})", arguments.join(", ")));
        }
        out.push_str(&self.directives(&field.directives)?);
        let field_ty = named(&schema_field.ty).to_owned();
        if self.types.is_object(&field_ty) {
            out.push(' ');
            out.push_str(&self.selection_set(&field_ty, &merged.selections)?);
        }
        Ok(out)
    }

    /// ` @include(if: $x)` and the like; their variables are `Boolean!`.
    fn directives(&mut self, directives: &[Positioned<Directive>]) -> Result<String, ApiError> {
        let boolean = Type::new("Boolean!").expect("a type");
        let mut out = String::new();
        for directive in directives {
            out.push_str(&format!(" @{}", directive.node.name.node));
            if !directive.node.arguments.is_empty() {
                let mut arguments = Vec::new();
                for (name, value) in &directive.node.arguments {
                    self.collect(&marked!(value.node), &boolean)?;
                    arguments.push(format!("{}: {}", name.node, value.node));
                }
                out.push_str(&format!("({})", arguments.join(", ")));
            }
        }
        Ok(out)
    }

    /// Records the variables in `value`, used where `ty` is expected. A variable used in two
    /// places is declared non-null if either place needs it so.
    fn collect(&mut self, value: &Value, ty: &Type) -> Result<(), ApiError> {
        match value {
            Value::String(text) if text.starts_with(VARIABLE_MARK) => {
                let name = &text[VARIABLE_MARK.len()..];
                let declared = self.variables.entry(name.to_owned()).or_insert_with(|| ty.clone());
                if declared.nullable && !ty.nullable {
                    *declared = ty.clone();
                }
            }
            Value::List(items) => {
                // A single value where a list is expected stands for a list of one.
                let item_ty = item(ty).unwrap_or(ty);
                for value in items {
                    self.collect(value, item_ty)?;
                }
            }
            Value::Object(fields) => {
                for (name, value) in fields {
                    let Some(field_ty) = self.types.input_field(named(ty), name) else {
                        return Err(ApiError::BadUserInput(format!("{} has no field {name}", named(ty))));
                    };
                    let field_ty = field_ty.clone();
                    self.collect(value, &field_ty)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types() -> SchemaTypes {
        SchemaTypes::of(&resolvers::export_sdl()).unwrap()
    }

    fn rewritten(ty: &str, selection: &str) -> (String, Variables) {
        let mut variables = Variables::new();
        let text = rewrite(&types(), ty, selection, &mut variables).unwrap();
        (text, variables)
    }

    #[test]
    fn aliases_go_and_fields_asked_twice_become_one() {
        let (text, _) = rewritten(
            "Image",
            "{ a: id b: id weight first: scan { status } ... on Image { label } }",
        );
        assert_eq!(text, "{ id weight label sha256 }");
    }

    #[test]
    fn the_fields_appsync_resolves_itself_are_left_to_it() {
        let (text, _) = rewritten("Query", "{ randomImages(label: \"cat\") { scan { status } } }");
        assert_eq!(text, "{ randomImages(label: \"cat\") { id sha256 } }");
    }

    #[test]
    fn variables_are_typed_by_where_they_are_used() {
        let (text, variables) = rewritten("Image", "{ url(size: $size) variants @include(if: $more) { url } }");
        assert_eq!(
            text,
            "{ url(size: $size) variants @include(if: $more) { url } id sha256 }"
        );
        let declared: Vec<String> = variables.iter().map(|(n, t)| format!("{n}: {t}")).collect();
        assert_eq!(declared, ["more: Boolean!", "size: ImageSize!"]);
    }

    #[test]
    fn named_fragments_are_refused_naming_them() {
        let error = rewrite(&types(), "Image", "{ ...ImageFields }", &mut Variables::new()).unwrap_err();
        assert!(error.to_string().contains("`ImageFields`"), "{error}");
    }

    #[test]
    fn a_leaf_has_no_selection() {
        assert_eq!(rewritten("Query", "").0, "");
    }
}
