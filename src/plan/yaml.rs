//! A YAML tree that remembers where every node came from, so each plan error can name its line and
//! column. Built from saphyr's event parser with the YAML 1.2 core schema for plain scalars.

use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// A 1-based line and column in the source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

impl Pos {
    fn of(span: &Span) -> Pos {
        Pos { line: span.start.line(), col: span.start.col() + 1 }
    }
}

/// A YAML value with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

/// The kinds of YAML value a plan can hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in source order; duplicates are kept so validation can report them.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The kind of value, as an error message names it ("a string", "a list").
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The string value, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The entries, if this is a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value under `key`, if this is a mapping that has it (the first one when duplicated).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
    }

    /// The value as JSON (mapping keys become strings), for schema checks and JSON output.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| {
                        let key = match &k.value {
                            Value::Str(s) => s.clone(),
                            _ => k.to_json().to_string(),
                        };
                        (key, v.to_json())
                    })
                    .collect(),
            ),
        }
    }

    /// A mapping with no entries, at `pos` (for a step without `with:`).
    pub fn empty_map(pos: Pos) -> Node {
        Node { value: Value::Map(Vec::new()), pos }
    }
}

/// A file that is not well-formed YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Deeper nesting than any plan needs; the limit keeps hostile input from exhausting the stack.
const MAX_DEPTH: usize = 64;
/// What aliases may add to the tree, in bytes, as a multiple of the file's size ("billion laughs"
/// input, or one large string aliased thousands of times, would otherwise take gigabytes)...
const ALIAS_BUDGET_PER_SOURCE_BYTE: usize = 10;
/// ...but never less than this, so small plans may use anchors freely.
const ALIAS_BUDGET_FLOOR: usize = 8 << 20;

/// Parses one YAML document. An empty file is `Null`.
pub fn parse(source: &str) -> Result<Node, SyntaxError> {
    let builder = build(source, Builder::default())?;
    Ok(builder.root.unwrap_or(Node { value: Value::Null, pos: Pos { line: 1, col: 1 } }))
}

/// Parses every document of a multi-document stream (Kubernetes manifests separated by `---`).
/// Empty documents are left out.
pub fn parse_documents(source: &str) -> Result<Vec<Node>, SyntaxError> {
    let builder = build(source, Builder { multi_document: true, ..Builder::default() })?;
    Ok(builder.documents_done)
}

/// Feeds `source`'s parser events to `builder` until it has what it wants.
fn build(source: &str, mut builder: Builder) -> Result<Builder, SyntaxError> {
    builder.alias_budget = (source.len().saturating_mul(ALIAS_BUDGET_PER_SOURCE_BYTE)).max(ALIAS_BUDGET_FLOOR);
    let mut parser = Parser::new_from_str(source);
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| {
            let error = SyntaxError {
                pos: Pos { line: e.marker().line(), col: e.marker().col() + 1 },
                message: e.info().to_string(),
            };
            unclosed_flow(source, &builder.stack, &error).unwrap_or(error)
        })?;
        if builder.push(event, &span)? {
            break;
        }
    }
    Ok(builder)
}

/// An error the parser notices only after a `[` or `{` was left open (at the next line's token),
/// blamed on the bracket that is not closed, as a reader would look for it.
fn unclosed_flow(source: &str, open: &[Open], error: &SyntaxError) -> Option<SyntaxError> {
    let innermost = open.last()?;
    let at = innermost.node.pos;
    let line = source.lines().nth(at.line.checked_sub(1)?)?;
    let bracket = line.chars().nth(at.col.checked_sub(1)?)?;
    let close = match bracket {
        '[' => ']',
        '{' => '}',
        _ => return None,
    };
    // Only when the parser missed the closing bracket, past the bracket's line: on its own line
    // the parser's place is right.
    let missed_close =
        ["expected ','", "indentation in flow", "placement of ':'"].iter().any(|m| error.message.contains(m));
    if !missed_close || error.pos.line <= at.line {
        return None;
    }
    let what = if close == ']' { "list" } else { "mapping" };
    Some(SyntaxError {
        pos: at,
        message: format!(
            "this `{bracket}` is not closed: the flow {what} it opens needs a `{close}` (the parser said: {})",
            error.message
        ),
    })
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    root: Option<Node>,
    /// Anchored nodes with what a copy of each costs in memory.
    anchors: HashMap<usize, (Node, usize)>,
    documents: usize,
    /// Bytes that alias copies have added so far, and how many they may add.
    alias_bytes: usize,
    alias_budget: usize,
    /// Accept several documents, collected in `documents_done`.
    multi_document: bool,
    documents_done: Vec<Node>,
}

