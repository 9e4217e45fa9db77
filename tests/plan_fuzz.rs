//! The plan validator never panics, whatever the file holds, and every problem it reports points
//! into the file: (a) arbitrary text, (b) generated plans built from the real vocabulary of keys,
//! step types and values, (c) random edits of a valid plan. A plan it accepts must be usable: its
//! steps can be ordered and `--dry-run` can describe each of them.
//!
//! `PROPTEST_CASES=20000 cargo test --test plan_fuzz` hunts longer.

use std::path::Path;
use std::sync::LazyLock;

use drctl::engine::dry_run;
use drctl::plan::graph::Graph;
use drctl::plan::template::VARIABLES;
use drctl::plan::{Direction, Plan, PlanErrors, parse};
use drctl::step::Registry;
use drctl::steps::{Services, builtin};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::TestCaseError;

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| builtin(&Services::for_checking()));

/// Test settings: `cases` cases (`PROPTEST_CASES` overrides it, for a longer hunt), and no
/// regression files written into the source tree.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(cases);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// Validates `source`; when it is invalid, every diagnostic must point into the file (a line of
/// it, or the line after the last, where an unexpected end of file is; a column within the line or
/// just past its end) and the rendering must hold together.
///
/// Lines are counted as YAML counts them, which is also how the diagnostics count: a lone `\r`
/// ends a line too (see `lone_cr_line_breaks_show_the_source_line` for what that does to the
/// rendering).
///
/// A plan it accepts must be one the engine can use: its steps in some order, every `after` a step
/// of the same list, and every step describable by `--dry-run`.
fn check(source: &str) -> Result<(), TestCaseError> {
    match parse(Path::new("fuzz.yaml"), source, &REGISTRY) {
        Ok(plan) => check_plan(&plan),
        Err(errors) => check_errors(source, &errors),
    }
}

fn check_plan(plan: &Plan) -> Result<(), TestCaseError> {
    for direction in [Direction::Failover, Direction::Failback] {
        let steps = plan.steps(direction);
        prop_assert!(!steps.is_empty(), "{direction} has no steps");
        let order = Graph::of(steps).order();
        prop_assert!(order.as_ref().is_ok_and(|o| o.len() == steps.len()), "{direction} is not ordered: {order:?}");
        for step in steps {
            for dep in &step.after {
                prop_assert!(
                    steps.iter().any(|s| &s.id == dep),
                    "{direction}: `{}` runs after a missing `{dep}`",
                    step.id
                );
            }
        }
        for step in dry_run(plan, direction, &REGISTRY) {
            prop_assert!(!step.action.starts_with("cannot describe"), "{direction}: {}: {}", step.id, step.action);
        }
    }
    Ok(())
}

fn check_errors(source: &str, errors: &PlanErrors) -> Result<(), TestCaseError> {
    let lines = yaml_lines(source);
    prop_assert!(!errors.diagnostics.is_empty(), "an invalid plan with no diagnostic");
    for d in &errors.diagnostics {
        let (line, col) = (d.pos.line, d.pos.col);
        let at = format!("{line}:{col}: {}: {}\nsource:\n{source:?}", d.path, d.message);
        prop_assert!((1..=lines.len() + 1).contains(&line), "line out of the file's {} lines at {at}", lines.len());
        // Columns count characters, except on a `%` directive line, where saphyr counts bytes.
        let width = lines.get(line - 1).map_or(0, |l| l.len());
        prop_assert!((1..=width + 1).contains(&col), "column out of the line's {width} bytes at {at}");
        prop_assert!(!d.message.is_empty(), "a diagnostic without a message at {at}");
    }
    let text = errors.to_string();
    let count = errors.diagnostics.len();
    let summary = format!("fuzz.yaml: {count} problem{}", if count == 1 { "" } else { "s" });
    prop_assert!(text.ends_with(&summary), "the rendering does not end with `{summary}`:\n{text}");
    prop_assert!(text.matches(": error: ").count() >= count, "fewer `error:` lines than diagnostics:\n{text}");
    Ok(())
}

