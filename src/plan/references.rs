//! What the steps of one list say about each other: dangling and cyclic `after`, and templates
//! that name steps the step does not run after. Linear in the size of the list, so plans of tens
//! of thousands of steps validate in a blink.

use std::collections::HashMap;

use super::graph::Graph;
use super::load::Checker;
use super::suggest::{closest, nearest};
use super::template::{self, Reference};
use super::yaml::{Node, Value};
use super::{OnFailure, StepSpec};
use crate::step::{OutputSpec, Presence};

/// How many unknown `after` names get a "did you mean" search (each compares against every id).
const SUGGESTION_SEARCHES: usize = 100;
/// How many ids a help line lists when no id is near the unknown name.
const IDS_SHOWN: usize = 3;

/// One step list as read: each step with the index of its item in the list.
pub(super) struct Listed<'a> {
    pub steps: &'a [(usize, StepSpec)],
    pub items: &'a [Node],
    /// `failover` or `failback`.
    pub list: &'a str,
    pub has_kubernetes: bool,
}

impl Listed<'_> {
    /// Reports every problem of `after` and of templates into `checker`.
    pub fn check(&self, checker: &mut Checker) {
        let index: HashMap<&str, usize> = self.steps.iter().enumerate().map(|(i, (_, s))| (s.id.as_str(), i)).collect();
        self.dangling(checker, &index);
        let graph = self.graph(&index);
        let order = match graph.order() {
            Ok(order) => order,
            Err(cycle) => {
                let names: Vec<&str> = cycle.iter().map(|&i| self.steps[i].1.id.as_str()).collect();
                let item_index = self.steps[cycle[0]].0;
                let item = &self.items[item_index];
                checker.error(
                    item.get("after").unwrap_or(item),
                    &format!("{}[{item_index}].after", self.list),
                    format!("dependency cycle: {}", names.join(" → ")),
                    "remove one `after` entry so the steps can run in some order",
                );
                return;
            }
        };
        let mut reach = Reach::new(&graph, &order);
        for (si, (item_index, step)) in self.steps.iter().enumerate() {
            self.templates(checker, &index, &mut reach, si, *item_index, step);
        }
    }

    fn graph(&self, index: &HashMap<&str, usize>) -> Graph {
        Graph::resolve(index, self.steps.iter().map(|(_, s)| s.after.as_slice()))
    }

    /// `after` entries that name the step itself or no step of the list.
    fn dangling(&self, checker: &mut Checker, index: &HashMap<&str, usize>) {
        let list = self.list;
        let mut searches = 0;
        let mut suggestions: HashMap<&str, String> = HashMap::new();
        for (item_index, step) in self.steps {
            let item = &self.items[*item_index];
            let after_nodes: Vec<&Node> = match item.get("after").map(|n| &n.value) {
                Some(Value::Seq(ns)) => ns.iter().collect(),
                Some(_) => item.get("after").into_iter().collect(),
                None => Vec::new(),
            };
            for (j, dep) in step.after.iter().enumerate() {
                let at = after_nodes.get(j).copied().unwrap_or(item);
                let field = format!("{list}[{item_index}].after[{j}]");
                if dep == &step.id {
                    checker.error(
                        at,
                        &field,
                        format!("step `{dep}` cannot run after itself"),
                        "remove it from `after`",
                    );
                } else if !index.contains_key(dep.as_str()) {
                    let help = suggestions
                        .entry(dep.as_str())
                        .or_insert_with(|| {
                            searches += 1;
                            self.suggestion(dep, searches <= SUGGESTION_SEARCHES)
                        })
                        .clone();
                    checker.error(at, &field, format!("no step `{dep}` in {list}"), help);
                }
            }
        }
    }

    /// The help line for an unknown step id: the likely intended id, or a few of the list's ids.
    /// Without `search`, no id is compared (after many unknown names, for speed).
    fn suggestion(&self, unknown: &str, search: bool) -> String {
        let list = self.list;
        let ids = || self.steps.iter().map(|(_, s)| s.id.as_str());
        if !search {
            return format!("`after` names steps of the same list ({list})");
        }
        if let Some(id) = closest(unknown, ids()) {
            return format!("did you mean `{id}`? `after` names steps of the same list ({list})");
        }
        let shown = nearest(unknown, ids(), IDS_SHOWN);
        match shown.len() {
            0 => format!("`after` names steps of the same list ({list}), which has none that can be named"),
            n if n == self.steps.len() => {
                format!("`after` names steps of the same list ({list}): {}", shown.join(", "))
            }
            _ => format!(
                "`after` names steps of the same list ({list}; {} steps), such as {}",
                self.steps.len(),
                shown.join(", ")
            ),
        }
    }

    /// Templates in step `si`'s parameters: each named step must be one it runs after, and have
    /// the named output.
    fn templates(
        &self,
        checker: &mut Checker,
        index: &HashMap<&str, usize>,
        reach: &mut Reach,
        si: usize,
        item_index: usize,
        step: &StepSpec,
    ) {
        let list = self.list;
        let path = format!("{list}[{item_index}].with");
        for (node, reference) in template::references(&step.with) {
            match reference {
                Err(e) => checker.error(node, &path, e, "see the template syntax in the README (Plan format)"),
                Ok(Reference::StepOutput { step: dep, output, default }) => match index.get(dep.as_str()) {
                    None => checker.error(
                        node,
                        &path,
                        format!("the template names step `{dep}`, which is not in {list}"),
                        "name a step of the same list",
                    ),
                    Some(&d) if !reach.runs_after(si, d) => checker.error(
                        node,
                        &path,
                        format!("the template uses an output of `{dep}`, but `{}` does not run after it", step.id),
                        format!("add `{dep}` to the `after` of `{}`", step.id),
                    ),
                    Some(&d) if self.steps[d].1.on_failure == OnFailure::Continue => checker.error(
                        node,
                        &path,
                        format!(
                            "the template uses an output of `{dep}`, which may fail without stopping the run (on_failure: continue)"
                        ),
                        format!("add `on_failure: stop` to `{dep}`, or do not use its outputs"),
                    ),
                    Some(&d) => {
                        let named = &self.steps[d].1;
                        // A step of an unknown type is reported already; its outputs are unknown.
                        let Some(kind) = checker.registry.get(&named.step_type) else { continue };
                        let outputs = kind.outputs();
                        match outputs.iter().find(|o| o.name == output) {
                            None => {
                                let names: Vec<&str> = outputs.iter().map(|o| o.name).collect();
                                let names = if names.is_empty() { "none".to_string() } else { names.join(", ") };
                                checker.error(
                                    node,
                                    &path,
                                    format!("step `{dep}` ({}) has no output `{output}`", named.step_type),
                                    format!("its outputs: {names}"),
                                );
                            }
                            Some(spec) if default.is_none() && may_be_absent(spec, &named.with) => checker.error(
                                node,
                                &path,
                                format!(
                                    "output `{output}` of step `{dep}` ({}) may be absent (`drctl explain {}` says when)",
                                    named.step_type, named.step_type
                                ),
                                format!(
                                    "give a default for when it is: `{{{{ steps.{dep}.outputs.{output} | default(\"TEXT\") }}}}`"
                                ),
                            ),
                            Some(_) => {}
                        }
                    }
                },
                Ok(Reference::Variable(v)) if v.starts_with("plan.kubernetes") && !self.has_kubernetes => {
                    checker.error(
                        node,
                        &path,
                        format!("`{v}` is used but the plan has no `kubernetes:` contexts"),
                        "add `kubernetes: {primary: ..., secondary: ...}` to the plan",
                    );
                }
                Ok(_) => {}
            }
        }
    }
}

