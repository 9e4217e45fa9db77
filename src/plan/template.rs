//! Templates in step parameters: `{{ steps.ID.outputs.NAME }}`, `{{ plan.name }}`,
//! `{{ plan.regions.primary }}`, `{{ plan.regions.secondary }}`, `{{ plan.kubernetes.primary }}`,
//! `{{ plan.kubernetes.secondary }}`, `{{ run.id }}`, `{{ run.direction }}`, and `{{ env.NAME }}` (an
//! environment variable of the drctl process). `{{ vars.NAME }}` (plan variables) is replaced when
//! the plan loads, before these are checked (see `plan::vars`).
//! Only string values are templated; `{{` written literally is `{{ "{{" }}`.
//!
//! A step output that may be absent (its type declares it optional: a lag that could not be
//! measured, a record that did not exist) needs a default, used when the output is absent:
//! `{{ steps.ID.outputs.NAME | default("TEXT") }}` (TEXT may be empty; it cannot hold `"` or `}}`).

use std::collections::BTreeMap;

use super::yaml::{Node, Value};

/// A reference inside `{{ }}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// An output of an earlier step, with the text to use when the step left it out.
    StepOutput { step: String, output: String, default: Option<String> },
    /// A plan or run value, such as `plan.regions.primary` or `run.id`.
    Variable(String),
    /// An environment variable of the drctl process.
    Env(String),
    /// A literal (`{{ "{{" }}`).
    Literal(String),
}

/// The plan and run values a template may name.
pub const VARIABLES: &[&str] = &[
    "plan.name",
    "plan.regions.primary",
    "plan.regions.secondary",
    "plan.kubernetes.primary",
    "plan.kubernetes.secondary",
    "run.id",
    "run.direction",
];

/// One piece of a parsed template string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Ref(Reference),
}

/// Splits a string into text and references; errors say what is wrong with the expression.
fn pieces(text: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            out.push(Piece::Text(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| "`{{` is not closed by `}}`".to_string())?;
        out.push(Piece::Ref(reference(after[..end].trim())?));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_string()));
    }
    Ok(out)
}

fn reference(expr: &str) -> Result<Reference, String> {
    if let Some(quoted) = expr.strip_prefix('"').and_then(|e| e.strip_suffix('"')) {
        return Ok(Reference::Literal(quoted.to_string()));
    }
    if let Some((name, filter)) = expr.split_once('|') {
        let default = default_filter(filter.trim()).ok_or_else(|| {
            format!("`{{{{ {expr} }}}}`: after `|` only `default(\"TEXT\")` is allowed, such as `{{{{ {} | default(\"\") }}}}`", name.trim())
        })?;
        return match reference(name.trim())? {
            Reference::StepOutput { step, output, default: None } => {
                Ok(Reference::StepOutput { step, output, default: Some(default) })
            }
            _ => Err(format!("`{{{{ {expr} }}}}`: a default applies only to a step output (`steps.ID.outputs.NAME`)")),
        };
    }
    let parts: Vec<&str> = expr.split('.').collect();
    match parts.as_slice() {
        ["steps", step, "outputs", output] if !step.is_empty() && !output.is_empty() => {
            Ok(Reference::StepOutput { step: step.to_string(), output: output.to_string(), default: None })
        }
        ["env", name] if is_env_name(name) => Ok(Reference::Env(name.to_string())),
        ["env", ..] => Err(format!(
            "`{{{{ {expr} }}}}` is not an environment variable; write `{{{{ env.NAME }}}}` with letters, digits and `_`"
        )),
        ["steps", ..] => {
            Err(format!("`{{{{ {expr} }}}}` is not a step output; write `{{{{ steps.STEP_ID.outputs.NAME }}}}`"))
        }
        _ if VARIABLES.contains(&expr) => Ok(Reference::Variable(expr.to_string())),
        _ => Err(format!(
            "`{{{{ {expr} }}}}` names nothing a template can use; use steps.ID.outputs.NAME, env.NAME or one of: {}",
            VARIABLES.join(", ")
        )),
    }
}

