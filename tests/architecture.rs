//! The layering rule the README states: the engine, the journal and plan handling know nothing of
//! AWS, Kubernetes or PostgreSQL. Step types plug in through `crate::step`; a cloud or database crate
//! imported under `src/engine`, `src/journal` or `src/plan` (by `use`, or by a fully qualified path
//! such as `aws_sdk_rds::Client`) fails this test.

use std::path::{Path, PathBuf};

/// The directories that must stay free of cloud and database crates.
const LAYERS: &[&str] = &["src/engine", "src/journal", "src/plan"];

/// Crates (and drctl's own modules that wrap them) those directories must not name.
fn forbidden(path: &[String]) -> bool {
    let first = path.first().map(String::as_str).unwrap_or_default();
    let second = path.get(1).map(String::as_str).unwrap_or_default();
    let third = path.get(2).map(String::as_str).unwrap_or_default();
    let external = first.starts_with("aws_")
        || first == "kube"
        || first.starts_with("kube_")
        || first == "k8s_openapi"
        || first.starts_with("tokio_postgres")
        || first.starts_with("postgres")
        || first.starts_with("deadpool_postgres");
    let wrapper = first == "crate"
        && (matches!(second, "aws" | "k8s")
            || (second == "steps" && (third.starts_with("aws_") || matches!(third, "k8s" | "pg"))));
    external || wrapper
}

/// One path a source file names: where, and its segments.
#[derive(Debug, PartialEq)]
struct Named {
    line: usize,
    path: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
}

/// Rust source as tokens with their lines: comments, strings and character literals dropped.
fn tokens(source: &str) -> Vec<(usize, Token)> {
    let chars: Vec<char> = source.chars().collect();
    let (mut i, mut line, mut out) = (0, 1, Vec::new());
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            '/' if at(i + 1) == '/' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if at(i + 1) == '*' => {
                let mut depth = 0;
                loop {
                    match (at(i), at(i + 1)) {
                        ('\0', _) => break,
                        ('/', '*') => (depth, i) = (depth + 1, i + 2),
                        ('*', '/') => {
                            (depth, i) = (depth - 1, i + 2);
                            if depth == 0 {
                                break;
                            }
                        }
                        ('\n', _) => (line, i) = (line + 1, i + 1),
                        _ => i += 1,
                    }
                }
            }
            'r' | 'b' if raw_string_start(&chars, i).is_some() => {
                let (hashes, open) = raw_string_start(&chars, i).unwrap_or_default();
                i = open + 1;
                while i < chars.len() && !(chars[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#')) {
                    line += usize::from(chars[i] == '\n');
                    i += 1;
                }
                i += 1 + hashes;
            }
            '"' => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    line += usize::from(chars[i] == '\n');
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            '\'' if at(i + 1) == '\\' => {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            }
            '\'' if at(i + 2) == '\'' => i += 3,
            ':' if at(i + 1) == ':' => {
                out.push((line, Token::PathSep));
                i += 2;
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                // `b"..."` and `r"..."` were handled above; `r#ident` is a raw identifier.
                out.push((line, Token::Ident(word.trim_start_matches("r#").to_string())));
            }
            c if c.is_whitespace() => i += 1,
            c => {
                out.push((line, Token::Punct(c)));
                i += 1;
            }
        }
    }
    out
}

/// `Some((hashes, index of the opening quote))` when a raw (byte) string starts at `i`.
fn raw_string_start(chars: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|&&c| c == '#').count();
    (chars.get(j + hashes) == Some(&'"')).then_some((hashes, j + hashes))
}

/// Every path the source names: each `use` tree expanded to full paths, and every other path at
/// the point where it starts (`aws_sdk_rds::Client::new()` names `aws_sdk_rds::Client::new`).
fn named_paths(source: &str) -> Vec<Named> {
    let tokens = tokens(source);
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let (line, token) = &tokens[i];
        if *token == Token::Ident("use".into()) {
            let end = tokens[i..].iter().position(|(_, t)| *t == Token::Punct(';')).map_or(tokens.len(), |p| i + p);
            let mut paths = Vec::new();
            expand(&tokens[i + 1..end], Vec::new(), &mut paths);
            found.extend(paths.into_iter().map(|path| Named { line: *line, path }));
            i = end + 1;
            continue;
        }
        let starts_path = matches!(token, Token::Ident(_) | Token::PathSep)
            && i.checked_sub(1).is_none_or(|p| tokens[p].1 != Token::PathSep)
            && tokens.get(i + 1).is_some_and(|(_, t)| *t == Token::PathSep || matches!(token, Token::PathSep));
        if starts_path {
            let mut path = Vec::new();
            let mut j = i;
            while let Some((_, t)) = tokens.get(j) {
                match t {
                    Token::Ident(word) => path.push(word.clone()),
                    Token::PathSep => {}
                    _ => break,
                }
                if !matches!(t, Token::PathSep) && tokens.get(j + 1).is_none_or(|(_, n)| *n != Token::PathSep) {
                    j += 1;
                    break;
                }
                j += 1;
            }
            found.push(Named { line: *line, path });
            i = j.max(i + 1);
            continue;
        }
        i += 1;
    }
    found
}

