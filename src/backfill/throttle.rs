//! When to hold a backfill back. One query samples the signals at most once a second:
//! replica replay lag, the oldest open transaction in this database, sessions waiting for a
//! lock on the table, the WAL rate from LSN deltas, the WAL that replication slots retain,
//! and the operator's row in
//! `seqmig.backfill_control`, and the workload's own latency. Each limit has hysteresis: a
//! signal starts throttling above its limit and stops only below [`RELEASE_FRACTION`] of it,
//! so the backfill does not flap on the threshold.
//!
//! The workload latency is the mean time the *other* transactions of the database take,
//! from `pg_stat_database` deltas between two samples: (Δ`active_time` +
//! Δ`idle_in_transaction_time`) / Δ(commits + rollbacks), minus the backfill's own batches
//! (the engine reports them with [`Throttle::note_own_work`]). An interval in which the
//! backfill wrote nothing measures the workload alone: that is its baseline. With a workload
//! present and no baseline yet (and again every [`RECALIBRATE_EVERY`] samples) the backfill
//! holds for one interval to measure it. While the latency is above `workload_latency` times
//! the baseline, the backfill paces itself: after each batch it sleeps the batch's own
//! duration times a factor that doubles per sample above the limit (up to [`MAX_PACE`]) and
//! halves per sample below [`RELEASE_FRACTION`] of it.

use std::fmt;
use std::time::{Duration, Instant};

/// A signal clears only once it falls below this fraction of its limit.
pub const RELEASE_FRACTION: f64 = 0.8;

/// Fewer transactions per second than this from other sessions is no workload to protect
/// (and too few to measure a mean latency on).
pub const MIN_WORKLOAD_TPS: f64 = 20.0;

/// The most the workload-latency pacing sleeps after a batch, in multiples of the batch's
/// own duration (the backfill then writes at least 1/(1 + MAX_PACE) of the time).
pub const MAX_PACE: f64 = 8.0;

/// The shortest window of one workload reading.
pub const MIN_WINDOW: Duration = Duration::from_millis(1900);

/// The window of the workload alone while the backfill holds to measure it.
pub const QUIET_WINDOW: Duration = Duration::from_millis(900);

/// How long a hold to measure the workload alone waits before its window starts: sessions
/// report their counters about once a second, so earlier reports still carry batches.
pub const SETTLE: Duration = Duration::from_millis(900);

/// The longest window the workload reading waits for enough transactions to measure.
pub const MAX_WINDOW: Duration = Duration::from_secs(4);

/// Workload readings (of about two seconds each) between two measurements of its baseline.
pub const RECALIBRATE_EVERY: u32 = 30;

/// Limits; `None` turns a signal off.
#[derive(Debug, Clone, PartialEq)]
pub struct ThrottleOptions {
    pub max_replica_lag: Option<Duration>,
    /// Transactions open longer than this hold back vacuum; adding dead rows then only bloats.
    pub max_transaction_age: Option<Duration>,
    /// Pause while any session waits for a lock on the table (a DDL queue forming behind us).
    pub yield_to_lock_waiters: LockWaiters,
    pub max_wal_bytes_per_sec: Option<u64>,
    /// Hold back while replication slots retain more WAL than this (bytes from the oldest
    /// slot's `restart_lsn` to the current LSN): a slot whose consumer lags or is gone keeps
    /// every byte the backfill writes on the primary's disk until it catches up.
    pub max_retained_wal_bytes: Option<u64>,
    /// Pace the backfill while the other sessions' mean transaction time exceeds this many
    /// times their time while the backfill is idle (`None`: ignore the workload).
    pub workload_latency: Option<f64>,
    /// How often the signals are sampled at most.
    pub sample_every: Duration,
}

/// The default `workload_latency` factor: the impact target of issue 22 (p99 ≤ 1.5×).
pub const DEFAULT_WORKLOAD_LATENCY: f64 = 1.5;

/// Whether sessions queued for a lock on the table hold the backfill back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockWaiters {
    Yield,
    Ignore,
}

