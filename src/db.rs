//! Connections to a live PostgreSQL: where to connect (a `postgres://` URL, else
//! `DATABASE_URL`, else the libpq variables `PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`,
//! `PGPASSWORD`, `PGSSLMODE`, `PGSSLROOTCERT`), TLS for `sslmode=require` / `verify-ca` /
//! `verify-full`, and errors that say which server refused and why. `introspect`, `exec` and
//! the CLI get their clients here; nothing else opens connections.
//!
//! A password never appears in a message: every target shown to a user is built from host,
//! port, database and user only, and [`redact_url`] hides the password in a URL.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::Host;

/// How hard to insist on TLS, with libpq's meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS when the server offers it, without checking the certificate (libpq's default).
    #[default]
    Prefer,
    /// TLS or fail; the certificate is not checked (as libpq does without a root certificate).
    Require,
    /// TLS, and the certificate must chain to a trusted root (the system store or `sslrootcert`).
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" | "allow" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where and how to connect, resolved from a URL or the environment.
#[derive(Clone)]
pub struct ConnectOptions {
    config: tokio_postgres::Config,
    ssl: SslMode,
    root_cert: Option<PathBuf>,
}

impl fmt::Debug for ConnectOptions {
    // Hand-written so that a password can never reach a log through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("target", &self.target())
            .field("ssl", &self.ssl)
            .field("root_cert", &self.root_cert)
            .finish()
    }
}

impl ConnectOptions {
    /// Options from a `postgres://` / `postgresql://` URL. Fields the URL leaves out come
    /// from the libpq variables, then libpq's defaults, as psql does.
    pub fn from_url(url: &str) -> Result<ConnectOptions, DbError> {
        Self::from_url_with(url, &|k| std::env::var(k).ok())
    }

    /// Options from `DATABASE_URL`, else from the libpq variables.
    pub fn from_env() -> Result<ConnectOptions, DbError> {
        Self::from_env_with(&|k| std::env::var(k).ok())
    }

    /// `url` when given, else [`ConnectOptions::from_env`].
    pub fn resolve(url: Option<&str>) -> Result<ConnectOptions, DbError> {
        match url {
            Some(u) => Self::from_url(u),
            None => Self::from_env(),
        }
    }

    /// As [`ConnectOptions::from_url`], reading variables through `env` (for tests).
    pub fn from_url_with(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<ConnectOptions, DbError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(DbError::InvalidUrl {
                url: redact_url(url),
                reason: "a connection URL starts with postgres:// or postgresql://".into(),
            });
        }
        // sslmode values beyond `require` and the ssl* file options are handled here, not by
        // tokio-postgres (which rejects them), so take them out of the query first.
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        let mut ssl = None;
        let mut root_cert = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "sslmode" => {
                    ssl = Some(SslMode::parse(&percent_decode(v)).ok_or_else(|| DbError::InvalidUrl {
                        url: redact_url(url),
                        reason: format!(
                            "sslmode '{v}' is not one of disable, prefer, require, verify-ca, verify-full"
                        ),
                    })?)
                }
                "sslrootcert" => root_cert = Some(PathBuf::from(percent_decode(v))),
                // Client certificates are not supported yet; saying so beats ignoring them.
                "sslcert" | "sslkey" => {
                    return Err(DbError::InvalidUrl {
                        url: redact_url(url),
                        reason: format!("{k} (client certificates) is not supported"),
                    });
                }
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
        let mut config = tokio_postgres::Config::from_str(&rest)
            .map_err(|e| DbError::InvalidUrl { url: redact_url(url), reason: e.to_string() })?;
        let ssl = match ssl {
            Some(s) => s,
            None => env("PGSSLMODE").and_then(|m| SslMode::parse(&m)).unwrap_or_default(),
        };
        let root_cert = root_cert.or_else(|| env("PGSSLROOTCERT").map(PathBuf::from));
        fill_defaults(&mut config, env);
        Ok(ConnectOptions { config, ssl, root_cert })
    }

    /// As [`ConnectOptions::from_env`], reading variables through `env` (for tests).
    pub fn from_env_with(env: &dyn Fn(&str) -> Option<String>) -> Result<ConnectOptions, DbError> {
        if let Some(url) = env("DATABASE_URL").filter(|u| !u.is_empty()) {
            return Self::from_url_with(&url, env);
        }
        let mut config = tokio_postgres::Config::new();
        if let Some(host) = env("PGHOST").filter(|h| !h.is_empty()) {
            for h in host.split(',') {
                config.host(h);
            }
        }
        if let Some(port) = env("PGPORT").filter(|p| !p.is_empty()) {
            let port: u16 = port.parse().map_err(|_| DbError::InvalidUrl {
                url: format!("PGPORT={port}"),
                reason: "the port is not a number between 1 and 65535".into(),
            })?;
            config.port(port);
        }
        let ssl = match env("PGSSLMODE") {
            Some(m) => SslMode::parse(&m).ok_or_else(|| DbError::InvalidUrl {
                url: format!("PGSSLMODE={m}"),
                reason: "not one of disable, prefer, require, verify-ca, verify-full".into(),
            })?,
            None => SslMode::default(),
        };
        fill_defaults(&mut config, env);
        Ok(ConnectOptions { config, ssl, root_cert: env("PGSSLROOTCERT").map(PathBuf::from) })
    }

    pub fn host(&self) -> String {
        match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        }
    }

    pub fn port(&self) -> u16 {
        self.config.get_ports().first().copied().unwrap_or(5432)
    }

    pub fn user(&self) -> &str {
        self.config.get_user().unwrap_or("")
    }

    pub fn database(&self) -> &str {
        self.config.get_dbname().or(self.config.get_user()).unwrap_or("")
    }

    pub fn ssl_mode(&self) -> SslMode {
        self.ssl
    }

    /// `user@host:port/database`: how messages name the server (never with a password).
    pub fn target(&self) -> String {
        format!("{}@{}:{}/{}", self.user(), self.host(), self.port(), self.database())
    }

    /// The same options pointing at another database on the same server.
    pub fn with_database(&self, database: &str) -> ConnectOptions {
        let mut o = self.clone();
        o.config.dbname(database);
        o
    }
}

