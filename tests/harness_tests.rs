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
