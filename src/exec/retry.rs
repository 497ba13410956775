//! Lock-timeout retries. A DDL statement waiting for a lock also blocks every later
//! statement queued behind it on that table (PostgreSQL's lock queue is FIFO), so each
//! attempt gets a short `lock_timeout`: readers wait at most that long. Attempts start well
//! below the configured timeout and grow up to it (never beyond, so the reader bound holds),
//! with jittered, growing sleeps in between, until the total budget is spent. There is no
//! final unbounded attempt. While retrying, a second connection watches
//! `pg_blocking_pids` so that giving up can name who was in the way.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_postgres::Client;

/// How long each attempt may wait for a lock and how long all attempts together may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The longest `lock_timeout` of any attempt: the longest a reader queued behind a
    /// waiting DDL statement can be held up.
    pub lock_timeout: Duration,
    /// Total time for all attempts of one statement, sleeps included.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { lock_timeout: Duration::from_millis(1000), budget: Duration::from_secs(600) }
    }
}

impl RetryPolicy {
    /// `lock_timeout` of attempt `n` (0-based): a quarter of the maximum, doubling up to it.
    pub fn attempt_timeout(&self, n: u32) -> Duration {
        let max = self.lock_timeout.max(Duration::from_millis(10));
        let start = (max / 4).max(Duration::from_millis(10));
        start.saturating_mul(1u32 << n.min(16)).min(max)
    }

    /// Sleep after failed attempt `n`: 100 ms growing by half each time up to 10 s, with ±50 %
    /// jitter so that several waiting clients do not retry in lock step.
    pub fn sleep_after(&self, n: u32, jitter: &mut Jitter) -> Duration {
        let base = 100.0 * 1.5f64.powi(n.min(30) as i32);
        let base = base.min(10_000.0);
        Duration::from_millis((base * (0.5 + jitter.next_unit())) as u64)
    }
}

/// A tiny xorshift generator: jitter needs spread, not cryptographic quality.
#[derive(Debug)]
pub struct Jitter(u64);

impl Jitter {
    pub fn new() -> Jitter {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
        Jitter((nanos ^ (u64::from(std::process::id()) << 32)) | 1)
    }

    /// Uniform in [0, 1).
    pub fn next_unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// SQLSTATEs worth another attempt: `lock_not_available` (our `lock_timeout`) and a
/// deadlock, which PostgreSQL resolved by cancelling us.
pub fn is_retryable(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| matches!(c.code(), "55P03" | "40P01"))
}

/// A session that held a lock a seqmig statement waited for.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Blocker {
    pub pid: i32,
    pub application_name: String,
    pub user: String,
    pub state: String,
    pub query: String,
    /// Age of its open transaction, seconds.
    pub transaction_age_s: Option<f64>,
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid {} (application '{}', user '{}', {}",
            self.pid, self.application_name, self.user, self.state
        )?;
        if let Some(age) = self.transaction_age_s {
            write!(f, ", transaction open {age:.1} s")?;
        }
        let q: String = self.query.split_whitespace().collect::<Vec<_>>().join(" ");
        let q = if q.chars().count() > 120 {
            format!("{}…", q.chars().take(120).collect::<String>())
        } else {
            q
        };
        write!(f, ", last query: {q})")
    }
}

const BLOCKERS_SQL: &str = "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''),
        coalesce(a.state, ''), coalesce(a.query, ''),
        extract(epoch FROM clock_timestamp() - a.xact_start)::float8
     FROM pg_stat_activity a WHERE a.pid = ANY (pg_blocking_pids($1))";

/// Sessions holding a lock on `relation` that conflicts with `mode`, for when no attempt was
/// watched (a budget that allowed one attempt only).
const HOLDERS_SQL: &str =
    "SELECT DISTINCT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''),
        coalesce(a.state, ''), coalesce(a.query, ''),
        extract(epoch FROM clock_timestamp() - a.xact_start)::float8
     FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.granted AND l.relation = to_regclass($1) AND l.pid <> $2 AND l.mode = ANY ($3)";