impl Default for ThrottleOptions {
    fn default() -> Self {
        ThrottleOptions {
            max_replica_lag: Some(Duration::from_secs(10)),
            max_transaction_age: Some(Duration::from_secs(600)),
            yield_to_lock_waiters: LockWaiters::Yield,
            max_wal_bytes_per_sec: None,
            max_retained_wal_bytes: None,
            workload_latency: Some(DEFAULT_WORKLOAD_LATENCY),
            sample_every: Duration::from_secs(1),
        }
    }
}

impl ThrottleOptions {
    /// Every database signal off (the operator's pause still applies): for benchmarks and
    /// maintenance windows.
    pub fn unthrottled() -> Self {
        ThrottleOptions {
            max_replica_lag: None,
            max_transaction_age: None,
            yield_to_lock_waiters: LockWaiters::Ignore,
            max_wal_bytes_per_sec: None,
            max_retained_wal_bytes: None,
            workload_latency: None,
            sample_every: Duration::from_secs(1),
        }
    }
}

/// One reason a batch waited; recorded on the batch row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    Paused,
    ReplicaLag,
    LongTransaction,
    LockWaiters,
    WalRate,
    /// Replication slots retain more WAL than `max_retained_wal_bytes`.
    RetainedWal,
    RateLimit,
    /// The other sessions' transactions take longer than `workload_latency` times their
    /// baseline (or the baseline is being measured).
    WorkloadLatency,
    /// A streaming replica disconnected since the last sample. Policy: the backfill goes on
    /// (a replica that is gone has no lag to protect), and the next batch row records it.
    ReplicaLost,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Paused => "paused",
            Reason::ReplicaLag => "replica_lag",
            Reason::LongTransaction => "long_transaction",
            Reason::LockWaiters => "lock_waiters",
            Reason::WalRate => "wal_rate",
            Reason::RetainedWal => "retained_wal",
            Reason::RateLimit => "rate_limit",
            Reason::WorkloadLatency => "workload_latency",
            Reason::ReplicaLost => "replica_lost",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reading of the signals.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sample {
    pub replica_lag_secs: f64,
    pub oldest_transaction_secs: f64,
    pub lock_waiters: i64,
    /// `pg_current_wal_lsn()` as bytes since 0/0.
    pub wal_lsn: f64,
    pub paused: bool,
    pub max_rows_per_sec: Option<f64>,
    /// Streaming replicas connected (rows of `pg_stat_replication`).
    pub replicas: i64,
    /// Bytes of WAL the replication slots retain (current LSN minus the oldest `restart_lsn`).
    pub retained_wal_bytes: f64,
    /// Commits and rollbacks in this database (`pg_stat_database`); `None` where unknown.
    pub workload_xacts: Option<f64>,
    /// Milliseconds its sessions spent active or idle in a transaction (PostgreSQL 14+).
    pub workload_busy_ms: Option<f64>,
}

/// The signals' state between samples.
#[derive(Debug, Clone)]
pub struct Throttle {
    options: ThrottleOptions,
    active: Vec<Reason>,
    last_sample_at: Option<Instant>,
    last_wal: Option<(f64, Instant)>,
    paused: bool,
    max_rows_per_sec: Option<f64>,
    last_replicas: Option<i64>,
    /// The workload counters at the start of the current window, and when they were read.
    last_workload: Option<(f64, f64, Instant)>,
    /// The backfill's own transactions and busy milliseconds since the last sample.
    own_xacts: f64,
    own_busy_ms: f64,
    /// Of `own_busy_ms`, this backfill's own (not its run's other workers'): a window in
    /// which it wrote nothing measures the workload without it.
    self_busy_ms: f64,
    /// The workload's mean transaction time (ms) while the backfill was idle.
    baseline_ms: Option<f64>,
    /// The latest reading of the workload's mean transaction time (ms).
    latency_ms: Option<f64>,
    /// Sleep after each batch, in multiples of its duration (0: none).
    pace: f64,
    /// Hold one interval to measure the baseline.
    calibrating: bool,
    /// While calibrating: when the reports of the time before the hold are in.
    settle_until: Option<Instant>,
    samples_since_baseline: u32,
}