/// The TEXT of `default("TEXT")`.
fn default_filter(filter: &str) -> Option<String> {
    let argument = filter.strip_prefix("default")?.trim_start().strip_prefix('(')?.strip_suffix(')')?.trim();
    let text = argument.strip_prefix('"')?.strip_suffix('"')?;
    (!text.contains('"')).then(|| text.to_string())
}

fn is_env_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Every reference in the strings under `node`, each with the string node that holds it, or the
/// first syntax error per string.
pub fn references(node: &Node) -> Vec<(&Node, Result<Reference, String>)> {
    let mut found = Vec::new();
    visit_strings(node, &mut |string_node, text| match pieces(text) {
        Ok(ps) => found.extend(ps.into_iter().filter_map(|p| match p {
            Piece::Ref(r) => Some((string_node, Ok(r))),
            Piece::Text(_) => None,
        })),
        Err(e) => found.push((string_node, Err(e))),
    });
    found
}

fn visit_strings<'a>(node: &'a Node, f: &mut dyn FnMut(&'a Node, &'a str)) {
    match &node.value {
        Value::Str(s) => f(node, s),
        Value::Seq(items) => items.iter().for_each(|n| visit_strings(n, f)),
        Value::Map(entries) => entries.iter().for_each(|(_, v)| visit_strings(v, f)),
        _ => {}
    }
}

/// Values for rendering: variables and the outputs of finished steps.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub variables: BTreeMap<String, String>,
    pub outputs: BTreeMap<String, BTreeMap<String, String>>,
}

impl Scope {
    fn lookup(&self, r: &Reference) -> Result<String, String> {
        match r {
            Reference::Literal(text) => Ok(text.clone()),
            Reference::Env(name) => {
                std::env::var(name).map_err(|_| format!("environment variable `{name}` is not set"))
            }
            Reference::Variable(name) => {
                self.variables.get(name).cloned().ok_or_else(|| format!("`{name}` has no value in this plan"))
            }
            Reference::StepOutput { step, output, default } => self
                .outputs
                .get(step)
                .and_then(|o| o.get(output))
                .or(default.as_ref())
                .cloned()
                .ok_or_else(|| format!("step `{step}` has no output `{output}`")),
        }
    }
}

/// Renders every string under `node`. With `placeholders`, an unknown value renders as
/// `<steps.ID.outputs.NAME>` instead of failing (for `--dry-run`).
pub fn render(node: &Node, scope: &Scope, placeholders: bool) -> Result<Node, String> {
    let value = match &node.value {
        Value::Str(s) => {
            let mut out = String::new();
            for piece in pieces(s)? {
                match piece {
                    Piece::Text(t) => out.push_str(&t),
                    Piece::Ref(r) => match scope.lookup(&r) {
                        Ok(v) => out.push_str(&v),
                        Err(_) if placeholders => out.push_str(&placeholder(&r)),
                        Err(e) => return Err(e),
                    },
                }
            }
            Value::Str(out)
        }
        Value::Seq(items) => {
            Value::Seq(items.iter().map(|n| render(n, scope, placeholders)).collect::<Result<_, _>>()?)
        }
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), render(v, scope, placeholders)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    };
    Ok(Node { value, pos: node.pos })
}