/// The lines of `source` as YAML counts them: a line break is `\r\n`, `\n` or a lone `\r`.
fn yaml_lines(source: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(['\r', '\n']) {
        lines.push(&rest[..at]);
        let width = if rest[at..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[at + width..];
    }
    if !rest.is_empty() {
        lines.push(rest);
    }
    lines
}

// ---------------------------------------------------------------------------------------------
// (a) Arbitrary text.

/// Characters that make YAML structure, weighted towards the ones that break it.
const YAML_CHARS: &[char] = &[
    ':', '-', ' ', ' ', ' ', '\n', '\n', '\t', '\r', '{', '}', '[', ']', ',', '"', '\'', '#', '&', '*', '!', '|', '>',
    '%', '@', '`', '?', '\\', 'a', 'b', '1', '0', '.', '\u{feff}', '\u{85}', '\u{2028}', 'é', '\0',
];

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check(&text)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn yaml_punctuation_never_panics(chars in prop::collection::vec(select(YAML_CHARS), 0..200)) {
        let text: String = chars.into_iter().collect();
        check(&text)?;
    }

    #[test]
    fn printable_text_never_panics(text in "[ -~\n]{0,400}") {
        check(&text)?;
    }
}

// ---------------------------------------------------------------------------------------------
// (b) Generated plans.

/// A YAML value to render; `true` asks for flow style (`{a: b}`, `[a, b]`).
#[derive(Debug, Clone)]
enum Y {
    Scalar(String),
    Seq(Vec<Y>, bool),
    Map(Vec<(String, Y)>, bool),
}

const PLAN_KEYS: &[&str] = &[
    "name",
    "description",
    "regions",
    "kubernetes",
    "objectives",
    "defaults",
    "failover",
    "failback",
    "objetives",
    "failovr",
    "steps",
];
const STEP_KEYS: &[&str] =
    &["id", "name", "type", "with", "after", "timeout", "retries", "marks_recovery", "retires", "afterr", "depends_on"];
const PARAM_KEYS: &[&str] = &[
    "url",
    "method",
    "expect_status",
    "body_contains",
    "attempts",
    "interval",
    "request_timeout",
    "headers",
    "duration",
    "reason",
    "message",
    "run",
    "body",
    "observe",
    "template",
    "severity",
    "service",
    "impact",
    "status",
    "statsu",
    "env",
    "timeout",
];
const STEP_TYPES: &[&str] =
    &["wait", "http.check", "http.request", "notify.webhook", "command", "approval", "http.chek", "aws.rds", ""];
const IDS: &[&str] = &["approve", "check", "scale-dr", "switch", "verify", "back", "a", "b", "c", "Check DR", "-x", ""];
const REGIONS: &[&str] = &["us-east-1", "us-west-2", "eu-west-1", "primary", "secondary", ""];
const DURATIONS: &[&str] = &[
    "15m",
    "5m",
    "1h30m",
    "500ms",
    "1s",
    "0s",
    "15",
    "15 minutes",
    "abc",
    "-1s",
    "99999999999999999999h",
    "1d",
    " 2m ",
];
const OUTPUTS: &[&str] = &["status", "latency_ms", "stdout", "exit_code", "body", "approved_by", "x"];
/// References that are not variables, or not well-formed (the valid ones are
/// `drctl::plan::template::VARIABLES`).
const ODD_REFERENCES: &[&str] =
    &["plan.region", "env.DEMO_URL", "env.DEMO-URL", "env.", "steps.a.b", "steps..outputs.", "\"{{\"", ""];

fn text_scalar() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-zA-Z0-9 _./:-]{0,20}",
        any::<String>().prop_map(|s| s.chars().take(20).collect()),
        "[{}\\[\\]:#&*!|>'\"%@` -]{0,6}",
    ]
    .boxed()
}

fn template() -> BoxedStrategy<String> {
    let reference = prop_oneof![
        3 => (select(IDS), select(OUTPUTS)).prop_map(|(s, o)| format!("steps.{s}.outputs.{o}")),
        2 => select(VARIABLES).prop_map(str::to_string),
        1 => select(ODD_REFERENCES).prop_map(str::to_string),
    ];
    let close = prop_oneof![8 => Just(" }}"), 1 => select(&["}}", "", " }", " }} and {{"][..])];
    (select(&["", "http://", "Fail over ", "x="][..]), reference, close)
        .prop_map(|(before, r, close)| format!("{before}{{{{ {r}{close}"))
        .boxed()
}

fn scalar() -> BoxedStrategy<Y> {
    prop_oneof![
        3 => select(IDS).prop_map(str::to_string),
        2 => select(DURATIONS).prop_map(str::to_string),
        1 => "[0-9]{1,4}(ms|s|m|h|d|x)?",
        2 => (-3i64..200).prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => select(&["true", "false", "yes", "null", "~", "1.5", ".inf", "0x1f", "0o17"][..]).prop_map(str::to_string),
        1 => select(STEP_TYPES).prop_map(str::to_string),
        1 => select(REGIONS).prop_map(str::to_string),
        3 => template(),
        2 => text_scalar(),
    ]
    .prop_map(Y::Scalar)
    .boxed()
}

