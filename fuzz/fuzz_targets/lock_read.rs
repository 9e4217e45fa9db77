//! Lock-file bytes → `journal::parse_holder`, the reader every lock decision goes through: garbage
//! or an empty file is an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match drctl::journal::parse_holder(data) {
        Ok(holder) => {
            let _ = holder.same_holder(&holder);
            let _ = format!("{holder:?}");
        }
        Err(e) => {
            let _ = e.len();
        }
    }
});
