//! Reads a live database's `pg_catalog` into the same [`Schema`] the parser builds from DDL,
//! so `--from postgres://…` works and tests can check "the database now equals the desired
//! schema". The catalog queries live in `introspect/sql/*.sql` (PostgreSQL 13 and later) and
//! run pipelined on one connection.
//!
//! The session runs with `search_path = ''`, as pg_dump does: every name the server deparses
//! (types, defaults, view bodies, index expressions) comes back schema-qualified, exactly as
//! a pg_dump file spells it. Opaque objects are rebuilt in pg_dump's own layout (functions,
//! policies, aggregates) or taken from the server's deparser (triggers, rules, statistics),
//! so a catalog and a pg_dump of it give the same text.
//!
//! Skipped: system schemas, the `seqmig` ledger schema, the `public` schema itself, objects
//! that belong to an extension, `plpgsql` (always installed), internal triggers and the
//! clones a partition inherits from its parent (constraints, triggers).

mod build;
mod opaque;

use tokio_postgres::Client;

use crate::db::{ConnectOptions, DbError};
use crate::model::Schema;

/// Schemas never read: the system ones and seqmig's own ledger.
pub const SKIPPED_SCHEMAS: &[&str] = &["pg_catalog", "information_schema", "pg_toast", "seqmig"];

/// Why introspection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntrospectError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("failed to {action}: {reason}")]
    Query { action: String, reason: String, sqlstate: Option<String> },
    #[error(
        "permission denied while trying to {action}: {reason}; introspection reads pg_catalog, \
         so connect as a role that may read it (e.g. the database owner)"
    )]
    PermissionDenied { action: String, reason: String },
    #[error("the catalog describes {object} in a way seqmig cannot read: {reason}")]
    Catalog { object: String, reason: String },
}

impl IntrospectError {
    fn query(action: &str, e: &tokio_postgres::Error) -> IntrospectError {
        let reason = match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => e.to_string(),
        };
        match e.code() {
            Some(c) if *c == tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE => {
                IntrospectError::PermissionDenied { action: action.to_string(), reason }
            }
            code => IntrospectError::Query {
                action: action.to_string(),
                reason,
                sqlstate: code.map(|c| c.code().to_string()),
            },
        }
    }

    /// Adds the server's name to query errors (`user@host:port/db`), for messages.
    fn at(self, opts: &ConnectOptions) -> IntrospectError {
        match self {
            IntrospectError::Query { action, reason, sqlstate } => {
                IntrospectError::Query { action: format!("{action} on {}", opts.target()), reason, sqlstate }
            }
            IntrospectError::PermissionDenied { action, reason } => IntrospectError::PermissionDenied {
                action: format!("{action} on {} as user '{}'", opts.target(), opts.user()),
                reason,
            },
            other => other,
        }
    }
}

/// Connects with `opts` and reads the whole schema.
pub async fn introspect_url(opts: &ConnectOptions) -> Result<Schema, IntrospectError> {
    let client = crate::db::connect(opts, &crate::db::default_application_name()).await?;
    introspect(&client).await.map_err(|e| e.at(opts))
}

/// Blocking form of [`introspect_url`] for callers without a runtime (the CLI, `source`).
pub fn introspect_url_blocking(opts: &ConnectOptions) -> Result<Schema, IntrospectError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
        IntrospectError::Query {
            action: "start the async runtime".into(),
            reason: e.to_string(),
            sqlstate: None,
        }
    })?;
    rt.block_on(introspect_url(opts))
}

/// One catalog query's rows.
type Rows = Vec<tokio_postgres::Row>;

/// Every catalog query, fetched at once.
pub(crate) struct Catalog {
    pub namespaces: Rows,
    pub relations: Rows,
    pub inherits: Rows,
    pub columns: Rows,
    pub constraints: Rows,
    pub indexes: Rows,
    pub sequences: Rows,
    pub types: Rows,
    pub view_reads: Rows,
    pub functions: Rows,
    pub aggregates: Rows,
    pub triggers: Rows,
    pub policies: Rows,
    pub misc: Rows,
    pub comments: Rows,
    pub grants: Rows,
}

