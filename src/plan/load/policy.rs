//! What a step's type decides beyond its parameters: its default timeout, whether it may retry, and
//! its failure policy (`on_failure:`), with the checks that keep them consistent.

use std::collections::HashMap;

use super::{Checker, join};
use crate::plan::OnFailure;
use crate::plan::yaml::Node;
use crate::step::TypePolicy;

impl Checker<'_> {
    /// The policy of `step_type`; an unknown type (already reported) gets the plain one.
    pub(super) fn policy_of(&self, step_type: Option<&str>) -> TypePolicy {
        step_type.and_then(|t| self.registry.get(t)).map_or(TypePolicy::ACTION, |k| k.policy())
    }

    /// `retries` as written; on a type that is never retried, an error (and 0).
    pub(super) fn retries_allowed(
        &mut self,
        node: &Node,
        path: &str,
        step_type: Option<&str>,
        policy: &TypePolicy,
        retries: u32,
    ) -> Option<u32> {
        if retries > 0 && !policy.retries {
            let name = step_type.unwrap_or("this");
            self.error(
                node,
                &join(path, "retries"),
                format!("`{name}` steps are never retried: an answer (or its absence) is final"),
                "remove `retries`; give the step a longer `timeout` instead",
            );
            // Reported; the step stays for the checks of the steps that name it.
            return Some(0);
        }
        Some(retries)
    }

    /// `on_failure:` as written or the type's default; `continue` on a recovery step is an error.
    pub(super) fn on_failure(
        &mut self,
        fields: &HashMap<&str, &Node>,
        path: &str,
        step_type: Option<&str>,
        policy: &TypePolicy,
        marks_recovery: Option<bool>,
    ) -> Option<OnFailure> {
        let field = join(path, "on_failure");
        let on_failure = match fields.get("on_failure") {
            Some(node) => match node.as_str() {
                Some("stop") => OnFailure::Stop,
                Some("continue") => OnFailure::Continue,
                _ => {
                    let found = node.as_str().map_or_else(|| node.kind().to_string(), |s| format!("`{s}`"));
                    self.error(
                        node,
                        &field,
                        format!("expected `stop` or `continue`, found {found}"),
                        "write `on_failure: stop` (the run fails) or `on_failure: continue` (the run goes on, with a warning)",
                    );
                    return None;
                }
            },
            None => policy.on_failure,
        };
        if on_failure == OnFailure::Continue && marks_recovery == Some(true) {
            let (node, help) = match fields.get("on_failure") {
                Some(node) => (
                    *node,
                    "remove `on_failure: continue`: a failure of the recovery step must fail the run".to_string(),
                ),
                None => (
                    *fields.get("marks_recovery").expect("marks_recovery is set"),
                    format!(
                        "`{}` steps continue on failure by default; add `on_failure: stop` to measure RTO to this step",
                        step_type.unwrap_or("these")
                    ),
                ),
            };
            let at = if fields.contains_key("on_failure") { field } else { join(path, "marks_recovery") };
            self.error(
                node,
                &at,
                "a step that marks recovery cannot continue on failure: the RTO would be measured to a step that failed",
                help,
            );
            // Reported; the step stays for the checks of the steps that name it.
            return Some(OnFailure::Stop);
        }
        Some(on_failure)
    }
}
