//! Journal bytes → `journal::read` → `RunView::replay`, as `drctl status` and `resume` do: a damaged
//! journal is an error naming the line, never a panic.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

/// One file per fuzzing process, rewritten for every input (the reader takes a path).
static PATH: LazyLock<PathBuf> =
    LazyLock::new(|| std::env::temp_dir().join(format!("drctl-fuzz-journal-{}.jsonl", std::process::id())));

fuzz_target!(|data: &[u8]| {
    std::fs::write(&*PATH, data).expect("the fuzz journal can be written");
    match drctl::journal::read(&PATH) {
        Ok(entries) => {
            if let Ok(view) = drctl::engine::state::RunView::replay(&entries) {
                let _ = format!("{:?}", view.state);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