/// Whether a step with these `with:` parameters may leave the output out.
fn may_be_absent(spec: &OutputSpec, with: &Node) -> bool {
    match spec.presence {
        Presence::Always => false,
        Presence::Maybe => true,
        Presence::UnlessParam(param, value) => with.get(param).is_some_and(|n| scalar(n).as_deref() == Some(value)),
    }
}

/// A scalar parameter as YAML writes it (`false`, `3`, `text`); `None` for lists and maps.
fn scalar(node: &Node) -> Option<String> {
    match &node.value {
        Value::Bool(b) => Some(b.to_string()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Str(s) => Some(s.clone()),
        Value::Null => Some("null".into()),
        Value::Seq(_) | Value::Map(_) => None,
    }
}

/// "Does step `a` run after step `b`?", answered by a search that only visits steps placed after
/// `b` in a topological order (no path from `a` to `b` can pass through the others), so a plan's
/// usual references cost a few steps each, with no quadratic table of ancestors.
struct Reach<'g> {
    graph: &'g Graph,
    /// Each step's place in the topological order.
    place: Vec<usize>,
    /// `seen[i] == stamp` when step `i` was visited by the current search.
    seen: Vec<u32>,
    stamp: u32,
    stack: Vec<usize>,
}

impl<'g> Reach<'g> {
    fn new(graph: &'g Graph, order: &[usize]) -> Self {
        let mut place = vec![0; order.len()];
        for (p, &i) in order.iter().enumerate() {
            place[i] = p;
        }
        Reach { graph, place, seen: vec![0; order.len()], stamp: 0, stack: Vec::new() }
    }

    fn runs_after(&mut self, a: usize, b: usize) -> bool {
        if self.graph.deps[a].binary_search(&b).is_ok() {
            return true;
        }
        self.stamp += 1;
        self.stack.clear();
        self.stack.push(a);
        while let Some(i) = self.stack.pop() {
            for &d in &self.graph.deps[i] {
                if d == b {
                    return true;
                }
                if self.place[d] > self.place[b] && self.seen[d] != self.stamp {
                    self.seen[d] = self.stamp;
                    self.stack.push(d);
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reach_follows_dependencies_only() {
        // 0 <- 1 <- 2, 3 alone, 4 after 2 and 3
        let graph = Graph { deps: vec![vec![], vec![0], vec![1], vec![], vec![2, 3]] };
        let order = graph.order().unwrap();
        let mut reach = Reach::new(&graph, &order);
        assert!(reach.runs_after(2, 0));
        assert!(reach.runs_after(4, 0));
        assert!(reach.runs_after(4, 3));
        assert!(!reach.runs_after(0, 2));
        assert!(!reach.runs_after(3, 0));
        assert!(!reach.runs_after(1, 3));
    }
}