/// libpq's fallbacks for what a URL or the variables left out.
fn fill_defaults(config: &mut tokio_postgres::Config, env: &dyn Fn(&str) -> Option<String>) {
    if config.get_hosts().is_empty() {
        // libpq prefers the local socket directory when there is one.
        let socket = PathBuf::from("/var/run/postgresql");
        if cfg!(unix) && socket.join(".s.PGSQL.5432").exists() {
            config.host_path(&socket);
        } else {
            config.host("localhost");
        }
    }
    if config.get_user().is_none() {
        let user = env("PGUSER").or_else(|| env("USER")).unwrap_or_else(|| "postgres".into());
        config.user(user);
    }
    if config.get_password().is_none() {
        if let Some(p) = env("PGPASSWORD") {
            config.password(p);
        }
    }
    if config.get_dbname().is_none() {
        if let Some(d) = env("PGDATABASE").filter(|d| !d.is_empty()) {
            config.dbname(d);
        }
    }
    if config.get_connect_timeout().is_none() {
        // A wrong host should fail in seconds with a clear message, not hang a CI job.
        config.connect_timeout(Duration::from_secs(10));
    }
}

/// Marks every statement seqmig runs that names plan objects (the gate's queries, the
/// backfill's verification), so that the gate's `old_path_silent` never counts seqmig's own
/// reads as the old release still using the old shape. pg_stat_statements keeps the text of
/// the *first* statement with a given parse tree, so a marked statement must also differ in
/// shape from anything the application runs (see `soak::evaluate::backfill_verified`).
pub const OWN_STATEMENT_MARKER: &str = "/* seqmig:gate */";

/// `seqmig/<version>`: what `pg_stat_activity.application_name` shows by default.
pub fn default_application_name() -> String {
    format!("seqmig/{}", env!("CARGO_PKG_VERSION"))
}

