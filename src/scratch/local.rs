//! A throwaway PostgreSQL cluster started from the local server binaries, for tests,
//! benchmarks and `seqmig rehearse`. The server runs under a small supervisor shell that
//! holds a pipe from this process: when this process ends for any reason (normal exit,
//! panic, SIGKILL) the pipe closes, and the supervisor stops the server and deletes the
//! data directory. No stray `postgres` processes are left behind.
//!
//! As root, PostgreSQL refuses to start, so the binaries run as the `postgres` user.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// Why a cluster could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    #[error(
        "no PostgreSQL server binaries found (looked for initdb on PATH and under \
         /usr/lib/postgresql/*/bin); install the server package (apt-get install postgresql) \
         or set SEQMIG_TEST_DATABASE_URL to a server you own"
    )]
    NoBinaries,
    #[error(
        "running as root and no 'postgres' user exists to run the server as; create one (useradd postgres)"
    )]
    NoPostgresUser,
    #[error("failed to {action}: {source}")]
    Io { action: String, source: std::io::Error },
    #[error("initdb failed: {0}")]
    Initdb(String),
    #[error("the server did not start within 30 s; its log:\n{0}")]
    StartTimeout(String),
}

/// A running throwaway cluster. Dropping it stops the server and deletes its directory.
#[derive(Debug)]
pub struct TempCluster {
    port: u16,
    dir: PathBuf,
    supervisor: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<BufReader<ChildStdout>>,
    /// How many times the server has started (restarts append to the same log).
    starts: usize,
}

impl TempCluster {
    /// Starts a new cluster on a free port, with `settings` added to postgresql.conf
    /// (e.g. `shared_preload_libraries = 'pg_stat_statements'`).
    pub fn start(settings: &[&str]) -> Result<TempCluster, ClusterError> {
        let bindir = find_bindir().ok_or(ClusterError::NoBinaries)?;
        let as_root = is_root();
        if as_root && !user_exists("postgres") {
            return Err(ClusterError::NoPostgresUser);
        }
        let dir = make_dir()?;
        if as_root {
            run(Command::new("chown").args(["-R", "postgres:"]).arg(&dir), "chown the cluster directory")?;
        }
        let data = dir.join("data");
        let initdb = as_user(
            as_root,
            &[
                &bindir.join("initdb").to_string_lossy(),
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )
        .output()
        .map_err(|source| ClusterError::Io { action: "run initdb".into(), source })?;
        if !initdb.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(ClusterError::Initdb(String::from_utf8_lossy(&initdb.stderr).into_owned()));
        }
        let port = free_port()?;
        let mut conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n\
             wal_level = replica\nmax_wal_senders = 2\n",
            dir.display()
        );
        for s in settings {
            conf.push_str(s);
            conf.push('\n');
        }
        append(&data.join("postgresql.conf"), &conf)?;

