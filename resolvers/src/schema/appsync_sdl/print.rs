//! Prints type definitions as SDL, in async-graphql's own layout (tab indentation, block-string
//! descriptions, arguments on one line), so `schema.appsync.graphql` reads like
//! `schema.graphql` beside it and a diff between the two shows only what AppSync changes.

use std::fmt::Write;

use async_graphql::parser::types::{ConstDirective, FieldDefinition, InputValueDefinition, TypeDefinition, TypeKind};

/// `types` (in the order given), then the `schema { … }` block naming the root types.
pub(super) fn document(types: &[TypeDefinition], roots: &[(&str, &str)]) -> anyhow::Result<String> {
    let mut sdl = String::new();
    for ty in types {
        type_definition(&mut sdl, ty)?;
        sdl.push('\n');
    }
    sdl.push_str("schema {\n");
    for (operation, name) in roots {
        let _ = writeln!(sdl, "\t{operation}: {name}");
    }
    sdl.push_str("}\n");
    Ok(sdl)
}

fn type_definition(sdl: &mut String, ty: &TypeDefinition) -> anyhow::Result<()> {
    description(sdl, "", ty.description.as_ref().map(|d| d.node.as_str()));
    let name = ty.name.node.as_str();
    let own = directives(ty.directives.iter().map(|d| &d.node));
    match &ty.kind {
        TypeKind::Scalar => {
            let _ = writeln!(sdl, "scalar {name}{own}");
        }
        TypeKind::Object(object) => {
            anyhow::ensure!(object.implements.is_empty(), "type {name}: interfaces are not printed");
            let _ = writeln!(sdl, "type {name}{own} {{");
            for field in &object.fields {
                field_definition(sdl, &field.node);
            }
            sdl.push_str("}\n");
        }
        TypeKind::Enum(values) => {
            let _ = writeln!(sdl, "enum {name}{own} {{");
            for value in &values.values {
                description(sdl, "\t", value.node.description.as_ref().map(|d| d.node.as_str()));
                let value_directives = directives(value.node.directives.iter().map(|d| &d.node));
                let _ = writeln!(sdl, "\t{}{value_directives}", value.node.value.node);
            }
            sdl.push_str("}\n");
        }
        TypeKind::InputObject(input) => {
            let _ = writeln!(sdl, "input {name}{own} {{");
            for field in &input.fields {
                description(sdl, "\t", field.node.description.as_ref().map(|d| d.node.as_str()));
                let _ = writeln!(sdl, "\t{}", input_value(&field.node));
            }
            sdl.push_str("}\n");
        }
        TypeKind::Interface(_) | TypeKind::Union(_) => {
            anyhow::bail!("type {name}: interfaces and unions are not printed (the schema has none)")
        }
    }
    Ok(())
}

fn field_definition(sdl: &mut String, field: &FieldDefinition) {
    description(sdl, "\t", field.description.as_ref().map(|d| d.node.as_str()));
    let arguments = if field.arguments.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = field.arguments.iter().map(|a| input_value(&a.node)).collect();
        format!("({})", list.join(", "))
    };
    let directives = directives(field.directives.iter().map(|d| &d.node));
    let _ = writeln!(sdl, "\t{}{arguments}: {}{directives}", field.name.node, field.ty.node);
}

/// An argument or input field: `name: Type = default`, its description (rare) inline.
fn input_value(value: &InputValueDefinition) -> String {
    let mut text = String::new();
    if let Some(description) = &value.description {
        let _ = write!(text, "{} ", async_graphql::Value::String(description.node.clone()));
    }
    let _ = write!(text, "{}: {}", value.name.node, value.ty.node);
    if let Some(default) = &value.default_value {
        let _ = write!(text, " = {}", default.node);
    }
    text.push_str(&directives(value.directives.iter().map(|d| &d.node)));
    text
}

/// ` @a @b(x: 1)`, or nothing.
fn directives<'a>(list: impl Iterator<Item = &'a ConstDirective>) -> String {
    let mut text = String::new();
    for directive in list {
        let _ = write!(text, " @{}", directive.name.node);
        if !directive.arguments.is_empty() {
            let arguments: Vec<String> = directive
                .arguments
                .iter()
                .map(|(name, value)| format!("{}: {}", name.node, value.node))
                .collect();
            let _ = write!(text, "({})", arguments.join(", "));
        }
    }
    text
}

/// A block-string description, each line at `indent`, as async-graphql writes it.
fn description(sdl: &mut String, indent: &str, text: Option<&str>) {
    let Some(text) = text else { return };
    let _ = writeln!(sdl, "{indent}\"\"\"");
    for line in text.replace("\"\"\"", "\\\"\"\"").lines() {
        let _ = writeln!(sdl, "{indent}{line}");
    }
    let _ = writeln!(sdl, "{indent}\"\"\"");
}
