//! Reading a plan's `vars:`, applying the overrides, and substituting `{{ vars.NAME }}` in the rest
//! of the plan before it is checked, so every later check sees the values the run will use.

use std::collections::BTreeMap;

use super::{Overrides, ResolvedVar, Scalar, VarSource, is_var_name, looks_like_credential};
use crate::plan::diagnostic::Diagnostic;
use crate::plan::suggest::closest;
use crate::plan::yaml::{Node, Pos, Value};

const VAR_KEYS: &[&str] = &["value", "description"];

/// One declaration under `vars:`.
struct Declared<'n> {
    name: String,
    key: &'n Node,
    value: Option<&'n Node>,
    description: Option<String>,
    /// Its declaration has a reported mistake: no follow-on "has no value".
    broken: bool,
}

/// The plan `root` with every `{{ vars.NAME }}` replaced, and the resolved variables in
/// declaration order; problems go to `diags`.
pub fn resolve(root: &Node, overrides: &Overrides, diags: &mut Vec<Diagnostic>) -> (Node, Vec<ResolvedVar>) {
    let vars_node = root.get("vars");
    let declared = vars_node.map(|n| declarations(n, diags)).unwrap_or_default();
    let mut resolved: Vec<ResolvedVar> = Vec::new();
    for d in &declared {
        let from_plan = d.value.and_then(|v| Scalar::of(v).ok()).map(|value| (value, VarSource::Plan, None));
        let last = overrides.0.iter().rev().find(|o| o.name == d.name);
        let chosen = match last {
            Some(o) => Some((o.value.clone(), o.source.clone(), Some(o.origin.as_str()))),
            None => from_plan,
        };
        let Some((value, source, origin)) = chosen else {
            if d.broken {
                continue;
            }
            diags.push(
                Diagnostic::new(d.key.pos, format!("vars.{}", d.name), format!("var `{}` has no value", d.name)).help(
                    format!(
                        "give it `value:` here (production's value), or pass --var {}=VALUE or --vars FILE; a drill \
                         environment supplies it from env.json's `vars`",
                        d.name
                    ),
                ),
            );
            continue;
        };
        if let Scalar::Str(text) = &value
            && let Some(why) = looks_like_credential(text)
        {
            let (pos, by) = match origin {
                Some(origin) => (d.key.pos, format!(" (set by {origin})")),
                None => (d.value.map_or(d.key.pos, |v| v.pos), String::new()),
            };
            diags.push(
                Diagnostic::new(pos, format!("vars.{}", d.name), format!("var `{}` looks like a secret{by}: {why}", d.name))
                    .help("secrets never go in vars (they are journaled and shown); keep the secret in an environment variable the step reads (`url_env`, `dsn_env`) or in Secrets Manager (`${secret:...}`)"),
            );
            continue;
        }
        resolved.push(ResolvedVar { name: d.name.clone(), value, source, description: d.description.clone() });
    }
    let names: Vec<&str> = declared.iter().map(|d| d.name.as_str()).collect();
    // A drill environment serves several plans: what it offers and this plan does not declare is
    // not a mistake. A file or the command line naming an undeclared variable is.
    for o in overrides.0.iter().filter(|o| !matches!(o.source, VarSource::Environment { .. })) {
        if !names.contains(&o.name.as_str()) {
            let at = vars_node.map_or(root.pos, |n| n.pos);
            diags.push(
                Diagnostic::new(
                    at,
                    "vars",
                    format!("{} overrides `{}`, which the plan does not declare", o.origin, o.name),
                )
                .help(suggestion(&o.name, &names)),
            );
        }
    }
    let values: BTreeMap<&str, &Scalar> = resolved.iter().map(|v| (v.name.as_str(), &v.value)).collect();
    let mut substituted = root.clone();
    if let Value::Map(entries) = &mut substituted.value {
        for (key, value) in entries.iter_mut() {
            let Some(k) = key.as_str() else { continue };
            if k == "vars" {
                continue;
            }
            *value = substitute(value, k, &values, &names, diags);
        }
    }
    (substituted, resolved)
}

fn suggestion(name: &str, names: &[&str]) -> String {
    let declared = if names.is_empty() { "none".to_string() } else { names.join(", ") };
    match closest(name, names.iter().copied()) {
        Some(s) => format!("did you mean `{s}`? Declared vars: {declared}"),
        None => format!("declare it under `vars:` first; declared vars: {declared}"),
    }
}

