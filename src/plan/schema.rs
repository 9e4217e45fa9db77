//! The plans' JSON Schema, for editors (`# yaml-language-server: $schema=...`). Step parameters come
//! from the same structs that parse them, so the schema cannot drift from the validator.

use serde_json::{Map, Value, json};

use crate::step::Registry;

/// The units the duration parser accepts (ms, s, m, h, d), so editors and the validator agree.
pub const DURATION_PATTERN: &str = r"^\s*([0-9]+(ms|s|m|h|d)\s*)+$";

/// The JSON Schema (draft 2020-12) of a plan file using the step types in `registry`.
pub fn plan_schema(registry: &Registry) -> Value {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let mut by_type = Vec::new();
    for kind in registry.kinds() {
        let mut params = kind.params_schema(&mut generator).to_value();
        allow_var_templates(&mut params);
        by_type.push(json!({
            "if": { "properties": { "type": { "const": kind.name() } }, "required": ["type"] },
            "then": { "properties": { "with": params } }
        }));
    }
    let mut defs: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    defs.values_mut().for_each(allow_var_templates);
    let mut duration = json!({ "type": "string", "pattern": DURATION_PATTERN, "description": "A duration such as 30s, 15m or 1h30m (units: ms, s, m, h, d; at most 366d)." });
    allow_var_templates(&mut duration);
    defs.insert("duration".into(), duration);
    defs.insert("pair".into(), json!({
        "type": "object", "additionalProperties": false, "required": ["primary", "secondary"],
        "properties": { "primary": { "type": "string", "minLength": 1 }, "secondary": { "type": "string", "minLength": 1 } }
    }));
    let names: Vec<&str> = registry.kinds().map(|k| k.name()).collect();
    let descriptions: Vec<String> = registry.kinds().map(|k| format!("{}: {}", k.name(), k.summary())).collect();
    defs.insert("step".into(), json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["id", "type"],
        "properties": {
            "id": { "type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]*$", "description": "Unique within its list; templates name it." },
            "name": { "type": "string", "description": "A title for people; defaults to the id." },
            "type": { "enum": names, "description": descriptions.join("\n") },
            "with": { "type": "object", "description": "The step type's parameters. Strings may use {{ steps.ID.outputs.NAME }}." },
            "after": { "oneOf": [ { "type": "string" }, { "type": "array", "items": { "type": "string" } } ], "description": "Steps this one runs after; others run concurrently." },
            "timeout": { "$ref": "#/$defs/duration", "description": "Budget for the whole step, retries included (default 5m; approval steps 30m)." },
            "retries": { "type": "integer", "minimum": 0, "maximum": 100, "description": "Further attempts after a retryable failure (default 2; approval steps are never retried)." },
            "marks_recovery": { "type": "boolean", "description": "RTO is measured to this step's success." },
            "on_failure": { "enum": ["stop", "continue"], "description": "What a failure does: `stop` fails the run (the default); `continue` journals it, warns, and runs the steps after it (the default of notify.webhook). Not allowed with marks_recovery." }
        },
        "allOf": by_type
    }));
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "drctl plan",
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "regions", "objectives", "failover", "failback"],
        "properties": {
            "name": { "type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]*$" },
            "description": { "type": "string" },
            "vars": {
                "type": "object",
                "description": "Values that differ between production and drills, used as {{ vars.NAME }}; --var NAME=VALUE, --vars FILE and a drill environment override them. Never secrets.",
                "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" },
                "additionalProperties": {
                    "oneOf": [
                        { "type": ["string", "integer", "number", "boolean"] },
                        {
                            "type": "object", "additionalProperties": false,
                            "properties": {
                                "value": { "type": ["string", "integer", "number", "boolean"], "description": "Production's value." },
                                "description": { "type": "string" }
                            }
                        }
                    ]
                }
            },
            "regions": { "$ref": "#/$defs/pair" },
            "kubernetes": { "$ref": "#/$defs/pair", "description": "Kubernetes contexts of the primary and DR clusters." },
            "aws": {
                "type": "object", "additionalProperties": false,
                "properties": {
                    "endpoint_url": { "type": "string", "pattern": "^https?://", "description": "Send AWS calls to an emulator (moto, LocalStack); --endpoint-url overrides." },
                    "profile": { "type": "string", "description": "The AWS shared-config profile." }
                }
            },
            "state": {
                "type": "object", "additionalProperties": false, "required": ["bucket"],
                "description": "Keep runs' journals and the plan's lock in S3, shared by every machine that runs the plan. Put the bucket in the region failed over to, or a third one.",
                "properties": {
                    "bucket": { "type": "string", "pattern": "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$" },
                    "prefix": { "type": "string", "description": "Key prefix, such as drctl/prod." },
                    "region": { "type": "string", "description": "The bucket's region." },
                    "profile": { "type": "string", "description": "The AWS shared-config profile for the state's credentials." },
                    "endpoint_url": { "type": "string", "pattern": "^https?://", "description": "Another S3 endpoint (moto, MinIO)." },
                    "lease": { "$ref": "#/$defs/duration", "description": "How long the lock's holder may go without renewing (default 60s)." }
                }
            },
            "objectives": {
                "type": "object", "additionalProperties": false, "required": ["rto", "rpo"],
                "properties": { "rto": { "$ref": "#/$defs/duration" }, "rpo": { "$ref": "#/$defs/duration" } }
            },
            "defaults": {
                "type": "object", "additionalProperties": false,
                "properties": { "timeout": { "$ref": "#/$defs/duration" }, "retries": { "type": "integer", "minimum": 0, "maximum": 100 } }
            },
            "failover": { "type": "array", "minItems": 1, "items": { "$ref": "#/$defs/step" } },
            "failback": { "type": "array", "minItems": 1, "items": { "$ref": "#/$defs/step" } }
        },
        "$defs": defs
    })
}

/// A whole-value `{{ vars.NAME }}`: the plan variable's value replaces it, with its type, before
/// the plan is checked.
const VAR_TEMPLATE_PATTERN: &str = r"^\{\{\s*vars\.[A-Za-z_][A-Za-z0-9_]*\s*\}\}$";

/// Lets every number, boolean and duration in `schema` also be written as `{{ vars.NAME }}`.
fn allow_var_templates(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    let typed = matches!(map.get("type").and_then(Value::as_str), Some("integer" | "number" | "boolean"));
    let duration = map.get("pattern").and_then(Value::as_str) == Some(DURATION_PATTERN);
    if typed || duration {
        let original = Value::Object(std::mem::take(map));
        let description = original.get("description").cloned();
        map.insert(
            "anyOf".into(),
            json!([original, { "type": "string", "pattern": VAR_TEMPLATE_PATTERN, "description": "A plan variable." }]),
        );
        if let Some(d) = description {
            map.insert("description".into(), d);
        }
        return;
    }
    map.values_mut().for_each(|v| match v {
        Value::Array(items) => items.iter_mut().for_each(allow_var_templates),
        other => allow_var_templates(other),
    });
}
