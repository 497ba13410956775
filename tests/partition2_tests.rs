//! Partition lifecycle (issue 21) on real PostgreSQL 15: new partitions attached through a
//! validated CHECK (no scan under the lock, no ACCESS EXCLUSIVE on the parent), removed ones
//! detached concurrently and dropped behind the gate, a default partition that would hold
//! rows of a new bound stopped before the attach; with writers running.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use seqmig::finding::FindingCode;
use seqmig::plan::{Phase, Plan};
use tokio_postgres::error::SqlState;

use crate::exec_examples_tests::{apply, assert_same, introspect, normalize, rollback};
use crate::harness::{TestDb, block_on};

const BEFORE: &str = "
CREATE TABLE public.events (id bigint NOT NULL, kind text NOT NULL,
    CONSTRAINT events_pkey PRIMARY KEY (id), CONSTRAINT events_kind_check CHECK (kind <> '')
) PARTITION BY RANGE (id);
CREATE TABLE public.events_now PARTITION OF public.events FOR VALUES FROM (MINVALUE) TO (1000000);
CREATE TABLE public.events_default PARTITION OF public.events DEFAULT;
CREATE INDEX events_kind_idx ON public.events (kind);
CREATE TABLE public.accounts (id bigint NOT NULL, region text NOT NULL) PARTITION BY LIST (region);
CREATE TABLE public.accounts_eu PARTITION OF public.accounts FOR VALUES IN ('eu');
CREATE TABLE public.accounts_other PARTITION OF public.accounts DEFAULT;
CREATE TABLE public.sessions (id bigint NOT NULL, token text) PARTITION BY HASH (id);
CREATE TABLE public.sessions_0 PARTITION OF public.sessions FOR VALUES WITH (modulus 2, remainder 0);
CREATE TABLE public.metrics (id bigint NOT NULL, value integer) PARTITION BY RANGE (id);
CREATE TABLE public.metrics_now PARTITION OF public.metrics FOR VALUES FROM (MINVALUE) TO (1000000);
";

const ADDED: &str = "
CREATE TABLE public.events_next PARTITION OF public.events FOR VALUES FROM (1000000) TO (2000000);
CREATE TABLE public.accounts_apac PARTITION OF public.accounts FOR VALUES IN ('apac', 'au');
CREATE TABLE public.sessions_1 PARTITION OF public.sessions FOR VALUES WITH (modulus 2, remainder 1);
CREATE TABLE public.metrics_next PARTITION OF public.metrics FOR VALUES FROM (1000000) TO (2000000) PARTITION BY LIST (value);
CREATE TABLE public.metrics_next_a PARTITION OF public.metrics_next FOR VALUES IN (1, 2);
CREATE TABLE public.metrics_next_b PARTITION OF public.metrics_next DEFAULT;
";

fn load(sql: &str) -> seqmig::model::Schema {
    seqmig::parse::load_str("schema.sql", sql).unwrap().schema
}

/// The catalog's model of `sql` loaded into a fresh database.
fn catalog_of(sql: &str) -> seqmig::model::Schema {
    let db = TestDb::new();
    db.execute(sql);
    normalize(live(&db))
}

pub(crate) fn live(db: &TestDb) -> seqmig::model::Schema {
    block_on(async { introspect(&db.client().await).await })
}

pub(crate) fn plan(before: &str, after: &str, toml: &str) -> Plan {
    let hints = seqmig::diff::Hints::from_toml(toml, "seqmig.toml").unwrap();
    seqmig::plan::plan(&load(before), &load(after), &hints, &seqmig::render::Renderer::embedded())
        .unwrap()
        .plan
}

/// Rows outside every new bound, the way the running release writes them.
const SEED: &str = "
INSERT INTO public.events SELECT g, 'k' || g FROM generate_series(1, 500) g;
INSERT INTO public.events VALUES (5000000, 'far future');
INSERT INTO public.accounts SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END FROM generate_series(1, 200) g;
INSERT INTO public.sessions SELECT g, 't' FROM generate_series(1, 400) g WHERE satisfies_hash_partition('public.sessions'::regclass, 2, 0, g::bigint);
INSERT INTO public.metrics SELECT g, g FROM generate_series(1, 300) g;
";

