//! Reading a plan file: every problem is reported in one pass, each with its place and a fix.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::diagnostic::{Diagnostic, PlanErrors, source_lines};
use super::graph::Graph;
use super::template::{self, Reference};
use super::yaml::{self, Node, Pos, Value};
use super::{AwsSettings, Direction, Objectives, OnFailure, Pair, Plan, StepSpec, parse_duration};
use crate::step::Registry;

mod policy;

const PLAN_KEYS: &[&str] =
    &["name", "description", "regions", "kubernetes", "aws", "objectives", "defaults", "failover", "failback"];
const STEP_KEYS: &[&str] =
    &["id", "name", "type", "with", "after", "timeout", "retries", "marks_recovery", "on_failure"];
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
const DEFAULT_RETRIES: u32 = 2;

/// Reads and validates the plan at `path`.
pub fn load(path: &Path, registry: &Registry) -> Result<Plan, PlanErrors> {
    let source = std::fs::read_to_string(path).map_err(|e| PlanErrors::unreadable(path, &e))?;
    parse(path, &source, registry)
}

/// Validates plan text; `path` is only used in messages and recorded in the plan.
pub fn parse(path: &Path, source: &str, registry: &Registry) -> Result<Plan, PlanErrors> {
    let root = yaml::parse(source).map_err(|e| PlanErrors::new(path, source, vec![syntax_error(source, e)]))?;
    let mut checker = Checker { diags: Vec::new(), registry };
    let plan = checker.plan(&root, path, source);
    match plan {
        Some(plan) if checker.diags.is_empty() => Ok(plan),
        _ => Err(PlanErrors::new(path, source, checker.diags)),
    }
}

struct Checker<'r> {
    diags: Vec<Diagnostic>,
    registry: &'r Registry,
}

/// Plan-wide settings that steps inherit.
struct Defaults {
    timeout: Duration,
    retries: u32,
}

