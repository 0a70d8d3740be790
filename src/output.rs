//! What commands print on stdout, written so that a reader that goes away (`porter send … |
//! head -1`) ends the command quietly, as it ends other Unix tools: no panic, no backtrace.
//!
//! Rust ignores `SIGPIPE`, so a write to a closed pipe is an error, and `println!` panics on
//! it. Commands print with [`outln!`] and [`out!`] instead: on a broken pipe the process
//! exits at once with status 0 (whatever the command did is done; only its report had no
//! reader), on any other write error with status 1 and a line on stderr.

use std::io::Write;

/// Writes `args` to stdout; see the module doc for a closed stdout.
pub(crate) fn write(args: std::fmt::Arguments<'_>, newline: bool) {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    if let Err(error) = written {
        finish(&error);
    }
}

/// Ends the process after a failed write to stdout.
pub(crate) fn finish(error: &std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("porter: cannot write to stdout: {error}");
    std::process::exit(1);
}

/// `println!` for commands: a closed stdout ends the command quietly.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::write(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*), true)
    };
}

/// `print!` for commands: a closed stdout ends the command quietly.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*), false)
    };
}
