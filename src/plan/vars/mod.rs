//! Plan variables: what differs between production and a drill environment (a hosted zone's id,
//! a replica's identifier, a health URL, a tuned attempt count) is declared once under `vars:`,
//! used as `{{ vars.NAME }}`, and overridden for a run by a drill environment (`env.json`'s
//! `vars`), a file (`--vars FILE.yaml`) or the command line (`--var NAME=VALUE`), later ones
//! winning. The resolved values and where each came from are journaled with the run.

mod credential;
mod resolve;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use credential::looks_like_credential;
pub use resolve::resolve;

use super::yaml::{self, Node, Value};

/// A variable's value: a YAML scalar. A template that is exactly `{{ vars.NAME }}` takes the
/// value with its type (`attempts: "{{ vars.health_attempts }}"` is a number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Str(String),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(n) => write!(f, "{n}"),
            Scalar::Str(s) => f.write_str(s),
        }
    }
}

impl Scalar {
    /// The scalar a YAML node holds (a float keeps its text), or what it is instead.
    pub fn of(node: &Node) -> Result<Scalar, &'static str> {
        match &node.value {
            Value::Bool(b) => Ok(Scalar::Bool(*b)),
            Value::Int(n) => Ok(Scalar::Int(*n)),
            Value::Float(x) => Ok(Scalar::Str(x.to_string())),
            Value::Str(s) => Ok(Scalar::Str(s.clone())),
            _ => Err(node.kind()),
        }
    }

    /// A command-line value read as YAML reads a plain scalar: `25` is a number, `true` a boolean.
    pub fn parse(text: &str) -> Scalar {
        match yaml::parse(text) {
            Ok(node) if !text.trim().is_empty() => match node.value {
                Value::Bool(_) | Value::Int(_) => Scalar::of(&node).unwrap_or_else(|_| Scalar::Str(text.into())),
                _ => Scalar::Str(text.to_string()),
            },
            _ => Scalar::Str(text.to_string()),
        }
    }

    /// From a JSON value of `env.json`.
    fn of_json(value: &serde_json::Value) -> Option<Scalar> {
        match value {
            serde_json::Value::Bool(b) => Some(Scalar::Bool(*b)),
            serde_json::Value::Number(n) => Some(n.as_i64().map_or_else(|| Scalar::Str(n.to_string()), Scalar::Int)),
            // Read as the command line's values are: env.json writes counts as "3" too.
            serde_json::Value::String(s) => Some(Scalar::parse(s)),
            _ => None,
        }
    }

    fn node(&self, pos: yaml::Pos) -> Node {
        let value = match self {
            Scalar::Bool(b) => Value::Bool(*b),
            Scalar::Int(n) => Value::Int(*n),
            Scalar::Str(s) => Value::Str(s.clone()),
        };
        Node { value, pos }
    }
}

/// Where a variable's value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VarSource {
    /// The plan's own `value:` (production's value).
    Plan,
    /// A drill environment's `env.json` (`vars`).
    Environment { path: String },
    /// `--vars FILE`.
    File { path: String },
    /// `--var NAME=VALUE`.
    CommandLine,
}

impl fmt::Display for VarSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarSource::Plan => f.write_str("plan"),
            VarSource::Environment { path } => write!(f, "drill environment {path}"),
            VarSource::File { path } => write!(f, "file {path}"),
            VarSource::CommandLine => f.write_str("command line"),
        }
    }
}

/// A variable as a run uses it; journaled in `run_started`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedVar {
    pub name: String,
    pub value: Scalar,
    pub source: VarSource,
    /// The plan's description of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One override of a plan variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub name: String,
    pub value: Scalar,
    pub source: VarSource,
    /// Where it was written, for messages: `--var zone_id`, `vars.yaml:3:1`.
    pub origin: String,
}

/// The overrides of one run, in increasing precedence (a later one for the same name wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides(pub Vec<Override>);

