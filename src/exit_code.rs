//! drctl's exit codes. Scripts and schedulers branch on these; the README documents them.

/// Everything asked for was done.
pub const OK: u8 = 0;
/// The run failed: a step failed for good. Fix the cause and `drctl resume RUN_ID`.
pub const RUN_FAILED: u8 = 1;
/// The command line is wrong (unknown flag, missing argument).
pub const USAGE: u8 = 2;
/// A plan file is invalid; every problem was printed with its file, line and column.
pub const PLAN_INVALID: u8 = 3;
/// drctl refused to start: the plan is locked by another run, the plan changed under a run being
/// resumed, or the run cannot be resumed.
pub const REFUSED: u8 = 4;
/// The state directory or a journal could not be read or written.
pub const STATE_ERROR: u8 = 5;
/// The run was interrupted (Ctrl-C, SIGTERM) and journaled as such; resume it to continue.
pub const INTERRUPTED: u8 = 130;
