//! Plan problems with their place in the file, rendered the way compilers do: `file:line:col`, the
//! field path, what is wrong, the source line with a caret, and what to do.

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use super::yaml::Pos;

/// One problem in a plan file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub pos: Pos,
    /// Field path such as `failover[2].after[0]`; empty for the file as a whole.
    pub path: String,
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A problem at `pos` in the field `path`.
    pub fn new(pos: Pos, path: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic { pos, path: path.into(), message: message.into(), help: None }
    }

    /// Adds what the operator should do.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Every problem found in one file, in the order of their positions.
#[derive(Debug, Clone)]
pub struct PlanErrors {
    pub file: PathBuf,
    source: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl PlanErrors {
    /// Collects `diagnostics` for `file`, whose text is `source`, sorted by position.
    pub fn new(file: &Path, source: &str, mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by(|a, b| a.pos.cmp(&b.pos).then_with(|| a.path.cmp(&b.path)));
        diagnostics.dedup();
        PlanErrors { file: file.to_path_buf(), source: source.to_string(), diagnostics }
    }

    /// A file that could not be read at all.
    pub fn unreadable(file: &Path, error: &std::io::Error) -> Self {
        let message = format!("cannot read the plan file: {error}");
        let help = "check the path; `drctl failover --plan NAME` looks for plans/NAME.yaml";
        PlanErrors::new(file, "", vec![Diagnostic::new(Pos { line: 1, col: 1 }, "", message).help(help)])
    }
}

impl fmt::Display for PlanErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let field = if d.path.is_empty() { String::new() } else { format!("{}: ", d.path) };
            writeln!(f, "{file}:{}:{}: error: {field}{}", d.pos.line, d.pos.col, d.message)?;
            if let Some(line) = self.source.lines().nth(d.pos.line.saturating_sub(1)) {
                let gutter = d.pos.line.to_string();
                let pad = " ".repeat(gutter.len());
                let caret_at: String = line
                    .chars()
                    .take(d.pos.col.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                writeln!(f, "{pad} |")?;
                writeln!(f, "{gutter} | {line}")?;
                writeln!(f, "{pad} | {caret_at}^")?;
            }
            if let Some(help) = &d.help {
                writeln!(f, "  = help: {help}")?;
            }
        }
        let count = self.diagnostics.len();
        let mut summary = String::new();
        let _ = write!(summary, "{file}: {count} problem{}", if count == 1 { "" } else { "s" });
        write!(f, "\n{summary}")
    }
}

impl std::error::Error for PlanErrors {}
