//! The step-type reference behind `drctl explain` and `docs/steps.md`, built from the same JSON
//! Schema that `drctl plan schema` publishes (so from the structs that parse `with:`), the type's
//! declared outputs ([`OutputSpec`](crate::step::OutputSpec)), and its [`StepDocs`](crate::step::StepDocs). Types are said in plain words
//! ("list of {kind, name}", "duration such as 30s or 5m"), never as Rust type names.

mod render;

use serde::Serialize;
use serde_json::{Map, Value};

pub use render::{markdown, markdown_section, text};

use crate::plan::schema::DURATION_PATTERN;
use crate::step::{OutputType, Registry, StepKind};

/// Everything `drctl explain TYPE` says about one step type.
#[derive(Debug, Clone, Serialize)]
pub struct StepReference {
    /// The name plans use in `type:`.
    #[serde(rename = "type")]
    pub name: String,
    /// One sentence on what the type does.
    pub summary: String,
    /// A few sentences more.
    pub description: String,
    /// What the `with:` block as a whole requires, beyond each parameter.
    pub parameters_note: String,
    /// The `with:` parameters, nested ones as `alias.zone_id` or `workloads[].name`.
    pub parameters: Vec<Parameter>,
    /// Rules across parameters that the schema states ("exactly one of `alias` and `values`").
    pub rules: Vec<String>,
    /// A step of this type as it stands in a plan's step list.
    pub example: String,
    /// What a successful step hands to later steps (`{{ steps.ID.outputs.NAME }}`).
    pub outputs: Vec<OutputDoc>,
    /// How the step fails and what is retried; empty when nothing is special.
    pub failure: String,
}

/// One `with:` parameter.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Parameter {
    /// The key, with its parents' keys for nested parameters.
    pub name: String,
    /// The type in plain words.
    #[serde(rename = "type")]
    pub type_words: String,
    pub required: bool,
    /// The default the schema states, as a plan would write it.
    pub default: Option<String>,
    pub description: String,
    /// The values an enumerated parameter takes, with what each means when that is documented.
    pub values: Vec<AllowedValue>,
}

/// One value of an enumerated parameter.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AllowedValue {
    pub value: String,
    pub description: String,
}

/// One output of a step type.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OutputDoc {
    pub name: String,
    /// What the value parses as: string, integer, duration, boolean or reference.
    #[serde(rename = "type")]
    pub kind: OutputType,
    /// Whether a successful step may leave it out (templates then need a default).
    pub optional: bool,
    pub description: String,
}

/// The name and summary of every step type, by name.
pub fn index(registry: &Registry) -> Vec<(&'static str, &'static str)> {
    registry.kinds().map(|k| (k.name(), k.summary())).collect()
}

/// The reference of every step type, by name.
pub fn references(registry: &Registry) -> Vec<StepReference> {
    registry.kinds().map(reference).collect()
}

/// The reference of one step type.
pub fn reference(kind: &dyn StepKind) -> StepReference {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let root = kind.params_schema(&mut generator).to_value();
    let defs = generator.take_definitions(true);
    let schema = Schemas { defs: &defs };
    let params = schema.resolve(&root);
    let mut parameters = Vec::new();
    schema.collect_parameters(params, "", &mut parameters);
    let docs = kind.docs();
    let outputs = kind
        .outputs()
        .iter()
        .map(|o| OutputDoc {
            name: o.name.to_string(),
            kind: o.kind,
            optional: o.may_be_absent(),
            description: o.description.to_string(),
        })
        .collect();
    StepReference {
        name: kind.name().to_string(),
        summary: kind.summary().to_string(),
        description: docs.description.to_string(),
        parameters_note: params.get("description").and_then(Value::as_str).map(prose).unwrap_or_default(),
        parameters,
        rules: rules(params),
        example: example(kind.name(), docs.example),
        outputs,
        failure: docs.failure.to_string(),
    }
}

/// The step types whose names come closest to `word`: a likely typo of the whole name, or types
/// of which `word` is a part (`scale` → `kube.scale`).
pub fn suggestions(word: &str, registry: &Registry) -> Vec<&'static str> {
    let names = registry.names();
    let word = word.to_ascii_lowercase();
    let parts: Vec<&'static str> =
        names.iter().copied().filter(|n| n.split('.').any(|segment| segment == word) || n.contains(&word)).collect();
    if !parts.is_empty() && word.len() >= 3 {
        return parts;
    }
    let best = names.iter().map(|n| (edit_distance(&word, n), *n)).min_by_key(|&(d, _)| d);
    match best {
        Some((distance, name)) if distance <= 2.max(name.len() / 4) => vec![name],
        _ => Vec::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1).min(row[j] + 1).min(diagonal + usize::from(ca != cb));
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The example `with:` block inside a step of the type, as a plan's step list holds it.
fn example(type_name: &str, with: &str) -> String {
    let id = type_name.rsplit('.').next().unwrap_or(type_name).replace('_', "-");
    let mut text = format!("- id: {id}\n  type: {type_name}\n");
    if !with.trim().is_empty() {
        text.push_str("  with:\n");
        for line in with.trim_matches('\n').lines() {
            text.push_str(format!("    {line}").trim_end());
            text.push('\n');
        }
    }
    text
}