/// Any value, nested up to a few levels, with keys from every vocabulary.
fn any_value() -> BoxedStrategy<Y> {
    let keys = prop_oneof![
        select(PLAN_KEYS),
        select(STEP_KEYS),
        select(PARAM_KEYS),
        select(&["primary", "secondary", "rto", "rpo"][..])
    ];
    let keys = keys.prop_map(str::to_string);
    scalar()
        .prop_recursive(3, 24, 5, move |inner| {
            prop_oneof![
                (prop::collection::vec(inner.clone(), 0..5), any::<bool>())
                    .prop_map(|(items, flow)| Y::Seq(items, flow)),
                (prop::collection::vec((keys.clone(), inner), 0..5), any::<bool>())
                    .prop_map(|(e, flow)| Y::Map(e, flow)),
            ]
        })
        .boxed()
}

fn map(entries: Vec<Option<(&'static str, Y)>>, extra: Vec<(String, Y)>, flow: bool) -> Y {
    let mut all: Vec<(String, Y)> = entries.into_iter().flatten().map(|(k, v)| (k.to_string(), v)).collect();
    all.extend(extra);
    Y::Map(all, flow)
}

type Entry = BoxedStrategy<Option<(&'static str, Y)>>;

/// How often a generated plan gets something wrong: out of 1000 fields, about this many hold a
/// random value instead of a fitting one. Each plan draws its own level, so some plans are valid
/// (and reach the dependency and template checks) and some are chaos.
#[derive(Debug, Clone, Copy)]
struct Noise(u32);

impl Noise {
    /// Mostly `good`, now and then a wrong value; with noise 0, always `good`.
    fn mostly(self, good: impl Strategy<Value = Y> + 'static) -> BoxedStrategy<Y> {
        if self.0 == 0 {
            return good.boxed();
        }
        prop_oneof![1000 => good, self.0 => scalar(), self.0.div_ceil(3) => any_value()].boxed()
    }

    /// `key: value` with probability `weight`, and as often as noise says, the other way round.
    fn sometimes(self, weight: f64, value: impl Strategy<Value = Y> + 'static, key: &'static str) -> Entry {
        let flip = f64::from(self.0) / 1000.0;
        let weight = if weight >= 0.5 { weight - flip } else { weight + flip };
        let value = value.prop_map(move |v| Some((key, v)));
        match weight {
            w if w >= 1.0 => value.boxed(),
            w if w <= 0.0 => Just(None).boxed(),
            w => prop::option::weighted(w, value.prop_map(|v| v.expect("always some"))).boxed(),
        }
    }

    /// Keys that do not belong, as often as noise says.
    fn extra(self, keys: &'static [&'static str]) -> BoxedStrategy<Vec<(String, Y)>> {
        if self.0 == 0 {
            return Just(Vec::new()).boxed();
        }
        let extra = prop::collection::vec((select(keys).prop_map(str::to_string), any_value()), 1..3);
        prop_oneof![1000 => Just(Vec::new()), self.0 * 3 => extra].boxed()
    }

    fn fields(self, entries: Vec<Entry>, keys: &'static [&'static str]) -> BoxedStrategy<Y> {
        (entries, self.extra(keys), any::<bool>()).prop_map(|(entries, extra, flow)| map(entries, extra, flow)).boxed()
    }
}

fn word(words: &'static [&'static str]) -> BoxedStrategy<Y> {
    select(words).prop_map(|w| Y::Scalar(w.to_string())).boxed()
}

fn list(items: impl Strategy<Value = Y> + 'static, len: std::ops::Range<usize>) -> BoxedStrategy<Y> {
    (prop::collection::vec(items, len), any::<bool>()).prop_map(|(items, flow)| Y::Seq(items, flow)).boxed()
}

const GOOD_REGIONS: &[&str] = &["us-east-1", "us-west-2", "eu-west-1"];