fn blocker_from(r: &tokio_postgres::Row) -> Blocker {
    Blocker {
        pid: r.get(0),
        application_name: r.get(1),
        user: r.get(2),
        state: r.get(3),
        query: r.get(4),
        transaction_age_s: r.get(5),
    }
}

/// Runs `sql` on `client` while `observer` (if any) polls who blocks `pid`; every blocker
/// seen is added to `seen`.
pub async fn execute_watched(
    client: &Client,
    observer: Option<&Client>,
    pid: i32,
    sql: &str,
    seen: &mut BTreeMap<i32, Blocker>,
) -> Result<(), tokio_postgres::Error> {
    let exec = client.batch_execute(sql);
    tokio::pin!(exec);
    let Some(observer) = observer else { return exec.await };
    loop {
        tokio::select! {
            r = &mut exec => return r,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                if let Ok(rows) = observer.query(BLOCKERS_SQL, &[&pid]).await {
                    for r in &rows {
                        let b = blocker_from(r);
                        seen.insert(b.pid, b);
                    }
                }
            }
        }
    }
}

/// Who holds a lock on `relation` conflicting with a request in `mode` (PostgreSQL's
/// conflict table), excluding `pid`.
pub async fn lock_holders(
    client: &Client,
    relation: &str,
    mode: crate::plan::LockMode,
    pid: i32,
) -> Vec<Blocker> {
    let modes: Vec<String> = conflicting_modes(mode).iter().map(|m| m.pg_locks_name().to_string()).collect();
    match client.query(HOLDERS_SQL, &[&relation, &pid, &modes]).await {
        Ok(rows) => rows.iter().map(blocker_from).collect(),
        Err(_) => Vec::new(),
    }
}

/// The table-level lock modes that conflict with `mode`.
pub fn conflicting_modes(mode: crate::plan::LockMode) -> Vec<crate::plan::LockMode> {
    use crate::plan::LockMode::*;
    match mode {
        None => vec![],
        AccessShare => vec![AccessExclusive],
        RowShare => vec![Exclusive, AccessExclusive],
        RowExclusive => vec![Share, ShareRowExclusive, Exclusive, AccessExclusive],
        ShareUpdateExclusive => {
            vec![ShareUpdateExclusive, Share, ShareRowExclusive, Exclusive, AccessExclusive]
        }
        Share => vec![RowExclusive, ShareUpdateExclusive, ShareRowExclusive, Exclusive, AccessExclusive],
        ShareRowExclusive => {
            vec![RowExclusive, ShareUpdateExclusive, Share, ShareRowExclusive, Exclusive, AccessExclusive]
        }
        Exclusive => {
            vec![
                RowShare,
                RowExclusive,
                ShareUpdateExclusive,
                Share,
                ShareRowExclusive,
                Exclusive,
                AccessExclusive,
            ]
        }
        AccessExclusive => vec![
            AccessShare,
            RowShare,
            RowExclusive,
            ShareUpdateExclusive,
            Share,
            ShareRowExclusive,
            Exclusive,
            AccessExclusive,
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_grow_to_the_configured_timeout_and_never_beyond() {
        let p = RetryPolicy { lock_timeout: Duration::from_millis(800), budget: Duration::from_secs(60) };
        let t: Vec<u64> = (0..6).map(|n| p.attempt_timeout(n).as_millis() as u64).collect();
        assert_eq!(t, vec![200, 400, 800, 800, 800, 800]);
    }

    #[test]
    fn sleeps_grow_with_bounded_jitter() {
        let p = RetryPolicy::default();
        let mut j = Jitter::new();
        for n in 0..40 {
            let s = p.sleep_after(n, &mut j).as_millis() as f64;
            let base = (100.0 * 1.5f64.powi(n as i32)).min(10_000.0);
            assert!(s >= base * 0.5 - 1.0 && s <= base * 1.5, "attempt {n}: {s} ms");
        }
    }

    #[test]
    fn access_exclusive_conflicts_with_everything() {
        assert_eq!(conflicting_modes(crate::plan::LockMode::AccessExclusive).len(), 8);
        assert_eq!(
            conflicting_modes(crate::plan::LockMode::AccessShare),
            vec![crate::plan::LockMode::AccessExclusive]
        );
    }
}
