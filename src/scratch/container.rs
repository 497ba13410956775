//! PostgreSQL in a container, started through testcontainers: `seqmig rehearse --image`,
//! `seqmig replay --image` and the test harness with `SEQMIG_TEST_PG=container`.
//!
//! The container shares the host's network (`--network host`) and the server listens on
//! 127.0.0.1 at a free port chosen here, so traffic stays on the loopback and no port has
//! to be published. Two kinds of image work unchanged:
//!
//! - the official `postgres:NN` images: `POSTGRES_HOST_AUTH_METHOD=trust` lets the
//!   superuser `postgres` in without a password, and the command `postgres -c …` reaches the
//!   server through their entrypoint;
//! - the image `.ci/docker-image.sh` builds from Debian packages (`seqmig/postgres:15`),
//!   whose entrypoint follows the same conventions.
//!
//! The container is removed when the [`ContainerServer`] is dropped. If this process dies
//! first (SIGKILL included), a small reaper shell that holds a pipe from it sees the pipe
//! close and removes the container, as the local cluster's supervisor does.

use std::io::Write as _;
use std::net::TcpListener;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use testcontainers::clients::Cli;
use testcontainers::{Container, GenericImage, RunnableImage};

/// How long the server may take to accept queries once the container runs (the official
/// images run initdb first).
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// Why a container could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    #[error(
        "no Docker engine answers ({0}); install Docker and start it (`dockerd`, or Docker \
         Desktop) so that `docker version` shows a server"
    )]
    NoDocker(String),
    #[error("image '{image}' is not here and could not be pulled: {detail}")]
    Image { image: String, detail: String },
    #[error("failed to start a container from '{image}': {detail}")]
    Start { image: String, detail: String },
    #[error(
        "PostgreSQL in container {name} ({image}) did not accept queries within {secs} s; its log:\n{log}"
    )]
    NotReady { name: String, image: String, secs: u64, log: String },
    #[error("failed to {action}: {source}")]
    Io { action: String, source: std::io::Error },
}

/// A PostgreSQL server running in a container. Dropping it removes the container.
pub struct ContainerServer {
    // Declared first so it is dropped (the container removed) before the reaper lets go.
    container: Option<Container<'static, GenericImage>>,
    name: String,
    image: String,
    port: u16,
    reaper: Child,
    reaper_stdin: Option<ChildStdin>,
}

impl std::fmt::Debug for ContainerServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerServer")
            .field("name", &self.name)
            .field("image", &self.image)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// The testcontainers client: it drives the `docker` CLI, which negotiates the API version
/// with whichever engine it finds.
fn docker() -> &'static Cli {
    static DOCKER: OnceLock<Cli> = OnceLock::new();
    DOCKER.get_or_init(Cli::default)
}