impl Checker<'_> {
    fn error(&mut self, node: &Node, path: &str, message: impl Into<String>, help: impl Into<String>) {
        self.diags.push(Diagnostic::new(node.pos, path, message).help(help));
    }

    fn plan(&mut self, root: &Node, path: &Path, source: &str) -> Option<Plan> {
        if root.value == Value::Null {
            self.error(root, "", "the plan file is empty", "start from plans/us-west-2.yaml or `drctl plan schema`");
            return None;
        }
        let fields = self.mapping(root, "", PLAN_KEYS, &["name", "regions", "objectives", "failover", "failback"])?;
        let name = fields.get("name").and_then(|n| self.identifier(n, "name"));
        let description = fields.get("description").and_then(|n| self.string(n, "description"));
        let regions = fields.get("regions").and_then(|n| self.pair(n, "regions"));
        let kubernetes = fields.get("kubernetes").and_then(|n| self.pair(n, "kubernetes"));
        let aws = match fields.get("aws") {
            Some(n) => self.aws(n),
            None => Some(AwsSettings::default()),
        };
        let objectives = fields.get("objectives").and_then(|n| self.objectives(n));
        let defaults = match fields.get("defaults") {
            Some(n) => self.defaults(n),
            None => Some(Defaults { timeout: DEFAULT_TIMEOUT, retries: DEFAULT_RETRIES }),
        };
        let defaults = defaults.unwrap_or(Defaults { timeout: DEFAULT_TIMEOUT, retries: DEFAULT_RETRIES });
        let failover =
            fields.get("failover").and_then(|n| self.steps(n, Direction::Failover, &defaults, kubernetes.is_some()));
        let failback =
            fields.get("failback").and_then(|n| self.steps(n, Direction::Failback, &defaults, kubernetes.is_some()));
        Some(Plan {
            name: name?,
            description,
            regions: regions?,
            kubernetes,
            aws: aws?,
            objectives: objectives?,
            failover: failover?,
            failback: failback?,
            path: path.to_path_buf(),
            digest: hex(&Sha256::digest(source.as_bytes())),
        })
    }

    /// Checks that `node` is a mapping with only `allowed` keys, all `required` keys and no key twice.
    fn mapping<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        allowed: &[&str],
        required: &[&str],
    ) -> Option<HashMap<&'n str, &'n Node>> {
        let Some(entries) = node.as_map() else {
            let help = match path {
                "" => format!("a plan is a mapping with the keys {}", allowed.join(", ")),
                _ => format!("write the keys of `{path}` under it: {}", allowed.join(", ")),
            };
            self.error(node, path, format!("expected a mapping, found {}", node.kind()), help);
            return None;
        };
        let mut fields: HashMap<&str, &Node> = HashMap::new();
        let mut first_pos: HashMap<&str, Pos> = HashMap::new();
        // Required keys that an unknown key is probably a typo of: reported once, as the typo.
        let mut misspelled: Vec<&str> = Vec::new();
        for (key, value) in entries {
            let Some(k) = key.as_str() else {
                self.error(
                    key,
                    path,
                    format!("a key must be a string, found {}", key.kind()),
                    format!("use one of: {}", allowed.join(", ")),
                );
                continue;
            };
            let field = join(path, k);
            if let Some(first) = first_pos.get(k) {
                self.error(
                    key,
                    &field,
                    format!("`{k}` is given twice (first at line {}, column {})", first.line, first.col),
                    "keep one of them",
                );
                continue;
            }
            first_pos.insert(k, key.pos);
            if !allowed.contains(&k) {
                misspelled.extend(closest(k, allowed));
                let help = match closest(k, allowed) {
                    Some(s) => format!("did you mean `{s}`? Allowed here: {}", allowed.join(", ")),
                    None => format!("allowed here: {}", allowed.join(", ")),
                };
                self.error(key, &field, format!("unknown key `{k}`"), help);
                continue;
            }
            fields.insert(k, value);
        }
        for r in required {
            if !fields.contains_key(r) && !first_pos.contains_key(r) && !misspelled.contains(r) {
                self.error(
                    node,
                    path,
                    format!("missing required key `{r}`"),
                    format!("add `{r}:` to {}", display_path(path)),
                );
            }
        }
        Some(fields)
    }

    fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match node.as_str() {
            Some(s) if !s.trim().is_empty() => Some(s.to_string()),
            Some(_) => {
                self.error(node, path, "must not be empty", "write a value or remove the key");
                None
            }
            None => {
                self.error(
                    node,
                    path,
                    format!("expected a string, found {}", node.kind()),
                    "quote the value if it is meant as text",
                );
                None
            }
        }
    }

    /// A name used in file names, lock names and templates: letters, digits, `-` and `_`.
    fn identifier(&mut self, node: &Node, path: &str) -> Option<String> {
        let s = self.string(node, path)?;
        let ok = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            self.error(
                node,
                path,
                format!("`{s}` is not a valid name"),
                "use letters, digits, `-` and `_`, starting with a letter or digit",
            );
            return None;
        }
        Some(s)
    }

    fn pair(&mut self, node: &Node, path: &str) -> Option<Pair> {
        let fields = self.mapping(node, path, &["primary", "secondary"], &["primary", "secondary"])?;
        let primary = fields.get("primary").and_then(|n| self.string(n, &join(path, "primary")));
        let secondary = fields.get("secondary").and_then(|n| self.string(n, &join(path, "secondary")));
        let (primary, secondary) = (primary?, secondary?);
        if primary == secondary {
            self.error(
                node,
                path,
                format!("primary and secondary are both `{primary}`"),
                "a failover needs two different places; name the DR one as secondary",
            );
            return None;
        }
        Some(Pair { primary, secondary })
    }

    fn aws(&mut self, node: &Node) -> Option<AwsSettings> {
        let fields = self.mapping(node, "aws", &["endpoint_url", "profile"], &[])?;
        let endpoint_url = fields.get("endpoint_url").and_then(|n| self.string(n, "aws.endpoint_url"));
        let profile = fields.get("profile").and_then(|n| self.string(n, "aws.profile"));
        if let Some(url) = &endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            let at = fields["endpoint_url"];
            self.error(
                at,
                "aws.endpoint_url",
                format!("`{url}` is not an http:// or https:// URL"),
                "write the emulator's address, such as http://127.0.0.1:5000",
            );
            return None;
        }
        Some(AwsSettings { endpoint_url, profile })
    }

    fn duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let text = match &node.value {
            Value::Str(s) => s.clone(),
            Value::Int(n) => {
                self.error(
                    node,
                    path,
                    format!("`{n}` has no unit"),
                    format!("write a duration with its unit, like {n}s or {n}m"),
                );
                return None;
            }
            _ => {
                self.error(
                    node,
                    path,
                    format!("expected a duration, found {}", node.kind()),
                    "write a duration like 30s, 15m or 1h30m",
                );
                return None;
            }
        };
        match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(node, path, e, "write it like 90s, 15m or 1h30m (units: ms, s, m, h, d)");
                None
            }
        }
    }

    fn count(&mut self, node: &Node, path: &str, max: u32) -> Option<u32> {
        match node.value {
            Value::Int(n) if (0..=i64::from(max)).contains(&n) => Some(n as u32),
            Value::Int(n) => {
                self.error(node, path, format!("{n} is out of range"), format!("use a whole number from 0 to {max}"));
                None
            }
            _ => {
                self.error(
                    node,
                    path,
                    format!("expected a whole number, found {}", node.kind()),
                    format!("use a whole number from 0 to {max}"),
                );
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.error(node, path, format!("expected true or false, found {}", node.kind()), "write true or false");
                None
            }
        }
    }

    fn objectives(&mut self, node: &Node) -> Option<Objectives> {
        let fields = self.mapping(node, "objectives", &["rto", "rpo"], &["rto", "rpo"])?;
        let rto = fields.get("rto").and_then(|n| self.duration(n, "objectives.rto"));
        let rpo = fields.get("rpo").and_then(|n| self.duration(n, "objectives.rpo"));
        Some(Objectives { rto: rto?, rpo: rpo? })
    }

    fn defaults(&mut self, node: &Node) -> Option<Defaults> {
        let fields = self.mapping(node, "defaults", &["timeout", "retries"], &[])?;
        let timeout = match fields.get("timeout") {
            Some(n) => self.duration(n, "defaults.timeout")?,
            None => DEFAULT_TIMEOUT,
        };
        let retries = match fields.get("retries") {
            Some(n) => self.count(n, "defaults.retries", 100)?,
            None => DEFAULT_RETRIES,
        };
        Some(Defaults { timeout, retries })
    }

    fn steps(
        &mut self,
        node: &Node,
        direction: Direction,
        defaults: &Defaults,
        has_kubernetes: bool,
    ) -> Option<Vec<StepSpec>> {
        let list = direction.to_string();
        let Value::Seq(items) = &node.value else {
            self.error(
                node,
                &list,
                format!("expected a list of steps, found {}", node.kind()),
                "write each step as `- id: ...` under it",
            );
            return None;
        };
        let before = self.diags.len();
        let mut steps = Vec::new();
        let mut seen: HashMap<String, Pos> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("{list}[{i}]");
            if let Some(step) = self.step(item, &path, defaults) {
                if let Some(first) = seen.get(&step.id) {
                    let id_node = item.get("id").unwrap_or(item);
                    self.error(
                        id_node,
                        &format!("{path}.id"),
                        format!("step id `{}` is already used (line {}, column {})", step.id, first.line, first.col),
                        "give every step in a list its own id",
                    );
                    continue;
                }
                seen.insert(step.id.clone(), item.get("id").map_or(item.pos, |n| n.pos));
                steps.push(step);
            }
        }
        if items.is_empty() {
            self.error(node, &list, "the step list is empty", format!("a plan's {list} needs at least one step"));
        }
        self.dependencies(&steps, items, &list, has_kubernetes);
        (self.diags.len() == before).then_some(steps)
    }

    fn step(&mut self, node: &Node, path: &str, defaults: &Defaults) -> Option<StepSpec> {
        let fields = self.mapping(node, path, STEP_KEYS, &["id", "type"])?;
        let id = fields.get("id").and_then(|n| self.identifier(n, &join(path, "id")));
        let name = fields.get("name").and_then(|n| self.string(n, &join(path, "name")));
        let with = fields.get("with").map_or_else(|| Node::empty_map(node.pos), |n| (*n).clone());
        let step_type =
            fields.get("type").and_then(|n| self.step_type(n, &with, &join(path, "type"), &join(path, "with")));
        let after = match fields.get("after") {
            Some(n) => self.after(n, &join(path, "after")),
            None => Some(Vec::new()),
        };
        let policy = self.policy_of(step_type.as_deref());
        let timeout = match fields.get("timeout") {
            Some(n) => self.duration(n, &join(path, "timeout")),
            None => Some(policy.default_timeout.unwrap_or(defaults.timeout)),
        };
        let retries = match fields.get("retries") {
            Some(n) => self
                .count(n, &join(path, "retries"), 100)
                .and_then(|r| self.retries_allowed(n, path, step_type.as_deref(), &policy, r)),
            None => Some(if policy.retries { defaults.retries } else { 0 }),
        };
        let marks_recovery = match fields.get("marks_recovery") {
            Some(n) => self.boolean(n, &join(path, "marks_recovery")),
            None => Some(false),
        };
        let on_failure = self.on_failure(&fields, path, step_type.as_deref(), &policy, marks_recovery);
        Some(StepSpec {
            id: id?,
            step_type: step_type?,
            name,
            with,
            after: after?,
            timeout: timeout?,
            retries: retries?,
            marks_recovery: marks_recovery?,
            on_failure: on_failure?,
            pos: node.pos,
        })
    }

    fn step_type(&mut self, node: &Node, with: &Node, path: &str, with_path: &str) -> Option<String> {
        let name = self.string(node, path)?;
        let Some(kind) = self.registry.get(&name) else {
            let names = self.registry.names();
            let help = match closest(&name, &names) {
                Some(s) => format!("did you mean `{s}`? Step types: {}", names.join(", ")),
                None => format!("step types: {}", names.join(", ")),
            };
            self.error(node, path, format!("unknown step type `{name}`"), help);
            return None;
        };
        if with.as_map().is_none() {
            self.error(
                with,
                with_path,
                format!("expected a mapping of parameters, found {}", with.kind()),
                format!("write the parameters of `{name}` as keys under `with:`"),
            );
            return None;
        }
        if let Err(e) = kind.check(with) {
            let field = join(with_path, &e.path);
            self.diags.push(
                Diagnostic::new(e.pos, field, e.message)
                    .help(format!("see the `{name}` parameters in `drctl plan schema`")),
            );
            return None;
        }
        Some(name)
    }

    fn after(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        let items: Vec<&Node> = match &node.value {
            Value::Seq(items) => items.iter().collect(),
            Value::Str(_) => vec![node],
            _ => {
                self.error(
                    node,
                    path,
                    format!("expected a list of step ids, found {}", node.kind()),
                    "write `after: [step-a, step-b]`",
                );
                return None;
            }
        };
        let ids: Vec<Option<String>> =
            items.iter().enumerate().map(|(i, n)| self.string(n, &format!("{path}[{i}]"))).collect();
        ids.into_iter().collect()
    }

    /// Dangling and cyclic `after`, and templates that name steps the step does not run after.
    fn dependencies(&mut self, steps: &[StepSpec], items: &[Node], list: &str, has_kubernetes: bool) {
        let index: HashMap<&str, usize> = steps.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
        let item_of = |id: &str| items.iter().enumerate().find(|(_, n)| n.get("id").and_then(Node::as_str) == Some(id));
        for step in steps {
            let (item_index, item) = item_of(&step.id).expect("every step came from an item");
            let path = format!("{list}[{item_index}]");
            let after_nodes: Vec<&Node> = match item.get("after").map(|n| &n.value) {
                Some(Value::Seq(ns)) => ns.iter().collect(),
                Some(_) => item.get("after").into_iter().collect(),
                None => Vec::new(),
            };
            for (j, dep) in step.after.iter().enumerate() {
                let at = after_nodes.get(j).copied().unwrap_or(item);
                let field = format!("{path}.after[{j}]");
                if dep == &step.id {
                    self.error(at, &field, format!("step `{dep}` cannot run after itself"), "remove it from `after`");
                } else if !index.contains_key(dep.as_str()) {
                    let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
                    let help = match closest(dep, &ids) {
                        Some(s) => format!("did you mean `{s}`? `after` names steps of the same list ({list})"),
                        None => format!("`after` names steps of the same list ({list}): {}", ids.join(", ")),
                    };
                    self.error(at, &field, format!("no step `{dep}` in {list}"), help);
                }
            }
        }
        let graph = Graph::of(steps);
        let order = match graph.order() {
            Ok(order) => order,
            Err(cycle) => {
                let names: Vec<&str> = cycle.iter().map(|&i| steps[i].id.as_str()).collect();
                let first = &steps[cycle[0]];
                let (i, item) = item_of(&first.id).expect("every step came from an item");
                let at = item.get("after").unwrap_or(item);
                self.error(
                    at,
                    &format!("{list}[{i}].after"),
                    format!("dependency cycle: {}", names.join(" → ")),
                    "remove one `after` entry so the steps can run in some order",
                );
                return;
            }
        };
        let ancestors = graph.ancestors(&order);
        for (si, step) in steps.iter().enumerate() {
            let (item_index, _) = item_of(&step.id).expect("every step came from an item");
            let path = format!("{list}[{item_index}].with");
            for (node, reference) in template::references(&step.with) {
                match reference {
                    Err(e) => self.error(node, &path, e, "see the template syntax in the README (Plan format)"),
                    Ok(Reference::StepOutput { step: dep, output }) => match index.get(dep.as_str()) {
                        None => self.error(
                            node,
                            &path,
                            format!("the template names step `{dep}`, which is not in {list}"),
                            "name a step of the same list",
                        ),
                        Some(&d) if !ancestors[si].contains(&d) => self.error(
                            node,
                            &path,
                            format!("the template uses an output of `{dep}`, but `{}` does not run after it", step.id),
                            format!("add `{dep}` to the `after` of `{}`", step.id),
                        ),
                        Some(&d) if steps[d].on_failure == OnFailure::Continue => self.error(
                            node,
                            &path,
                            format!(
                                "the template uses an output of `{dep}`, which may fail without stopping the run (on_failure: continue)"
                            ),
                            format!("add `on_failure: stop` to `{dep}`, or do not use its outputs"),
                        ),
                        Some(&d) => {
                            let outputs = self.registry.get(&steps[d].step_type).map(|k| k.outputs()).unwrap_or(&[]);
                            if !outputs.contains(&output.as_str()) {
                                let list = if outputs.is_empty() { "none".to_string() } else { outputs.join(", ") };
                                self.error(
                                    node,
                                    &path,
                                    format!("step `{dep}` ({}) has no output `{output}`", steps[d].step_type),
                                    format!("its outputs: {list}"),
                                );
                            }
                        }
                    },
                    Ok(Reference::Variable(v)) if v.starts_with("plan.kubernetes") && !has_kubernetes => {
                        self.error(
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
}

/// A YAML syntax error, with the parser's wording replaced where it misleads: a tab is reported on
/// the line it indents, not where the scanner noticed it.
fn syntax_error(source: &str, e: yaml::SyntaxError) -> Diagnostic {
    let help = "fix the YAML syntax; a YAML linter or your editor's YAML mode shows the structure";
    if e.message.contains("tab") {
        let tabbed = source_lines(source).position(|line| line.trim_start_matches(' ').starts_with('\t'));
        if let Some(index) = tabbed {
            let pos = Pos { line: index + 1, col: 1 };
            let message = "invalid YAML: a tab indents this line; YAML is indented with spaces only";
            return Diagnostic::new(pos, "", message).help("replace the tabs with spaces");
        }
    }
    Diagnostic::new(e.pos, "", format!("invalid YAML: {}", e.message)).help(help)
}

fn join(path: &str, key: &str) -> String {
    match (path.is_empty(), key.is_empty()) {
        (true, _) => key.to_string(),
        (_, true) => path.to_string(),
        _ if key.starts_with('[') => format!("{path}{key}"),
        _ => format!("{path}.{key}"),
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "the plan" } else { path }
}

/// The candidate nearest to `word` by edit distance, if near enough to be a likely typo.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|&(d, c)| d <= 2.max(c.len() / 3))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + usize::from(ca != cb));
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_intended_word() {
        assert_eq!(closest("retires", STEP_KEYS), Some("retries"));
        assert_eq!(closest("afterr", STEP_KEYS), Some("after"));
        assert_eq!(closest("zzzzzz", STEP_KEYS), None);
    }
}