impl Overrides {
    /// `--var NAME=VALUE` arguments.
    pub fn command_line(&mut self, pairs: &[String]) -> Result<(), String> {
        for pair in pairs {
            let Some((name, value)) = pair.split_once('=') else {
                return Err(format!("--var `{pair}` has no `=`; write --var NAME=VALUE"));
            };
            let name = name.trim();
            if !is_var_name(name) {
                return Err(format!("--var `{pair}`: `{name}` is not a variable name (letters, digits and `_`)"));
            }
            self.0.push(Override {
                name: name.to_string(),
                value: Scalar::parse(value),
                source: VarSource::CommandLine,
                origin: format!("--var {name}"),
            });
        }
        Ok(())
    }

    /// A `--vars FILE.yaml`: a mapping of names to scalar values. Errors name the file, line and column.
    pub fn file(&mut self, path: &Path) -> Result<(), String> {
        let shown = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the vars file {shown}: {}", super::io_reason(&e)))?;
        let root = yaml::parse(&text).map_err(|e| format!("{shown}:{}: invalid YAML: {}", e.pos, e.message))?;
        if root.value == Value::Null {
            return Ok(());
        }
        let Some(entries) = root.as_map() else {
            return Err(format!("{shown}:{}: expected a mapping of NAME: VALUE, found {}", root.pos, root.kind()));
        };
        for (key, value) in entries {
            let Some(name) = key.as_str().filter(|n| is_var_name(n)) else {
                return Err(format!("{shown}:{}: a variable name is letters, digits and `_`", key.pos));
            };
            let value = Scalar::of(value).map_err(|kind| {
                format!("{shown}:{}: `{name}` must be a string, number or boolean, found {kind}", value.pos)
            })?;
            let source = VarSource::File { path: shown.to_string() };
            self.0.push(Override { name: name.to_string(), value, source, origin: format!("{shown}:{}", key.pos) });
        }
        Ok(())
    }

    /// A drill environment's `vars` (from `env.json` at `path`).
    pub fn environment(&mut self, path: &Path, vars: &BTreeMap<String, serde_json::Value>) -> Result<(), String> {
        for (name, value) in vars {
            let value = Scalar::of_json(value)
                .ok_or_else(|| format!("{}: vars.{name} must be a string, number or boolean", path.display()))?;
            self.0.push(Override {
                name: name.clone(),
                value,
                source: VarSource::Environment { path: path.display().to_string() },
                origin: format!("{} (vars.{name})", path.display()),
            });
        }
        Ok(())
    }

    /// A resumed run's journaled values, each with the source it had when the run started.
    pub fn journaled(vars: &[ResolvedVar]) -> Overrides {
        Overrides(
            vars.iter()
                .filter(|v| v.source != VarSource::Plan)
                .map(|v| Override {
                    name: v.name.clone(),
                    value: v.value.clone(),
                    source: v.source.clone(),
                    origin: "the run's journal".into(),
                })
                .collect(),
        )
    }

    /// Whether no override was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A variable name: letters, digits and `_`, not starting with a digit.
pub fn is_var_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The differences between the values a run journaled and the ones given now, as sentences.
pub fn differences(journaled: &[ResolvedVar], now: &[ResolvedVar]) -> Vec<String> {
    let mut out = Vec::new();
    for var in now {
        match journaled.iter().find(|j| j.name == var.name) {
            Some(j) if j.value != var.value => out.push(format!(
                "`{}` was `{}` ({}) when the run started, now `{}` ({})",
                var.name, j.value, j.source, var.value, var.source
            )),
            None => out.push(format!("`{}` = `{}` ({}) is new since the run started", var.name, var.value, var.source)),
            _ => {}
        }
    }
    for j in journaled.iter().filter(|j| !now.iter().any(|v| v.name == j.name)) {
        out.push(format!("`{}` (`{}` when the run started) is no longer declared", j.name, j.value));
    }
    out
}

/// The variables as lines for `--dry-run` and `plan show`.
pub fn render(vars: &[ResolvedVar]) -> String {
    if vars.is_empty() {
        return String::new();
    }
    let width = vars.iter().map(|v| v.name.len()).max().unwrap_or(0);
    let mut out = String::from("vars:\n");
    for v in vars {
        let about = v.description.as_deref().map(|d| format!("  — {d}")).unwrap_or_default();
        out.push_str(&format!("  {:width$} = {}  ({}){about}\n", v.name, v.value, v.source));
    }
    out
}

#[cfg(test)]
mod tests;