fn placeholder(r: &Reference) -> String {
    match r {
        Reference::StepOutput { step, output, .. } => format!("<steps.{step}.outputs.{output}>"),
        Reference::Variable(name) => format!("<{name}>"),
        Reference::Env(name) => format!("<env.{name}>"),
        Reference::Literal(text) => text.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::yaml::parse;

    #[test]
    fn parses_references_and_text() {
        let ps = pieces("db={{ steps.promote.outputs.endpoint }}:{{run.id}}").unwrap();
        assert_eq!(ps.len(), 4);
        assert_eq!(
            ps[1],
            Piece::Ref(Reference::StepOutput { step: "promote".into(), output: "endpoint".into(), default: None })
        );
        assert_eq!(ps[3], Piece::Ref(Reference::Variable("run.id".into())));
    }

    #[test]
    fn syntax_errors_say_what_to_write() {
        assert!(pieces("{{ steps.a.outputs.b").unwrap_err().contains("not closed"));
        assert!(pieces("{{ steps.a.b }}").unwrap_err().contains("steps.STEP_ID.outputs.NAME"));
        assert!(pieces("{{ envy.HOME }}").unwrap_err().contains("names nothing"));
        assert!(pieces("{{ env.HO-ME }}").unwrap_err().contains("not an environment variable"));
        assert_eq!(pieces("{{ env.HOME }}").unwrap(), vec![Piece::Ref(Reference::Env("HOME".into()))]);
    }

    #[test]
    fn renders_nested_strings_and_literals() {
        let node =
            parse("url: 'http://{{ steps.a.outputs.host }}/x'\nlist: ['{{ \"{{\" }}', '{{ plan.name }}']\n").unwrap();
        let mut scope = Scope::default();
        scope.variables.insert("plan.name".into(), "us-west-2".into());
        scope.outputs.entry("a".into()).or_default().insert("host".into(), "db.local".into());
        let out = render(&node, &scope, false).unwrap();
        assert_eq!(out.get("url").unwrap().as_str(), Some("http://db.local/x"));
        let Value::Seq(items) = &out.get("list").unwrap().value else { panic!() };
        assert_eq!(items[0].as_str(), Some("{{"));
        assert_eq!(items[1].as_str(), Some("us-west-2"));
    }

    #[test]
    fn dry_run_renders_placeholders() {
        let node = parse("x: '{{ steps.a.outputs.host }}'").unwrap();
        assert!(render(&node, &Scope::default(), false).is_err());
        let out = render(&node, &Scope::default(), true).unwrap();
        assert_eq!(out.get("x").unwrap().as_str(), Some("<steps.a.outputs.host>"));
    }

    #[test]
    fn a_default_stands_in_for_an_absent_output_only() {
        let lag = r#"lag={{ steps.p.outputs.lag_s | default("n/a") }}"#;
        assert_eq!(
            pieces(lag).unwrap()[1],
            Piece::Ref(Reference::StepOutput { step: "p".into(), output: "lag_s".into(), default: Some("n/a".into()) })
        );
        let node = parse(&format!("x: '{lag}'\ny: '{{{{ steps.p.outputs.lag_s|default(\"\") }}}}'")).unwrap();
        let mut scope = Scope::default();
        scope.outputs.insert("p".into(), Default::default());
        let out = render(&node, &scope, false).unwrap();
        assert_eq!(out.get("x").unwrap().as_str(), Some("lag=n/a"));
        assert_eq!(out.get("y").unwrap().as_str(), Some(""));
        scope.outputs.get_mut("p").unwrap().insert("lag_s".into(), "12".into());
        assert_eq!(render(&node, &scope, false).unwrap().get("x").unwrap().as_str(), Some("lag=12"));
    }

    #[test]
    fn a_default_is_written_one_way_and_only_on_step_outputs() {
        for bad in [
            "{{ steps.a.outputs.b | default(n/a) }}",
            "{{ steps.a.outputs.b | upper }}",
            "{{ steps.a.outputs.b | default(\"x\") | default(\"y\") }}",
        ] {
            assert!(pieces(bad).unwrap_err().contains("only `default(\"TEXT\")`"), "{bad}");
        }
        let on_variable = pieces("{{ run.id | default(\"x\") }}").unwrap_err();
        assert!(on_variable.contains("applies only to a step output"), "{on_variable}");
    }
}
