//! Golden tests of what a human reads from the command line (issue 19): `plan` as text,
//! the runbook (`plan --format markdown`), `status`, `gate` and the `rehearse` summary, each
//! on a fixed fixture (example 07, a column rename, plus a fixed gate) and each an insta
//! snapshot in `tests/snapshots/golden/`. What changes from run to run — durations, clock
//! times, database names, ports — is replaced by a placeholder before the comparison
//! ([`redact`]), so a snapshot diff is always a change in the wording or the facts.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::TestDb;

const GATE: &str = "\n[gate]\nbuiltin_defaults = false\nmin_soak = \"1h\"\nbackfill_verified = true\n\
                    constraints_validated = true\n";

/// A working directory holding the fixture: before.sql, after.sql, seqmig.toml (example 07's
/// rename plus [`GATE`]) and, once planned, plan.json. Removed on drop.
struct Fixture {
    dir: PathBuf,
    db: TestDb,
}

impl Fixture {
    fn new() -> Fixture {
        let db = TestDb::new();
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-examples/07-rename-column");
        let dir = std::env::temp_dir().join(format!("seqmig-golden-{}", db.name));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["before.sql", "after.sql"] {
            std::fs::copy(example.join(f), dir.join(f)).unwrap();
        }
        let hints = std::fs::read_to_string(example.join("seqmig.toml")).unwrap();
        std::fs::write(dir.join("seqmig.toml"), format!("{hints}{GATE}")).unwrap();
        Fixture { dir, db }
    }

    /// Runs seqmig in the fixture directory: (exit code, stdout and stderr).
    fn run(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_seqmig"))
            .args(args)
            .current_dir(&self.dir)
            .env("DATABASE_URL", &self.db.url)
            .env("SEQMIG_ACTOR", "golden")
            .env_remove("SEQMIG_SIGN_KEY")
            .output()
            .unwrap();
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.code().unwrap(), text)
    }

    fn plan_json(&self) {
        let (code, out) =
            self.run(&["plan", "--from", "before.sql", "--to", "after.sql", "--format", "json"]);
        assert_eq!(code, 0, "{out}");
        std::fs::write(self.dir.join("plan.json"), out).unwrap();
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The snapshot settings with the volatile parts of the output redacted: clock times, plan
/// ids (example 07's JSON snapshot already pins the id), step and phase durations, and the
/// soak clock. Filters run in order.
fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/golden"));
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "<time>");
    s.add_filter(r"sha256:[0-9a-f]{64}", "sha256:<plan-id>");
    s.add_filter(r"\bplan [0-9a-f]{12}\b", "plan <plan-id>");
    s.add_filter(r"\b\d+ ms\b", "<ms> ms");
    s.add_filter(r"\bin \d+(\.\d+)? s\b", "in <secs> s");
    s.add_filter(r"only \w+ ago; \w+ to go", "only <age> ago; <left> to go");
    s.add_filter(r"wait \w+ and run", "wait <left> and run");
    s
}

/// The rehearse table is aligned to its widest cell, and its `ms` column holds bare numbers:
/// runs of spaces become two and the number after the rewrite cell becomes `<ms>`. A batched
/// step's lock is sampled while it runs, so whether a sample caught the 20-row backfill is
/// luck: that cell becomes `<sampled>`.
fn rehearse_settings() -> insta::Settings {
    let mut s = settings();
    s.add_filter(r"(?:[A-Z][A-Z ]+ on \S+ \(sampled\)|none seen \(none\))", "<sampled>");
    s.add_filter(r" {2,}", "  ");
    s.add_filter(r"(?m)^(  s\d+  .*  (?:no|yes))  \d+  ", "$1  <ms>  ");
    s
}

/// `seqmig plan` on a terminal-less stdout with `--format text`: the summary a reviewer reads.
#[test]
fn issue19_2_plan_text() {
    let f = Fixture::new();
    let (code, out) = f.run(&["plan", "--from", "before.sql", "--to", "after.sql", "--format", "text"]);
    assert_eq!(code, 0, "{out}");
    settings().bind(|| insta::assert_snapshot!("plan_text", out));
}

/// The runbook as the CLI writes it (`plan --format markdown`), gate section included.
#[test]
fn issue19_2_runbook_markdown() {
    let f = Fixture::new();
    let (code, out) = f.run(&["plan", "--from", "before.sql", "--to", "after.sql", "--format", "markdown"]);
    assert_eq!(code, 0, "{out}");
    settings().bind(|| insta::assert_snapshot!("runbook_markdown", out));
}

/// `status` on a database with no ledger, then `status` and `gate` after expand through
/// switch: every phase, step, backfill and flag, the next command, and the closed gate with
/// its criteria.
#[test]
fn issue19_2_status_and_gate_after_switch() {
    let f = Fixture::new();
    f.db.execute(&std::fs::read_to_string(f.dir.join("before.sql")).unwrap());
    let (code, out) = f.run(&["status"]);
    assert_eq!(code, 0, "{out}");
    settings().bind(|| insta::assert_snapshot!("status_no_ledger", out));
    f.plan_json();
    for phase in ["expand", "dual_write", "backfill", "switch"] {
        let (code, out) = f.run(&["apply", "--plan", "plan.json", "--phase", phase]);
        assert_eq!(code, 0, "{phase}: {out}");
    }
    let (code, out) = f.run(&["status"]);
    assert_eq!(code, 0, "{out}");
    settings().bind(|| insta::assert_snapshot!("status_after_switch", out));
    let (code, out) = f.run(&["gate"]);
    assert_eq!(code, 1, "the gate is closed for an hour: {out}");
    settings().bind(|| insta::assert_snapshot!("gate_closed", out));
}

/// The `rehearse` summary: seeding, each phase's locks predicted against observed, its
/// rollback, and the final verdict.
#[test]
fn issue19_2_rehearse_summary() {
    let f = Fixture::new();
    let scratch = TestDb::new();
    let (code, out) =
        f.run(&["rehearse", "--from", "before.sql", "--to", "after.sql", "--database-url", &scratch.url]);
    assert_eq!(code, 0, "{out}");
    rehearse_settings().bind(|| insta::assert_snapshot!("rehearse_summary", out));
}
