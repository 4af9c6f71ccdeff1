//! Compiling a JSON Schema into the node graph the matcher walks.
//!
//! Supported: `type` (one or several), `enum`, `const`, `properties` (generated
//! in declared order, optional ones may be left out), `required`,
//! `additionalProperties` (objects without `properties`), `items`,
//! `minItems`, `maxItems`, `anyOf`, `oneOf` (treated as `anyOf`: exclusivity
//! is not enforced), local `$ref` into `$defs`/`definitions` (recursion
//! allowed), and annotations (`title`, `description`, `format`, ...), which
//! constrain nothing. Any other keyword is refused rather than ignored, so a
//! schema is never silently weakened.

use std::collections::HashMap;

use crate::json::{quote, Json};
use crate::GrammarError;

/// Index of a node in [`Nodes`].
pub(crate) type NodeId = u32;

/// Most nodes one schema may compile to.
pub const MAX_NODES: usize = 4096;

/// Any JSON value.
pub(crate) const ANY: NodeId = 0;
/// Any JSON array.
pub(crate) const ANY_ARRAY: NodeId = 1;
/// Any JSON object.
pub(crate) const ANY_OBJECT: NodeId = 2;
/// The literal `true`.
pub(crate) const TRUE: NodeId = 3;
/// The literal `false`.
pub(crate) const FALSE: NodeId = 4;
/// The literal `null`.
pub(crate) const NULL: NodeId = 5;

/// One property of a fixed-shape object.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Prop {
    /// The key as it is written, quotes and colon included: `"name":`.
    pub key: Vec<u8>,
    /// Schema of the value.
    pub value: NodeId,
    /// Whether the object may not close without it.
    pub required: bool,
}

/// What one node accepts.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    /// Any JSON value.
    Any,
    /// A number without fraction or exponent.
    Integer,
    /// Any number.
    Number,
    /// Any string.
    String,
    /// Exactly this text.
    Literal(Vec<u8>),
    /// An array of `items`, `min..=max` long.
    Array {
        items: NodeId,
        min: u32,
        max: Option<u32>,
    },
    /// An object with these properties, in this order.
    Object { props: Vec<Prop> },
    /// An object with any keys, every value under `values`.
    Map { values: NodeId },
    /// One of several.
    AnyOf(Vec<NodeId>),
    /// Resolved later to the named definition.
    Ref(String),
}

/// A compiled grammar: nodes and the root.
#[derive(Clone, Debug)]
pub(crate) struct Nodes {
    pub nodes: Vec<Node>,
    pub root: NodeId,
}

impl Nodes {
    /// The node `id`, following references.
    pub(crate) fn get(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }
}

/// Keywords that only describe and never constrain.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "$defs",
    "definitions",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "format",
    "strict",
];

/// The nodes every grammar starts with (see the constants above).
fn base() -> Vec<Node> {
    vec![
        Node::Any,
        Node::Array {
            items: ANY,
            min: 0,
            max: None,
        },
        Node::Map { values: ANY },
        Node::Literal(b"true".to_vec()),
        Node::Literal(b"false".to_vec()),
        Node::Literal(b"null".to_vec()),
    ]
}

/// Nodes for "one JSON object, any shape".
pub(crate) fn any_object() -> Nodes {
    Nodes {
        nodes: base(),
        root: ANY_OBJECT,
    }
}

/// Compile `schema` (the whole document, for `$ref`s to resolve in).
pub(crate) fn compile(schema: &Json) -> Result<Nodes, GrammarError> {
    let mut c = Compiler {
        nodes: base(),
        root: schema,
        defs: HashMap::new(),
    };
    let root = c.node(schema, "#")?;
    c.resolve_refs()?;
    Ok(Nodes {
        nodes: c.nodes,
        root,
    })
}

struct Compiler<'a> {
    nodes: Vec<Node>,
    root: &'a Json,
    /// `$ref` target → its node, compiled once.
    defs: HashMap<String, NodeId>,
}

fn unsupported(at: &str, what: impl std::fmt::Display) -> GrammarError {
    GrammarError::Unsupported(format!("{at}: {what}"))
}

