use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::*;
use crate::step::{BuildContext, OutputSpec, OutputType, Step, StepDocs, TypedStep};
use crate::steps::HumanDuration;

/// `with:` of a `test.sample` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [{ "required": ["left"] }, { "required": ["right"] }], "dependentRequired" = { "count": ["labels"] }))]
#[allow(dead_code)]
struct SampleParams {
    /// How often.
    every: HumanDuration,
    /// What to look at.
    #[serde(default)]
    items: Vec<Item>,
    /// Labels to add.
    #[serde(default)]
    labels: BTreeMap<String, String>,
    /// How many, at
    /// most nine.
    #[serde(default = "three")]
    #[schemars(range(min = 1, max = 9))]
    count: u32,
    /// The taste.
    #[serde(default)]
    flavour: Option<Flavour>,
    /// One side.
    #[serde(default)]
    left: Option<String>,
    /// The other side.
    #[serde(default)]
    right: Option<String>,
}

fn three() -> u32 {
    3
}

/// One thing to look at.
#[derive(Deserialize, JsonSchema)]
#[allow(dead_code)]
struct Item {
    /// Its name.
    name: String,
    /// Whether it must be there.
    #[serde(default)]
    required: bool,
}

/// A taste.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Flavour {
    /// Like sugar.
    Sweet,
    /// Like lemons.
    Sour,
}

struct Sample;

impl TypedStep for Sample {
    const DOCS: StepDocs =
        StepDocs { description: "Samples things.", example: "every: 5s\nleft: x\n", failure: "Never fails." };
    type Params = SampleParams;
    const NAME: &'static str = "test.sample";
    const SUMMARY: &'static str = "A sample step type.";
    const OUTPUTS: &'static [OutputSpec] =
        &[OutputSpec::string("seen", "What was seen."), OutputSpec::integer("count", "How many.").optional()];

    fn build(&self, _params: SampleParams, _context: &BuildContext) -> Box<dyn Step> {
        unreachable!("explaining a step type never builds a step")
    }
}

fn sample() -> StepReference {
    reference(&Sample)
}

fn parameter<'a>(reference: &'a StepReference, name: &str) -> &'a Parameter {
    reference.parameters.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("no parameter {name}"))
}

#[test]
fn parameters_come_from_the_schema_in_declaration_order_with_nested_ones() {
    let r = sample();
    let names: Vec<&str> = r.parameters.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["every", "items", "items[].name", "items[].required", "labels", "count", "flavour", "left", "right"]
    );
}

#[test]
fn types_are_plain_words() {
    let r = sample();
    let words = |name| parameter(&r, name).type_words.clone();
    assert_eq!(words("every"), "duration such as 30s or 5m");
    assert_eq!(words("items"), "list of {name, required}");
    assert_eq!(words("items[].required"), "true or false");
    assert_eq!(words("labels"), "map of names to strings");
    assert_eq!(words("count"), "whole number from 1 to 9");
    assert_eq!(words("flavour"), "one of sweet or sour");
    assert_eq!(words("left"), "string");
}

#[test]
fn required_flags_defaults_and_descriptions() {
    let r = sample();
    let every = parameter(&r, "every");
    assert!(every.required);
    assert_eq!(every.description, "How often.");
    let count = parameter(&r, "count");
    assert!(!count.required);
    assert_eq!(count.default.as_deref(), Some("3"));
    assert_eq!(count.description, "How many, at most nine.", "doc comment lines join into one paragraph");
    assert!(parameter(&r, "items[].name").required);
    assert_eq!(parameter(&r, "labels").default, None, "an empty map is no default worth showing");
    assert_eq!(parameter(&r, "left").default, None, "nor is null");
    let flavour = parameter(&r, "flavour");
    assert_eq!(
        flavour.values,
        [
            AllowedValue { value: "sweet".into(), description: "Like sugar.".into() },
            AllowedValue { value: "sour".into(), description: "Like lemons.".into() },
        ]
    );
}

#[test]
fn rules_across_parameters_come_from_the_schema() {
    assert_eq!(sample().rules, ["exactly one of `left` and `right`", "`count` needs `labels`"]);
}

#[test]
fn docs_example_and_outputs() {
    let r = sample();
    assert_eq!(r.parameters_note, "`with:` of a `test.sample` step.");
    assert_eq!(r.description, "Samples things.");
    assert_eq!(r.example, "- id: sample\n  type: test.sample\n  with:\n    every: 5s\n    left: x\n");
    assert_eq!(
        r.outputs,
        [
            OutputDoc {
                name: "seen".into(),
                kind: OutputType::String,
                optional: false,
                description: "What was seen.".into()
            },
            OutputDoc {
                name: "count".into(),
                kind: OutputType::Integer,
                optional: true,
                description: "How many.".into()
            },
        ],
        "outputs are the declared ones, with their types"
    );
}

#[test]
fn the_text_shows_every_part_wrapped() {
    let text = text(&sample());
    for part in [
        "TYPE: test.sample\nA sample step type.\n",
        "\nDESCRIPTION:\n  Samples things.\n",
        "  count <whole number from 1 to 9>, default 3\n      How many, at most nine.\n",
        "  every <duration such as 30s or 5m>, required\n",
        "        - sweet: Like sugar.\n",
        "  Rules:\n  - exactly one of `left` and `right`\n",
        "EXAMPLE:\n  - id: sample\n",
        "  seen (string)\n      What was seen.\n",
        "  count (integer, may be absent)\n      How many.\n",
        "\nON FAILURE:\n  Never fails.\n",
    ] {
        assert!(text.contains(part), "missing {part:?} in:\n{text}");
    }
    assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
}

#[test]
fn markdown_has_a_table_of_parameters_and_outputs() {
    let md = markdown_section(&sample());
    assert!(md.starts_with("## test.sample\n\nA sample step type.\n"), "{md}");
    assert!(md.contains("| `count` | whole number from 1 to 9 | no | `3` | How many, at most nine. |"), "{md}");
    assert!(
        md.contains(
            "| `flavour` | one of sweet or sour | no |  | The taste.<br>`sweet`: Like sugar.<br>`sour`: Like lemons. |"
        ),
        "{md}"
    );
    assert!(md.contains("```yaml\n- id: sample\n"), "{md}");
    assert!(md.contains("| `seen` | string | What was seen. |"), "{md}");
    assert!(md.contains("| `count` | integer, may be absent | How many. |"), "{md}");
}

#[test]
fn near_misses_are_suggested() {
    let registry = crate::steps::builtin(&crate::steps::Services::for_checking());
    assert_eq!(suggestions("kube.scael", &registry), ["kube.scale"]);
    assert_eq!(suggestions("http.chek", &registry), ["http.check"]);
    assert_eq!(suggestions("scale", &registry), ["kube.scale"]);
    assert_eq!(suggestions("KUBE.SCALE", &registry), ["kube.scale"]);
    assert_eq!(
        suggestions("secrets", &registry),
        ["aws.secrets.put", "aws.secrets.read", "aws.secrets.restore_previous", "aws.secrets.rotate"]
    );
    assert!(suggestions("zzz", &registry).is_empty());
    assert!(suggestions("fb", &registry).is_empty());
}