/// What the latest sample says.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Reasons to wait now (empty: go).
    pub hold: Vec<Reason>,
    pub max_rows_per_sec: Option<f64>,
    /// True when a new reason appeared with this sample (the batch size halves once per episode).
    pub newly_throttled: bool,
    /// Replicas that disconnected since the previous sample (reported, not waited for).
    pub replicas_lost: i64,
    /// Sleep after each batch, in multiples of the batch's duration (workload latency).
    pub pace: f64,
}

impl Throttle {
    pub fn new(options: ThrottleOptions) -> Self {
        Throttle {
            options,
            active: Vec::new(),
            last_sample_at: None,
            last_wal: None,
            paused: false,
            max_rows_per_sec: None,
            last_replicas: None,
            last_workload: None,
            own_xacts: 0.0,
            own_busy_ms: 0.0,
            self_busy_ms: 0.0,
            baseline_ms: None,
            latency_ms: None,
            pace: 0.0,
            calibrating: false,
            settle_until: None,
            samples_since_baseline: 0,
        }
    }

    /// One transaction of the backfill's own (a batch, a sample), which the workload reading
    /// leaves out.
    pub fn note_own_work(&mut self, busy: Duration) {
        self.note_work(1.0, busy);
        self.note_self_work(busy);
    }

    /// Time this backfill itself kept the server busy, when its transactions reach
    /// [`Throttle::note_work`] with its run's other workers' (see `RunGroup`).
    pub fn note_self_work(&mut self, busy: Duration) {
        self.self_busy_ms += busy.as_secs_f64() * 1000.0;
    }

    /// `xacts` transactions of the backfill's run taking `busy` in all (several workers'
    /// together), which the workload reading leaves out.
    pub fn note_work(&mut self, xacts: f64, busy: Duration) {
        self.own_xacts += xacts;
        self.own_busy_ms += busy.as_secs_f64() * 1000.0;
    }

    /// The workload's mean transaction time: the latest reading and the baseline (ms).
    pub fn workload_latency(&self) -> (Option<f64>, Option<f64>) {
        (self.latency_ms, self.baseline_ms)
    }

    /// True when the last sample is older than the sampling interval.
    pub fn due(&self, now: Instant) -> bool {
        self.last_sample_at.is_none_or(|t| now.duration_since(t) >= self.options.sample_every)
    }

    pub fn options(&self) -> &ThrottleOptions {
        &self.options
    }

    /// The verdict of the last sample, without sampling again.
    pub fn current(&self) -> Verdict {
        Verdict {
            hold: self.holds(),
            max_rows_per_sec: self.max_rows_per_sec,
            newly_throttled: false,
            replicas_lost: 0,
            pace: self.pace,
        }
    }

    fn holds(&self) -> Vec<Reason> {
        let mut hold = self.active.clone();
        if self.paused {
            hold.insert(0, Reason::Paused);
        }
        if self.calibrating {
            hold.push(Reason::WorkloadLatency);
            hold.sort();
        }
        hold
    }

    fn restart_window(&mut self, counters: (f64, f64), now: Instant) {
        self.last_workload = Some((counters.0, counters.1, now));
        self.own_xacts = 0.0;
        self.own_busy_ms = 0.0;
        self.self_busy_ms = 0.0;
    }

    /// Holds the backfill to measure the workload alone: first [`SETTLE`], then a window.
    fn start_calibration(&mut self, now: Instant) {
        self.calibrating = true;
        self.settle_until = Some(now + SETTLE);
    }

