//! Serde deserialization from a positioned YAML [`Node`], so step parameters are declared once as
//! plain structs (`#[derive(Deserialize, JsonSchema)]`) and their errors still name line, column and
//! field path.

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use super::yaml::{Node, Pos, Value};

/// A value that does not fit the shape its field declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeError {
    pub pos: Pos,
    /// Field path below the node deserialized, such as `headers.Accept` or `args[2]`; empty at the top.
    pub path: String,
    pub message: String,
}

/// Error as serde produces it, before the node it belongs to is known.
#[derive(Debug)]
pub struct RawError {
    located: Option<(Pos, String)>,
    message: String,
}

impl fmt::Display for RawError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RawError {}

impl de::Error for RawError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        RawError { located: None, message: msg.to_string() }
    }
}

/// Deserializes `node` into `T`, reporting the first mismatch with its position and path.
pub fn from_node<T: DeserializeOwned>(node: &Node) -> Result<T, DeError> {
    T::deserialize(NodeDe { node, path: String::new() }).map_err(|e| {
        let (pos, path) = e.located.unwrap_or((node.pos, String::new()));
        DeError { pos, path, message: plain_words(&e.message) }
    })
}

/// Serde names Rust types ("expected u32"); plan authors think in YAML ("a whole number").
fn plain_words(message: &str) -> String {
    if let Some(text) = out_of_range(message) {
        return text;
    }
    const WORDS: &[(&str, &str)] = &[
        ("expected u8", "expected a whole number"),
        ("expected u16", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected usize", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected a list"),
        ("expected a map", "expected a mapping"),
        ("invalid type: unit value", "invalid type: null"),
        ("invalid type: sequence", "invalid type: list"),
        ("invalid type: map", "invalid type: mapping"),
    ];
    let mut text = no_type_names(message.to_string());
    for (rust, yaml) in WORDS {
        if let Some(at) = text.find(rust) {
            let end = at + rust.len();
            // Only whole words: "expected u16" but not "expected u1600".
            if !text[end..].starts_with(|c: char| c.is_ascii_alphanumeric()) {
                text.replace_range(at..end, yaml);
            }
        }
    }
    text
}

/// `invalid value: integer `-3`, expected u32` → "`-3` is negative: it must be 0 or more".
fn out_of_range(message: &str) -> Option<String> {
    let rest = message.strip_prefix("invalid value: integer `")?;
    let (number, expected) = rest.split_once("`, expected ")?;
    let max = match expected {
        "u8" => u64::from(u8::MAX),
        "u16" => u64::from(u16::MAX),
        "u32" => u64::from(u32::MAX),
        "u64" | "usize" => u64::MAX,
        _ => return None,
    };
    Some(match number.starts_with('-') {
        true => format!("`{number}` is negative: it must be 0 or more"),
        false => format!("`{number}` is too large: it must be at most {max}"),
    })
}

/// What serde's derived code says it expected, where that names a Rust type ("expected struct
/// WorkloadName"), in words: the shape the plan must write.
fn no_type_names(mut text: String) -> String {
    for shape in ["struct variant ", "tuple struct ", "unit struct ", "struct ", "enum ", "tuple variant "] {
        let needle = format!("expected {shape}");
        while let Some(at) = text.find(&needle) {
            let start = at + needle.len();
            let end = text[start..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(text.len(), |e| start + e);
            let words =
                if shape.starts_with("enum") { "expected one of the listed names" } else { "expected a mapping" };
            text.replace_range(at..end, words);
        }
    }
    text
}

struct NodeDe<'a> {
    node: &'a Node,
    path: String,
}

