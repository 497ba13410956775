//! When to hold a backfill back. One query samples the signals at most once a second:
//! replica replay lag, the oldest open transaction in this database, sessions waiting for a
//! lock on the table, the WAL rate from LSN deltas, the WAL that replication slots retain,
//! and the operator's row in
//! `seqmig.backfill_control`. Each limit has hysteresis: a signal starts throttling above its
//! limit and stops only below [`RELEASE_FRACTION`] of it, so the backfill does not flap on
//! the threshold.

use std::fmt;
use std::time::{Duration, Instant};

/// A signal clears only once it falls below this fraction of its limit.
pub const RELEASE_FRACTION: f64 = 0.8;

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
    /// How often the signals are sampled at most.
    pub sample_every: Duration,
}

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
        }
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
        }
    }

    fn holds(&self) -> Vec<Reason> {
        let mut hold = self.active.clone();
        if self.paused {
            hold.insert(0, Reason::Paused);
        }
        hold
    }

    /// Folds a new sample into the state.
    pub fn observe(&mut self, s: Sample, now: Instant) -> Verdict {
        self.last_sample_at = Some(now);
        let before = self.holds();
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
        let newly_throttled = hold.iter().any(|r| !before.contains(r));
        let replicas_lost = self.last_replicas.map_or(0, |n| (n - s.replicas).max(0));
        self.last_replicas = Some(s.replicas);
        Verdict { hold, max_rows_per_sec: self.max_rows_per_sec, newly_throttled, replicas_lost }
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
}
