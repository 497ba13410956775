//! The real-PostgreSQL harness shared by every integration test (DESIGN.md §7):
//! `SEQMIG_TEST_DATABASE_URL` when set; otherwise one throwaway server per test binary, with
//! a fresh database per test so tests run in parallel. The server is a cluster from the local
//! server binaries (`seqmig::scratch::local`), or PostgreSQL in a container started through
//! testcontainers (`seqmig::scratch::container`) when `SEQMIG_TEST_PG=container` or when no
//! local binaries exist. `SEQMIG_TEST_IMAGE` names the image (default `seqmig/postgres:15`,
//! which `.ci/docker-image.sh` builds). When nothing can be started the test fails and says
//! how to get a server.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use seqmig::scratch::{ContainerServer, TempCluster};

pub mod cli;

#[path = "../common/corpus.rs"]
mod corpus;
pub use corpus::corpus_dir;

enum Server {
    External(String),
    Local(TempCluster),
    Container(Box<ContainerServer>),
}

static SERVER: OnceLock<Server> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The image of container mode.
pub fn test_image() -> String {
    std::env::var("SEQMIG_TEST_IMAGE").ok().filter(|i| !i.is_empty()).unwrap_or("seqmig/postgres:15".into())
}

const SETTINGS: &[&str] = &[
    "shared_preload_libraries = 'pg_stat_statements'",
    // The corpus, dump and replay tests load thousands of distinct statements into the
    // shared cluster; at the default 5000 entries pg_stat_statements evicts the gate
    // tests' counters, and old_path_silent rightly fails closed on calls going down.
    "pg_stat_statements.max = 100000",
];

const HOW: &str = "either install the server binaries (apt-get install postgresql; initdb and \
     pg_ctl are found on PATH or under /usr/lib/postgresql/*/bin), or start Docker and build \
     the test image (.ci/docker-image.sh), or set SEQMIG_TEST_DATABASE_URL=postgres://user:pass@host/db \
     to a server you own";

// It names the container it starts on stderr.
#[allow(clippy::print_stderr)]
fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var("SEQMIG_TEST_DATABASE_URL")
            && !url.is_empty()
        {
            return Server::External(url);
        }
        let mode = std::env::var("SEQMIG_TEST_PG").unwrap_or_default();
        let container =
            mode == "container" || (mode != "local" && seqmig::scratch::local::find_bindir().is_none());
        if container {
            let image = test_image();
            match ContainerServer::start(&image, SETTINGS) {
                Ok(c) => {
                    // Which container, for `docker logs` (and issue23_4, which checks it is removed).
                    eprintln!(
                        "harness: PostgreSQL from {image} in container {} on port {}",
                        c.name(),
                        c.port()
                    );
                    Server::Container(Box::new(c))
                }
                Err(e) => panic!("these tests need a real PostgreSQL and none could be started: {e}\n{HOW}"),
            }
        } else {
            match TempCluster::start(SETTINGS) {
                Ok(c) => Server::Local(c),
                Err(e) => panic!("these tests need a real PostgreSQL and none could be started: {e}\n{HOW}"),
            }
        }
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
            Server::Container(c) => (c.url("postgres"), c.url(&name)),
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
    /// passwords already. In a container, the file is edited there.
    pub fn require_password(&self, role: &str, password: &str) {
        self.execute(&format!(
            "SET password_encryption = 'scram-sha-256'; CREATE ROLE {role} LOGIN PASSWORD '{password}'"
        ));
        if let Some(Server::Local(_) | Server::Container(_)) = SERVER.get() {
            block_on(async {
                let client = connect(&self.admin_url).await;
                let hba: String = client.query_one("SHOW hba_file", &[]).await.unwrap().get(0);
                let line = format!("host all {role} 127.0.0.1/32 scram-sha-256");
                match SERVER.get() {
                    Some(Server::Container(c)) => {
                        let script = format!(
                            "{{ echo '{line}'; cat '{hba}'; }} > '{hba}.new' && mv '{hba}.new' '{hba}'"
                        );
                        let out = c.exec(&["sh", "-c", &script]).expect("edit pg_hba.conf in the container");
                        assert!(
                            out.status.success(),
                            "edit pg_hba.conf: {}",
                            String::from_utf8_lossy(&out.stderr)
                        );
                    }
                    _ => {
                        let old = std::fs::read_to_string(&hba).expect("read pg_hba.conf");
                        std::fs::write(&hba, format!("{line}\n{old}")).expect("write pg_hba.conf");
                    }
                }
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
        // Only an external server keeps databases; a local cluster or container is deleted whole.
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

pub async fn connect(url: &str) -> tokio_postgres::Client {
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
