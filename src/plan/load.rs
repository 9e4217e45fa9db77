//! Reading a plan file: every problem is reported in one pass, each with its place and a fix.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::diagnostic::{Diagnostic, PlanErrors, source_lines};
use super::params::{self, PlanContext};
use super::references::Listed;
use super::suggest::closest;
use super::vars::Overrides;
use super::yaml::{self, Node, Pos, Value};
use super::{AwsSettings, DURATION_HELP, Direction, Objectives, Pair, Plan, StepSpec, parse_duration};
use crate::step::Registry;

mod policy;
mod state;

const PLAN_KEYS: &[&str] = &[
    "name",
    "description",
    "vars",
    "regions",
    "kubernetes",
    "aws",
    "state",
    "objectives",
    "defaults",
    "failover",
    "failback",
];
const STEP_KEYS: &[&str] =
    &["id", "name", "type", "with", "after", "timeout", "retries", "marks_recovery", "on_failure"];
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
const DEFAULT_RETRIES: u32 = 2;

/// Reads and validates the plan at `path` with its variables' own values.
pub fn load(path: &Path, registry: &Registry) -> Result<Plan, PlanErrors> {
    load_with(path, registry, &Overrides::default())
}

/// Reads and validates the plan at `path`, its variables overridden by `overrides`.
pub fn load_with(path: &Path, registry: &Registry, overrides: &Overrides) -> Result<Plan, PlanErrors> {
    let bytes = std::fs::read(path).map_err(|e| PlanErrors::unreadable(path, &e))?;
    let source = PlanErrors::decode(path, bytes)?;
    parse_with(path, &source, registry, overrides)
}

/// Validates plan text; `path` is only used in messages and recorded in the plan.
pub fn parse(path: &Path, source: &str, registry: &Registry) -> Result<Plan, PlanErrors> {
    parse_with(path, source, registry, &Overrides::default())
}

/// [`parse`] with the variables overridden: `{{ vars.NAME }}` is replaced before anything else
/// is checked, so each check sees the values the run will use, at the template's position.
pub fn parse_with(path: &Path, source: &str, registry: &Registry, overrides: &Overrides) -> Result<Plan, PlanErrors> {
    let root = yaml::parse(source).map_err(|e| PlanErrors::new(path, source, vec![syntax_error(source, e)]))?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut checker = Checker { diags: Vec::new(), registry, dir };
    let (root, vars) = super::vars::resolve(&root, overrides, &mut checker.diags);
    let plan = checker.plan(&root, path, source);
    match plan {
        Some(plan) if checker.diags.is_empty() => Ok(Plan { vars, ..plan }),
        _ => Err(PlanErrors::new(path, source, checker.diags)),
    }
}

pub(super) struct Checker<'r> {
    pub(super) diags: Vec<Diagnostic>,
    pub(super) registry: &'r Registry,
    /// The plan's folder, against which parameters' relative paths resolve.
    dir: &'r Path,
}

/// Whether a duration may be zero, and if not, what to say.
#[derive(Clone, Copy)]
enum Zero {
    Allowed,
    /// The message and the help line for a zero.
    Refused(&'static str, &'static str),
}

const ZERO_TIMEOUT: Zero = Zero::Refused(
    "a timeout of 0s fails the step before it starts",
    "give the step time to work, like 5m (the default)",
);
const ZERO_RTO: Zero = Zero::Refused("an RTO of 0s can never be met", "write the longest acceptable outage, like 15m");

/// Plan-wide settings that steps inherit.
struct Defaults {
    timeout: Duration,
    retries: u32,
}