    /// Folds the workload counters into the latency reading, the baseline and the pace.
    /// Returns true when pacing starts.
    fn workload(&mut self, s: &Sample, now: Instant) -> bool {
        let Some(factor) = self.options.workload_latency else {
            self.calibrating = false;
            self.pace = 0.0;
            return false;
        };
        let counters = match (s.workload_xacts, s.workload_busy_ms) {
            (Some(x), Some(b)) => (x, b),
            _ => {
                self.calibrating = false;
                self.pace = 0.0;
                return false;
            }
        };
        let Some((x0, b0, since)) = self.last_workload else {
            self.restart_window(counters, now);
            return false;
        };
        if self.calibrating
            && let Some(t) = self.settle_until
        {
            // Holding: the sessions' reports of the time before the hold arrive within about
            // a second; only then does the window of the workload alone start.
            if now >= t {
                self.settle_until = None;
                self.restart_window(counters, now);
            }
            return false;
        }
        let secs = now.saturating_duration_since(since).as_secs_f64();
        let min = if self.calibrating { QUIET_WINDOW } else { MIN_WINDOW };
        if secs < min.as_secs_f64() {
            // Each session reports about once a second: one-second windows catch zero, one
            // or two reports of each, and their readings jump; longer ones average that out.
            return false;
        }
        let xacts = counters.0 - x0 - self.own_xacts;
        let busy = (counters.1 - b0 - self.own_busy_ms).max(0.0);
        // Whether this backfill wrote in the window. (In a run of several workers the others
        // may have: their transactions are left out of the reading above, but a baseline
        // measured while they wrote includes what they cost the workload.)
        let own_busy = self.self_busy_ms;
        if xacts < MIN_WORKLOAD_TPS * secs {
            // No workload to protect or to measure now. A window grows until it spans
            // MAX_WINDOW before it starts again.
            self.calibrating = false;
            self.settle_until = None;
            self.pace = 0.0;
            if secs >= MAX_WINDOW.as_secs_f64() {
                self.restart_window(counters, now);
                self.latency_ms = None;
            }
            return false;
        }
        self.restart_window(counters, now);
        let latency = busy / xacts;
        self.latency_ms = Some(latency);
        if self.calibrating && own_busy == 0.0 {
            // The backfill wrote nothing in this window: the workload alone.
            self.baseline_ms = Some(latency);
            self.calibrating = false;
            self.samples_since_baseline = 0;
            return false;
        }
        if own_busy == 0.0 {
            // Held for another reason: the reading may still carry the last batches.
            return false;
        }
        let Some(baseline) = self.baseline_ms.filter(|b| *b > 0.0) else {
            self.start_calibration(now);
            return false;
        };
        self.samples_since_baseline += 1;
        if self.samples_since_baseline >= RECALIBRATE_EVERY {
            self.start_calibration(now);
        }
        let ratio = latency / baseline;
        let before = self.pace;
        if ratio > factor {
            self.pace = (self.pace * 2.0).clamp(0.25, MAX_PACE);
        } else if ratio < factor * RELEASE_FRACTION {
            self.pace /= 2.0;
            if self.pace < 0.1 {
                self.pace = 0.0;
            }
        }
        before == 0.0 && self.pace > 0.0
    }

    /// Folds a new sample into the state.
    pub fn observe(&mut self, s: Sample, now: Instant) -> Verdict {
        self.last_sample_at = Some(now);
        let before = self.holds();
        let pacing_starts = self.workload(&s, now);
        let wal_rate = match self.last_wal {
            Some((lsn, at)) if now > at => {
                let secs = now.duration_since(at).as_secs_f64();
                Some((s.wal_lsn - lsn).max(0.0) / secs)
            }
            _ => None,
        };
        self.last_wal = Some((s.wal_lsn, now));
        let o = self.options.clone();
        self.level(Reason::ReplicaLag, o.max_replica_lag.map(|d| (s.replica_lag_secs, d.as_secs_f64())));
        self.level(
            Reason::LongTransaction,
            o.max_transaction_age.map(|d| (s.oldest_transaction_secs, d.as_secs_f64())),
        );
        // Any waiter counts: a limit of "more than zero", cleared only when none are left.
        self.level(
            Reason::LockWaiters,
            (o.yield_to_lock_waiters == LockWaiters::Yield).then_some((s.lock_waiters as f64, 0.5)),
        );
        self.level(
            Reason::WalRate,
            o.max_wal_bytes_per_sec.and_then(|limit| wal_rate.map(|r| (r, limit as f64))),
        );
        self.level(
            Reason::RetainedWal,
            o.max_retained_wal_bytes.map(|limit| (s.retained_wal_bytes, limit as f64)),
        );
        self.paused = s.paused;
        self.max_rows_per_sec = s.max_rows_per_sec.filter(|r| *r > 0.0);
        let hold = self.holds();
        // Measuring the baseline is no sign of pressure; pacing that starts is.
        let newly_throttled =
            pacing_starts || hold.iter().any(|r| !before.contains(r) && *r != Reason::WorkloadLatency);
        let replicas_lost = self.last_replicas.map_or(0, |n| (n - s.replicas).max(0));
        self.last_replicas = Some(s.replicas);
        Verdict {
            hold,
            max_rows_per_sec: self.max_rows_per_sec,
            newly_throttled,
            replicas_lost,
            pace: self.pace,
        }
    }