/// Expands a `use` tree (`a::{b, c::{d, e as f}}`) into full paths, under `prefix`.
fn expand(tree: &[(usize, Token)], prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    let mut i = 0;
    while i < tree.len() {
        match &tree[i].1 {
            Token::Ident(word) if word == "as" => break,
            Token::Ident(word) => path.push(word.clone()),
            Token::PathSep => {}
            Token::Punct('{') => {
                let mut depth = 0;
                let mut start = i + 1;
                for j in i..tree.len() {
                    match tree[j].1 {
                        Token::Punct('{') => depth += 1,
                        Token::Punct('}') if depth == 1 => {
                            expand(&tree[start..j], path.clone(), out);
                            return;
                        }
                        Token::Punct('}') => depth -= 1,
                        Token::Punct(',') if depth == 1 => {
                            expand(&tree[start..j], path.clone(), out);
                            start = j + 1;
                        }
                        _ => {}
                    }
                }
                return;
            }
            _ => {}
        }
        i += 1;
    }
    if !path.is_empty() {
        out.push(path);
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a readable directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `file:line: path` for each forbidden path named under `dirs`.
fn violations(root: &Path, dirs: &[&str]) -> Vec<String> {
    let mut files = Vec::new();
    for dir in dirs {
        rust_files(&root.join(dir), &mut files);
    }
    files.sort();
    let mut found = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for named in named_paths(&source).into_iter().filter(|n| forbidden(&n.path)) {
            let shown = file.strip_prefix(root).unwrap_or(file).display();
            found.push(format!("{shown}:{}: {}", named.line, named.path.join("::")));
        }
    }
    found
}

#[test]
fn the_engine_journal_and_plan_import_no_cloud_or_database_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = violations(root, LAYERS);
    assert!(
        found.is_empty(),
        "src/engine, src/journal and src/plan must not use AWS, Kubernetes or PostgreSQL crates (step types \
         do, behind crate::step):\n{}",
        found.join("\n")
    );
}

#[test]
fn every_way_of_naming_a_crate_is_seen_and_comments_and_strings_are_not() {
    let source = r##"
//! Not this: aws_sdk_rds::Client in a doc comment.
use std::collections::BTreeMap;
use aws_sdk_rds::Client;
use {kube::api::{Api, ListParams}, serde::Serialize};
use tokio_postgres as pg;
use crate::{aws::step_error, plan::Plan};
use crate::steps::pg::connect;
fn f() {
    // aws_config::load_from_env() in a comment
    let s = "k8s_openapi::api::core::v1::Pod in a string";
    let r = r#"kube::Api "quoted" inside a raw string"#;
    let c = '"';
    let a = ::aws_smithy_types::Blob::new(vec![]);
    let pod: k8s_openapi::api::core::v1::Pod = todo!();
    let fine = std::time::Duration::from_secs(1);
    let generic: Vec<crate::k8s::Target> = Vec::new();
}
"##;
    let named = named_paths(source);
    let bad: Vec<(usize, String)> =
        named.iter().filter(|n| forbidden(&n.path)).map(|n| (n.line, n.path.join("::"))).collect();
    assert_eq!(
        bad,
        [
            (4, "aws_sdk_rds::Client".to_string()),
            (5, "kube::api::Api".to_string()),
            (5, "kube::api::ListParams".to_string()),
            (6, "tokio_postgres".to_string()),
            (7, "crate::aws::step_error".to_string()),
            (8, "crate::steps::pg::connect".to_string()),
            (14, "aws_smithy_types::Blob::new".to_string()),
            (15, "k8s_openapi::api::core::v1::Pod".to_string()),
            (17, "crate::k8s::Target".to_string()),
        ]
    );
    assert!(named.iter().any(|n| n.path.join("::") == "std::time::Duration::from_secs"), "{named:?}");
    assert!(named.iter().any(|n| n.path.join("::") == "serde::Serialize"), "{named:?}");
}

#[test]
fn a_forbidden_import_in_a_layer_is_reported_with_file_and_line() {
    let root = std::env::temp_dir().join(format!("drctl-architecture-{}", std::process::id()));
    let layer = root.join("src/engine");
    std::fs::create_dir_all(&layer).unwrap();
    std::fs::write(layer.join("clean.rs"), "use crate::step::Step;\n").unwrap();
    std::fs::write(layer.join("leaky.rs"), "//! Leaks.\n\nuse aws_sdk_route53::Client;\n").unwrap();
    let found = violations(&root, &["src/engine"]);
    let _ = std::fs::remove_dir_all(&root);
    assert_eq!(found, ["src/engine/leaky.rs:3: aws_sdk_route53::Client"]);
}
