//! Checking a step's `with:` parameters: every bad parameter of a step is reported in one pass, and
//! well-formed parameters are checked against the rest of the plan (files beside it, the step's
//! timeout).

use std::path::Path;
use std::time::Duration;

use super::de::DeError;
use super::yaml::{Node, Value};
use crate::step::StepKind;

/// What a step's parameters may be checked against besides their own shape.
#[derive(Debug, Clone, Copy)]
pub struct PlanContext<'a> {
    /// The folder of the plan file: relative paths in parameters are resolved against it.
    pub dir: &'a Path,
    /// The step's whole budget.
    pub timeout: Duration,
}

/// A parameter that is well-formed but does not fit the plan: which `with:` key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamProblem {
    /// The top-level `with:` key at fault.
    pub field: &'static str,
    pub message: String,
}

impl ParamProblem {
    /// A problem with the parameter `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        ParamProblem { field, message: message.into() }
    }

    /// The problem placed at its key's value in `with`.
    pub fn locate(self, with: &Node) -> DeError {
        let pos = with.get(self.field).map_or(with.pos, |n| n.pos);
        DeError { pos, path: self.field.to_string(), message: self.message }
    }
}

/// Every problem of `with` for a step of `kind`: each bad parameter once, then, when they all
/// parse, what [`StepKind::check_in_plan`] finds.
///
/// Serde stops at the first error, so a bad parameter is taken out and the rest checked again.
/// What only the removal caused (the parameter is now missing, a rule across fields now fails) is
/// not reported.
pub fn problems(kind: &dyn StepKind, with: &Node, plan: &PlanContext) -> Vec<DeError> {
    let first = match kind.check(with) {
        Ok(()) => return kind.check_in_plan(with, plan).err().into_iter().collect(),
        Err(e) => e,
    };
    let first = placed(first, with);
    let Value::Map(entries) = &with.value else { return vec![first] };
    let mut remaining = entries.clone();
    let mut found = vec![first];
    while let Some(last) = found.last() {
        let key = top_key(&last.path);
        if key.is_empty() {
            break;
        }
        let Some(at) = remaining.iter().position(|(k, _)| key_text(k) == key) else { break };
        remaining.remove(at);
        match kind.check(&Node { value: Value::Map(remaining.clone()), pos: with.pos }) {
            Err(e) if !e.path.is_empty() => found.push(e),
            // A missing parameter or a rule across parameters: possibly caused by the removal.
            Ok(()) | Err(_) => break,
        }
    }
    found
}

/// A rule across parameters that names the one at fault ("`value`: it holds a password..."),
/// placed at that parameter rather than at the start of `with:`.
fn placed(mut e: DeError, with: &Node) -> DeError {
    if !e.path.is_empty() {
        return e;
    }
    let Some((field, rest)) = e.message.strip_prefix('`').and_then(|m| m.split_once("`: ")) else { return e };
    let node = field.split('.').try_fold(with, |node, key| node.get(key));
    if let Some(node) = node {
        e.pos = node.pos;
        e.path = field.to_string();
        e.message = rest.to_string();
    }
    e
}

/// The `with:` key a parameter path starts with: `workloads` of `workloads[1].kind`.
fn top_key(path: &str) -> &str {
    path.split(['.', '[']).next().unwrap_or_default()
}

/// A mapping key as parameter paths spell it.
fn key_text(key: &Node) -> String {
    match &key.value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_keys() {
        assert_eq!(top_key("workloads[1].kind"), "workloads");
        assert_eq!(top_key("headers.Accept"), "headers");
        assert_eq!(top_key("url"), "url");
        assert_eq!(top_key(""), "");
    }
}
