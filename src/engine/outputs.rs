//! The engine's check of what a step emitted against what its type declares
//! ([`OutputSpec`](crate::step::OutputSpec)): validation trusts the declaration (a template may use
//! only declared outputs, and must give a default for one that may be absent), so a step that
//! emits anything else fails, with a message that says the fault is in the step type, not the plan.

use crate::step::{OutputSpec, Outputs};

/// `Ok` when `outputs` holds every output `declared` as always set, nothing undeclared, and each
/// value parses as its declared type; otherwise what is wrong, all of it, in one message.
pub fn check(step_type: &str, declared: &[OutputSpec], outputs: &Outputs) -> Result<(), String> {
    let mut problems = Vec::new();
    for spec in declared {
        match outputs.get(spec.name) {
            None if !spec.may_be_absent() => problems.push(format!("it did not set `{}`", spec.name)),
            None => {}
            // The value is not quoted: an output must never hold a secret, but a buggy one might.
            Some(value) if !spec.kind.accepts(value) => problems.push(format!(
                "`{}` is not a valid {} ({} characters)",
                spec.name,
                spec.kind,
                value.chars().count()
            )),
            Some(_) => {}
        }
    }
    for name in outputs.keys().filter(|name| !declared.iter().any(|spec| spec.name == name.as_str())) {
        problems.push(format!("it set `{name}`, which its type does not declare"));
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "a bug in step type `{step_type}`: its outputs do not match what it declares ({}); report it to drctl's \
             maintainers with the journal",
            problems.join("; ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECLARED: &[OutputSpec] = &[
        OutputSpec::integer("port", "The port."),
        OutputSpec::duration("lag_s", "The lag.").optional(),
        OutputSpec::boolean("fenced", "Fenced."),
    ];

    fn outputs(pairs: &[(&str, &str)]) -> Outputs {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn exactly_the_declared_outputs_pass_with_or_without_optional_ones() {
        assert_eq!(check("t", DECLARED, &outputs(&[("port", "5432"), ("fenced", "true")])), Ok(()));
        assert_eq!(check("t", DECLARED, &outputs(&[("port", "5432"), ("fenced", "false"), ("lag_s", "0.5")])), Ok(()));
    }

    #[test]
    fn a_missing_undeclared_or_mistyped_output_is_a_bug_in_the_step_type() {
        let table: &[(&[(&str, &str)], &str)] = &[
            (&[("fenced", "true")], "it did not set `port`"),
            (
                &[("port", "5432"), ("fenced", "true"), ("extra", "x")],
                "it set `extra`, which its type does not declare",
            ),
            (&[("port", "unknown"), ("fenced", "true")], "`port` is not a valid integer (7 characters)"),
            (&[("port", "1"), ("fenced", "true"), ("lag_s", "unknown")], "`lag_s` is not a valid duration"),
            (&[("port", "1"), ("fenced", "")], "`fenced` is not a valid boolean"),
        ];
        for (emitted, expected) in table {
            let error = check("aws.rds.sample", DECLARED, &outputs(emitted)).unwrap_err();
            assert!(error.starts_with("a bug in step type `aws.rds.sample`"), "{error}");
            assert!(error.contains(expected), "{emitted:?}: {error}");
        }
    }

    #[test]
    fn a_wrong_value_is_never_quoted() {
        let error = check("t", DECLARED, &outputs(&[("port", "hunter2"), ("fenced", "true")])).unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
    }
}
