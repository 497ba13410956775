//! The real-PostgreSQL harness shared by every integration test (DESIGN.md §7):
//! `SEQMIG_TEST_DATABASE_URL` when set; otherwise one throwaway cluster per test binary from
//! the local server binaries (see `seqmig::cluster`), with a fresh database per test so tests
//! run in parallel. When neither is available the test fails and says how to get a server
//! (there is no testcontainers fallback: see `server()`).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use seqmig::cluster::TempCluster;

pub mod cli;

#[path = "../common/corpus.rs"]
mod corpus;
pub use corpus::corpus_dir;

enum Server {
    External(String),
    Local(TempCluster),
}

static SERVER: OnceLock<Server> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn server() -> &'static Server {
    SERVER.get_or_init(|| match std::env::var("SEQMIG_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Server::External(url),
        _ => match TempCluster::start(&[
            "shared_preload_libraries = 'pg_stat_statements'",
            // The corpus, dump and replay tests load thousands of distinct statements into the
            // shared cluster; at the default 5000 entries pg_stat_statements evicts the gate
            // tests' counters, and old_path_silent rightly fails closed on calls going down.
            "pg_stat_statements.max = 100000",
        ]) {
            Ok(c) => Server::Local(c),
            // No testcontainers fallback: no machine this project runs on has a Docker
            // engine, and an untestable path would only add a large dependency tree.
            Err(e) => panic!(
                "these tests need a real PostgreSQL and none could be started: {e}\n\
                 either install the server binaries (apt-get install postgresql; initdb and \
                 pg_ctl are found on PATH or under /usr/lib/postgresql/*/bin), or set \
                 SEQMIG_TEST_DATABASE_URL=postgres://user:pass@host/db to a server you own \
                 (e.g. docker run -e POSTGRES_PASSWORD=pw -p 5432:5432 postgres:15)"
            ),
        },
    })
}

/// A fresh, empty database for one test.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    pub name: String,
    admin_url: String,
}

impl TestDb {
    pub fn new() -> TestDb {
        TestDb::create("")
    }

    /// A new database copied from this one (`CREATE DATABASE … TEMPLATE`): the same schema
    /// and rows without loading and seeding again. Nobody may be connected to this one.
    pub fn copy(&self) -> TestDb {
        TestDb::create(&format!(" TEMPLATE {}", self.name))
    }

    fn create(options: &str) -> TestDb {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("seqmig_test_{}_{n}", std::process::id());
        let (admin_url, url) = match server() {
            Server::External(u) => (u.clone(), replace_db(u, &name)),
            Server::Local(c) => (c.url("postgres"), c.url(&name)),
        };
        block_on(async {
            let client = connect(&admin_url).await;
            client
                .batch_execute(&format!("CREATE DATABASE {name}{options}"))
                .await
                .unwrap_or_else(|e| panic!("create test database: {}", describe(&e)));
        });
        TestDb { url, name, admin_url }
    }

    /// Runs SQL in this database.
    pub fn execute(&self, sql: &str) {
        block_on(async {
            let client = connect(&self.url).await;
            if let Err(e) = client.batch_execute(sql).await {
                panic!("{}", describe(&e));
            }
        })
    }

    /// Creates a login role that must authenticate with `password` (scram-sha-256). On the
    /// local cluster, which trusts everyone, a `pg_hba.conf` line for this role alone is put
    /// first and the configuration reloaded; an external server is expected to ask for
    /// passwords already.
    pub fn require_password(&self, role: &str, password: &str) {
        self.execute(&format!(
            "SET password_encryption = 'scram-sha-256'; CREATE ROLE {role} LOGIN PASSWORD '{password}'"
        ));
        if let Some(Server::Local(_)) = SERVER.get() {
            block_on(async {
                let client = connect(&self.admin_url).await;
                let hba: String = client.query_one("SHOW hba_file", &[]).await.unwrap().get(0);
                let old = std::fs::read_to_string(&hba).expect("read pg_hba.conf");
                let line = format!("host all {role} 127.0.0.1/32 scram-sha-256\n");
                std::fs::write(&hba, format!("{line}{old}")).expect("write pg_hba.conf");
                client.batch_execute("SELECT pg_reload_conf()").await.unwrap();
            });
            // The reload is asynchronous: wait until a wrong password is refused.
            let wrong = self.url.replacen("postgres@", &format!("{role}:not-{password}@"), 1);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while block_on(async { tokio_postgres::connect(&wrong, tokio_postgres::NoTls).await.is_ok() }) {
                assert!(std::time::Instant::now() < deadline, "pg_hba.conf reload did not take effect");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }

    /// Lets `role` log in: with trust on the local cluster, with the password `<role>-pw` on
    /// an external server.
    pub fn allow_login(&self, role: &str) {
        self.execute(&format!("ALTER ROLE {role} LOGIN PASSWORD '{role}-pw'"));
    }

    /// This database's URL as `role` (with the password [`TestDb::allow_login`] gives it).
    pub fn url_as(&self, role: &str) -> String {
        let (scheme, rest) = self.url.split_once("://").unwrap();
        let host = rest.split_once('@').map(|(_, h)| h).unwrap_or(rest);
        format!("{scheme}://{role}:{role}-pw@{host}")
    }

    /// A connected client, for async tests.
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Only an external server keeps databases; a local cluster is deleted whole.
        if let Some(Server::External(_)) = SERVER.get() {
            let (admin, name) = (self.admin_url.clone(), self.name.clone());
            block_on(async move {
                let client = connect(&admin).await;
                let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
            });
        }
    }
}

fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => e.to_string(),
    }
}

fn replace_db(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').map(|(b, q)| (b, Some(q))).unwrap_or((url, None));
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test server: {e}"));
    tokio::spawn(conn);
    client
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// Commits the open transaction of `holder` after `ms` milliseconds, in the background: how a
/// test releases a lock it holds while the code under test waits for it.
pub fn commit_after(holder: tokio_postgres::Client, ms: u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        holder.batch_execute("COMMIT").await.unwrap();
    })
}