impl ContainerServer {
    /// Starts PostgreSQL from `image` (`postgres:17`, `seqmig/postgres:15`, …) on a free
    /// port of 127.0.0.1 and waits until it accepts queries. `settings` are postgresql.conf
    /// lines (`name = 'value'`), passed to the server as `-c name=value`. A missing image is
    /// pulled first.
    pub fn start(image: &str, settings: &[&str]) -> Result<ContainerServer, ContainerError> {
        check_engine()?;
        ensure_image(image)?;
        let port = free_port()?;
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("seqmig-pg-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let (repo, tag) = split_image(image);
        let generic = GenericImage::new(repo, tag)
            .with_env_var("POSTGRES_HOST_AUTH_METHOD", "trust")
            .with_env_var("POSTGRES_INITDB_ARGS", "--encoding=UTF8 --locale=C --no-sync")
            .with_env_var("PGPORT", port.to_string());
        let runnable: RunnableImage<GenericImage> =
            RunnableImage::from((generic, server_args(port, settings)))
                .with_network("host")
                .with_container_name(&name);

        // The reaper first: from the moment the container exists, this process dying removes it.
        let (reaper, reaper_stdin) = spawn_reaper(&name)?;
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| docker().run(runnable)));
        let mut server = ContainerServer {
            container: None,
            name,
            image: image.to_string(),
            port,
            reaper,
            reaper_stdin: Some(reaper_stdin),
        };
        match started {
            Ok(container) => server.container = Some(container),
            Err(panic) => {
                let detail = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "docker run failed".into());
                return Err(ContainerError::Start { image: image.to_string(), detail });
            }
        }
        server.wait_ready()?;
        Ok(server)
    }

    /// Polls until a query succeeds; fails early when the container exits.
    fn wait_ready(&self) -> Result<(), ContainerError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = self.url("postgres");
        loop {
            // The official images run a temporary server for initdb that listens on no TCP
            // port, so a connection that answers a query is the real server.
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() && answers_query(&url) {
                return Ok(());
            }
            if Instant::now() >= deadline || !self.running() {
                return Err(ContainerError::NotReady {
                    name: self.name.clone(),
                    image: self.image.clone(),
                    secs: READY_TIMEOUT.as_secs(),
                    log: self.log(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn running(&self) -> bool {
        Command::new("docker")
            .args(["inspect", "-f", "{{.State.Running}}", &self.name])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "true")
    }

    /// The container's output so far (the server logs to stderr).
    pub fn log(&self) -> String {
        Command::new("docker")
            .args(["logs", &self.name])
            .output()
            .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
            .unwrap_or_default()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The container's name (`seqmig-pg-<pid>-<n>`), for `docker ps` and `docker logs`.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn image(&self) -> &str {
        &self.image
    }

    /// A URL for `database` as the superuser `postgres` (trust authentication on 127.0.0.1).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{}", self.port, database)
    }

    /// Runs `argv` inside the container as `postgres` (e.g. to edit `pg_hba.conf`).
    pub fn exec(&self, argv: &[&str]) -> Result<std::process::Output, ContainerError> {
        Command::new("docker")
            .args(["exec", "-u", "postgres", &self.name])
            .args(argv)
            .output()
            .map_err(|source| ContainerError::Io { action: "run docker exec".into(), source })
    }

    /// Removes the container now, waiting for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        // testcontainers removes the container (`docker rm -f -v`) when it is dropped.
        drop(self.container.take());
        // Then the reaper's pipe closes; it finds nothing left to remove.
        drop(self.reaper_stdin.take());
        let _ = self.reaper.wait();
    }
}

impl Drop for ContainerServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// `docker version` reaches a server.
fn check_engine() -> Result<(), ContainerError> {
    let out = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .map_err(|e| ContainerError::NoDocker(format!("cannot run the docker CLI: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ContainerError::NoDocker(String::from_utf8_lossy(&out.stderr).trim().to_string()))
    }
}

/// The image is here, or is pulled now (so a registry error is reported as one).
fn ensure_image(image: &str) -> Result<(), ContainerError> {
    let here = Command::new("docker")
        .args(["image", "inspect", image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if here {
        return Ok(());
    }
    let out = Command::new("docker")
        .args(["pull", "--quiet", image])
        .output()
        .map_err(|source| ContainerError::Io { action: "run docker pull".into(), source })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ContainerError::Image {
            image: image.to_string(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// `postgres -c listen_addresses=127.0.0.1 -c port=N …`: the command both kinds of image
/// hand to the server.
fn server_args(port: u16, settings: &[&str]) -> Vec<String> {
    let mut args = vec!["postgres".to_string()];
    let mut set = |name: &str, value: &str| {
        args.push("-c".into());
        args.push(format!("{name}={value}"));
    };
    set("listen_addresses", "127.0.0.1");
    set("port", &port.to_string());
    // As the local cluster: a scratch server trades durability for speed.
    for (name, value) in [
        ("fsync", "off"),
        ("synchronous_commit", "off"),
        ("full_page_writes", "off"),
        ("max_connections", "200"),
    ] {
        set(name, value);
    }
    for line in settings {
        if let Some((name, value)) = line.split_once('=') {
            let value = value.trim();
            let value = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).unwrap_or(value);
            set(name.trim(), value);
        }
    }
    args
}

/// `postgres:17` → (`postgres`, `17`); `registry:5000/pg` → (`registry:5000/pg`, `latest`).
fn split_image(image: &str) -> (String, String) {
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(i) => (image[..last_slash + i].to_string(), image[last_slash + i + 1..].to_string()),
        None => (image.to_string(), "latest".to_string()),
    }
}

/// A shell that waits for its stdin to close (this process ending, however it ends), then
/// removes the container. It ignores the terminal's Ctrl-C, which would otherwise reach it
/// together with this process and end it before it could clean up.
fn spawn_reaper(name: &str) -> Result<(Child, ChildStdin), ContainerError> {
    let script = format!("trap '' INT TERM HUP; read -r _; docker rm -f -v '{name}' >/dev/null 2>&1; exit 0");
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| ContainerError::Io { action: "start the container reaper".into(), source })?;
    let mut stdin = child.stdin.take().ok_or_else(|| ContainerError::Io {
        action: "start the container reaper".into(),
        source: std::io::Error::other("no stdin"),
    })?;
    // Nothing is written until the end; a flush proves the pipe is open.
    stdin
        .flush()
        .map_err(|source| ContainerError::Io { action: "start the container reaper".into(), source })?;
    Ok((child, stdin))
}

/// One connection and `SELECT 1`, on a thread of its own so that this works from inside
/// an async runtime too.
fn answers_query(url: &str) -> bool {
    let url = url.to_string();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return false;
        };
        rt.block_on(async {
            let connect = tokio_postgres::connect(&url, tokio_postgres::NoTls);
            let Ok(Ok((client, conn))) = tokio::time::timeout(Duration::from_secs(5), connect).await else {
                return false;
            };
            let conn = tokio::spawn(conn);
            let ok = client.simple_query("SELECT 1").await.is_ok();
            drop(client);
            let _ = conn.await;
            ok
        })
    })
    .join()
    .unwrap_or(false)
}

fn free_port() -> Result<u16, ContainerError> {
    let io = |source| ContainerError::Io { action: "find a free port".into(), source };
    let l = TcpListener::bind(("127.0.0.1", 0)).map_err(io)?;
    l.local_addr().map(|a| a.port()).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_split_into_repository_and_tag() {
        assert_eq!(split_image("postgres:17"), ("postgres".into(), "17".into()));
        assert_eq!(split_image("seqmig/postgres:15"), ("seqmig/postgres".into(), "15".into()));
        assert_eq!(split_image("postgres"), ("postgres".into(), "latest".into()));
        assert_eq!(split_image("registry:5000/pg"), ("registry:5000/pg".into(), "latest".into()));
        assert_eq!(split_image("registry:5000/pg:16"), ("registry:5000/pg".into(), "16".into()));
    }

    #[test]
    fn settings_become_server_options() {
        let args = server_args(5433, &["shared_preload_libraries = 'pg_stat_statements'", "ssl = on"]);
        assert_eq!(args[0], "postgres");
        assert!(args.windows(2).any(|w| w == ["-c", "port=5433"]));
        assert!(args.windows(2).any(|w| w == ["-c", "shared_preload_libraries=pg_stat_statements"]));
        assert!(args.windows(2).any(|w| w == ["-c", "ssl=on"]));
    }
}
