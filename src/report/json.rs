//! `--output json`: one JSON object per line on standard output, one per event.

use std::time::SystemTime;

use serde::Serialize;

use crate::engine::events::{Event, Reporter};

/// Writes events as JSON lines.
pub struct JsonLines;

#[derive(Serialize)]
struct Line<'a> {
    #[serde(with = "crate::journal::time")]
    at: SystemTime,
    #[serde(flatten)]
    event: &'a Event,
}

impl Reporter for JsonLines {
    fn event(&self, at: SystemTime, event: &Event) {
        print_json_line(&Line { at, event });
    }
}

/// Prints one value as a JSON line on standard output (nothing once standard output is closed).
pub fn print_json_line(value: &impl Serialize) {
    let Ok(mut line) = serde_json::to_vec(value) else { return };
    line.push(b'\n');
    crate::report::console::Stream::Out.write_bytes(&line);
}
