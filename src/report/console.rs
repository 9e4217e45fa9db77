//! Standard output and standard error for people and pipes.
//!
//! `println!` panics when its reader has gone (`drctl status | head -1`), and a panic in the middle
//! of a failover would end the process with 101 and a backtrace. Everything drctl prints goes
//! through here instead ([`outln!`](crate::outln), [`errln!`](crate::errln) and friends): the first
//! write that fails (a closed pipe, a full disk) marks its stream closed, nothing more is written to
//! it, and the command carries on and exits with its own code, the way `ls | head` ends quietly. The
//! run itself never depends on being watched: its journal is the record.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// One of the process's two output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output: results, tables, JSON lines.
    Out,
    /// Standard error: progress, errors, logs.
    Err,
}

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);

impl Stream {
    fn closed_flag(self) -> &'static AtomicBool {
        match self {
            Stream::Out => &STDOUT_CLOSED,
            Stream::Err => &STDERR_CLOSED,
        }
    }

    /// Whether a write to this stream has failed, so nothing more is written to it.
    pub fn is_closed(self) -> bool {
        self.closed_flag().load(Ordering::Relaxed)
    }

    /// Writes `bytes` unless the stream is closed; a failure closes it.
    pub fn write_bytes(self, bytes: &[u8]) {
        self.write_with(|w| w.write_all(bytes));
    }

    /// Writes formatted text unless the stream is closed; a failure closes it.
    pub fn write_fmt(self, args: fmt::Arguments<'_>) {
        self.write_with(|w| w.write_fmt(args));
    }

    /// Writes formatted text and a newline, together.
    pub fn write_line(self, args: fmt::Arguments<'_>) {
        self.write_with(|w| {
            w.write_fmt(args)?;
            w.write_all(b"\n")
        });
    }

    fn write_with(self, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) {
        if self.is_closed() {
            return;
        }
        let result = match self {
            Stream::Out => {
                let mut out = io::stdout().lock();
                write(&mut out).and_then(|()| out.flush())
            }
            Stream::Err => write(&mut io::stderr().lock()),
        };
        if result.is_err() {
            self.closed_flag().store(true, Ordering::Relaxed);
        }
    }
}

/// A writer onto standard error that never fails (writes after a failure are dropped), for
/// `tracing-subscriber`, which would otherwise report its own write errors with `eprintln!`.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuietStderr;

impl Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Stream::Err.write_bytes(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `print!` that stops quietly when standard output is closed.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::report::console::Stream::Out.write_fmt(format_args!($($arg)*))
    };
}

/// `println!` that stops quietly when standard output is closed.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::report::console::Stream::Out.write_bytes(b"\n")
    };
    ($($arg:tt)*) => {
        $crate::report::console::Stream::Out.write_line(format_args!($($arg)*))
    };
}

/// `eprintln!` that stops quietly when standard error is closed.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::report::console::Stream::Err.write_line(format_args!($($arg)*))
    };
}