fn declarations<'n>(node: &'n Node, diags: &mut Vec<Diagnostic>) -> Vec<Declared<'n>> {
    let Some(entries) = node.as_map() else {
        if node.value != Value::Null {
            diags.push(
                Diagnostic::new(node.pos, "vars", format!("expected a mapping of variables, found {}", node.kind()))
                    .help("write each variable as `NAME: {value: ..., description: ...}` under `vars:`"),
            );
        }
        return Vec::new();
    };
    let mut out: Vec<Declared> = Vec::new();
    for (key, value) in entries {
        let Some(name) = key.as_str().filter(|n| is_var_name(n)) else {
            diags.push(
                Diagnostic::new(
                    key.pos,
                    "vars",
                    "a variable name is letters, digits and `_`, not starting with a digit",
                )
                .help("rename it, such as `api_zone_id`"),
            );
            continue;
        };
        let path = format!("vars.{name}");
        if let Some(first) = out.iter().find(|d| d.name == name) {
            diags.push(
                Diagnostic::new(
                    key.pos,
                    &path,
                    format!("var `{name}` is declared twice (first at line {})", first.key.pos.line),
                )
                .help("keep one of them"),
            );
            continue;
        }
        let before = diags.len();
        let (value_node, description) = match &value.value {
            Value::Map(fields) => {
                for (k, _) in fields {
                    let field = k.as_str().unwrap_or("");
                    if !VAR_KEYS.contains(&field) {
                        let help = match closest(field, VAR_KEYS.iter().copied()) {
                            Some(s) => format!("did you mean `{s}`? Allowed here: value, description"),
                            None => "allowed here: value, description".to_string(),
                        };
                        diags.push(Diagnostic::new(k.pos, &path, format!("unknown key `{field}`")).help(help));
                    }
                }
                let description = value.get("description").and_then(Node::as_str).map(str::to_string);
                (value.get("value").filter(|v| v.value != Value::Null), description)
            }
            Value::Null => (None, None),
            _ => (Some(value), None),
        };
        if let Some(v) = value_node
            && let Err(kind) = Scalar::of(v)
        {
            diags.push(
                Diagnostic::new(
                    v.pos,
                    format!("{path}.value"),
                    format!("a var's value is a string, number or boolean, found {kind}"),
                )
                .help("quote it if it is text; lists and mappings cannot be vars"),
            );
        }
        let broken = diags.len() > before;
        out.push(Declared { name: name.to_string(), key, value: value_node, description, broken });
    }
    out
}

/// `node` with `{{ vars.NAME }}` replaced: a string that is exactly one such template takes the
/// value with its type; elsewhere the value's text is spliced in. Other templates are kept.
fn substitute(
    node: &Node,
    path: &str,
    values: &BTreeMap<&str, &Scalar>,
    names: &[&str],
    diags: &mut Vec<Diagnostic>,
) -> Node {
    let value = match &node.value {
        Value::Str(text) if text.contains("{{") => return substitute_str(text, node.pos, path, values, names, diags),
        Value::Seq(items) => Value::Seq(
            items
                .iter()
                .enumerate()
                .map(|(i, n)| substitute(n, &format!("{path}[{i}]"), values, names, diags))
                .collect(),
        ),
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, v)| {
                    let child = format!("{path}.{}", k.as_str().unwrap_or("?"));
                    (k.clone(), substitute(v, &child, values, names, diags))
                })
                .collect(),
        ),
        other => other.clone(),
    };
    Node { value, pos: node.pos }
}

fn substitute_str(
    text: &str,
    pos: Pos,
    path: &str,
    values: &BTreeMap<&str, &Scalar>,
    names: &[&str],
    diags: &mut Vec<Diagnostic>,
) -> Node {
    let mut out = String::new();
    let mut rest = text;
    let mut whole: Option<Scalar> = None;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        // An unclosed `{{` is the template checker's to report; leave the text as it is.
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let expr = after[..end].trim();
        match expr.strip_prefix("vars.").or((expr == "vars").then_some("")) {
            Some(name) => match values.get(name) {
                Some(value) => {
                    if start == 0 && after[end + 2..].is_empty() && out.is_empty() {
                        whole = Some((*value).clone());
                    }
                    out.push_str(&value.to_string());
                }
                None if names.contains(&name) => out.push_str(&format!("<vars.{name}>")), // reported already
                None => diags.push(
                    Diagnostic::new(pos, path, format!("`{{{{ {expr} }}}}` names no variable of this plan"))
                        .help(suggestion(name, names)),
                ),
            },
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    match whole {
        Some(scalar) => scalar.node(pos),
        None => Node { value: Value::Str(out), pos },
    }
}