        // The supervisor: start postgres, wait until stdin closes, then stop it and clean up.
        // A `restart` line on stdin stops the server the way a crash does (immediate
        // shutdown, so startup runs crash recovery) and starts it again.
        let log = dir.join("server.log");
        let script = format!(
            "start() {{ '{bin}' -D '{data}' >>'{log}' 2>&1 & pid=$!; }}; start; echo started; \
             while read -r cmd; do \
               if [ \"$cmd\" = restart ]; then kill -QUIT $pid 2>/dev/null; wait $pid 2>/dev/null; \
                 start; echo restarted; fi; \
             done; \
             kill -INT $pid 2>/dev/null; \
             for i in $(seq 1 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done; \
             kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf '{dir}'",
            bin = bindir.join("postgres").display(),
            data = data.display(),
            log = log.display(),
            dir = dir.display(),
        );
        let mut supervisor = as_user(as_root, &["sh", "-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| ClusterError::Io { action: "start the server".into(), source })?;
        let stdin = supervisor.stdin.take();
        let mut stdout = supervisor.stdout.take().map(BufReader::new);
        if let Some(out) = stdout.as_mut() {
            let mut line = String::new();
            let _ = out.read_line(&mut line);
        }
        let cluster = TempCluster { port, dir, supervisor, stdin, stdout, starts: 1 };
        cluster.wait_ready(&log)?;
        Ok(cluster)
    }

    /// Crashes the server (immediate shutdown: open sessions are cut, nothing is
    /// checkpointed) and starts it again on the same port; returns once it accepts
    /// connections after crash recovery.
    pub fn restart(&mut self) -> Result<(), ClusterError> {
        let io = |source| ClusterError::Io { action: "restart the server".into(), source };
        let stdin = self.stdin.as_mut().ok_or_else(|| io(std::io::Error::other("supervisor is gone")))?;
        stdin.write_all(b"restart\n").and_then(|()| stdin.flush()).map_err(io)?;
        if let Some(out) = self.stdout.as_mut() {
            let mut line = String::new();
            out.read_line(&mut line).map_err(io)?;
        }
        self.starts += 1;
        self.wait_ready(&self.dir.join("server.log"))
    }

    fn wait_ready(&self, log: &Path) -> Result<(), ClusterError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && std::fs::read_to_string(log)
                    .is_ok_and(|l| l.matches("ready to accept connections").count() >= self.starts)
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(ClusterError::StartTimeout(std::fs::read_to_string(log).unwrap_or_default()))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory's parent (holds `data/`, `server.log` and the socket).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A URL for `database` as the superuser `postgres` (trust authentication on 127.0.0.1).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{}", self.port, database)
    }

    /// Stops the server and removes its directory now, waiting for both.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        // Closing the pipe tells the supervisor to stop the server and delete the directory.
        drop(self.stdin.take());
        let _ = self.supervisor.wait();
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`: `pg_config --bindir`, then PATH,
/// then the newest `/usr/lib/postgresql/*/bin`.
pub fn find_bindir() -> Option<PathBuf> {
    let has_server = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_server(&d) {
            return Some(d);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            if has_server(&d) {
                // Resolve symlinks such as /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin.
                let real = std::fs::canonicalize(d.join("initdb")).ok()?;
                return real.parent().map(Path::to_path_buf);
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| has_server(d))
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn user_exists(name: &str) -> bool {
    Command::new("id").arg(name).output().is_ok_and(|o| o.status.success())
}

fn as_user(as_root: bool, argv: &[&str]) -> Command {
    if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).args(argv);
        c
    } else {
        let mut c = Command::new(argv[0]);
        c.args(&argv[1..]);
        c
    }
}

fn make_dir() -> Result<PathBuf, ClusterError> {
    let base = std::env::temp_dir();
    for attempt in 0..100u32 {
        let dir = base.join(format!("seqmig-pg-{}-{attempt}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(ClusterError::Io { action: format!("create {}", dir.display()), source });
            }
        }
    }
    Err(ClusterError::Io {
        action: "create a cluster directory".into(),
        source: std::io::Error::other("100 candidates already exist"),
    })
}

fn free_port() -> Result<u16, ClusterError> {
    let l = TcpListener::bind(("127.0.0.1", 0))
        .map_err(|source| ClusterError::Io { action: "find a free port".into(), source })?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|source| ClusterError::Io { action: "find a free port".into(), source })
}

fn append(path: &Path, text: &str) -> Result<(), ClusterError> {
    let io = |source| ClusterError::Io { action: format!("write {}", path.display()), source };
    let mut f = std::fs::OpenOptions::new().append(true).open(path).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)
}

fn run(cmd: &mut Command, action: &str) -> Result<(), ClusterError> {
    let status = cmd.status().map_err(|source| ClusterError::Io { action: action.into(), source })?;
    if status.success() {
        Ok(())
    } else {
        Err(ClusterError::Io {
            action: action.into(),
            source: std::io::Error::other(format!("exit {status}")),
        })
    }
}