    fn level(&mut self, reason: Reason, reading: Option<(f64, f64)>) {
        let on = self.active.contains(&reason);
        let next = match reading {
            None => false,
            Some((value, limit)) if on => value >= limit * RELEASE_FRACTION,
            Some((value, limit)) => value > limit,
        };
        if next && !on {
            self.active.push(reason);
            self.active.sort();
        } else if !next && on {
            self.active.retain(|r| *r != reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn replica_lag_has_hysteresis() {
        let mut t = Throttle::new(ThrottleOptions::default());
        let now = t0();
        let lag = |secs| Sample { replica_lag_secs: secs, ..Sample::default() };
        assert!(t.observe(lag(9.0), now).hold.is_empty());
        let v = t.observe(lag(11.0), now);
        assert_eq!(v.hold, vec![Reason::ReplicaLag]);
        assert!(v.newly_throttled);
        // Below the limit but above 80 % of it: still held.
        let v = t.observe(lag(9.0), now);
        assert_eq!(v.hold, vec![Reason::ReplicaLag]);
        assert!(!v.newly_throttled);
        assert!(t.observe(lag(7.9), now).hold.is_empty());
    }

    #[test]
    fn wal_rate_comes_from_lsn_deltas() {
        let mut o = ThrottleOptions::unthrottled();
        o.max_wal_bytes_per_sec = Some(1_000_000);
        let mut t = Throttle::new(o);
        let start = t0();
        let wal = |b| Sample { wal_lsn: b, ..Sample::default() };
        assert!(t.observe(wal(0.0), start).hold.is_empty(), "one reading has no rate");
        let v = t.observe(wal(3_000_000.0), start + Duration::from_secs(1));
        assert_eq!(v.hold, vec![Reason::WalRate]);
        let v = t.observe(wal(3_500_000.0), start + Duration::from_secs(2));
        assert!(v.hold.is_empty());
    }

    #[test]
    fn retained_wal_holds_until_the_slots_release_it() {
        let mut o = ThrottleOptions::unthrottled();
        o.max_retained_wal_bytes = Some(1_000_000);
        let mut t = Throttle::new(o);
        let r = |b| Sample { retained_wal_bytes: b, ..Sample::default() };
        assert!(t.observe(r(900_000.0), t0()).hold.is_empty());
        assert_eq!(t.observe(r(1_500_000.0), t0()).hold, vec![Reason::RetainedWal]);
        // Hysteresis: still held above 80 % of the limit.
        assert_eq!(t.observe(r(900_000.0), t0()).hold, vec![Reason::RetainedWal]);
        assert!(t.observe(r(100_000.0), t0()).hold.is_empty());
    }

    #[test]
    fn pause_and_rate_come_from_the_control_row() {
        let mut t = Throttle::new(ThrottleOptions::unthrottled());
        let v = t.observe(Sample { paused: true, max_rows_per_sec: Some(500.0), ..Sample::default() }, t0());
        assert_eq!(v.hold, vec![Reason::Paused]);
        assert_eq!(v.max_rows_per_sec, Some(500.0));
        let v = t.observe(Sample::default(), t0());
        assert!(v.hold.is_empty());
        assert_eq!(v.max_rows_per_sec, None);
    }

    #[test]
    fn lock_waiters_hold_until_none_are_left() {
        let mut t = Throttle::new(ThrottleOptions::default());
        let w = |n| Sample { lock_waiters: n, ..Sample::default() };
        assert_eq!(t.observe(w(2), t0()).hold, vec![Reason::LockWaiters]);
        assert_eq!(t.observe(w(1), t0()).hold, vec![Reason::LockWaiters]);
        assert!(t.observe(w(0), t0()).hold.is_empty());
    }

    #[test]
    fn unthrottled_ignores_database_signals() {
        let mut t = Throttle::new(ThrottleOptions::unthrottled());
        let s = Sample {
            replica_lag_secs: 1e6,
            oldest_transaction_secs: 1e6,
            lock_waiters: 9,
            ..Sample::default()
        };
        assert!(t.observe(s, t0()).hold.is_empty());
    }

    #[test]
    fn a_replica_that_disconnects_is_reported_once_and_not_waited_for() {
        let mut t = Throttle::new(ThrottleOptions::default());
        let r = |n| Sample { replicas: n, ..Sample::default() };
        assert_eq!(t.observe(r(2), t0()).replicas_lost, 0);
        let v = t.observe(r(1), t0());
        assert_eq!(v.replicas_lost, 1);
        assert!(v.hold.is_empty());
        assert_eq!(t.observe(r(1), t0()).replicas_lost, 0);
    }

    #[test]
    fn sampling_is_at_most_once_per_interval() {
        let mut t = Throttle::new(ThrottleOptions::default());
        let now = t0();
        assert!(t.due(now));
        t.observe(Sample::default(), now);
        assert!(!t.due(now + Duration::from_millis(500)));
        assert!(t.due(now + Duration::from_secs(1)));
    }

    /// A sample whose workload counters stand at `xacts` transactions and `busy` ms.
    fn work(xacts: f64, busy: f64) -> Sample {
        Sample { workload_xacts: Some(xacts), workload_busy_ms: Some(busy), ..Sample::default() }
    }

    /// Two workers of one run: the other worker's batches are the run's work, not a workload
    /// to protect, so they neither start a hold to measure one nor count as its latency.
    #[test]
    fn the_other_workers_of_a_run_are_not_the_workload() {
        let mut t = Throttle::new(ThrottleOptions::default());
        let s = t0();
        let at = |n: u64| s + Duration::from_secs(2 * n);
        t.observe(work(0.0, 0.0), at(0));
        // In two seconds: 100 batches of this worker and 100 of the other, 15 ms each.
        t.note_self_work(Duration::from_millis(1_500));
        t.note_work(200.0, Duration::from_millis(3_000));
        let v = t.observe(work(200.0, 3_000.0), at(1));
        assert!(v.hold.is_empty(), "{v:?}");
        assert_eq!(v.pace, 0.0);
        assert_eq!(t.workload_latency(), (None, None), "no workload measured");
        // Without them left out, the same counters would look like 50 tps of 15 ms: a hold.
        let mut alone = Throttle::new(ThrottleOptions::default());
        alone.observe(work(0.0, 0.0), at(0));
        for _ in 0..100 {
            alone.note_own_work(Duration::from_millis(15));
        }
        let v = alone.observe(work(200.0, 3_000.0), at(1));
        assert_eq!(v.hold, vec![Reason::WorkloadLatency]);
    }

    #[test]
    fn workload_latency_is_calibrated_while_idle_then_paces_and_releases() {
        let mut t = Throttle::new(ThrottleOptions::default());
        let s = t0();
        let at = |n: u64| s + Duration::from_secs(2 * n);
        assert!(t.observe(work(0.0, 0.0), at(0)).hold.is_empty(), "one reading has no delta");
        // 1,000 transactions of 1 ms in two seconds while the backfill ran (4 batches, 800 ms of its own).
        for _ in 0..4 {
            t.note_own_work(Duration::from_millis(200));
        }
        let v = t.observe(work(1_004.0, 1_800.0), at(1));
        assert_eq!(v.hold, vec![Reason::WorkloadLatency], "no baseline yet: hold to measure it");
        assert!(!v.newly_throttled, "measuring is no sign of pressure");
        assert_eq!(t.workload_latency().0, Some(1.0));
        // A second into the hold the reports of the batches are in: the quiet window starts.
        let v = t.observe(work(1_504.0, 2_050.0), at(1) + Duration::from_secs(1));
        assert_eq!(v.hold, vec![Reason::WorkloadLatency]);
        // The workload alone: 500 transactions of 0.5 ms.
        let v = t.observe(work(2_004.0, 2_300.0), at(2));
        assert!(v.hold.is_empty());
        assert_eq!(v.pace, 0.0);
        assert_eq!(t.workload_latency(), (Some(0.5), Some(0.5)));
        // The backfill runs again and the workload's transactions take 1 ms: 2× > 1.5×.
        t.note_own_work(Duration::from_millis(500));
        let v = t.observe(work(3_005.0, 3_800.0), at(3));
        assert!(v.hold.is_empty(), "pacing, not holding");
        assert_eq!(v.pace, 0.25);
        assert!(v.newly_throttled);
        t.note_own_work(Duration::from_millis(500));
        let v = t.observe(work(4_006.0, 5_300.0), at(4));
        assert_eq!(v.pace, 0.5, "still above the limit: the pace doubles");
        assert!(!v.newly_throttled);
        // Between 80 % of the limit and the limit: the pace stays.
        t.note_own_work(Duration::from_millis(100));
        let v = t.observe(work(5_007.0, 5_300.0 + 100.0 + 650.0), at(5));
        assert_eq!(v.pace, 0.5);
        // Below 80 % of the limit (0.55 ms < 0.6 ms): the pace halves, then ends.
        t.note_own_work(Duration::from_millis(100));
        let v = t.observe(work(6_008.0, 6_050.0 + 100.0 + 550.0), at(6));
        assert_eq!(v.pace, 0.25);
        t.note_own_work(Duration::from_millis(100));
        let v = t.observe(work(7_009.0, 6_700.0 + 100.0 + 550.0), at(7));
        assert_eq!(v.pace, 0.125);
        t.note_own_work(Duration::from_millis(100));
        let v = t.observe(work(8_010.0, 7_350.0 + 100.0 + 550.0), at(8));
        assert_eq!(v.pace, 0.0);
    }

    #[test]
    fn no_workload_no_workload_throttle() {
        let mut t = Throttle::new(ThrottleOptions::default());
        let s = t0();
        t.observe(work(0.0, 0.0), s);
        // Ten transactions in two seconds (the backfill's own excluded): below MIN_WORKLOAD_TPS.
        t.note_own_work(Duration::from_millis(900));
        let v = t.observe(work(11.0, 5_000.0), s + Duration::from_secs(2));
        assert!(v.hold.is_empty());
        assert_eq!(v.pace, 0.0);
        assert_eq!(t.workload_latency(), (None, None));
    }

    #[test]
    fn workload_latency_off_ignores_the_workload() {
        let mut t = Throttle::new(ThrottleOptions { workload_latency: None, ..ThrottleOptions::default() });
        let s = t0();
        t.observe(work(0.0, 0.0), s);
        t.note_own_work(Duration::from_millis(900));
        let v = t.observe(work(10_000.0, 50_000.0), s + Duration::from_secs(2));
        assert!(v.hold.is_empty());
        assert_eq!(v.pace, 0.0);
    }

    #[test]
    fn the_baseline_is_measured_again_after_a_while() {
        let mut t = Throttle::new(ThrottleOptions::default());
        let s = t0();
        let at = |ms: u64| s + Duration::from_millis(ms);
        t.observe(work(0.0, 0.0), at(0));
        t.note_own_work(Duration::from_millis(100));
        assert_eq!(t.observe(work(1_001.0, 600.0), at(2_000)).hold, vec![Reason::WorkloadLatency]);
        t.observe(work(1_501.0, 850.0), at(3_000));
        assert!(t.observe(work(2_001.0, 1_100.0), at(4_000)).hold.is_empty());
        assert_eq!(t.workload_latency().1, Some(0.5));
        let mut held = false;
        for n in 1..=u64::from(RECALIBRATE_EVERY) {
            t.note_own_work(Duration::from_millis(100));
            let v = t.observe(
                work(2_001.0 + 1_001.0 * n as f64, 1_100.0 + 550.0 * n as f64),
                at(4_000 + 2_000 * n),
            );
            held |= v.hold == vec![Reason::WorkloadLatency];
        }
        assert!(held, "a hold to measure the baseline again");
    }
}
