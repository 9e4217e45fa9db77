//! `drctl explain [TYPE]`: the step types, or one type's parameters, example and outputs, like
//! `kubectl explain`. The text comes from [`crate::plan::explain`], as `docs/steps.md` does.

use std::io::Write;

use clap::Args;

use super::{Global, Output, checking_registry};
use crate::exit_code;
use crate::plan::explain;

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A step type such as `kube.scale`; without it, every type with a one-line summary.
    #[arg(value_name = "TYPE")]
    step_type: Option<String>,
    /// Markdown instead of terminal text; without TYPE, the whole reference
    /// (`drctl explain --markdown > docs/steps.md`).
    #[arg(long)]
    markdown: bool,
}

pub fn explain(global: &Global, args: ExplainArgs) -> u8 {
    let registry = checking_registry();
    let text = match &args.step_type {
        None => {
            if args.markdown {
                explain::markdown(&explain::references(&registry))
            } else if global.output == Output::Json {
                explain::index(&registry)
                    .into_iter()
                    .map(|(name, summary)| json_line(&serde_json::json!({ "type": name, "summary": summary })))
                    .collect()
            } else {
                listing(&explain::index(&registry))
            }
        }
        Some(name) => {
            let Some(kind) = registry.get(name) else {
                let help = match explain::suggestions(name, &registry).as_slice() {
                    [] => "`drctl explain` lists every step type".to_string(),
                    [one] => format!("did you mean `{one}`?"),
                    many => format!(
                        "did you mean one of {}?",
                        many.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                    ),
                };
                crate::errln!("error: unknown step type `{name}`\n  = help: {help}");
                return exit_code::USAGE;
            };
            let reference = explain::reference(kind);
            if args.markdown {
                explain::markdown_section(&reference)
            } else if global.output == Output::Json {
                json_line(&reference)
            } else {
                explain::text(&reference)
            }
        }
    };
    // A closed pipe (`drctl explain | head`) ends the output quietly.
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
    exit_code::OK
}

fn json_line(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("the step reference serializes") + "\n"
}

/// `NAME  summary` lines, names aligned.
fn listing(index: &[(&str, &str)]) -> String {
    let width = index.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let mut out = String::from("Step types (`drctl explain TYPE` for one type's parameters, example and outputs):\n\n");
    for (name, summary) in index {
        out.push_str(&format!("  {name:width$}  {summary}\n"));
    }
    out
}
