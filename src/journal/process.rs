//! Whether a process of this host still runs, told apart from a later process that reused its pid.

/// Whether process `pid` exists and is not a zombie (a zombie has finished: it can act no more).
pub fn alive(pid: u32) -> bool {
    let Ok(raw) = libc::pid_t::try_from(pid) else { return false };
    if raw <= 0 {
        return false; // 0 and negatives name process groups, never one process
    }
    // SAFETY: kill with signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(raw, 0) };
    let exists = rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists && stat_fields(pid).is_none_or(|fields| fields.first().map(String::as_str) != Some("Z"))
}

/// When process `pid` started, in clock ticks since boot (Linux `/proc/PID/stat`, field 22); `None`
/// where that is not known. With the pid it names one process for good, even if the pid is reused.
pub fn start_ticks(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// The fields of `/proc/PID/stat` after the command name (from field 3, the state).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself hold spaces and parentheses.
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_with_a_start_time_and_a_reaped_child_is_not() {
        assert!(alive(std::process::id()));
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(start_ticks(std::process::id()).is_some());
        }
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!alive(pid), "a reaped child is gone (unless its pid was reused at once)");
        assert!(!alive(0) && !alive(u32::MAX));
    }

    #[test]
    // A real child process exits in real time: the deadline is wall time.
    #[allow(clippy::disallowed_methods)]
    fn a_zombie_is_not_alive() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return; // zombies are told apart through /proc only
        }
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Not reaped yet: wait until it has exited and become a zombie.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while stat_fields(pid).and_then(|f| f.first().cloned()).as_deref() != Some("Z") {
            assert!(std::time::Instant::now() < deadline, "the child never exited");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!alive(pid));
        child.wait().unwrap();
    }
}
