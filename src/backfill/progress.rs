//! Progress reporting. The engine hands every sink the ledger's own totals after each
//! committed batch (`RETURNING` from the ledger update), so a bar here and `seqmig backfill
//! status` in another shell show the same numbers. On a terminal: an indicatif bar with
//! rows/s, ETA and throttle state; elsewhere: one JSON object per line.

use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// One progress reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    pub plan_id: String,
    pub step_id: String,
    pub table: String,
    /// The column the backfill writes (empty when not known, as in `backfill status`).
    #[serde(default)]
    pub column: String,
    /// `running`, `throttled`, `verifying`, `done`.
    pub state: String,
    /// Rows written.
    pub rows_done: i64,
    /// Rows the walk has passed (written or already correct).
    pub rows_scanned: i64,
    pub rows_total_estimate: Option<i64>,
    pub batches: i64,
    pub batch_size: u32,
    pub rows_per_sec: f64,
    pub eta_secs: Option<f64>,
    /// Why the engine is holding back, comma-separated (`paused`, `replica_lag`, …).
    pub throttle: Option<String>,
    pub verify_mismatches: Option<i64>,
}

/// Receives progress; implementations must not block for long.
pub trait ProgressSink: Send {
    fn update(&mut self, progress: &Progress);
    fn finish(&mut self, progress: &Progress);
}

/// Discards progress (library callers, tests).
#[derive(Debug, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn update(&mut self, _: &Progress) {}
    fn finish(&mut self, _: &Progress) {}
}

/// One JSON object per line.
#[derive(Debug)]
pub struct JsonLines<W: Write + Send> {
    out: W,
}

impl<W: Write + Send> JsonLines<W> {
    pub fn new(out: W) -> Self {
        JsonLines { out }
    }

    fn write(&mut self, p: &Progress) {
        // Progress is advisory: a closed pipe must not stop the backfill.
        if let Ok(line) = serde_json::to_string(p) {
            let _ = writeln!(self.out, "{line}");
            let _ = self.out.flush();
        }
    }
}

impl<W: Write + Send> ProgressSink for JsonLines<W> {
    fn update(&mut self, p: &Progress) {
        self.write(p);
    }
    fn finish(&mut self, p: &Progress) {
        self.write(p);
    }
}

/// A terminal progress bar on stderr.
#[derive(Debug)]
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    pub fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} rows {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar { bar }
    }
}

impl Default for Bar {
    fn default() -> Self {
        Self::new()
    }
}

impl ProgressSink for Bar {
    fn update(&mut self, p: &Progress) {
        self.bar.set_prefix(label(p));
        if let Some(total) = p.rows_total_estimate {
            self.bar.set_length(total.max(p.rows_scanned).max(0) as u64);
        }
        self.bar.set_position(p.rows_scanned.max(0) as u64);
        self.bar.set_message(describe(p));
    }

    fn finish(&mut self, p: &Progress) {
        self.update(p);
        self.bar.finish();
    }
}

/// What the bar is labelled: `table.column`, the column being written (`table (step)`
/// when the column is not known).
pub fn label(p: &Progress) -> String {
    if p.column.is_empty() {
        format!("{} ({})", p.table, p.step_id)
    } else {
        format!("{}.{}", p.table, p.column)
    }
}

/// `12,345 rows/s, ETA 1m 3s, batch 5000` plus the throttle state. A backfill that is not
/// moving (done, paused, failed) shows no rate: a rate of 0 would read as a stall.
pub fn describe(p: &Progress) -> String {
    let mut parts = Vec::new();
    if matches!(p.state.as_str(), "running" | "throttled") {
        parts.push(format!("{:.0} rows/s", p.rows_per_sec));
    }
    if let Some(eta) = p.eta_secs {
        parts.push(format!("ETA {}", human(eta)));
    }
    parts.push(format!("batch {}", p.batch_size));
    let mut s = parts.join(", ");
    if let Some(t) = &p.throttle {
        s.push_str(&format!(", throttled: {t}"));
    }
    if let Some(m) = p.verify_mismatches {
        s.push_str(&format!(", {m} mismatches"));
    }
    if p.state != "running" {
        s.push_str(&format!(" [{}]", p.state));
    }
    s
}

fn human(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Progress {
        Progress {
            plan_id: "p".into(),
            step_id: "s4".into(),
            table: "public.t".into(),
            column: "c_new".into(),
            state: "running".into(),
            rows_done: 10,
            rows_scanned: 20,
            rows_total_estimate: Some(100),
            batches: 2,
            batch_size: 1200,
            rows_per_sec: 1234.4,
            eta_secs: Some(65.0),
            throttle: Some("replica_lag".into()),
            verify_mismatches: None,
        }
    }

    #[test]
    fn json_lines_are_one_object_per_line() {
        let mut buf = Vec::new();
        {
            let mut sink = JsonLines::new(&mut buf);
            sink.update(&sample());
            sink.finish(&sample());
        }
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["rows_scanned"], 20);
        assert_eq!(v["throttle"], "replica_lag");
    }

    #[test]
    fn description_shows_rate_eta_and_throttle() {
        assert_eq!(describe(&sample()), "1234 rows/s, ETA 1m 5s, batch 1200, throttled: replica_lag");
    }

    #[test]
    fn issue23_5_the_bar_is_labelled_table_dot_column() {
        assert_eq!(label(&sample()), "public.t.c_new");
        assert_eq!(label(&Progress { column: String::new(), ..sample() }), "public.t (s4)");
    }

    #[test]
    fn a_finished_backfill_shows_no_rate() {
        let done = Progress {
            state: "done".into(),
            rows_per_sec: 0.0,
            eta_secs: None,
            throttle: None,
            verify_mismatches: Some(0),
            ..sample()
        };
        assert_eq!(describe(&done), "batch 1200, 0 mismatches [done]");
    }
}