/// Two different names, `primary` first.
fn pair(n: Noise) -> BoxedStrategy<Y> {
    let names = (0..GOOD_REGIONS.len(), 1..GOOD_REGIONS.len()).prop_map(|(p, d)| {
        (Y::Scalar(GOOD_REGIONS[p].to_string()), Y::Scalar(GOOD_REGIONS[(p + d) % GOOD_REGIONS.len()].to_string()))
    });
    (
        names,
        n.mostly(word(REGIONS)),
        n.mostly(word(REGIONS)),
        prop::bool::weighted(f64::from(n.0) / 1000.0),
        any::<bool>(),
    )
        .prop_map(|((p, s), p2, s2, wrong, flow)| {
            let (p, s) = if wrong { (p2, s2) } else { (p, s) };
            Y::Map(vec![("primary".to_string(), p), ("secondary".to_string(), s)], flow)
        })
        .boxed()
}

fn duration(n: Noise) -> BoxedStrategy<Y> {
    n.mostly(prop_oneof![20 => word(&DURATIONS[..6]), n.0.div_ceil(10) => word(DURATIONS)])
}

/// Text for a parameter: words, a template of plan values, or (with noise) any template.
fn text(n: Noise) -> BoxedStrategy<Y> {
    let good_template = select(&VARIABLES[..3]).prop_map(|v| Y::Scalar(format!("Fail over {{{{ {v} }}}} now"))).boxed();
    prop_oneof![
        40 => word(&["Fail over?", "let DNS TTLs expire", "checkout", "P0"]),
        20 => good_template,
        n.0.div_ceil(5) => template().prop_map(Y::Scalar),
    ]
    .boxed()
}

fn url(n: Noise) -> BoxedStrategy<Y> {
    n.mostly(prop_oneof![
        3 => word(&["http://127.0.0.1:9/health", "https://api.example.com/health"]),
        1 => select(&VARIABLES[..3]).prop_map(|v| Y::Scalar(format!("http://{{{{ {v} }}}}/health"))),
    ])
}

fn status(n: Noise) -> BoxedStrategy<Y> {
    n.mostly(prop_oneof![3 => word(&["200", "204", "202"]), 1 => list(word(&["200", "204"]), 1..3)])
}

/// `with:` for one step type: its real parameters, as right as the noise level allows.
fn params(step_type: &str, n: Noise) -> BoxedStrategy<Y> {
    let entries: Vec<Entry> = match step_type {
        "wait" => vec![n.sometimes(1.0, duration(n), "duration"), n.sometimes(0.4, text(n), "reason")],
        "http.check" => vec![
            n.sometimes(1.0, url(n), "url"),
            n.sometimes(0.3, n.mostly(word(&["GET", "HEAD"])), "method"),
            n.sometimes(0.3, status(n), "expect_status"),
            n.sometimes(0.3, n.mostly(word(&["1", "30"])), "attempts"),
            n.sometimes(0.3, duration(n), "interval"),
            n.sometimes(0.2, text(n), "body_contains"),
        ],
        "http.request" => vec![
            n.sometimes(1.0, n.mostly(word(&["PUT", "POST", "DELETE"])), "method"),
            n.sometimes(1.0, url(n), "url"),
            n.sometimes(0.4, text(n), "body"),
            n.sometimes(0.3, status(n), "expect_status"),
            n.sometimes(0.3, n.fields(vec![n.sometimes(1.0, url(n), "url")], PARAM_KEYS), "observe"),
        ],
        "notify.webhook" => {
            let target = prop_oneof![
                url(n).prop_map(|u| Some(("url", u))),
                n.mostly(word(&["CHAT_WEBHOOK_URL"])).prop_map(|u| Some(("url_env", u))),
            ];
            vec![
                target.boxed(),
                n.sometimes(1.0, n.mostly(word(&["incident_detected", "status_update", "resolved"])), "template"),
                n.sometimes(0.3, text(n), "impact"),
                n.sometimes(0.2, n.mostly(list(text(n), 0..3)), "actions"),
            ]
        }
        "command" => vec![
            n.sometimes(1.0, n.mostly(list(prop_oneof![word(&["echo", "/bin/true", "-c"]), text(n)], 1..4)), "run"),
            n.sometimes(0.2, n.fields(vec![n.sometimes(1.0, text(n), "REGION")], PARAM_KEYS), "env"),
        ],
        _ => vec![n.sometimes(0.8, text(n), "message")],
    };
    n.fields(entries, PARAM_KEYS)
}