impl Checker<'_> {
    pub(super) fn error(&mut self, node: &Node, path: &str, message: impl Into<String>, help: impl Into<String>) {
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
        let state = match fields.get("state") {
            Some(n) => self.state(n).map(Some),
            None => Some(None),
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
            state: state?,
            objectives: objectives?,
            failover: failover?,
            failback: failback?,
            path: path.to_path_buf(),
            digest: hex(&Sha256::digest(source.as_bytes())),
            vars: Vec::new(),
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
                let suggestion = closest(k, allowed.iter().copied());
                misspelled.extend(suggestion);
                let help = match suggestion {
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

    fn duration(&mut self, node: &Node, path: &str, zero: Zero) -> Option<Duration> {
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
                self.error(node, path, format!("expected a duration, found {}", node.kind()), DURATION_HELP);
                return None;
            }
        };
        match (parse_duration(&text), zero) {
            (Ok(d), Zero::Refused(message, help)) if d.is_zero() => {
                self.error(node, path, message, help);
                None
            }
            (Ok(d), _) => Some(d),
            (Err(e), _) => {
                self.error(node, path, e, DURATION_HELP);
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
        let rto = fields.get("rto").and_then(|n| self.duration(n, "objectives.rto", ZERO_RTO));
        // An RPO of 0s is a real objective: no data loss at all.
        let rpo = fields.get("rpo").and_then(|n| self.duration(n, "objectives.rpo", Zero::Allowed));
        Some(Objectives { rto: rto?, rpo: rpo? })
    }

    fn defaults(&mut self, node: &Node) -> Option<Defaults> {
        let fields = self.mapping(node, "defaults", &["timeout", "retries"], &[])?;
        let timeout = match fields.get("timeout") {
            Some(n) => self.duration(n, "defaults.timeout", ZERO_TIMEOUT)?,
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
        // Every step with an id, even one with other problems, so that references to it resolve
        // and its mistakes cause no follow-on errors; with the index of its item in the list.
        let mut listed: Vec<(usize, StepSpec)> = Vec::new();
        let mut seen: HashMap<String, Pos> = HashMap::new();
        let mut recovery: Option<(String, Pos)> = None;
        for (i, item) in items.iter().enumerate() {
            let path = format!("{list}[{i}]");
            let Some(step) = self.step(item, &path, defaults) else { continue };
            let id_node = item.get("id").unwrap_or(item);
            if let Some(first) = seen.get(&step.id) {
                self.error(
                    id_node,
                    &format!("{path}.id"),
                    format!("step id `{}` is already used (line {}, column {})", step.id, first.line, first.col),
                    "give every step in a list its own id",
                );
                continue;
            }
            seen.insert(step.id.clone(), id_node.pos);
            if step.marks_recovery {
                let at = item.get("marks_recovery").unwrap_or(item);
                match &recovery {
                    Some((other, pos)) => self.error(
                        at,
                        &format!("{path}.marks_recovery"),
                        format!(
                            "step `{other}` (line {}) already marks the recovery of the {list}; the RTO ends at one step",
                            pos.line
                        ),
                        "keep `marks_recovery: true` on the one step whose success ends the outage",
                    ),
                    None => recovery = Some((step.id.clone(), at.pos)),
                }
            }
            listed.push((i, step));
        }
        if items.is_empty() {
            self.error(node, &list, "the step list is empty", format!("a plan's {list} needs at least one step"));
        }
        Listed { steps: &listed, items, list: &list, has_kubernetes }.check(self);
        (self.diags.len() == before).then(|| listed.into_iter().map(|(_, step)| step).collect())
    }

    /// The step `node` declares, as far as it can be read. A step with an id is returned even
    /// when other fields are wrong (they are reported): the list keeps it for reference checks.
    fn step(&mut self, node: &Node, path: &str, defaults: &Defaults) -> Option<StepSpec> {
        let fields = self.mapping(node, path, STEP_KEYS, &["id", "type"])?;
        let id_node = fields.get("id")?;
        // An id that is not a valid name is reported, but still names the step for `after`.
        let id = self.identifier(id_node, &join(path, "id")).or_else(|| id_node.as_str().map(str::to_string))?;
        let name = fields.get("name").and_then(|n| self.string(n, &join(path, "name")));
        let with = fields.get("with").map_or_else(|| Node::empty_map(node.pos), |n| (*n).clone());
        let after = match fields.get("after") {
            Some(n) => self.after(n, &join(path, "after")),
            None => Some(Vec::new()),
        };
        // The type's policy (default timeout, retries, on_failure) by its name as written; the
        // type itself is checked below, with the timeout its parameters are checked against.
        let type_name = fields.get("type").and_then(|n| n.as_str()).map(str::to_string);
        let policy = self.policy_of(type_name.as_deref());
        let timeout = match fields.get("timeout") {
            Some(n) => self.duration(n, &join(path, "timeout"), ZERO_TIMEOUT),
            None => Some(policy.default_timeout.unwrap_or(defaults.timeout)),
        };
        let retries = match fields.get("retries") {
            Some(n) => self
                .count(n, &join(path, "retries"), 100)
                .and_then(|r| self.retries_allowed(n, path, type_name.as_deref(), &policy, r)),
            None => Some(if policy.retries { defaults.retries } else { 0 }),
        };
        let marks_recovery = match fields.get("marks_recovery") {
            Some(n) => self.boolean(n, &join(path, "marks_recovery")),
            None => Some(false),
        };
        let on_failure = self.on_failure(&fields, path, type_name.as_deref(), &policy, marks_recovery);
        let context = timeout.map(|timeout| PlanContext { dir: self.dir, timeout });
        let step_type = fields
            .get("type")
            .and_then(|n| self.step_type(n, &with, &join(path, "type"), &join(path, "with"), context.as_ref()));
        Some(StepSpec {
            id,
            // An unknown or bad type is reported; an empty one has no outputs to check.
            step_type: step_type.unwrap_or_default(),
            name,
            with,
            after: after.unwrap_or_default(),
            timeout: timeout.unwrap_or(defaults.timeout),
            retries: retries.unwrap_or(defaults.retries),
            marks_recovery: marks_recovery.unwrap_or(false),
            on_failure: on_failure.unwrap_or(policy.on_failure),
            pos: node.pos,
        })
    }

    /// The step type `node` names, once its `with:` parameters are checked (all of their
    /// problems reported). `None` when the type is unknown; a type with bad parameters is kept.
    fn step_type(
        &mut self,
        node: &Node,
        with: &Node,
        path: &str,
        with_path: &str,
        context: Option<&PlanContext>,
    ) -> Option<String> {
        let name = self.string(node, path)?;
        let Some(kind) = self.registry.get(&name) else {
            let names = self.registry.names();
            let help = match closest(&name, names.iter().copied()) {
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
            return Some(name);
        }
        let problems = match context {
            Some(context) => params::problems(kind, with, context),
            // Without a valid timeout, only the parameters' own shape is checked.
            None => kind.check(with).err().into_iter().collect(),
        };
        for e in problems {
            let field = join(with_path, &e.path);
            self.diags.push(
                Diagnostic::new(e.pos, field, e.message).help(format!("`drctl explain {name}` lists its parameters")),
            );
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

pub(super) fn join(path: &str, key: &str) -> String {
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