/// A writer on its own connection inserting rows every table takes before and after the
/// attach, until stopped; returns how many it wrote. Any error fails the test.
fn writer(db: &TestDb, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<i64> {
    writer_of(db, stop, |n| {
        let id = 10_000 + n;
        format!(
            "INSERT INTO public.events VALUES ({id}, 'w'); INSERT INTO public.accounts VALUES ({id}, 'eu');
             INSERT INTO public.metrics VALUES ({id}, 7); UPDATE public.events SET kind = 'u' WHERE id = {};",
            1 + n % 500
        )
    })
}

/// A writer that runs `round(n)` every 5 ms until `stop`; returns the rounds it ran.
pub(crate) fn writer_of(
    db: &TestDb,
    stop: Arc<AtomicBool>,
    round: impl Fn(i64) -> String + Send + 'static,
) -> std::thread::JoinHandle<i64> {
    let url = db.url.clone();
    std::thread::spawn(move || {
        block_on(async move {
            let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            let mut n = 0i64;
            while !stop.load(Ordering::SeqCst) {
                c.batch_execute(&round(n)).await.unwrap_or_else(|e| panic!("writer: {e:?}"));
                n += 1;
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            n
        })
    })
}

/// What PostgreSQL says at DEBUG1 while `sql` runs, through psql.
fn debug_messages(db: &TestDb, sql: &str) -> String {
    let psql = seqmig::cluster::find_bindir()
        .map(|d| d.join("psql"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| "psql".into());
    let out = std::process::Command::new(psql)
        .args([
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            &db.url,
            "-c",
            "SET client_min_messages = debug1",
            "-c",
            sql,
        ])
        .output()
        .expect("run psql");
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// New partitions of each strategy and a two-level one: each is created on its own, proven
/// by a validated CHECK, and attached; PostgreSQL skips the scan of the new table and of the
/// default partition (it says so at DEBUG1), writers never wait long enough to fail, and the
/// end state is the desired schema. The same tables created with PARTITION OF would have
/// held ACCESS EXCLUSIVE on the parent.
#[test]
fn issue21_1_new_partitions_are_attached_with_their_scans_skipped_while_writers_run() {
    let after = format!("{BEFORE}{ADDED}");
    let plan = plan(BEFORE, &after, "");
    assert!(!plan.is_blocked(), "{:#?}", plan.findings);
    let mut warned: Vec<&str> = plan
        .findings
        .iter()
        .filter(|f| f.code == FindingCode::DefaultPartitionScan)
        .map(|f| f.object.as_str())
        .collect();
    warned.sort();
    assert_eq!(warned, ["public.accounts_other", "public.events_default"]);
    // No step of the plan holds ACCESS EXCLUSIVE on a parent.
    for s in &plan.steps {
        for parent in ["public.events", "public.accounts", "public.sessions", "public.metrics"] {
            assert!(
                !(s.lock == seqmig::plan::LockMode::AccessExclusive && s.lock_target == parent),
                "{} {}",
                s.id,
                s.sql
            );
        }
    }

    // Applied step by step through psql: what PostgreSQL proves instead of scanning.
    let db = TestDb::new();
    db.execute(BEFORE);
    db.execute(SEED);
    let mut said = String::new();
    let mut at_attach = String::new();
    for s in plan.steps_of(Phase::Expand) {
        let m = debug_messages(&db, &s.sql);
        if s.sql.contains("ATTACH PARTITION") {
            at_attach.push_str(&m);
        }
        said.push_str(&m);
    }
    for t in ["events_next", "accounts_apac", "sessions_1"] {
        assert!(
            said.contains(&format!(
                "partition constraint for table \"{t}\" is implied by existing constraints"
            )),
            "{t}:\n{said}"
        );
    }
    for d in ["events_default", "accounts_other"] {
        assert!(
            said.contains(&format!(
                "updated partition constraint for default partition \"{d}\" is implied by existing constraints"
            )),
            "{d}:\n{said}"
        );
    }
    // Only the new two-level partition's (empty) leaves are scanned: no CHECK goes on a
    // partitioned table.
    for t in ["events_default", "accounts_other", "events_next", "accounts_apac", "sessions_1"] {
        assert!(
            !at_attach.contains(&format!("verifying table \"{t}\"")),
            "{t} scanned at the attach:\n{at_attach}"
        );
    }
    assert_same(&normalize(live(&db)), &catalog_of(&after), "after the attaches");

    // Through the executor, with a writer on every parent.
    let db = TestDb::new();
    db.execute(BEFORE);
    db.execute(SEED);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(&db, stop.clone());
    std::thread::sleep(std::time::Duration::from_millis(100));
    block_on(apply(&db, &plan, Phase::Expand)).unwrap();
    stop.store(true, Ordering::SeqCst);
    let written = w.join().unwrap();
    assert!(written > 0);
    assert_same(&normalize(live(&db)), &catalog_of(&after), "applied with a writer");
    block_on(async {
        let c = db.client().await;
        let n: i64 = c.query_one("SELECT count(*) FROM public.events", &[]).await.unwrap().get(0);
        assert_eq!(n, 501 + written);
        // Rows of the new bounds now land in the new partitions.
        c.batch_execute(
            "INSERT INTO public.events VALUES (1500000, 'next'); INSERT INTO public.accounts VALUES (1, 'au');
             INSERT INTO public.sessions VALUES (3, 'odd'); INSERT INTO public.metrics VALUES (1500000, 1);",
        )
        .await
        .unwrap();
        let r = c
            .query_one(
                "SELECT (SELECT count(*) FROM ONLY public.events_next), (SELECT count(*) FROM public.accounts_apac),
                        (SELECT count(*) FROM public.sessions_1), (SELECT count(*) FROM public.metrics_next_a)",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(
            (r.get::<_, i64>(0), r.get::<_, i64>(1), r.get::<_, i64>(2), r.get::<_, i64>(3)),
            (1, 1, 1, 1)
        );
    });
    // And back: expand's rollback detaches and drops what it added.
    block_on(async {
        db.client().await.batch_execute(
            "DELETE FROM public.events WHERE id = 1500000; DELETE FROM public.accounts WHERE region = 'au';
             DELETE FROM public.sessions WHERE id = 3; DELETE FROM public.metrics WHERE id = 1500000;",
        )
        .await
        .unwrap();
    });
    block_on(rollback(&db, Phase::Expand)).unwrap();
    assert_same(&normalize(live(&db)), &catalog_of(BEFORE), "rolled back");
}

/// The statement the plan replaces: CREATE TABLE … PARTITION OF holds ACCESS EXCLUSIVE on
/// the parent until commit (every reader of every partition waits), ATTACH only SHARE
/// UPDATE EXCLUSIVE.
#[test]
fn issue21_1_partition_of_locks_the_parent_exclusively_and_attach_does_not() {
    let db = TestDb::new();
    db.execute(BEFORE);
    let mode = |sql: &str| {
        block_on(async {
            let c = db.client().await;
            c.batch_execute(&format!("BEGIN; {sql}")).await.unwrap();
            let m: String = c
                .query_one(
                    "SELECT mode FROM pg_locks WHERE relation = 'public.events'::regclass AND pid = pg_backend_pid()
                     ORDER BY mode DESC LIMIT 1",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            c.batch_execute("ROLLBACK").await.unwrap();
            m
        })
    };
    assert_eq!(
        mode("CREATE TABLE public.e2 PARTITION OF public.events FOR VALUES FROM (1000000) TO (2000000)"),
        "AccessExclusiveLock"
    );
    assert_eq!(
        mode("CREATE TABLE public.e2 (id bigint NOT NULL, kind text NOT NULL, CONSTRAINT events_kind_check CHECK (kind <> ''));
              ALTER TABLE public.events ATTACH PARTITION public.e2 FOR VALUES FROM (1000000) TO (2000000)"),
        "ShareUpdateExclusiveLock"
    );
}

/// A row of the new bound sitting in the default partition: the validation of the
/// exclusion CHECK fails (23514) while writes continue, before the attach would have failed
/// the same way after scanning under ACCESS EXCLUSIVE. Nothing is attached.
#[test]
fn issue21_1_rows_of_the_new_bound_in_the_default_partition_stop_expand_before_the_attach() {
    let after = format!("{BEFORE}{ADDED}");
    let plan = plan(BEFORE, &after, "");
    let db = TestDb::new();
    db.execute(BEFORE);
    db.execute("INSERT INTO public.events VALUES (1500000, 'misplaced');");
    let err = block_on(apply(&db, &plan, Phase::Expand)).unwrap_err().to_string();
    assert!(err.contains("23514"), "{err}");
    let failed =
        plan.steps.iter().find(|s| err.contains(&format!("step {} ", s.id))).expect("names the step");
    assert!(failed.sql.contains("VALIDATE CONSTRAINT events_default_seqmig_not_bound"), "{}", failed.sql);
    block_on(async {
        let c = db.client().await;
        let attached: bool = c
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass('public.events_next'))",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(!attached);
        // What PostgreSQL says to the attach itself.
        let e = c
            .batch_execute("CREATE TABLE public.x (LIKE public.events INCLUDING ALL); ALTER TABLE public.events ATTACH PARTITION public.x FOR VALUES FROM (1000000) TO (2000000)")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(&SqlState::CHECK_VIOLATION), "{e}");
    });
}

const DETACH_BEFORE: &str = "
CREATE TABLE public.events (id bigint NOT NULL, kind text NOT NULL,
    CONSTRAINT events_pkey PRIMARY KEY (id), CONSTRAINT events_kind_check CHECK (kind <> '')
) PARTITION BY RANGE (id);
CREATE TABLE public.events_2023 PARTITION OF public.events FOR VALUES FROM (MINVALUE) TO (1000);
CREATE TABLE public.events_now PARTITION OF public.events FOR VALUES FROM (1000) TO (MAXVALUE);
CREATE INDEX events_kind_idx ON public.events (kind);
CREATE TABLE public.accounts (id bigint NOT NULL, region text NOT NULL) PARTITION BY LIST (region);
CREATE TABLE public.accounts_eu PARTITION OF public.accounts FOR VALUES IN ('eu');
CREATE TABLE public.accounts_closed PARTITION OF public.accounts FOR VALUES IN ('closed');
CREATE TABLE public.accounts_other PARTITION OF public.accounts DEFAULT;
";

/// A partition the authoritative file lacks: detached at switch, CONCURRENTLY in its own
/// non-transactional step (plainly when a default partition exists, which PostgreSQL
/// demands), with writers running; rolling switch back attaches it again with its rows; the
/// DROP is the one-way door in contract behind the gate.
#[test]
fn issue21_1_removed_partitions_are_detached_concurrently_and_dropped_behind_the_gate() {
    let after: String = DETACH_BEFORE
        .lines()
        .filter(|l| !l.contains("events_2023") && !l.contains("accounts_closed"))
        .collect::<Vec<_>>()
        .join("\n");
    let toml = "[plan]\nauthoritative_partitions = [\"public.events\", \"public.accounts\"]\nallow_one_way = [\"public.events_2023\", \"public.accounts_closed\"]\n";
    let plan = plan(DETACH_BEFORE, &after, toml);
    assert!(!plan.is_blocked(), "{:#?}", plan.findings);
    let detach = |t: &str| {
        plan.steps.iter().find(|s| s.sql.contains(&format!("DETACH PARTITION public.{t}"))).unwrap()
    };
    let (d1, d2) = (detach("events_2023"), detach("accounts_closed"));
    assert_eq!((d1.phase, d1.transactional), (Phase::Switch, false));
    assert!(d1.sql.trim_end().ends_with("CONCURRENTLY;") && d1.sql.matches(';').count() == 1, "{}", d1.sql);
    assert_eq!((d2.phase, d2.transactional), (Phase::Switch, true));
    assert!(!d2.sql.contains("CONCURRENTLY"), "{}", d2.sql);
    for t in ["events_2023", "accounts_closed"] {
        let drop = plan.steps.iter().find(|s| s.sql.starts_with(&format!("DROP TABLE public.{t}"))).unwrap();
        assert_eq!(drop.phase, Phase::Contract);
        assert!(drop.one_way && drop.rollback_sql.is_none());
        assert_eq!(drop.lock_target, format!("public.{t}"));
    }

    let db = TestDb::new();
    db.execute(DETACH_BEFORE);
    db.execute(
        "INSERT INTO public.events SELECT g, 'k' FROM generate_series(1, 2000) g;
         INSERT INTO public.accounts SELECT g, (ARRAY['eu', 'closed', 'us'])[1 + g % 3] FROM generate_series(1, 300) g;",
    );
    let before = live(&db);
    let count = |sql: &str| -> i64 {
        block_on(async { db.client().await.query_one(sql, &[]).await.unwrap().get(0) })
    };
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer_of(&db, stop.clone(), |n| {
        format!(
            "INSERT INTO public.events VALUES ({}, 'w'); INSERT INTO public.accounts VALUES ({}, 'eu'); SELECT count(*) FROM public.events;",
            100_000 + n,
            100_000 + n
        )
    });
    for phase in [Phase::Expand, Phase::DualWrite, Phase::Backfill, Phase::Switch] {
        block_on(apply(&db, &plan, phase)).unwrap();
    }
    assert_eq!(
        count("SELECT count(*) FROM public.events WHERE id < 1000"),
        0,
        "the detached rows left the parent"
    );
    assert_eq!(count("SELECT count(*) FROM public.events_2023"), 999, "and are kept in the detached table");
    block_on(rollback(&db, Phase::Switch)).unwrap();
    assert_eq!(count("SELECT count(*) FROM public.events WHERE id < 1000"), 999, "attached again");
    assert_eq!(count("SELECT count(*) FROM public.accounts WHERE region = 'closed'"), 100);
    let mut back = live(&db);
    back.tables.retain(|n, _| n.schema.as_str() != "seqmig");
    let mut before_cmp = before.clone();
    before_cmp.tables.retain(|n, _| n.schema.as_str() != "seqmig");
    assert_same(
        &normalize(back),
        &normalize(before_cmp),
        "switch rolled back: the partitions are back as they were",
    );
    block_on(apply(&db, &plan, Phase::Switch)).unwrap();
    block_on(apply(&db, &plan, Phase::Contract)).unwrap();
    stop.store(true, Ordering::SeqCst);
    assert!(w.join().unwrap() > 0);
    let reference = TestDb::new();
    reference.execute(&after);
    let mut got = live(&db);
    got.tables.retain(|n, _| n.schema.as_str() != "seqmig");
    assert_same(&normalize(got), &normalize(live(&reference)), "contracted");

    // What PostgreSQL refuses, and why the plan is shaped this way.
    let db = TestDb::new();
    db.execute(DETACH_BEFORE);
    block_on(async {
        let c = db.client().await;
        let e = c
            .batch_execute("ALTER TABLE public.accounts DETACH PARTITION public.accounts_closed CONCURRENTLY")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(&SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE), "{e}");
        assert!(
            e.to_string().contains("default partition") || format!("{e:?}").contains("default partition")
        );
        let e = c
            .batch_execute(
                "BEGIN; ALTER TABLE public.events DETACH PARTITION public.events_2023 CONCURRENTLY; COMMIT",
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(&SqlState::ACTIVE_SQL_TRANSACTION), "{e}");
    });
}

const INDEX_BEFORE: &str = "
CREATE TABLE public.events (id bigint NOT NULL, kind text NOT NULL, CONSTRAINT events_pkey PRIMARY KEY (id)) PARTITION BY RANGE (id);
CREATE TABLE public.events_p1 PARTITION OF public.events FOR VALUES FROM (MINVALUE) TO (1000);
CREATE TABLE public.events_p2 PARTITION OF public.events FOR VALUES FROM (1000) TO (2000);
CREATE TABLE public.events_p3 PARTITION OF public.events FOR VALUES FROM (2000) TO (MAXVALUE);
INSERT INTO public.events SELECT g, 'k' || (g % 7) FROM generate_series(1, 3000) g;
";

fn invalid_indexes(db: &TestDb) -> Vec<String> {
    block_on(async {
        db.client()
            .await
            .query("SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid ORDER BY 1", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    })
}

/// The index set half built: events_p1's index built (the runner aborted right after it),
/// then the runner killed while events_p2's `CREATE INDEX CONCURRENTLY` waited for an old
/// transaction, its backend terminated: events_p2's index is left INVALID.
fn half_built(db: &TestDb, plan_path: &str) {
    use crate::harness::cli::command;
    let out = command(&db.url)
        .args(["apply", "--phase", "expand", "--plan", plan_path])
        .env("SEQMIG_FAULT_AFTER_STEPS", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    block_on(async {
        let holder = db.client().await;
        holder
            .batch_execute("BEGIN; UPDATE public.events_p2 SET kind = kind WHERE id = 1500;")
            .await
            .unwrap();
        let mut child = command(&db.url)
            .args(["apply", "--phase", "expand", "--plan", plan_path])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let watcher = db.client().await;
        let t0 = std::time::Instant::now();
        let pid: i32 = loop {
            let row = watcher
                .query_opt(
                    "SELECT pid FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%events_p2%' AND state = 'active'",
                    &[],
                )
                .await
                .unwrap();
            if let Some(r) = row {
                break r.get(0);
            }
            if t0.elapsed() > std::time::Duration::from_secs(30) {
                child.kill().unwrap();
                let out = child.wait_with_output().unwrap();
                let seen: Vec<String> = watcher
                    .query("SELECT state || ': ' || query FROM pg_stat_activity WHERE backend_type = 'client backend'", &[])
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                panic!(
                    "the build of events_p2's index never started: {}\n{seen:#?}",
                    crate::harness::cli::text(&out)
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        watcher.execute("SELECT pg_terminate_backend($1)", &[&pid]).await.unwrap();
        holder.batch_execute("ROLLBACK").await.unwrap();
        // Until the terminated backend is gone, the runner's lock may still be held.
        while watcher
            .query_opt("SELECT 1 FROM pg_stat_activity WHERE pid = $1", &[&pid])
            .await
            .unwrap()
            .is_some()
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
}

/// Crash recovery of a half-built partitioned index set: after a kill during one
/// partition's concurrent build, `status` names the INVALID index and what to do; `apply`
/// drops it, builds it again, creates the parent's index and attaches every partition's;
/// `rollback` instead removes the half set, the INVALID index included.
#[test]
fn issue21_3_a_half_built_partitioned_index_set_is_explained_resumed_and_rolled_back() {
    use crate::harness::cli::{command, text, write_plan};
    let after = format!("{INDEX_BEFORE}\nCREATE INDEX events_kind_idx ON public.events (kind);");
    let plan = plan(INDEX_BEFORE, &after, "");
    let (_dir, path) = write_plan(&plan);

    let db = TestDb::new();
    db.execute(INDEX_BEFORE);
    half_built(&db, &path);
    assert_eq!(invalid_indexes(&db), ["events_p2_kind_idx"]);
    let status = text(&command(&db.url).args(["status"]).output().unwrap());
    assert!(
        status.contains(
            "index public.events_p2_kind_idx is INVALID: the build was interrupted; apply drops it and builds it again, rollback drops it"
        ),
        "{status}"
    );
    let out = command(&db.url).args(["apply", "--phase", "expand", "--plan", &path]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(invalid_indexes(&db).is_empty());
    block_on(async {
        let c = db.client().await;
        let attached: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid
                 WHERE i.inhparent = 'public.events_kind_idx'::regclass AND x.indisvalid",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(attached, 3);
    });
    assert_same(&normalize(live(&db)), &catalog_of(&after), "resumed");

    let db = TestDb::new();
    db.execute(INDEX_BEFORE);
    half_built(&db, &path);
    let out = command(&db.url).args(["rollback", "--phase", "expand"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(invalid_indexes(&db).is_empty());
    assert_same(&normalize(live(&db)), &catalog_of(INDEX_BEFORE), "rolled back");
}

const KEY_BEFORE: &str = "
CREATE TABLE public.events (id bigint NOT NULL, at integer NOT NULL, kind text) PARTITION BY RANGE (at);
CREATE TABLE public.events_a PARTITION OF public.events FOR VALUES FROM (0) TO (10);
CREATE TABLE public.events_b PARTITION OF public.events FOR VALUES FROM (10) TO (20) PARTITION BY HASH (id);
CREATE TABLE public.events_b0 PARTITION OF public.events_b FOR VALUES WITH (modulus 2, remainder 0);
CREATE TABLE public.events_b1 PARTITION OF public.events_b FOR VALUES WITH (modulus 2, remainder 1);
CREATE TABLE public.tags (id bigint NOT NULL, region text NOT NULL) PARTITION BY LIST (region);
CREATE TABLE public.tags_eu PARTITION OF public.tags FOR VALUES IN ('eu');
CREATE TABLE public.tags_other PARTITION OF public.tags DEFAULT;
";

/// A UNIQUE and a PRIMARY KEY added to existing partitioned tables (one two-level): each
/// leaf's unique index built concurrently, attached there as its constraint, then the
/// parent's constraint, which adopts them and builds nothing (DEBUG1 lists no build); with a
/// writer running. The forms PostgreSQL refuses on the parent are checked too.
#[test]
fn issue21_4_keys_on_partitioned_tables_are_built_per_partition_and_adopted_by_the_parent() {
    let after =
        KEY_BEFORE.replace("kind text)", "kind text, CONSTRAINT events_id_at_key UNIQUE (id, at))").replace(
            "region text NOT NULL)",
            "region text NOT NULL, CONSTRAINT tags_pkey PRIMARY KEY (id, region))",
        );
    let plan = plan(KEY_BEFORE, &after, "");
    assert!(!plan.is_blocked(), "{:#?}", plan.findings);
    for s in &plan.steps {
        assert!(
            !(s.sql.contains("CONCURRENTLY")
                && (s.sql.contains(" ON public.events ") || s.sql.contains(" ON public.tags "))),
            "{}",
            s.sql
        );
    }
    let seed = "INSERT INTO public.events SELECT g, g % 20, 'k' FROM generate_series(1, 2000) g;
                INSERT INTO public.tags SELECT g, (ARRAY['eu', 'us'])[1 + g % 2] FROM generate_series(1, 500) g;";

    // Step by step: the parent's ADD CONSTRAINT builds no index.
    let db = TestDb::new();
    db.execute(KEY_BEFORE);
    db.execute(seed);
    for s in &plan.steps {
        let said = debug_messages(&db, &s.sql);
        if s.sql.contains("ADD CONSTRAINT events_id_at_key UNIQUE (id, at)")
            || s.sql.contains("ADD CONSTRAINT tags_pkey PRIMARY KEY")
        {
            assert!(!said.contains("building index"), "{}:\n{said}", s.sql);
        }
    }
    assert_same(&normalize(live(&db)), &catalog_of(&after), "keys added step by step");

    // Through the executor with a writer; then every phase rolled back.
    let db = TestDb::new();
    db.execute(KEY_BEFORE);
    db.execute(seed);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer_of(&db, stop.clone(), |n| {
        format!(
            "INSERT INTO public.events VALUES ({}, {}, 'w'); INSERT INTO public.tags VALUES ({}, 'eu');",
            10_000 + n,
            n % 20,
            10_000 + n
        )
    });
    block_on(apply(&db, &plan, Phase::Expand)).unwrap();
    block_on(rollback(&db, Phase::Expand)).unwrap();
    for phase in Phase::ALL {
        block_on(apply(&db, &plan, phase)).unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    assert!(w.join().unwrap() > 0);
    let mut got = live(&db);
    got.tables.retain(|n, _| n.schema.as_str() != "seqmig");
    assert_same(&normalize(got), &catalog_of(&after), "keys added with a writer");

    // What PostgreSQL refuses on the parent.
    let db = TestDb::new();
    db.execute(KEY_BEFORE);
    block_on(async {
        let c = db.client().await;
        let e = c
            .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY k ON public.tags (id, region)")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(&SqlState::FEATURE_NOT_SUPPORTED), "{e}");
        c.batch_execute(
            "CREATE UNIQUE INDEX k ON ONLY public.tags (id, region);
             CREATE UNIQUE INDEX k_eu ON public.tags_eu (id, region); CREATE UNIQUE INDEX k_other ON public.tags_other (id, region);
             ALTER INDEX k ATTACH PARTITION k_eu; ALTER INDEX k ATTACH PARTITION k_other;",
        )
        .await
        .unwrap();
        let e = c
            .batch_execute("ALTER TABLE public.tags ADD CONSTRAINT k UNIQUE USING INDEX k")
            .await
            .unwrap_err();
        assert!(format!("{e:?}").contains("not supported on partitioned tables"), "{e:?}");
    });
}