/// Step `index` of a list whose ids are `ids`: `after` names earlier steps (with noise, any step,
/// so cycles happen), and now and then a template names an earlier step's output.
fn step(index: usize, ids: Vec<&'static str>, n: Noise) -> BoxedStrategy<Y> {
    let id = ids[index];
    let earlier: Vec<&'static str> = ids[..index].to_vec();
    let any_id = {
        let ids = ids.clone();
        move || select(ids.clone()).prop_map(|w| Y::Scalar(w.to_string())).boxed()
    };
    let after = if earlier.is_empty() {
        n.mostly(list(any_id(), 1..3))
    } else {
        let earlier_id = select(earlier.clone()).prop_map(|w| Y::Scalar(w.to_string()));
        let good = prop_oneof![4 => list(earlier_id.clone(), 1..3), 1 => earlier_id];
        prop_oneof![1000 => good, n.0 => list(any_id(), 1..3), n.0 => n.mostly(any_id())].boxed()
    };
    let after_weight = if earlier.is_empty() { 0.0 } else { 0.7 };
    let template_of = if earlier.is_empty() { ids.clone() } else { earlier };
    let output = (select(template_of), select(OUTPUTS))
        .prop_map(|(s, o)| Y::Scalar(format!("{s} said {{{{ steps.{s}.outputs.{o} }}}}")))
        .boxed();
    (select(&STEP_TYPES[..6]), prop::bool::weighted(f64::from(n.0) / 1000.0))
        .prop_flat_map(move |(step_type, wrong_type)| {
            let type_value = if wrong_type { word(STEP_TYPES) } else { Just(Y::Scalar(step_type.to_string())).boxed() };
            let reason = prop_oneof![12 => Just(None), 1 => output.clone().prop_map(Some)];
            (
                (
                    n.sometimes(1.0, n.mostly(Just(Y::Scalar(id.to_string()))), "id"),
                    n.sometimes(1.0, type_value, "type"),
                ),
                (
                    n.sometimes(
                        if step_type == "approval" { 0.8 } else { 1.0 },
                        n.mostly(params(step_type, n)),
                        "with",
                    ),
                    n.sometimes(after_weight, after.clone(), "after"),
                ),
                (
                    n.sometimes(0.15, duration(n), "timeout"),
                    n.sometimes(0.15, n.mostly(word(&["0", "2", "100"])), "retries"),
                ),
                (
                    n.sometimes(0.1, n.mostly(word(&["true", "false"])), "marks_recovery"),
                    n.sometimes(0.2, text(n), "name"),
                ),
                reason,
                n.extra(STEP_KEYS),
                any::<bool>(),
            )
        })
        .prop_map(|((id, ty), (mut with, after), (timeout, retries), (recovery, name), reason, extra, flow)| {
            let mut name = name;
            if let Some(reason) = reason {
                let key = match &ty {
                    Some((_, Y::Scalar(t))) if t == "wait" => "reason",
                    Some((_, Y::Scalar(t))) if t == "approval" => "message",
                    _ => "",
                };
                match with.as_mut() {
                    Some((_, Y::Map(params, _))) if !key.is_empty() => {
                        params.retain(|(k, _)| k != key);
                        params.push((key.to_string(), reason));
                    }
                    _ => name = Some(("name", reason)),
                }
            }
            map(vec![id, ty, with, after, timeout, retries, recovery, name], extra, flow)
        })
        .prop_shuffle_entries()
        .boxed()
}

fn steps(n: Noise) -> BoxedStrategy<Y> {
    let list = (1usize..7, any::<Index>(), prop::bool::weighted(f64::from(n.0) / 1000.0)).prop_flat_map(
        move |(len, at, dup)| {
            let mut ids: Vec<&'static str> = IDS[..9].iter().copied().cycle().skip(at.index(9)).take(len).collect();
            if dup && len > 1 {
                ids[len - 1] = ids[0];
            }
            let steps: Vec<BoxedStrategy<Y>> = (0..len).map(|i| step(i, ids.clone(), n)).collect();
            steps.prop_map(|s| Y::Seq(s, false))
        },
    );
    n.mostly(list)
}

fn plan() -> BoxedStrategy<Y> {
    select(&[0u32, 0, 2, 10, 40, 150][..]).prop_map(Noise).prop_flat_map(plan_with).boxed()
}

