//! The privilege model (issue 18.4, book/src/privileges.md) with three separate roles: the
//! owner of the application's tables, the migrator that runs `seqmig apply` (a member of the
//! owner, not a superuser) and so owns schema `seqmig`, and the application, which has DML on
//! its table and nothing else.

use seqmig::plan::Phase;

use crate::exec_examples_tests::{apply_url, plan_of, read};
use crate::harness::{TestDb, block_on};

/// Role names are cluster-wide and tests run in parallel: each test's roles carry its
/// database's name.
struct Roles {
    owner: String,
    migrator: String,
    app: String,
}

fn roles(db: &TestDb) -> Roles {
    let r = Roles {
        owner: format!("{}_owner", db.name),
        migrator: format!("{}_migrator", db.name),
        app: format!("{}_app", db.name),
    };
    db.execute(&format!(
        "CREATE ROLE {owner} NOLOGIN;
         CREATE ROLE {migrator} NOSUPERUSER IN ROLE {owner};
         CREATE ROLE {app} NOSUPERUSER;
         GRANT CREATE ON DATABASE {db} TO {migrator};
         GRANT CREATE ON SCHEMA public TO {owner};",
        owner = r.owner,
        migrator = r.migrator,
        app = r.app,
        db = db.name,
    ));
    db.allow_login(&r.migrator);
    db.allow_login(&r.app);
    r
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// Writes both shapes of `users` (07-rename-column: `name` → `full_name`) with values that
/// disagree, which is when the dual-write trigger asks `seqmig.flag` who is authoritative.
async fn write_both_shapes(app: &tokio_postgres::Client, tag: &str) -> Result<(String, String), String> {
    let describe = |e: tokio_postgres::Error| match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    };
    let row = app
        .query_one(
            "INSERT INTO public.users (name, full_name, email) VALUES ($1, $2, 'x') RETURNING id",
            &[&format!("old-{tag}"), &format!("new-{tag}")],
        )
        .await
        .map_err(describe)?;
    let id: i64 = row.get(0);
    app.execute(
        "UPDATE public.users SET name = $2, full_name = $3 WHERE id = $1",
        &[&id, &format!("old2-{tag}"), &format!("new2-{tag}")],
    )
    .await
    .map_err(describe)?;
    let row = app
        .query_one("SELECT name, full_name FROM public.users WHERE id = $1", &[&id])
        .await
        .map_err(describe)?;
    Ok((row.get(0), row.get(1)))
}

#[test]
fn issue18_4_app_role_with_dml_only_writes_through_dual_write_triggers() {
    let db = TestDb::new();
    let r = roles(&db);
    db.execute(&format!("SET ROLE {}; {}", r.owner, read("07-rename-column", "before.sql")));
    db.execute(&format!("GRANT SELECT, INSERT, UPDATE, DELETE ON public.users TO {app};", app = r.app));
    let plan = plan_of("07-rename-column");
    let migrator_url = db.url_as(&r.migrator);
    block_on(async {
        let app = connect(&db.url_as(&r.app)).await;
        for phase in [Phase::Expand, Phase::DualWrite, Phase::Backfill, Phase::Switch] {
            apply_url(&migrator_url, &plan, phase)
                .await
                .unwrap_or_else(|e| panic!("the migrator cannot apply {phase}: {e}"));
            if phase == Phase::Expand {
                continue; // no trigger yet: full_name is a plain nullable column
            }
            let (old, new) = write_both_shapes(&app, phase.as_str())
                .await
                .unwrap_or_else(|e| panic!("the application cannot write both shapes at {phase}: {e}"));
            // Before switch the old shape is authoritative and the new follows it; after, the
            // other way round.
            if phase == Phase::Switch {
                assert_eq!((old.as_str(), new.as_str()), ("new2-switch", "new2-switch"));
            } else {
                let want = format!("old2-{phase}");
                assert_eq!((old.as_str(), new.as_str()), (want.as_str(), want.as_str()), "{phase}");
            }
        }

        // The application sees the flag through the function, and nothing else of the ledger.
        let flag: String =
            app.query_one("SELECT seqmig.flag($1)", &[&plan.changes[0].object]).await.unwrap().get(0);
        assert_eq!(flag, "new");
        for sql in [
            "SELECT count(*) FROM seqmig.flags",
            "SELECT count(*) FROM seqmig.plans",
            "SELECT count(*) FROM seqmig.audit_log",
            "UPDATE seqmig.flags SET authority = 'old'",
            "SELECT seqmig.audit_log_append_only()",
        ] {
            let e = app.batch_execute(sql).await.expect_err(sql);
            assert_eq!(
                e.code(),
                Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
                "{sql}: {e}"
            );
        }
        let owner_of_ledger: String = app
            .query_one("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'seqmig'", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(owner_of_ledger, r.migrator);

        // The migrator finishes the lifecycle with nothing more than membership in the owner.
        apply_url(&migrator_url, &plan, Phase::Contract)
            .await
            .unwrap_or_else(|e| panic!("the migrator cannot apply contract: {e}"));
        app.execute("INSERT INTO public.users (full_name) VALUES ('after contract')", &[]).await.unwrap();
    });
}
