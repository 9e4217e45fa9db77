use super::*;
use crate::plan::diagnostic::Diagnostic;
use crate::plan::yaml::parse;

const PLAN: &str = "vars:\n  zone_id:\n    value: Z123\n    description: hosted zone\n  attempts: {value: 25}\n  replica: {}\nsteps:\n  zone: '{{ vars.zone_id }}'\n  url: 'http://x/{{ vars.zone_id }}/{{ env.HOME }}'\n  n: '{{ vars.attempts }}'\n";

fn run(overrides: &Overrides) -> (Node, Vec<ResolvedVar>, Vec<Diagnostic>) {
    let root = parse(PLAN).unwrap();
    let mut diags = Vec::new();
    let (node, vars) = resolve(&root, overrides, &mut diags);
    (node, vars, diags)
}

fn cli(pairs: &[&str]) -> Overrides {
    let mut o = Overrides::default();
    o.command_line(&pairs.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    o
}

#[test]
fn plan_values_are_substituted_with_their_types_and_other_templates_kept() {
    let (node, vars, diags) = run(&cli(&["replica=portfolio-dr"]));
    assert!(diags.is_empty(), "{diags:?}");
    let steps = node.get("steps").unwrap();
    assert_eq!(steps.get("zone").unwrap().as_str(), Some("Z123"));
    assert_eq!(steps.get("url").unwrap().as_str(), Some("http://x/Z123/{{ env.HOME }}"));
    assert_eq!(steps.get("n").unwrap().value, Value::Int(25));
    assert_eq!(
        vars[0],
        ResolvedVar {
            name: "zone_id".into(),
            value: Scalar::Str("Z123".into()),
            source: VarSource::Plan,
            description: Some("hosted zone".into())
        }
    );
    assert_eq!(vars[2].source, VarSource::CommandLine);
}

#[test]
fn later_overrides_win_and_keep_their_source() {
    let mut o = Overrides::default();
    let env = [("attempts".to_string(), serde_json::json!(50)), ("replica".into(), serde_json::json!("dr"))];
    o.environment(Path::new("env.json"), &env.into_iter().collect()).unwrap();
    o.command_line(&["attempts=7".to_string()]).unwrap();
    let (node, vars, diags) = run(&o);
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(node.get("steps").unwrap().get("n").unwrap().value, Value::Int(7));
    assert_eq!(vars[1].source, VarSource::CommandLine);
    assert_eq!(vars[2].source, VarSource::Environment { path: "env.json".into() });
}

#[test]
fn missing_unknown_and_secret_values_are_positioned_errors_with_suggestions() {
    let (_, _, diags) = run(&cli(&["zone_idd=Z9"]));
    let messages: Vec<String> = diags.iter().map(|d| format!("{}: {} ({:?})", d.pos, d.message, d.help)).collect();
    assert!(messages.iter().any(|m| m.starts_with("6:3: var `replica` has no value")), "{messages:?}");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("--var zone_idd overrides `zone_idd`") && m.contains("did you mean `zone_id`")),
        "{messages:?}"
    );
    let root = parse("vars:\n  url: {value: 'https://u:pw@h/x'}\nx: '{{ vars.uurl }}'\n").unwrap();
    let mut diags = Vec::new();
    resolve(&root, &Overrides::default(), &mut diags);
    assert_eq!(diags.len(), 2, "{diags:?}");
    assert_eq!((diags[0].pos.line, diags[0].pos.col), (2, 16));
    assert!(diags[0].message.contains("looks like a secret"));
    assert!(diags[1].message.contains("`{{ vars.uurl }}` names no variable"));
    assert!(diags[1].help.as_deref().unwrap().contains("did you mean `url`?"));
}

#[test]
fn a_secret_given_on_the_command_line_is_refused_naming_its_origin() {
    let (_, vars, diags) = run(&cli(&["replica=r", "zone_id=postgres://a:b@h/db"]));
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(diags[0].message.contains("(set by --var zone_id)"), "{}", diags[0].message);
    assert!(!diags[0].message.contains("a:b"), "the secret itself is never repeated");
    assert!(vars.iter().all(|v| v.name != "zone_id"));
}

#[test]
fn command_line_and_files_are_read_as_yaml_scalars() {
    assert_eq!(Scalar::parse("25"), Scalar::Int(25));
    assert_eq!(Scalar::parse("true"), Scalar::Bool(true));
    assert_eq!(Scalar::parse("http://127.0.0.1:5000"), Scalar::Str("http://127.0.0.1:5000".into()));
    assert_eq!(Scalar::parse("a: b"), Scalar::Str("a: b".into()));
    assert_eq!(Scalar::parse(""), Scalar::Str(String::new()));
    assert!(Overrides::default().command_line(&["novalue".into()]).unwrap_err().contains("NAME=VALUE"));
    let dir = std::env::temp_dir().join(format!("drctl-vars-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("v.yaml");
    std::fs::write(&file, "zone_id: Z1\nlist: [1]\n").unwrap();
    let e = Overrides::default().file(&file).unwrap_err();
    assert!(e.ends_with(":2:7: `list` must be a string, number or boolean, found a list"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn journaled_values_are_compared_with_the_new_ones() {
    let was = vec![ResolvedVar {
        name: "a".into(),
        value: Scalar::Int(1),
        source: VarSource::CommandLine,
        description: None,
    }];
    let same = was.clone();
    assert!(differences(&was, &same).is_empty());
    let now = vec![ResolvedVar {
        name: "a".into(),
        value: Scalar::Int(2),
        source: VarSource::CommandLine,
        description: None,
    }];
    assert_eq!(
        differences(&was, &now),
        vec!["`a` was `1` (command line) when the run started, now `2` (command line)"]
    );
    assert_eq!(Overrides::journaled(&was).0[0].value, Scalar::Int(1));
}
