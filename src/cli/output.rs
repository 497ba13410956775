//! The one place that writes to stdout and stderr. A closed pipe (`seqmig plan | head`) is
//! not an error: the write returns `BrokenPipe`, which `main` maps to exit 0.

use std::io::{self, IsTerminal, Write};

use crate::backfill::{Bar, JsonLines, ProgressSink};

/// Writes `text` to stdout as is.
pub fn stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Writes one line to stderr (diagnostics, warnings, progress for non-terminals).
pub fn stderr_line(text: &str) {
    // A failing stderr has nowhere to report to; ignoring it is the only option.
    let _ = writeln!(io::stderr().lock(), "{text}");
}

/// Backfill progress on stderr: a bar on a terminal, JSON lines otherwise (or when asked).
pub fn progress_sink(json: bool) -> Box<dyn ProgressSink> {
    if !json && io::stderr().is_terminal() {
        Box::new(Bar::new())
    } else {
        Box::new(JsonLines::new(io::stderr()))
    }
}

/// `1 step`, `2 steps`: a count with its noun, for the summary lines of the commands.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}