fn plan_with(n: Noise) -> BoxedStrategy<Y> {
    let name = n.mostly(word(&["us-west-2", "local", "eu_1"]));
    let objectives =
        n.fields(vec![n.sometimes(1.0, duration(n), "rto"), n.sometimes(1.0, duration(n), "rpo")], PLAN_KEYS);
    let defaults = n.fields(
        vec![n.sometimes(0.7, duration(n), "timeout"), n.sometimes(0.7, n.mostly(word(&["0", "2", "100"])), "retries")],
        PLAN_KEYS,
    );
    (
        (
            n.sometimes(1.0, name, "name"),
            n.sometimes(0.2, text(n), "description"),
            n.sometimes(1.0, n.mostly(pair(n)), "regions"),
        ),
        (n.sometimes(0.3, n.mostly(pair(n)), "kubernetes"), n.sometimes(1.0, n.mostly(objectives), "objectives")),
        (
            n.sometimes(0.3, n.mostly(defaults), "defaults"),
            n.sometimes(1.0, steps(n), "failover"),
            n.sometimes(1.0, steps(n), "failback"),
        ),
        n.extra(PLAN_KEYS),
    )
        .prop_map(|((name, description, regions), (kubernetes, objectives), (defaults, failover, failback), extra)| {
            map(vec![name, description, regions, kubernetes, objectives, defaults, failover, failback], extra, false)
        })
        .prop_shuffle_entries()
        .boxed()
}

/// Reorders a mapping's entries now and then (keys in an unusual order are still a plan).
trait ShuffleEntries {
    fn prop_shuffle_entries(self) -> BoxedStrategy<Y>;
}

impl<S: Strategy<Value = Y> + 'static> ShuffleEntries for S {
    fn prop_shuffle_entries(self) -> BoxedStrategy<Y> {
        (self, any::<bool>(), any::<Index>())
            .prop_map(|(y, shuffle, at)| match y {
                Y::Map(mut entries, flow) if shuffle && entries.len() > 1 => {
                    let i = at.index(entries.len());
                    entries.rotate_left(i);
                    Y::Map(entries, flow)
                }
                other => other,
            })
            .boxed()
    }
}