/// How to read the catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntrospectOptions {
    /// The `search_path` the server deparses names under. Empty (the default, as pg_dump):
    /// every name comes back schema-qualified. `public`: names in `public` come back bare,
    /// as hand-written DDL usually spells them (`nextval('users_id_seq'::regclass)`).
    pub search_path: String,
}

/// Reads the schema through an open connection with the default options.
pub async fn introspect(client: &Client) -> Result<Schema, IntrospectError> {
    introspect_with(client, &IntrospectOptions::default()).await
}

/// Reads the schema through an open connection. The session's `search_path` is set for the
/// duration (see [`IntrospectOptions::search_path`]) and restored afterwards.
pub async fn introspect_with(
    client: &Client,
    options: &IntrospectOptions,
) -> Result<Schema, IntrospectError> {
    let old: String = client
        .query_one("SELECT pg_catalog.current_setting('search_path')", &[])
        .await
        .map_err(|e| IntrospectError::query("read search_path", &e))?
        .get(0);
    client
        .query("SELECT pg_catalog.set_config('search_path', $1, false)", &[&options.search_path])
        .await
        .map_err(|e| IntrospectError::query("set search_path", &e))?;
    let result = read_catalog(client).await;
    // Restore even when reading failed; a failure here matters less than the first error.
    let _ = client.query("SELECT pg_catalog.set_config('search_path', $1, false)", &[&old]).await;
    let catalog = result?;
    let first =
        options.search_path.split(',').next().map(|s| s.trim().trim_matches('"')).filter(|s| !s.is_empty());
    build::schema(&catalog, first)
}

async fn read_catalog(client: &Client) -> Result<Catalog, IntrospectError> {
    let skip: Vec<String> = SKIPPED_SCHEMAS.iter().map(|s| s.to_string()).collect();
    let q = |name: &'static str, sql: &'static str| {
        let skip = &skip;
        async move {
            let stmt =
                client.prepare(sql).await.map_err(|e| IntrospectError::query(&format!("read {name}"), &e))?;
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                if stmt.params().is_empty() { vec![] } else { vec![skip] };
            client
                .query(&stmt, &params)
                .await
                .map_err(|e| IntrospectError::query(&format!("read {name}"), &e))
        }
    };
    // tokio-postgres pipelines these on the one connection: one round trip's latency, not 15.
    let (namespaces, relations, inherits, columns, constraints, indexes, sequences, types) = tokio::try_join!(
        q("schemas and extensions", include_str!("sql/namespaces.sql")),
        q("relations", include_str!("sql/relations.sql")),
        q("table inheritance", include_str!("sql/inherits.sql")),
        q("columns", include_str!("sql/columns.sql")),
        q("constraints", include_str!("sql/constraints.sql")),
        q("indexes", include_str!("sql/indexes.sql")),
        q("sequences", include_str!("sql/sequences.sql")),
        q("types", include_str!("sql/types.sql")),
    )?;
    let (view_reads, functions, aggregates, triggers, policies, misc, comments, grants) = tokio::try_join!(
        q("view dependencies", include_str!("sql/view_reads.sql")),
        q("functions", include_str!("sql/functions.sql")),
        q("aggregates", include_str!("sql/aggregates.sql")),
        q("triggers", include_str!("sql/triggers.sql")),
        q("policies", include_str!("sql/policies.sql")),
        q("rules, casts and statistics", include_str!("sql/misc.sql")),
        q("comments", include_str!("sql/comments.sql")),
        q("privileges", include_str!("sql/grants.sql")),
    )?;
    Ok(Catalog {
        namespaces,
        relations,
        inherits,
        columns,
        constraints,
        indexes,
        sequences,
        types,
        view_reads,
        functions,
        aggregates,
        triggers,
        policies,
        misc,
        comments,
        grants,
    })
}