impl NodeDe<'_> {
    /// Pins an error that has no position yet to this node.
    fn locate(&self, mut e: RawError) -> RawError {
        if e.located.is_none() {
            e.located = Some((self.node.pos, self.path.clone()));
        }
        e
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = RawError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RawError> {
        let result = match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_str(s),
            Value::Seq(items) => visitor.visit_seq(Items { items: items.iter(), index: 0, path: &self.path }),
            Value::Map(entries) => {
                visitor.visit_map(Entries { entries: entries.iter(), value: None, path: &self.path })
            }
        };
        result.map_err(|e| self.locate(e))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RawError> {
        match self.node.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, RawError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, RawError> {
        let result = match &self.node.value {
            Value::Str(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            _ => {
                let names: Vec<String> = variants.iter().map(|v| format!("`{v}`")).collect();
                let expected = format!("one of {}", names.join(", "));
                Err(de::Error::invalid_type(unexpected(self.node), &expected.as_str()))
            }
        };
        result.map_err(|e| self.locate(e))
    }

    /// A struct is a mapping; anything else is refused naming the keys, never the Rust type.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, RawError> {
        if matches!(self.node.value, Value::Map(_)) {
            return self.deserialize_any(visitor);
        }
        let expected = format!("a mapping with the keys {}", fields.join(", "));
        Err(self.locate(de::Error::invalid_type(unexpected(self.node), &expected.as_str())))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

fn unexpected(node: &Node) -> de::Unexpected<'_> {
    match &node.value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Int(i) => de::Unexpected::Signed(*i),
        Value::Float(f) => de::Unexpected::Float(*f),
        Value::Str(s) => de::Unexpected::Str(s),
        Value::Seq(_) => de::Unexpected::Seq,
        Value::Map(_) => de::Unexpected::Map,
    }
}

struct Items<'a, 'p> {
    items: std::slice::Iter<'a, Node>,
    index: usize,
    path: &'p str,
}

impl<'de> SeqAccess<'de> for Items<'_, '_> {
    type Error = RawError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, RawError> {
        let Some(node) = self.items.next() else { return Ok(None) };
        let path = format!("{}[{}]", self.path, self.index);
        self.index += 1;
        let de = NodeDe { node, path };
        seed.deserialize(NodeDe { node, path: de.path.clone() }).map(Some).map_err(|e| de.locate(e))
    }
}

struct Entries<'a, 'p> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    value: Option<(&'a Node, String)>,
    path: &'p str,
}

impl<'de> MapAccess<'de> for Entries<'_, '_> {
    type Error = RawError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, RawError> {
        let Some((key, value)) = self.entries.next() else { return Ok(None) };
        let key_text = match &key.value {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => String::new(),
        };
        let path = join(self.path, &key_text);
        self.value = Some((value, path.clone()));
        let de = NodeDe { node: key, path };
        seed.deserialize(StrKey(&key_text)).map(Some).map_err(|e| de.locate(e))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, RawError> {
        let (node, path) = self.value.take().expect("serde asks for a key before its value");
        let de = NodeDe { node, path: path.clone() };
        seed.deserialize(NodeDe { node, path }).map_err(|e| de.locate(e))
    }
}

/// Mapping keys reach serde as strings, whatever scalar the YAML wrote.
struct StrKey<'a>(&'a str);

impl<'de> de::Deserializer<'de> for StrKey<'_> {
    type Error = RawError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RawError> {
        visitor.visit_str(self.0)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string option
        bytes byte_buf unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;
    use crate::plan::yaml::parse;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Params {
        url: String,
        #[serde(default)]
        status: Option<u16>,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default)]
        args: Vec<String>,
    }

    fn err(yaml: &str) -> DeError {
        from_node::<Params>(&parse(yaml).unwrap()).unwrap_err()
    }

    #[test]
    fn unknown_field_points_at_the_key() {
        let e = err("url: x\nstatsu: 200\n");
        assert_eq!((e.pos, e.path.as_str()), (Pos { line: 2, col: 1 }, "statsu"));
        assert!(e.message.contains("unknown field `statsu`, expected one of"), "{}", e.message);
    }

    #[test]
    fn wrong_type_points_at_the_value() {
        let e = err("url: x\nargs: [a, [b]]\n");
        assert_eq!((e.pos, e.path.as_str()), (Pos { line: 2, col: 11 }, "args[1]"));
        let e = err("url: x\nstatus: 70000\n");
        assert_eq!(e.path, "status");
        assert!(e.message.contains("70000"), "{}", e.message);
    }

    #[test]
    fn missing_field_points_at_the_mapping() {
        let e = err("headers: {}\n");
        assert_eq!((e.pos, e.message.as_str()), (Pos { line: 1, col: 1 }, "missing field `url`"));
    }

    #[test]
    fn good_input_deserializes() {
        let p: Params = from_node(&parse("url: x\nstatus: 204\nheaders: {A: b}\n").unwrap()).unwrap();
        assert_eq!(p.status, Some(204));
        assert_eq!(p.headers["A"], "b");
    }
}
