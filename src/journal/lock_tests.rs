// Lock holders are stamped with the real time, as `drctl` stamps them.
#![allow(clippy::disallowed_methods)]

use super::*;

fn acquire(path: &Path, run: &str, policy: LockPolicy) -> Result<PlanLock, LockError> {
    PlanLock::acquire(path, "p", LockHolder::this_process(run, SystemTime::now()), policy)
}

fn write_holder(path: &Path, holder: &LockHolder) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_string(holder).unwrap()).unwrap();
}

fn lock_path() -> PathBuf {
    crate::journal::tests::tempdir().join("locks").join("p.lock")
}

const BREAK: LockPolicy = LockPolicy { break_lock: true, force: false };
const FORCE: LockPolicy = LockPolicy { break_lock: true, force: true };

#[test]
fn a_second_holder_is_refused_with_the_holders_name() {
    let path = lock_path();
    let first = acquire(&path, "run-1", LockPolicy::default()).unwrap();
    let msg = acquire(&path, "run-2", LockPolicy::default()).unwrap_err().to_string();
    assert!(msg.contains("run-1") && msg.contains(&format!("pid {}", std::process::id())), "{msg}");
    drop(first);
    assert!(!path.exists(), "released on drop");
    let _second = acquire(&path, "run-2", LockPolicy::default()).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left behind: {leftovers:?}");
}

#[test]
fn a_dead_holder_of_this_host_is_taken_over_without_being_asked() {
    let path = lock_path();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let dead = LockHolder {
        run_id: "old".into(),
        host: hostname(),
        pid: dead_pid,
        since: SystemTime::now(),
        process_start: None,
        user: None,
        expires_at: None,
        token: None,
    };
    write_holder(&path, &dead);
    let lock = acquire(&path, "new", LockPolicy::default()).unwrap();
    assert_eq!(PlanLock::holder_of(&path).unwrap().run_id, "new");
    drop(lock);
}

#[test]
fn a_reused_pid_is_a_dead_holder() {
    let path = lock_path();
    let Some(start) = process::start_ticks(std::process::id()) else { return };
    let mut reused = LockHolder::this_process("old", SystemTime::now());
    reused.process_start = Some(start + 1);
    assert!(reused.is_dead());
    write_holder(&path, &reused);
    acquire(&path, "new", LockPolicy::default()).unwrap();
}

#[test]
fn empty_or_garbage_lock_files_are_refused_naming_the_file_and_broken_only_when_asked() {
    for content in [
        "",
        "  \n",
        "{\"run_id\":\"x\"",
        "\u{0}\u{1}garbage",
        "{\"run_id\":\"\",\"host\":\"h\",\"pid\":1,\"since\":\"2026-01-01T00:00:00Z\"}",
    ] {
        let path = lock_path();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        let err = acquire(&path, "new", LockPolicy::default()).unwrap_err();
        assert!(matches!(err, LockError::Unreadable { .. }), "{content:?}: {err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()) && msg.contains("--break-lock"), "{msg}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), content, "a refused acquire leaves the file alone");
        acquire(&path, "new", BREAK).unwrap();
    }
}

#[test]
fn break_lock_refuses_a_live_holder_of_this_host_unless_forced() {
    let path = lock_path();
    // A live process of this host that is not this one: a child sleeping.
    let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let live = LockHolder {
        run_id: "busy".into(),
        host: hostname(),
        pid: child.id(),
        since: SystemTime::now(),
        process_start: process::start_ticks(child.id()),
        user: None,
        expires_at: None,
        token: None,
    };
    write_holder(&path, &live);
    let plain = acquire(&path, "new", LockPolicy::default()).unwrap_err().to_string();
    assert!(plain.contains("running on this host") && plain.contains("busy"), "{plain}");
    let broken = acquire(&path, "new", BREAK).unwrap_err().to_string();
    assert!(broken.contains(&format!("pid {} is running", child.id())) && broken.contains("--force"), "{broken}");
    assert_eq!(PlanLock::holder_of(&path).unwrap().run_id, "busy");
    acquire(&path, "new", FORCE).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_holder_on_another_host_is_never_presumed_dead() {
    let path = lock_path();
    let remote = LockHolder {
        run_id: "far".into(),
        host: "elsewhere.invalid".into(),
        pid: 1,
        since: SystemTime::now(),
        process_start: None,
        user: None,
        expires_at: None,
        token: None,
    };
    write_holder(&path, &remote);
    let msg = acquire(&path, "new", LockPolicy::default()).unwrap_err().to_string();
    assert!(msg.contains("another host") && msg.contains("--break-lock"), "{msg}");
    acquire(&path, "new", BREAK).unwrap();
}

#[test]
fn retarget_renames_the_run_and_release_leaves_a_foreign_lock_alone() {
    let path = lock_path();
    let mut lock = acquire(&path, "provisional", LockPolicy::default()).unwrap();
    lock.retarget("resumed").unwrap();
    assert_eq!(PlanLock::holder_of(&path).unwrap().run_id, "resumed");
    let other = LockHolder {
        run_id: "other".into(),
        host: "elsewhere.invalid".into(),
        pid: 7,
        since: SystemTime::now(),
        process_start: None,
        user: None,
        expires_at: None,
        token: None,
    };
    write_holder(&path, &other);
    assert!(lock.retarget("again").is_err(), "a lock taken over is not ours to rename");
    drop(lock);
    assert_eq!(PlanLock::holder_of(&path).unwrap().run_id, "other", "dropping never removes another's lock");
}

#[test]
fn many_threads_racing_for_one_lock_get_it_one_at_a_time() {
    let path = lock_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let holders = std::sync::atomic::AtomicUsize::new(0);
    let max_seen = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for i in 0..8 {
            let (path, holders, max_seen) = (&path, &holders, &max_seen);
            s.spawn(move || {
                for round in 0..40 {
                    if let Ok(lock) = acquire(path, &format!("t{i}-{round}"), LockPolicy::default()) {
                        let now = holders.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        max_seen.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                        std::thread::yield_now();
                        holders.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        drop(lock);
                    }
                }
            });
        }
    });
    assert_eq!(max_seen.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn the_locks_directory_being_a_file_is_an_io_error_that_says_so() {
    let dir = crate::journal::tests::tempdir();
    std::fs::write(dir.join("locks"), "").unwrap();
    let err = acquire(&dir.join("locks").join("p.lock"), "r", LockPolicy::default()).unwrap_err();
    assert!(matches!(err, LockError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("is a file, not a directory"), "{err}");
}

#[test]
fn parse_holder_never_panics_on_odd_bytes() {
    for bytes in [
        &b"\xff\xfe"[..],
        b"null",
        b"[]",
        b"{\"pid\":-1}",
        b"{\"run_id\":\"r\",\"host\":\"h\",\"pid\":1,\"since\":\"x\"}",
    ] {
        assert!(parse_holder(bytes).is_err(), "{bytes:?}");
    }
    let good = serde_json::to_vec(&LockHolder::this_process("r", SystemTime::now())).unwrap();
    assert_eq!(parse_holder(&good).unwrap().run_id, "r");
}