impl Compiler<'_> {
    fn push(&mut self, node: Node) -> Result<NodeId, GrammarError> {
        if self.nodes.len() >= MAX_NODES {
            return Err(GrammarError::TooLarge(MAX_NODES));
        }
        self.nodes.push(node);
        Ok((self.nodes.len() - 1) as NodeId)
    }

    fn node(&mut self, schema: &Json, at: &str) -> Result<NodeId, GrammarError> {
        let members = match schema {
            Json::Bool(true) => return Ok(ANY),
            Json::Bool(false) => return Err(unsupported(at, "the schema `false` matches nothing")),
            Json::Object(members) => members,
            _ => {
                return Err(GrammarError::Invalid(format!(
                    "{at}: a schema must be an object or a boolean"
                )))
            }
        };
        let has = |k: &str| schema.get(k).is_some();
        for (key, _) in members {
            let known = ANNOTATIONS.contains(&key.as_str())
                || [
                    "type",
                    "enum",
                    "const",
                    "properties",
                    "required",
                    "additionalProperties",
                    "items",
                    "minItems",
                    "maxItems",
                    "anyOf",
                    "oneOf",
                    "$ref",
                ]
                .contains(&key.as_str());
            if !known {
                return Err(unsupported(at, format!("keyword `{key}` is not supported")));
            }
        }
        if let Some(target) = schema.get("$ref") {
            let Json::String(target) = target else {
                return Err(GrammarError::Invalid(format!(
                    "{at}: $ref must be a string"
                )));
            };
            return self.reference(target, at);
        }
        if let Some(value) = schema.get("const") {
            return self.push(Node::Literal(value.to_compact().into_bytes()));
        }
        if let Some(values) = schema.get("enum") {
            let Json::Array(values) = values else {
                return Err(GrammarError::Invalid(format!(
                    "{at}: enum must be an array"
                )));
            };
            if values.is_empty() {
                return Err(unsupported(at, "an empty enum matches nothing"));
            }
            let mut alts = Vec::with_capacity(values.len());
            for v in values {
                alts.push(self.push(Node::Literal(v.to_compact().into_bytes()))?);
            }
            return self.push(Node::AnyOf(alts));
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(alts) = schema.get(key) {
                if has("type") || has("properties") || has("items") {
                    return Err(unsupported(
                        at,
                        format!("{key} beside type, properties or items"),
                    ));
                }
                let Json::Array(alts) = alts else {
                    return Err(GrammarError::Invalid(format!(
                        "{at}: {key} must be an array"
                    )));
                };
                if alts.is_empty() {
                    return Err(GrammarError::Invalid(format!(
                        "{at}: {key} must not be empty"
                    )));
                }
                let mut ids = Vec::with_capacity(alts.len());
                for (i, alt) in alts.iter().enumerate() {
                    ids.push(self.node(alt, &format!("{at}/{key}/{i}"))?);
                }
                return self.push(Node::AnyOf(ids));
            }
        }
        let types: Vec<&str> = match schema.get("type") {
            None if has("properties") || has("additionalProperties") || has("required") => {
                vec!["object"]
            }
            None if has("items") || has("minItems") || has("maxItems") => vec!["array"],
            None => return Ok(ANY),
            Some(Json::String(t)) => vec![t.as_str()],
            Some(Json::Array(ts)) => ts
                .iter()
                .map(|t| match t {
                    Json::String(t) => Ok(t.as_str()),
                    _ => Err(GrammarError::Invalid(format!("{at}: type must name types"))),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(GrammarError::Invalid(format!(
                    "{at}: type must be a string or an array"
                )))
            }
        };
        let mut alts = Vec::with_capacity(types.len());
        for t in types {
            alts.push(self.typed(schema, t, at)?);
        }
        match alts.as_slice() {
            [] => Err(GrammarError::Invalid(format!(
                "{at}: type must not be empty"
            ))),
            [one] => Ok(*one),
            _ => self.push(Node::AnyOf(alts)),
        }
    }

    fn typed(&mut self, schema: &Json, t: &str, at: &str) -> Result<NodeId, GrammarError> {
        match t {
            "null" => Ok(NULL),
            "boolean" => self.push(Node::AnyOf(vec![TRUE, FALSE])),
            "integer" => self.push(Node::Integer),
            "number" => self.push(Node::Number),
            "string" => self.push(Node::String),
            "array" => self.array(schema, at),
            "object" => self.object(schema, at),
            other => Err(GrammarError::Invalid(format!(
                "{at}: unknown type `{other}`"
            ))),
        }
    }

    fn array(&mut self, schema: &Json, at: &str) -> Result<NodeId, GrammarError> {
        let items = match schema.get("items") {
            None => ANY,
            Some(Json::Array(_)) => return Err(unsupported(at, "tuple-form items")),
            Some(items) => self.node(items, &format!("{at}/items"))?,
        };
        let count = |key: &str| -> Result<Option<u32>, GrammarError> {
            match schema.get(key) {
                None => Ok(None),
                Some(Json::Number(n)) => n
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .map(Some)
                    .ok_or_else(|| GrammarError::Invalid(format!("{at}: {key} must be a count"))),
                Some(_) => Err(GrammarError::Invalid(format!(
                    "{at}: {key} must be a count"
                ))),
            }
        };
        let min = count("minItems")?.unwrap_or(0);
        let max = count("maxItems")?;
        if max.is_some_and(|max| max < min) {
            return Err(unsupported(at, "maxItems below minItems matches nothing"));
        }
        self.push(Node::Array { items, min, max })
    }

    fn object(&mut self, schema: &Json, at: &str) -> Result<NodeId, GrammarError> {
        let required: Vec<&str> = match schema.get("required") {
            None => Vec::new(),
            Some(Json::Array(names)) => names
                .iter()
                .map(|n| match n {
                    Json::String(n) => Ok(n.as_str()),
                    _ => Err(GrammarError::Invalid(format!(
                        "{at}: required must list names"
                    ))),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(GrammarError::Invalid(format!(
                    "{at}: required must be an array"
                )))
            }
        };
        let Some(properties) = schema.get("properties") else {
            if let Some(name) = required.first() {
                return Err(unsupported(
                    at,
                    format!("required `{name}` without properties"),
                ));
            }
            return match schema.get("additionalProperties") {
                None | Some(Json::Bool(true)) => Ok(ANY_OBJECT),
                Some(Json::Bool(false)) => self.push(Node::Literal(b"{}".to_vec())),
                Some(values) => {
                    let values = self.node(values, &format!("{at}/additionalProperties"))?;
                    self.push(Node::Map { values })
                }
            };
        };
        let Json::Object(properties) = properties else {
            return Err(GrammarError::Invalid(format!(
                "{at}: properties must be an object"
            )));
        };
        for name in &required {
            if !properties.iter().any(|(k, _)| k == name) {
                return Err(GrammarError::Invalid(format!(
                    "{at}: required `{name}` is not among the properties"
                )));
            }
        }
        // Extra keys are never generated, so additionalProperties cannot be violated.
        let mut props = Vec::with_capacity(properties.len());
        for (name, sub) in properties {
            let value = self.node(sub, &format!("{at}/properties/{name}"))?;
            let mut key = quote(name).into_bytes();
            key.push(b':');
            props.push(Prop {
                key,
                value,
                required: required.contains(&name.as_str()),
            });
        }
        self.push(Node::Object { props })
    }

    fn reference(&mut self, target: &str, at: &str) -> Result<NodeId, GrammarError> {
        if let Some(&id) = self.defs.get(target) {
            return Ok(id);
        }
        let schema = if target == "#" {
            self.root
        } else {
            let def = target
                .strip_prefix("#/$defs/")
                .map(|n| ("$defs", n))
                .or_else(|| {
                    target
                        .strip_prefix("#/definitions/")
                        .map(|n| ("definitions", n))
                });
            let Some((container, name)) = def else {
                return Err(unsupported(
                    at,
                    format!("$ref `{target}` (only #, #/$defs/NAME and #/definitions/NAME)"),
                ));
            };
            self.root
                .get(container)
                .and_then(|defs| defs.get(name))
                .ok_or_else(|| {
                    GrammarError::Invalid(format!("{at}: $ref `{target}` names no definition"))
                })?
        };
        // Reserve the id first so a recursive reference resolves to it.
        let id = self.push(Node::Ref(target.to_owned()))?;
        self.defs.insert(target.to_owned(), id);
        let body = self.node(schema, target)?;
        self.nodes[id as usize] = Node::AnyOf(vec![body]);
        Ok(id)
    }

    /// Every `Ref` placeholder was replaced once its target compiled; one left
    /// over would mean a bug, so it is reported rather than walked.
    fn resolve_refs(&self) -> Result<(), GrammarError> {
        match self.nodes.iter().find(|n| matches!(n, Node::Ref(_))) {
            Some(Node::Ref(t)) => Err(GrammarError::Invalid(format!("$ref `{t}` did not resolve"))),
            _ => Ok(()),
        }
    }
}