/// A collection being built, with the anchor it will be registered under.
struct Open {
    node: Node,
    anchor: usize,
    pending_key: Option<Node>,
}

impl Builder {
    /// Takes one event; returns true at the end of the stream.
    fn push(&mut self, event: Event<'_>, span: &Span) -> Result<bool, SyntaxError> {
        let pos = Pos::of(span);
        match event {
            Event::StreamEnd => return Ok(true),
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 && !self.multi_document {
                    return Err(SyntaxError {
                        pos,
                        message: "a plan file holds one YAML document; remove the extra `---` section or move it to its own file".into(),
                    });
                }
            }
            Event::DocumentEnd => {
                if self.multi_document {
                    self.anchors.clear();
                    self.documents_done.extend(self.root.take().filter(|r| r.value != Value::Null));
                }
            }
            Event::Nothing | Event::StreamStart => {}
            Event::Scalar(text, style, anchor, _tag) => {
                let node = Node { value: scalar(&text, style), pos };
                self.register(anchor, &node)?;
                self.attach(node)?;
            }
            Event::Alias(id) => {
                let cost = self.anchors.get(&id).map(|(_, cost)| *cost).ok_or_else(|| SyntaxError {
                    pos,
                    message: "this alias names an anchor that is not defined before it".into(),
                })?;
                // Checked before copying: the copies themselves are what would exhaust memory.
                self.spend(cost, pos)?;
                let node = Node { pos, ..self.anchors[&id].0.clone() };
                self.attach(node)?;
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    return Err(SyntaxError { pos, message: format!("nesting deeper than {MAX_DEPTH} levels") });
                }
                let value = if matches!(event, Event::SequenceStart(..)) {
                    Value::Seq(Vec::new())
                } else {
                    Value::Map(Vec::new())
                };
                self.stack.push(Open { node: Node { value, pos }, anchor, pending_key: None });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let open = self.stack.pop().expect("the parser balances collection events");
                self.register(open.anchor, &open.node)?;
                self.attach(open.node)?;
            }
        }
        Ok(false)
    }

    /// Keeps a copy of an anchored node for its aliases; the copy counts against the alias budget
    /// too, so nested anchors cannot multiply the file either.
    fn register(&mut self, anchor: usize, node: &Node) -> Result<(), SyntaxError> {
        if anchor != 0 {
            let cost = memory_cost(node);
            self.spend(cost, node.pos)?;
            self.anchors.insert(anchor, (node.clone(), cost));
        }
        Ok(())
    }

    /// Counts `cost` bytes of copies against the budget; `pos` is the alias or anchor to blame.
    fn spend(&mut self, cost: usize, pos: Pos) -> Result<(), SyntaxError> {
        self.alias_bytes = self.alias_bytes.saturating_add(cost);
        if self.alias_bytes <= self.alias_budget {
            return Ok(());
        }
        Err(SyntaxError {
            pos,
            message: format!(
                "aliases here expand to more than {} MiB (each alias repeats all its anchor holds); write the \
                 values out or use fewer aliases",
                self.alias_budget >> 20
            ),
        })
    }

    /// Puts a finished node into the collection being built, or makes it the root.
    fn attach(&mut self, node: Node) -> Result<(), SyntaxError> {
        let Some(open) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        match &mut open.node.value {
            Value::Seq(items) => items.push(node),
            Value::Map(entries) => match open.pending_key.take() {
                None => {
                    if matches!(node.value, Value::Seq(_) | Value::Map(_)) {
                        return Err(SyntaxError {
                            pos: node.pos,
                            message: "a mapping key must be a plain value, not a list or mapping".into(),
                        });
                    }
                    open.pending_key = Some(node);
                }
                Some(key) => entries.push((key, node)),
            },
            _ => unreachable!("only collections are opened"),
        }
        Ok(())
    }
}

/// About what a copy of `node` takes in memory: every node, and the text of every string.
fn memory_cost(node: &Node) -> usize {
    std::mem::size_of::<Node>()
        + match &node.value {
            Value::Str(s) => s.len(),
            Value::Seq(items) => items.iter().map(memory_cost).sum(),
            Value::Map(entries) => entries.iter().map(|(k, v)| memory_cost(k) + memory_cost(v)).sum(),
            _ => 0,
        }
}

