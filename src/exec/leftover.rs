//! What a statement that runs in several transactions of its own leaves behind when it is
//! interrupted between them, and how the executor finishes or removes it. PostgreSQL 15 has
//! two such statements among the steps seqmig plans:
//!
//! - `CREATE INDEX CONCURRENTLY` leaves an INVALID index: dropped, then built again (apply)
//!   or just dropped (rollback);
//! - `DETACH PARTITION … CONCURRENTLY` leaves the partition "pending detach": running the
//!   statement again fails (55000), and only `DETACH PARTITION … FINALIZE` completes it.
//!
//! `status` reads the same states to explain an interrupted step.

use tokio_postgres::Client;

use crate::plan::{IndexBuild, PartitionDetach};

/// The index a `CREATE INDEX CONCURRENTLY` builds, as the catalog has it.
pub(crate) enum IndexState {
    Absent,
    Valid,
    /// Quoted, qualified name of the INVALID index.
    Invalid(String),
}

pub(crate) async fn index_state(
    client: &Client,
    build: &IndexBuild,
) -> Result<IndexState, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT i.indisvalid, quote_ident(n.nspname) || '.' || quote_ident(c.relname)
             FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relname = $1
               AND c.relnamespace = (SELECT t.relnamespace FROM pg_class t WHERE t.oid = to_regclass($2))",
            &[&build.index.name.as_str(), &build.table.quoted()],
        )
        .await?;
    Ok(match row {
        None => IndexState::Absent,
        Some(r) if r.get::<_, bool>(0) => IndexState::Valid,
        Some(r) => IndexState::Invalid(r.get(1)),
    })
}

pub(crate) fn drop_index_sql(index: &str) -> String {
    format!("DROP INDEX CONCURRENTLY IF EXISTS {index}")
}

/// Where a concurrent detach has got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DetachState {
    /// Still a partition: the detach has not begun (or its first transaction rolled back).
    Attached,
    /// The first transaction committed, the second did not.
    Pending,
    /// No longer a partition of the parent.
    Detached,
}

pub(crate) async fn detach_state(
    client: &Client,
    detach: &PartitionDetach,
) -> Result<DetachState, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT inhdetachpending FROM pg_inherits
              WHERE inhrelid = to_regclass($1) AND inhparent = to_regclass($2)",
            &[&detach.partition.quoted(), &detach.parent.quoted()],
        )
        .await?;
    Ok(match row {
        None => DetachState::Detached,
        Some(r) if r.get::<_, bool>(0) => DetachState::Pending,
        Some(_) => DetachState::Attached,
    })
}

/// Completes a pending detach. Like the detach, it waits for every query that may still see
/// the partition through the parent, and runs outside a transaction block.
pub(crate) fn finalize_sql(detach: &PartitionDetach) -> String {
    format!("ALTER TABLE {} DETACH PARTITION {} FINALIZE", detach.parent.quoted(), detach.partition.quoted())
}