/// Doc-comment text as one paragraph per blank-line-separated block (schemars keeps line breaks).
fn prose(text: &str) -> String {
    text.split("\n\n").map(|p| p.split_whitespace().collect::<Vec<_>>().join(" ")).collect::<Vec<_>>().join("\n\n")
}

/// Rules across parameters stated by the schema's `oneOf`/`anyOf` of `required` and its
/// `dependentRequired`.
fn rules(params: &Map<String, Value>) -> Vec<String> {
    let mut rules = Vec::new();
    for (keyword, how) in [("oneOf", "exactly one of"), ("anyOf", "at least one of")] {
        let Some(alternatives) = params.get(keyword).and_then(Value::as_array) else { continue };
        let names: Vec<String> =
            alternatives.iter().filter_map(|a| a.get("required")?.as_array().map(|r| key_list(r, " and "))).collect();
        if names.len() == alternatives.len() && !names.is_empty() {
            rules.push(format!("{how} {}", or_list(&names, "and")));
        }
    }
    if let Some(dependent) = params.get("dependentRequired").and_then(Value::as_object) {
        for (key, needs) in dependent {
            if let Some(needs) = needs.as_array() {
                rules.push(format!("`{key}` needs {}", key_list(needs, " and ")));
            }
        }
    }
    rules
}

fn key_list(keys: &[Value], joiner: &str) -> String {
    keys.iter().filter_map(Value::as_str).map(|k| format!("`{k}`")).collect::<Vec<_>>().join(joiner)
}

/// `a`, `a and b`, `a, b and c` (or "or").
fn or_list(items: &[String], conjunction: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} {conjunction} {last}", rest.join(", ")),
    }
}

/// The JSON Schema definitions the parameters refer to.
struct Schemas<'a> {
    defs: &'a Map<String, Value>,
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