/// Resolves a scalar with the YAML 1.2 core schema: quoted and block scalars are strings.
fn scalar(text: &str, style: ScalarStyle) -> Value {
    if style != ScalarStyle::Plain {
        return Value::Str(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = parse_int(text) {
        return Value::Int(n);
    }
    let looks_numeric = text.bytes().next().is_some_and(|b| b.is_ascii_digit() || b"+-.".contains(&b));
    if looks_numeric
        && text.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
        && let Ok(f) = text.parse::<f64>()
    {
        return Value::Float(f);
    }
    match text {
        ".inf" | "+.inf" | ".Inf" | "+.Inf" => Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" => Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" => Value::Float(f64::NAN),
        _ => Value::Str(text.to_string()),
    }
}

fn parse_int(text: &str) -> Option<i64> {
    if let Some(hex) = text.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok();
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8).ok();
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let root = parse("a: 1\nb:\n  - x\n  - 'y'\n").unwrap();
        let b = root.get("b").unwrap();
        let Value::Seq(items) = &b.value else { panic!("not a list") };
        assert_eq!(items[1].pos, Pos { line: 4, col: 5 });
        assert_eq!(items[1].value, Value::Str("y".into()));
        assert_eq!(root.get("a").unwrap().value, Value::Int(1));
    }

    #[test]
    fn manifests_hold_several_documents() {
        let docs = parse_documents("a: 1\n---\n---\nb: &x 2\nc: *x\n").unwrap();
        assert_eq!(docs.len(), 2, "the empty document is left out");
        assert_eq!(docs[1].get("c").unwrap().value, Value::Int(2));
        assert_eq!(docs[1].pos.line, 4);
        assert!(parse("a: 1\n---\nb: 2\n").is_err(), "a plan is one document");
    }

    #[test]
    fn core_schema_scalars() {
        assert_eq!(scalar("~", ScalarStyle::Plain), Value::Null);
        assert_eq!(scalar("true", ScalarStyle::Plain), Value::Bool(true));
        assert_eq!(scalar("yes", ScalarStyle::Plain), Value::Str("yes".into()));
        assert_eq!(scalar("0x1f", ScalarStyle::Plain), Value::Int(31));
        assert_eq!(scalar("1.5", ScalarStyle::Plain), Value::Float(1.5));
        assert_eq!(scalar("15m", ScalarStyle::Plain), Value::Str("15m".into()));
        assert_eq!(scalar("200", ScalarStyle::DoubleQuoted), Value::Str("200".into()));
    }

    #[test]
    fn aliases_copy_the_anchored_node() {
        let root = parse("a: &x {k: v}\nb: *x\n").unwrap();
        assert_eq!(root.get("b").unwrap().get("k").unwrap().as_str(), Some("v"));
    }

    #[test]
    fn hostile_input_is_an_error_not_a_crash() {
        let deep = "[".repeat(500);
        assert!(parse(&deep).is_err());
        let mut laughs = "a: &a [x,x,x,x,x,x,x,x,x,x]\n".to_string();
        for (name, previous) in [("b", "a"), ("c", "b"), ("d", "c"), ("e", "d"), ("f", "e"), ("g", "f")] {
            laughs.push_str(&format!("{name}: &{name} [{}]\n", vec![format!("*{previous}"); 10].join(",")));
        }
        assert!(parse(&laughs).unwrap_err().message.contains("MiB"));
        assert!(parse("a: 1\n---\nb: 2\n").unwrap_err().message.contains("one YAML document"));
    }

    #[test]
    fn one_large_string_aliased_many_times_is_refused_at_the_alias() {
        // 1 MiB of text aliased 3,000 times would be 3 GB of copies.
        let big = "x".repeat(1 << 20);
        let aliases = vec!["*b"; 3000].join(", ");
        let source = format!("big: &b \"{big}\"\nlist: [{aliases}]\n");
        let e = parse(&source).unwrap_err();
        assert!(e.message.contains("aliases here expand to more than 10 MiB"), "{}", e.message);
        // The alias that crosses 10 times the file's size: the 11th (the anchor's own copy is the 1st).
        assert_eq!(e.pos, Pos { line: 2, col: 8 + 4 * 9 });
        // A few copies are fine.
        let few = format!("big: &b \"{big}\"\nlist: [{}]\n", ["*b"; 5].join(", "));
        assert!(parse(&few).is_ok());
    }
}