/// Why a connection or a query failed, naming the server (`user@host:port/db`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    #[error("invalid connection string '{url}': {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error(
        "cannot reach the PostgreSQL server at {host}:{port} (database '{database}', user '{user}'): {reason}"
    )]
    Unreachable { host: String, port: u16, database: String, user: String, reason: String },
    #[error(
        "the server at {host}:{port} refused user '{user}' for database '{database}': {reason}; \
         check the password (PGPASSWORD or the URL) and pg_hba.conf"
    )]
    Auth { host: String, port: u16, database: String, user: String, reason: String },
    #[error(
        "database '{database}' does not exist on the server at {host}:{port} (user '{user}'); \
         create it ('createdb {database}') or fix the database name in the URL"
    )]
    NoDatabase { host: String, port: u16, database: String, user: String },
    #[error("TLS with the server at {host}:{port} failed (sslmode={mode}): {reason}")]
    Tls { host: String, port: u16, mode: &'static str, reason: String },
    #[error(
        "user '{user}' may not {action} on {target}: {reason}; connect as a role that owns \
         the objects or has been granted access (e.g. a superuser or the schema owner)"
    )]
    PermissionDenied { target: String, user: String, action: String, reason: String },
    #[error("failed to {action} on {target}: {reason}")]
    Query { target: String, action: String, reason: String, sqlstate: Option<String> },
}

impl DbError {
    /// Classifies a failure of `action` (a lowercase phrase such as `read pg_class`) on a
    /// connected client.
    pub fn query(opts: &ConnectOptions, action: &str, e: &tokio_postgres::Error) -> DbError {
        let reason = describe(e);
        match e.code() {
            Some(c) if *c == tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE => {
                DbError::PermissionDenied {
                    target: opts.target(),
                    user: opts.user().to_string(),
                    action: action.to_string(),
                    reason,
                }
            }
            code => DbError::Query {
                target: opts.target(),
                action: action.to_string(),
                reason,
                sqlstate: code.map(|c| c.code().to_string()),
            },
        }
    }
}

/// Connects, spawns the connection task on the current tokio runtime, and returns the client.
pub async fn connect(
    opts: &ConnectOptions,
    application_name: &str,
) -> Result<tokio_postgres::Client, DbError> {
    let mut config = opts.config.clone();
    config.application_name(application_name);
    let (host, port) = (opts.host(), opts.port());
    let classify = |e: tokio_postgres::Error| classify_connect(opts, e);
    match opts.ssl {
        SslMode::Disable => {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            let (client, conn) = config.connect(tokio_postgres::NoTls).await.map_err(classify)?;
            tokio::spawn(conn);
            Ok(client)
        }
        mode => {
            let mut builder = native_tls::TlsConnector::builder();
            match mode {
                // libpq checks nothing in these modes unless given a root certificate.
                SslMode::Prefer | SslMode::Require if opts.root_cert.is_none() => {
                    builder.danger_accept_invalid_certs(true);
                }
                SslMode::Prefer | SslMode::Require | SslMode::VerifyCa => {
                    builder.danger_accept_invalid_hostnames(true);
                }
                _ => {}
            }
            if let Some(path) = &opts.root_cert {
                let pem = std::fs::read(path).map_err(|e| DbError::Tls {
                    host: host.clone(),
                    port,
                    mode: mode.as_str(),
                    reason: format!("failed to read sslrootcert '{}': {e}", path.display()),
                })?;
                let cert = native_tls::Certificate::from_pem(&pem).map_err(|e| DbError::Tls {
                    host: host.clone(),
                    port,
                    mode: mode.as_str(),
                    reason: format!("sslrootcert '{}' is not a PEM certificate: {e}", path.display()),
                })?;
                builder.add_root_certificate(cert);
            }
            let connector = builder.build().map_err(|e| DbError::Tls {
                host: host.clone(),
                port,
                mode: mode.as_str(),
                reason: e.to_string(),
            })?;
            config.ssl_mode(if mode == SslMode::Prefer {
                tokio_postgres::config::SslMode::Prefer
            } else {
                tokio_postgres::config::SslMode::Require
            });
            let tls = postgres_native_tls::MakeTlsConnector::new(connector);
            let (client, conn) = config.connect(tls).await.map_err(classify)?;
            tokio::spawn(conn);
            Ok(client)
        }
    }
}