impl<'a> Schemas<'a> {
    /// The schema object `schema` stands for, following a `$ref`.
    fn resolve<'v>(&self, schema: &'v Value) -> &'v Map<String, Value>
    where
        'a: 'v,
    {
        let Some(object) = schema.as_object() else { return &EMPTY };
        match object.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/")) {
            Some(name) => self.defs.get(name).map(|d| self.resolve(d)).unwrap_or(&EMPTY),
            None => object,
        }
    }

    /// The alternatives of `schema` other than `null`: an optional parameter is documented by what
    /// it takes when given.
    fn alternatives<'v>(&self, schema: &'v Map<String, Value>) -> Option<Vec<&'v Map<String, Value>>>
    where
        'a: 'v,
    {
        let list = schema.get("anyOf").or_else(|| schema.get("oneOf"))?.as_array()?;
        Some(
            list.iter()
                .map(|s| self.resolve(s))
                .filter(|s| s.get("type").and_then(Value::as_str) != Some("null"))
                .collect(),
        )
    }

    /// `schema` itself, or its one non-null alternative.
    fn unwrap_optional<'v>(&self, schema: &'v Map<String, Value>) -> &'v Map<String, Value>
    where
        'a: 'v,
    {
        match self.alternatives(schema).as_deref() {
            Some([one]) if !schema.contains_key("properties") => one,
            _ => schema,
        }
    }

    fn collect_parameters(&self, object: &Map<String, Value>, prefix: &str, out: &mut Vec<Parameter>) {
        let Some(properties) = object.get("properties").and_then(Value::as_object) else { return };
        let required: Vec<&str> =
            object.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        for (key, property) in properties {
            let name = format!("{prefix}{key}");
            let own = property.as_object().unwrap_or(&EMPTY);
            let target = self.unwrap_optional(self.resolve(property));
            let described = own.get("description").or_else(|| target.get("description"));
            out.push(Parameter {
                name: name.clone(),
                type_words: self.words(property),
                required: required.contains(&key.as_str()),
                default: own.get("default").and_then(default_words),
                description: described.and_then(Value::as_str).map(prose).unwrap_or_default(),
                values: self.values(target),
            });
            // Nested parameters: an object's keys, or those of a list's items.
            if target.contains_key("properties") {
                self.collect_parameters(target, &format!("{name}."), out);
            } else if let Some(items) = target.get("items") {
                let items = self.unwrap_optional(self.resolve(items));
                if items.contains_key("properties") {
                    self.collect_parameters(items, &format!("{name}[]."), out);
                }
            }
        }
    }

    /// The values of an enumerated schema, with their descriptions.
    fn values(&self, schema: &Map<String, Value>) -> Vec<AllowedValue> {
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            return values.iter().map(|v| AllowedValue { value: scalar(v), description: String::new() }).collect();
        }
        let Some(alternatives) = self.alternatives(schema) else { return Vec::new() };
        if alternatives.is_empty() || !alternatives.iter().all(|a| a.contains_key("const")) {
            return Vec::new();
        }
        alternatives
            .iter()
            .map(|a| AllowedValue {
                value: scalar(&a["const"]),
                description: a.get("description").and_then(Value::as_str).map(prose).unwrap_or_default(),
            })
            .collect()
    }

    /// The type of `schema` in plain words.
    fn words(&self, schema: &Value) -> String {
        let schema = self.resolve(schema);
        let values = self.values(schema);
        if !values.is_empty() {
            let names: Vec<String> = values.into_iter().map(|v| v.value).collect();
            return format!("one of {}", or_list(&names, "or"));
        }
        if let Some(constant) = schema.get("const") {
            return scalar(constant);
        }
        if let Some(alternatives) = self.alternatives(schema) {
            let words: Vec<String> = alternatives.iter().map(|a| self.words(&Value::Object((*a).clone()))).collect();
            // `200` or `[200, 204]`: say "a list of them" rather than the item's type twice.
            if let [one, list] = words.as_slice()
                && *list == format!("list of {}", plural(one))
            {
                return format!("{one}, or a list of them");
            }
            return or_list(&words, "or");
        }
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect(),
            _ => Vec::new(),
        };
        let mut words: Vec<String> = types.iter().map(|t| self.type_words(t, schema)).collect();
        if words.len() > 1 {
            // "string, number or true/false", not "... or true or false".
            words.iter_mut().filter(|w| *w == "true or false").for_each(|w| *w = "true/false".to_string());
        }
        match words.as_slice() {
            [] => "any value (string, number, true or false, list or map)".to_string(),
            _ => or_list(&words, "or"),
        }
    }

    fn type_words(&self, json_type: &str, schema: &Map<String, Value>) -> String {
        match json_type {
            "string" if schema.get("pattern").and_then(Value::as_str) == Some(DURATION_PATTERN) => {
                "duration such as 30s or 5m".to_string()
            }
            "string" => "string".to_string(),
            "boolean" => "true or false".to_string(),
            "number" => "number".to_string(),
            "integer" => {
                let min = schema.get("minimum").and_then(Value::as_i64);
                let max = schema.get("maximum").and_then(Value::as_i64);
                match (min, max) {
                    (Some(min), Some(max)) => format!("whole number from {min} to {max}"),
                    (Some(0), None) => "whole number, 0 or more".to_string(),
                    (Some(min), None) => format!("whole number, at least {min}"),
                    (None, Some(max)) => format!("whole number up to {max}"),
                    (None, None) => "whole number".to_string(),
                }
            }
            "array" => {
                let item = schema.get("items").map(|i| self.words(i)).unwrap_or_else(|| "values".to_string());
                format!("list of {}", plural(&item))
            }
            "object" => {
                if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                    let keys: Vec<&str> = properties.keys().map(String::as_str).collect();
                    format!("{{{}}}", keys.join(", "))
                } else {
                    match schema.get("additionalProperties") {
                        Some(value @ Value::Object(_)) => format!("map of names to {}", plural(&self.words(value))),
                        _ => "map".to_string(),
                    }
                }
            }
            other => other.to_string(),
        }
    }
}

/// `strings`, `whole numbers`; anything longer is left as it is.
fn plural(words: &str) -> String {
    match words {
        "string" => "strings".to_string(),
        "whole number" => "whole numbers".to_string(),
        "number" => "numbers".to_string(),
        other => other.to_string(),
    }
}

/// A JSON scalar as a plan writes it: strings without quotes.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A stated default worth showing: not `null`, not an empty list or map.
fn default_words(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Array(a) if a.is_empty() => None,
        Value::Object(o) if o.is_empty() => None,
        Value::Array(a) => Some(format!("[{}]", a.iter().map(scalar).collect::<Vec<_>>().join(", "))),
        other => Some(scalar(other)),
    }
}

#[cfg(test)]
mod tests;
