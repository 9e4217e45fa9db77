//! Journal bytes → `journal::scan_bytes` → `RunView::replay`, as `drctl status` and `resume` do: a
//! damaged line is reported with its number, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let scan = drctl::journal::scan_bytes(data);
    let _ = (scan.ending(), scan.damage_acknowledged(), scan.valid_len);
    for damage in &scan.damage {
        let _ = damage.message.len() + damage.line;
    }
    if let Ok(view) = drctl::engine::state::RunView::replay(&scan.entries) {
        let _ = format!("{:?}", view.state);
    }
});
