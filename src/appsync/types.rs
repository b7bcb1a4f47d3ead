//! The schema's field and argument types, read once from its SDL, so the operations the door
//! writes can declare their variables: AppSync hands over argument values and a selection
//! set whose arguments may name the client's variables, but not what type each one is.

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};

/// A field's type and its arguments' types.
#[derive(Debug, Clone)]
pub struct FieldType {
    pub ty: Type,
    pub arguments: HashMap<String, Type>,
}

/// Every object type's fields and every input type's fields, by name.
#[derive(Debug, Default)]
pub struct SchemaTypes {
    objects: HashMap<String, HashMap<String, FieldType>>,
    inputs: HashMap<String, HashMap<String, Type>>,
    leaves: HashSet<String>,
}

impl SchemaTypes {
    /// The types of `sdl` (async-graphql's SDL of the schema the door runs).
    pub fn of(sdl: &str) -> anyhow::Result<SchemaTypes> {
        let document = async_graphql::parser::parse_schema(sdl)?;
        let mut types = SchemaTypes::default();
        for definition in document.definitions {
            let TypeSystemDefinition::Type(ty) = definition else {
                continue;
            };
            let name = ty.node.name.node.to_string();
            match ty.node.kind {
                TypeKind::Object(object) => {
                    let fields = object
                        .fields
                        .into_iter()
                        .map(|field| {
                            let field = field.node;
                            let arguments = field
                                .arguments
                                .into_iter()
                                .map(|a| (a.node.name.node.to_string(), a.node.ty.node))
                                .collect();
                            (
                                field.name.node.to_string(),
                                FieldType {
                                    ty: field.ty.node,
                                    arguments,
                                },
                            )
                        })
                        .collect();
                    types.objects.insert(name, fields);
                }
                TypeKind::InputObject(input) => {
                    let fields = input
                        .fields
                        .into_iter()
                        .map(|f| (f.node.name.node.to_string(), f.node.ty.node))
                        .collect();
                    types.inputs.insert(name, fields);
                }
                TypeKind::Scalar | TypeKind::Enum(_) => {
                    types.leaves.insert(name);
                }
                TypeKind::Interface(_) | TypeKind::Union(_) => {}
            }
        }
        Ok(types)
    }

    /// The field `name` of the object type `ty`.
    pub fn field(&self, ty: &str, name: &str) -> Option<&FieldType> {
        self.objects.get(ty)?.get(name)
    }

    /// Whether `name` is an object type (its fields need a selection).
    pub fn is_object(&self, name: &str) -> bool {
        self.objects.contains_key(name)
    }

    /// The field `name` of the input type `ty`.
    pub fn input_field(&self, ty: &str, name: &str) -> Option<&Type> {
        self.inputs.get(ty)?.get(name)
    }
}

/// The named type under any list and non-null wrappers.
pub fn named(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(inner) => named(inner),
    }
}

/// The item type of a list type (`None` for a named type).
pub fn item(ty: &Type) -> Option<&Type> {
    match &ty.base {
        BaseType::List(inner) => Some(inner),
        BaseType::Named(_) => None,
    }
}
