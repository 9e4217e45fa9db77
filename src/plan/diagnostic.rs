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

    /// The text of a plan file's bytes, or an error that says which encoding the file looks like
    /// and where its first bad byte is, so the operator re-saves it rather than checking the path.
    pub fn decode(file: &Path, bytes: Vec<u8>) -> Result<String, PlanErrors> {
        let help =
            "save the file as UTF-8 (your editor's \"Save with encoding\"), or convert it: iconv -f UTF-16 -t UTF-8";
        let start = Pos { line: 1, col: 1 };
        if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
            let message = "the plan file is UTF-16 (it starts with a UTF-16 byte order mark); save it as UTF-8";
            return Err(PlanErrors::new(file, "", vec![Diagnostic::new(start, "", message).help(help)]));
        }
        if bytes.iter().take(256).any(|&b| b == 0) {
            let message = "the plan file holds NUL bytes, as UTF-16 text does; save it as UTF-8";
            return Err(PlanErrors::new(file, "", vec![Diagnostic::new(start, "", message).help(help)]));
        }
        match String::from_utf8(bytes) {
            Ok(text) => Ok(text),
            Err(e) => {
                let bytes = e.as_bytes();
                let valid = e.utf8_error().valid_up_to();
                let before = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
                let line =
                    1 + before.matches('\n').count() + before.matches('\r').count() - before.matches("\r\n").count();
                let line_start = before.rfind(['\n', '\r']).map_or(0, |i| i + 1);
                let pos = Pos { line, col: before[line_start..].chars().count() + 1 };
                let message =
                    format!("the plan file is not UTF-8 text: byte 0x{:02X} here is not a character", bytes[valid]);
                let help = "save the file as UTF-8 (your editor's \"Save with encoding\"), or convert it: iconv -f LATIN1 -t UTF-8";
                // The good text up to the bad byte, so the caret line shows the place.
                Err(PlanErrors::new(file, before, vec![Diagnostic::new(pos, "", message).help(help)]))
            }
        }
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
        // Split once: looking each diagnostic's line up from the start would be quadratic.
        let lines: Vec<&str> =
            if self.diagnostics.is_empty() { Vec::new() } else { source_lines(&self.source).collect() };
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let field = if d.path.is_empty() { String::new() } else { format!("{}: ", d.path) };
            writeln!(f, "{file}:{}:{}: error: {field}{}", d.pos.line, d.pos.col, d.message)?;
            if let Some(line) = d.pos.line.checked_sub(1).and_then(|i| lines.get(i)) {
                let (shown, caret) = window(line, d.pos.col.saturating_sub(1));
                let gutter = d.pos.line.to_string();
                let pad = " ".repeat(gutter.len());
                writeln!(f, "{pad} |")?;
                writeln!(f, "{gutter} | {shown}")?;
                writeln!(f, "{pad} | {}^", " ".repeat(caret))?;
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

/// The lines of `source`, where `\n`, `\r\n` and a lone `\r` each end a line, as in YAML.
pub(crate) fn source_lines(source: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(source).filter(|s| !s.is_empty());
    std::iter::from_fn(move || {
        let text = rest?;
        let Some(end) = text.find(['\n', '\r']) else {
            rest = None;
            return Some(text);
        };
        let skip = if text[end..].starts_with("\r\n") { 2 } else { 1 };
        rest = Some(&text[end + skip..]).filter(|r| !r.is_empty());
        Some(&text[..end])
    })
}

/// Line `number` (1-based) of `source`.
#[cfg(test)]
fn source_line(source: &str, number: usize) -> Option<&str> {
    source_lines(source).nth(number.checked_sub(1)?)
}

/// At most [`WINDOW`] characters of `line` around column `col` (0-based), tabs shown as spaces,
/// and where the caret goes in what is shown. Long lines (minified plans) stay readable.
fn window(line: &str, col: usize) -> (String, usize) {
    const WINDOW: usize = 100;
    let chars: Vec<char> = line.chars().map(|c| if c == '\t' { ' ' } else { c }).collect();
    if chars.len() <= WINDOW {
        return (chars.into_iter().collect(), col);
    }
    let start = col.saturating_sub(WINDOW / 2).min(chars.len() - WINDOW);
    let end = start + WINDOW;
    let mut shown = String::new();
    if start > 0 {
        shown.push('…');
    }
    shown.extend(&chars[start..end]);
    if end < chars.len() {
        shown.push('…');
    }
    (shown, col - start + usize::from(start > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_yaml_line_break_counts() {
        assert_eq!(source_line("a\rb\r\nc\nd", 2), Some("b"));
        assert_eq!(source_line("a\rb\r\nc\nd", 3), Some("c"));
        assert_eq!(source_line("a\rb\r\nc\nd", 4), Some("d"));
        assert_eq!(source_line("a", 2), None);
    }

    #[test]
    fn long_lines_are_cut_around_the_caret() {
        let line = "x".repeat(500);
        let (shown, caret) = window(&line, 300);
        assert_eq!(shown.chars().count(), 102);
        assert_eq!(caret, 51);
        assert_eq!(window("a\tb", 2), ("a b".to_string(), 2));
    }
}
