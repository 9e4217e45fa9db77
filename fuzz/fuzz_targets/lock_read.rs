//! Lock-file bytes → the lock reader (`PlanLock::holder_of`, through a file until the reader takes
//! bytes): garbage or an empty file is no holder or an error, never a panic.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

static PATH: LazyLock<PathBuf> =
    LazyLock::new(|| std::env::temp_dir().join(format!("drctl-fuzz-lock-{}.lock", std::process::id())));

fuzz_target!(|data: &[u8]| {
    std::fs::write(&*PATH, data).expect("the fuzz lock file can be written");
    if let Some(holder) = drctl::journal::PlanLock::holder_of(&PATH) {
        let _ = holder.same_holder(&holder);
        let _ = format!("{holder:?}");
    }
});
