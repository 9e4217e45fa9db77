//! What a step type declares of its outputs: each output's name, the type its string value parses
//! as, what it means, and whether it may be absent. "Unknown" is an absent output, never a sentinel
//! string: templates that use an output which may be absent must give a default
//! (`{{ steps.ID.outputs.NAME | default("TEXT") }}`), and the engine fails a step that emits anything
//! but what its type declares ([`crate::engine`]'s output check).

use std::fmt;

/// What an output's string value must parse as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputType {
    /// Any text.
    String,
    /// A whole number, such as `5432` or `-1`.
    Integer,
    /// A non-negative number of the unit the output's name ends with (`_s`, `_ms`), such as `12` or
    /// `0.25`.
    Duration,
    /// `true` or `false`.
    Boolean,
    /// A reference to a thing, never the thing's value: an ARN (`arn:aws:...`) or a URI
    /// (`secretsmanager://REGION/ID?version=V`).
    Reference,
}

impl OutputType {
    /// Whether `value` is a well-formed value of this type.
    pub fn accepts(self, value: &str) -> bool {
        match self {
            OutputType::String => true,
            OutputType::Integer => value.parse::<i64>().is_ok(),
            OutputType::Duration => {
                value.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                    && value.parse::<f64>().is_ok_and(|v| v.is_finite() && v >= 0.0)
            }
            OutputType::Boolean => value == "true" || value == "false",
            OutputType::Reference => is_reference(value),
        }
    }

    /// The type in plain words, for `drctl explain` and error messages.
    pub fn words(self) -> &'static str {
        match self {
            OutputType::String => "string",
            OutputType::Integer => "integer",
            OutputType::Duration => "duration",
            OutputType::Boolean => "boolean",
            OutputType::Reference => "reference",
        }
    }
}

impl fmt::Display for OutputType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.words())
    }
}

/// `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE` or `SCHEME://REST`, without whitespace.
fn is_reference(value: &str) -> bool {
    if value.is_empty() || value.chars().any(char::is_whitespace) {
        return false;
    }
    if let Some(rest) = value.strip_prefix("arn:") {
        return rest.splitn(5, ':').count() == 5 && !rest.ends_with(':');
    }
    match value.split_once("://") {
        Some((scheme, rest)) => {
            !rest.is_empty()
                && scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        }
        None => false,
    }
}

/// Whether a successful step always sets an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Always set.
    Always,
    /// Absent when the step could not know it (the replica's lag could not be measured, the record
    /// did not exist before): templates must give a default.
    Maybe,
    /// Set unless the step's `with.PARAM` is the scalar `VALUE` (`stdout` unless
    /// `capture_output: false`): templates must give a default only for such a step.
    UnlessParam(&'static str, &'static str),
}

/// One output a step type declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputSpec {
    /// The name templates use: `{{ steps.ID.outputs.NAME }}`.
    pub name: &'static str,
    /// What the value parses as.
    pub kind: OutputType,
    /// What it holds, for `drctl explain` and `docs/steps.md`.
    pub description: &'static str,
    /// Whether a successful step may leave it out.
    pub presence: Presence,
}

impl OutputSpec {
    const fn new(name: &'static str, kind: OutputType, description: &'static str) -> Self {
        OutputSpec { name, kind, description, presence: Presence::Always }
    }

    /// Any text.
    pub const fn string(name: &'static str, description: &'static str) -> Self {
        OutputSpec::new(name, OutputType::String, description)
    }

    /// A whole number.
    pub const fn integer(name: &'static str, description: &'static str) -> Self {
        OutputSpec::new(name, OutputType::Integer, description)
    }

    /// A non-negative number of the unit the name ends with.
    pub const fn duration(name: &'static str, description: &'static str) -> Self {
        OutputSpec::new(name, OutputType::Duration, description)
    }

    /// `true` or `false`.
    pub const fn boolean(name: &'static str, description: &'static str) -> Self {
        OutputSpec::new(name, OutputType::Boolean, description)
    }

    /// An ARN or a URI that names a thing (never its value).
    pub const fn reference(name: &'static str, description: &'static str) -> Self {
        OutputSpec::new(name, OutputType::Reference, description)
    }

    /// The same output, absent when the step could not know it.
    pub const fn optional(self) -> Self {
        OutputSpec { presence: Presence::Maybe, ..self }
    }

    /// The same output, absent when the step's `with.param` is the scalar `value`.
    pub const fn unless_param(self, param: &'static str, value: &'static str) -> Self {
        OutputSpec { presence: Presence::UnlessParam(param, value), ..self }
    }

    /// Whether a successful step may leave the output out (in some configuration).
    pub fn may_be_absent(&self) -> bool {
        self.presence != Presence::Always
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_type_accepts_its_values_and_refuses_others() {
        let table: &[(OutputType, &[&str], &[&str])] = &[
            (OutputType::String, &["", "anything at all"], &[]),
            (OutputType::Integer, &["0", "5432", "-1"], &["", "1.5", "unknown", " 3"]),
            (OutputType::Duration, &["0", "12", "0.25"], &["", "-1", "unknown", "5s", "NaN", "inf", "1e3"]),
            (OutputType::Boolean, &["true", "false"], &["", "True", "yes", "1"]),
            (
                OutputType::Reference,
                &[
                    "arn:aws:rds:us-west-2:123456789012:db:app",
                    "secretsmanager://us-west-2/app?version=v1&key=password",
                ],
                &["", "unknown", "arn:aws:rds", "app", "://x", "s3://", "a b://c"],
            ),
        ];
        for (kind, good, bad) in table {
            for value in *good {
                assert!(kind.accepts(value), "{kind} should accept {value:?}");
            }
            for value in *bad {
                assert!(!kind.accepts(value), "{kind} should refuse {value:?}");
            }
        }
    }

    #[test]
    fn optional_and_conditional_outputs_may_be_absent() {
        let lag = OutputSpec::duration("lag_s", "The lag.");
        assert!(!lag.may_be_absent());
        assert!(lag.optional().may_be_absent());
        let stdout = OutputSpec::string("stdout", "Output.").unless_param("capture_output", "false");
        assert_eq!(stdout.presence, Presence::UnlessParam("capture_output", "false"));
        assert!(stdout.may_be_absent());
    }
}
