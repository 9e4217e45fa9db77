//! `preflight` checks that several step types share: an endpoint URL resolves (its variable is
//! set), and a program exists and is executable. Read-only, like every preflight.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use reqwest::Url;

use crate::step::{Finding, StepError};

/// `url`'s outcome as a finding: an unset variable or a bad URL is a problem.
pub(crate) fn url(result: &Result<Url, StepError>, what: &str) -> Finding {
    match result {
        Ok(url) => Finding::ok("url", format!("{what} is an http(s) URL (host {})", url.host_str().unwrap_or("?"))),
        Err(e) if e.message.contains("not set") => Finding::problem(
            "env_set",
            e.message.clone(),
            "export the variable in the environment that runs drctl (the systemd unit, the CronJob's env)",
        ),
        Err(e) => Finding::problem("url", e.message.clone(), "fix the URL (or the variable holding it)"),
    }
}

/// Where `program` would be run from: a path (relative to `cwd`) when it has a `/`, else the
/// first match on `PATH`.
fn locate(program: &str, cwd: Option<&str>) -> Option<PathBuf> {
    if program.contains('/') {
        let path = Path::new(program);
        return Some(match cwd {
            Some(dir) if path.is_relative() => Path::new(dir).join(path),
            _ => path.to_path_buf(),
        });
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|dir| dir.join(program)).find(|p| p.is_file())
}

/// The program a `command` step runs exists and is executable (and its working directory exists).
pub(crate) fn program(program: &str, cwd: Option<&str>) -> Finding {
    let check = "program_executable";
    if let Some(dir) = cwd
        && !Path::new(dir).is_dir()
    {
        return Finding::problem(
            check,
            format!("the working directory {dir} does not exist"),
            "create it or fix `with.cwd`",
        );
    }
    let Some(path) = locate(program, cwd) else {
        return Finding::problem(
            check,
            format!("`{program}` is not on PATH"),
            "install it on the machine that runs drctl, or name it by path",
        );
    };
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => {
            Finding::ok(check, format!("{} exists and is executable", path.display()))
        }
        Ok(meta) if meta.is_file() => Finding::problem(
            check,
            format!("{} is not executable", path.display()),
            format!("chmod +x {}", path.display()),
        ),
        Ok(_) => Finding::problem(check, format!("{} is not a file", path.display()), "fix `with.run`"),
        Err(e) => Finding::problem(
            check,
            format!("{} cannot be read: {}", path.display(), crate::plan::io_reason(&e)),
            "put the script there (it ships with the plan?), or fix `with.run`",
        ),
    }
}