fn classify_connect(opts: &ConnectOptions, e: tokio_postgres::Error) -> DbError {
    use tokio_postgres::error::SqlState;
    let (host, port, database, user) =
        (opts.host(), opts.port(), opts.database().to_string(), opts.user().to_string());
    let reason = describe(&e);
    match e.code() {
        Some(c) if *c == SqlState::INVALID_CATALOG_NAME => DbError::NoDatabase { host, port, database, user },
        Some(c)
            if *c == SqlState::INVALID_PASSWORD || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            DbError::Auth { host, port, database, user, reason }
        }
        Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => {
            DbError::Auth { host, port, database, user, reason }
        }
        Some(_) => DbError::Query {
            target: opts.target(),
            action: "connect".into(),
            reason,
            sqlstate: e.code().map(|c| c.code().to_string()),
        },
        None => {
            let lower = reason.to_lowercase();
            if lower.contains("password missing") {
                DbError::Auth {
                    host,
                    port,
                    database,
                    user,
                    reason: "the server asks for a password and none was given".into(),
                }
            } else if lower.contains("tls") || lower.contains("ssl") || lower.contains("certificate") {
                DbError::Tls { host, port, mode: opts.ssl.as_str(), reason }
            } else {
                DbError::Unreachable { host, port, database, user, reason }
            }
        }
    }
}

/// The server's message, or the whole error chain for client-side failures.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_string();
    }
    let mut parts = vec![e.to_string()];
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ")
}

/// The URL with any password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let mut out = match rest[..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split_once(':').map(|(u, _)| format!("{u}:***")).unwrap_or(userinfo.into());
            format!("{}{user}{}", &url[..scheme_end], &rest[at..])
        }
        None => url.to_string(),
    };
    // `?password=…` in the query is as secret as the userinfo.
    if let Some(q) = out.find('?') {
        let redacted: Vec<String> = out[q + 1..]
            .split('&')
            .map(|p| if p.starts_with("password=") { "password=***".to_string() } else { p.to_string() })
            .collect();
        out = format!("{}?{}", &out[..q], redacted.join("&"));
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn url_gives_host_port_user_database() {
        let o =
            ConnectOptions::from_url_with("postgres://alice:s3cret@db.example:6543/app", &env(&[])).unwrap();
        assert_eq!(o.target(), "alice@db.example:6543/app");
        assert_eq!(o.ssl_mode(), SslMode::Prefer);
        assert!(!format!("{o:?}").contains("s3cret"));
    }

    #[test]
    fn verify_modes_and_root_cert_are_read_from_the_url() {
        let o = ConnectOptions::from_url_with(
            "postgresql://u@h/d?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=3",
            &env(&[]),
        )
        .unwrap();
        assert_eq!(o.ssl_mode(), SslMode::VerifyFull);
        assert_eq!(o.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        let bad = ConnectOptions::from_url_with("postgres://u@h/d?sslmode=sometimes", &env(&[])).unwrap_err();
        assert!(bad.to_string().contains("sslmode 'sometimes'"), "{bad}");
    }

    #[test]
    fn database_url_wins_over_libpq_variables() {
        let vars = [("DATABASE_URL", "postgres://a@h1:1/d1"), ("PGHOST", "h2"), ("PGPORT", "2")];
        assert_eq!(ConnectOptions::from_env_with(&env(&vars)).unwrap().target(), "a@h1:1/d1");
    }

    #[test]
    fn libpq_variables_fill_everything() {
        let vars = [
            ("PGHOST", "pg.internal"),
            ("PGPORT", "5499"),
            ("PGUSER", "bob"),
            ("PGDATABASE", "shop"),
            ("PGPASSWORD", "pw"),
            ("PGSSLMODE", "require"),
        ];
        let o = ConnectOptions::from_env_with(&env(&vars)).unwrap();
        assert_eq!(o.target(), "bob@pg.internal:5499/shop");
        assert_eq!(o.ssl_mode(), SslMode::Require);
        assert_eq!(o.config.get_password(), Some(&b"pw"[..]));
        assert!(ConnectOptions::from_env_with(&env(&[("PGPORT", "x")])).is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:p%40ss@h:5/d?x=1"), "postgres://u:***@h:5/d?x=1");
        assert_eq!(redact_url("postgres://u@h/d?password=pw&a=b"), "postgres://u@h/d?password=***&a=b");
        assert_eq!(redact_url("postgres://h/d"), "postgres://h/d");
        let e = ConnectOptions::from_url_with("postgres://u:topsecret@h/d?bogus=1", &env(&[])).unwrap_err();
        assert!(!e.to_string().contains("topsecret"), "{e}");
    }
}