/// A scalar as YAML text: plain when YAML reads it back as the same plain scalar (so `true` and
/// `15` stay a boolean and a number), else double-quoted.
fn scalar_text(s: &str) -> String {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || "_./~".contains(c))
        && !s.ends_with(' ')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || " _./-~".contains(c));
    if plain {
        return s.to_string();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn flow(y: &Y) -> String {
    match y {
        Y::Scalar(s) => scalar_text(s),
        Y::Seq(items, _) => format!("[{}]", items.iter().map(flow).collect::<Vec<_>>().join(", ")),
        Y::Map(entries, _) => {
            format!(
                "{{{}}}",
                entries.iter().map(|(k, v)| format!("{}: {}", scalar_text(k), flow(v))).collect::<Vec<_>>().join(", ")
            )
        }
    }
}

/// Whether `y` is written as indented lines rather than on one line.
fn is_block(y: &Y) -> bool {
    match y {
        Y::Seq(items, flow) => !flow && !items.is_empty(),
        Y::Map(entries, flow) => !flow && !entries.is_empty(),
        Y::Scalar(_) => false,
    }
}

fn block(y: &Y, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match y {
        Y::Map(entries, _) => {
            for (k, v) in entries {
                out.push_str(&format!("{pad}{}:", scalar_text(k)));
                if is_block(v) {
                    out.push('\n');
                    block(v, indent + 2, out);
                } else {
                    out.push_str(&format!(" {}\n", flow(v)));
                }
            }
        }
        Y::Seq(items, _) => {
            for item in items {
                if is_block(item) {
                    let mut child = String::new();
                    block(item, indent + 2, &mut child);
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(&child[indent + 2..]);
                } else {
                    out.push_str(&format!("{pad}- {}\n", flow(item)));
                }
            }
        }
        Y::Scalar(_) => out.push_str(&format!("{pad}{}\n", flow(y))),
    }
}

fn render(y: &Y) -> String {
    let mut out = String::new();
    if is_block(y) {
        block(y, 0, &mut out);
    } else {
        out = flow(y) + "\n";
    }
    out
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn generated_plans_never_panic_and_point_into_the_file(plan in plan()) {
        check(&render(&plan))?;
    }

    #[test]
    fn generated_values_never_panic_and_point_into_the_file(value in any_value()) {
        check(&render(&value))?;
    }
}

// ---------------------------------------------------------------------------------------------
// (c) Edits of a valid plan.

const VALID: &str = r#"# yaml-language-server: $schema=../drctl-plan.schema.json
name: us-west-2
description: >
  Fail over from us-east-1 to us-west-2 and back.
regions:
  primary: us-east-1
  secondary: us-west-2
kubernetes: {primary: prod-use1, secondary: prod-usw2}
objectives:
  rto: 15m
  rpo: 5m
defaults:
  timeout: 2m
  retries: 2

failover:
  - id: approve
    type: approval
    with:
      message: "Fail over {{ plan.name }} to {{ plan.regions.secondary }} ({{ plan.kubernetes.secondary }})?"

  - id: verify-dr
    name: DR region healthy
    type: http.check
    after: [approve]
    timeout: 5m
    retries: 0
    with:
      url: "http://127.0.0.1:9/regions/{{ plan.regions.secondary }}/health"
      expect_status: [200, 204]
      attempts: 30
      interval: 500ms
      headers: {Accept: application/json}

  - id: announce
    type: notify.webhook
    after: [approve]
    with:
      url_env: CHAT_WEBHOOK_URL
      template: incident_detected
      severity: P0
      service: checkout
      impact: "{{ plan.regions.primary }} is unavailable"

  - id: switch-traffic
    type: http.request
    after: [verify-dr]
    with:
      method: PUT
      url: "{{ env.DEMO_URL }}/traffic"
      body: "{{ plan.regions.secondary }}"
      expect_status: [200, 202]
      observe:
        url: "{{ env.DEMO_URL }}/traffic/{{ plan.regions.secondary }}"

  - id: record
    type: command
    after: [switch-traffic]
    with:
      run: ["echo", "switched with {{ steps.switch-traffic.outputs.status }}"]
      env: {REGION: "{{ plan.regions.secondary }}"}

  - id: settle
    type: wait
    after: [verify-dr, record, announce]
    marks_recovery: true
    with:
      duration: 30s
      reason: "DR answered {{ steps.verify-dr.outputs.status }} in {{ steps.verify-dr.outputs.latency_ms }} ms"

failback:
  - id: approve
    type: approval
    with: {message: "Fail back to {{ plan.regions.primary }}?"}
  - id: verify-primary
    type: http.check
    after: approve
    with: {url: "http://127.0.0.1:9/health", method: HEAD}
"#;

/// Lines one may paste into a plan by mistake or on purpose.
const LINES: &[&str] = &[
    "  - id: approve",
    "    type: wait",
    "    with: {duration: 1s}",
    "    after: [settle]",
    "    after: [verify-dr, approve]",
    "      url: {{ plan.name }}",
    "    retries: -1",
    "failover:",
    "failback: []",
    "---",
    "  objetives: 5m",
    "\t- id: x",
    "kubernetes: {primary: a, secondary: a}",
    "      reason: \"{{ steps.settle.outputs.status }}\"",
    "      reason: \"{{ steps.verify-dr.status }}\"",
    "    with: [a, b]",
    "",
    "#",
    "&a *a",
    "? complex",
];

#[derive(Debug, Clone)]
enum Edit {
    DeleteLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    InsertLine(Index, &'static str),
    InsertChar(Index, char),
    DeleteChar(Index),
    ReplaceChar(Index, char),
}

fn edit() -> impl Strategy<Value = Edit> {
    let ch = prop_oneof![3 => select(YAML_CHARS), 1 => any::<char>()];
    prop_oneof![
        any::<Index>().prop_map(Edit::DeleteLine),
        any::<Index>().prop_map(Edit::DuplicateLine),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        (any::<Index>(), select(LINES)).prop_map(|(at, line)| Edit::InsertLine(at, line)),
        (any::<Index>(), ch.clone()).prop_map(|(at, c)| Edit::InsertChar(at, c)),
        any::<Index>().prop_map(Edit::DeleteChar),
        (any::<Index>(), ch).prop_map(|(at, c)| Edit::ReplaceChar(at, c)),
    ]
}

fn apply(text: &str, edit: &Edit) -> String {
    let mut lines: Vec<&str> = text.split('\n').collect();
    let mut chars: Vec<char> = text.chars().collect();
    match *edit {
        Edit::DeleteLine(at) => {
            lines.remove(at.index(lines.len()));
        }
        Edit::DuplicateLine(at) => {
            let i = at.index(lines.len());
            lines.insert(i, lines[i]);
        }
        Edit::SwapLines(a, b) => {
            let (a, b) = (a.index(lines.len()), b.index(lines.len()));
            lines.swap(a, b);
        }
        Edit::InsertLine(at, line) => lines.insert(at.index(lines.len() + 1), line),
        Edit::InsertChar(at, c) => {
            chars.insert(at.index(chars.len() + 1), c);
            return chars.into_iter().collect();
        }
        Edit::DeleteChar(at) => {
            if !chars.is_empty() {
                chars.remove(at.index(chars.len()));
            }
            return chars.into_iter().collect();
        }
        Edit::ReplaceChar(at, c) => {
            if !chars.is_empty() {
                let i = at.index(chars.len());
                chars[i] = c;
            }
            return chars.into_iter().collect();
        }
    }
    lines.join("\n")
}

#[test]
fn the_plan_to_edit_is_valid() {
    if let Err(errors) = parse(Path::new("valid.yaml"), VALID, &REGISTRY) {
        panic!("{errors}");
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn edited_plans_never_panic_and_point_into_the_file(edits in prop::collection::vec(edit(), 1..6)) {
        let text = edits.iter().fold(VALID.to_string(), |text, e| apply(&text, e));
        check(&text)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs known to be hard on parsers.

#[test]
fn hostile_inputs_are_errors_not_crashes() {
    let cases = [
        String::new(),
        "\u{feff}".to_string(),
        "\0".to_string(),
        "---".to_string(),
        "...".to_string(),
        "--- |\n  text\n".to_string(),
        "[".repeat(10_000),
        "{a: ".repeat(2_000),
        "- ".repeat(5_000),
        "a:\n".to_string() + &"  ".repeat(1_000) + "b",
        "&a [*a]".to_string(),
        "*a".to_string(),
        "!!binary aGVsbG8=".to_string(),
        "%YAML 1.1\n---\nname: x\n".to_string(),
        "name: \"\\u\"".to_string(),
        "failover:\r\n  - id: a\r\n    type: wait\r\n    with: {duration: 1}\r\n".to_string(),
        "failover:\r  - id: a\r    type: wait\r    with: {duration: 1}\r".to_string(),
        format!("name: {}\n", "x".repeat(100_000)),
        // Thousands of problems, one step a line; and a few hundred on one long line (every
        // problem shows its source line, so this one's rendering grows with lines × problems).
        format!(
            "failover:\n{}",
            (0..2_000).map(|i| format!("  - {{id: s{i}, type: wait, after: [s{}]}}\n", i + 1)).collect::<String>()
        ),
        format!(
            "failover: [{}]\n",
            (0..300).map(|i| format!("{{id: s{i}, type: wait, after: [s{}]}}", i + 1)).collect::<Vec<_>>().join(", ")
        ),
        format!(
            "failover: [{}]\n",
            (0..2_000)
                .map(|i| format!("{{id: s{i}, type: wait, with: {{duration: 1s}}, after: [s{}]}}", (i + 1) % 2_000))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "failover: [{id: a, type: wait, with: {duration: 1s, reason: '{{{{{{'}}]".to_string(),
        "failover: [{id: a, type: wait, with: {duration: 1s, reason: '}}{{ }}{{'}}]".to_string(),
        "failover: [{id: a, type: wait, with: {duration: 1s, reason: '{{ \"}} }}'}}]".to_string(),
        "retries: 99999999999999999999999\n".to_string(),
        "defaults: {retries: -9223372036854775808, timeout: 18446744073709551616s}\n".to_string(),
        "objectives: {rto: 9999999999999999999999h, rpo: 1ns}\n".to_string(),
    ];
    for source in &cases {
        let shown: String = source.chars().take(60).collect();
        let result = std::panic::catch_unwind(|| check(source));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{shown:?}: {e}"),
            Err(_) => panic!("the validator panicked on {shown:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Known problems, kept here so they are easy to check once fixed.

#[test]
fn lone_cr_line_breaks_show_the_source_line() {
    let source = "name: cr\rregions: {primary: a, secondary: b}\robjectives: {rto: 15m, rpo: 5m}\r\
                  failback: [{id: b, type: wait, with: {duration: 1s}}]\r\
                  failover:\r  - id: a\r    type: wait\r    with: {duration: 1}\r";
    let errors = parse(Path::new("cr.yaml"), source, &REGISTRY).expect_err("`duration: 1` has no unit");
    let text = errors.to_string();
    assert!(text.starts_with("cr.yaml:8:22: error: failover[0].with.duration: "), "{text}");
    assert!(text.contains("8 |     with: {duration: 1}\n"), "the source line is not shown:\n{text:?}");
}
