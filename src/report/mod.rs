//! Turning engine events and journals into what people and tools read: live progress, JSON lines,
//! and run summaries.

pub mod console;
pub mod json;
pub mod progress;
pub mod summary;
