//! The harness itself: parallel tests get different, working databases.

use crate::harness::{TestDb, block_on};

async fn current_db(db: &TestDb) -> String {
    db.client().await.query_one("SELECT current_database()", &[]).await.unwrap().get(0)
}

#[test]
fn parallel_tests_get_different_databases_a() {
    let db = TestDb::new();
    db.execute("CREATE TABLE marker (x int); INSERT INTO marker VALUES (1)");
    assert_eq!(block_on(current_db(&db)), db.name);
}

#[test]
fn parallel_tests_get_different_databases_b() {
    let db = TestDb::new();
    // The table created by the sibling test is not visible here.
    let n: i64 = block_on(async {
        db.client()
            .await
            .query_one("SELECT count(*) FROM pg_class WHERE relname = 'marker'", &[])
            .await
            .unwrap()
            .get(0)
    });
    assert_eq!(n, 0);
    assert_eq!(block_on(current_db(&db)), db.name);
}

/// Set in the child process of `cluster_is_removed_when_its_owner_is_killed`.
const CHILD_ENV: &str = "SEQMIG_HARNESS_CLUSTER_CHILD";

/// Runs only as the child of the test below: starts a cluster, says where, then waits to be
/// killed. In a normal run it does nothing.
#[test]
fn cluster_owner_child() {
    let Ok(report) = std::env::var(CHILD_ENV) else { return };
    let cluster = seqmig::scratch::local::TempCluster::start(&[]).expect("start a cluster");
    std::fs::write(&report, cluster.dir().to_string_lossy().as_bytes()).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(120));
}

#[test]
fn cluster_is_removed_when_its_owner_is_killed() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let report = std::env::temp_dir().join(format!("seqmig-harness-child-{}", std::process::id()));
    let _ = std::fs::remove_file(&report);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "harness_tests::cluster_owner_child", "--test-threads=1"])
        .env(CHILD_ENV, &report)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let dir = loop {
        if let Ok(d) = std::fs::read_to_string(&report) {
            if !d.is_empty() {
                break d;
            }
        }
        assert!(Instant::now() < deadline, "the child never reported its cluster");
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = std::fs::remove_file(&report);
    let running =
        || Command::new("pgrep").args(["-f", &format!("{dir}/data")]).output().unwrap().status.success();
    assert!(running(), "the child's postgres for {dir} should be running before the kill");

    child.kill().unwrap(); // SIGKILL: no destructor, no panic hook runs in the child.
    child.wait().unwrap();

    let deadline = Instant::now() + Duration::from_secs(15);
    while running() || std::path::Path::new(&dir).exists() {
        assert!(Instant::now() < deadline, "postgres of {dir} (or its directory) outlived its owner by 15 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}
