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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::step::Severity;

    #[test]
    fn a_program_must_exist_and_be_executable() {
        let dir = std::env::temp_dir().join(format!("drctl-preflight-program-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("failover.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let cwd = dir.to_str();
        let plain = program("./failover.sh", cwd);
        assert_eq!(plain.severity, Severity::Problem);
        assert!(plain.message.ends_with("failover.sh is not executable"), "{}", plain.message);
        assert!(plain.fix.starts_with("chmod +x "), "{}", plain.fix);
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(program("./failover.sh", cwd).severity, Severity::Ok);
        let missing = program("./gone.sh", cwd);
        assert!(missing.message.contains("gone.sh cannot be read"), "{}", missing.message);
        assert_eq!(program("sh", None).severity, Severity::Ok, "found on PATH");
        assert!(program("drctl-no-such-program", None).message.contains("is not on PATH"));
        assert!(
            program("x", Some("/no/such/dir")).message.contains("the working directory /no/such/dir does not exist")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unset_url_variable_is_a_problem_naming_it() {
        let unset =
            url(&Err(StepError::fatal("environment variable HOOK is not set; it should hold the webhook URL")), "x");
        assert_eq!((unset.check.as_str(), unset.severity), ("env_set", Severity::Problem));
        let ok = url(&Ok(Url::parse("https://hooks.example.com/a").unwrap()), "the webhook URL");
        assert_eq!(ok.message, "the webhook URL is an http(s) URL (host hooks.example.com)");
    }
}
