//! Running the `seqmig` binary against a test database, shared by the executor and
//! reliability tests: one way to spawn it, read its output, hand it a plan file and wait for
//! it to reach a step.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use seqmig::plan::Plan;

use super::TestDb;

/// The binary with `DATABASE_URL` pointing at `db`, run in an empty directory so that no
/// stray `seqmig.toml` is picked up.
pub fn command(db_url: &str) -> Command {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("empty-working-directory");
    std::fs::create_dir_all(&dir).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_seqmig"));
    c.env("DATABASE_URL", db_url).current_dir(dir);
    c
}

/// Runs `seqmig args…` on `db` and waits for it.
pub fn seqmig(args: &[&str], db: &TestDb) -> Output {
    command(&db.url).args(args).output().expect("run seqmig")
}

/// stdout and stderr together, for assertions and failure messages.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Writes `plan` as a plan file; the directory goes away with the returned guard.
pub fn write_plan(plan: &Plan) -> (TempDir, String) {
    let dir = TempDir::new();
    let path = dir.path.join("plan.json");
    std::fs::write(&path, plan.to_json_pretty()).unwrap();
    let p = path.to_string_lossy().into_owned();
    (dir, p)
}

/// A directory removed on drop.
#[derive(Debug)]
pub struct TempDir {
    pub path: std::path::PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("seqmig-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Waits until the ledger shows `step` running (the ledger may not exist yet).
pub async fn wait_for_running_step(c: &tokio_postgres::Client, step: &str) {
    let t0 = Instant::now();
    loop {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_class WHERE relname = 'step_runs' AND relnamespace = to_regnamespace('seqmig')",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if n > 0 {
            let running: i64 = c
                .query_one(
                    "SELECT count(*) FROM seqmig.step_runs WHERE step_id = $1 AND outcome = 'running'",
                    &[&step],
                )
                .await
                .unwrap()
                .get(0);
            if running > 0 {
                return;
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "step {step} never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
