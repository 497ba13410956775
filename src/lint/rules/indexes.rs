//! Index builds and drops that block the table: `CREATE INDEX`, `DROP INDEX` and `REINDEX`
//! without `CONCURRENTLY`. A table or index the file created itself is new and empty: a plain
//! build is as good as a concurrent one there.

use super::{Out, short};
use crate::finding::FindingCode;
use crate::lint::action::Action;
use crate::lint::context::Ctx;

pub fn check(a: &Action, cx: &Ctx<'_>, out: &mut Out<'_>) {
    match a {
        Action::CreateIndex { table, concurrently: true, name, .. } if cx.partitioned.contains(table) => out.push(
            FindingCode::ConcurrentIndexOnPartitionedTable,
            short(table),
            format!(
                "index {} is never built: PostgreSQL refuses CREATE INDEX CONCURRENTLY on the partitioned table {} (SQLSTATE 0A000)",
                name.as_deref().unwrap_or("(unnamed)"),
                short(table)
            ),
        ),
        Action::CreateIndex { table, concurrently: false, name, .. } if cx.existing(table) => out.push(
            FindingCode::CreateIndexNonConcurrently,
            short(table),
            format!(
                "building index {} takes a SHARE lock on {}: every INSERT, UPDATE and DELETE waits until the build ends",
                name.as_deref().unwrap_or("(unnamed)"),
                short(table)
            ),
        ),
        Action::DropIndex { names, concurrently: false } => {
            for n in names {
                let created_here = cx.indexes.iter().any(|(i, t, _)| {
                    i.as_deref() == Some(n.name.as_str()) && (t.schema == n.schema) && !cx.existing(t)
                });
                if !created_here {
                    out.push(
                        FindingCode::DropIndexNonConcurrently,
                        short(n),
                        format!("dropping index {} takes an ACCESS EXCLUSIVE lock on its table, blocking every read and write while it waits and runs", short(n)),
                    );
                }
            }
        }
        Action::Reindex { target, concurrently: false } => out.push(
            FindingCode::ReindexNonConcurrently,
            target,
            format!(
                "reindex {target} blocks writes to the table for the whole rebuild{}",
                if cx.config.pg_version < 12 { " (REINDEX CONCURRENTLY needs PostgreSQL 12)" } else { "" }
            ),
        ),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::rules::testing::codes;

    const P: &str = "SET lock_timeout = '1s'; SET statement_timeout = '1min';\n";

    #[test]
    fn plain_index_operations_on_existing_tables() {
        assert_eq!(codes(&format!("{P}CREATE INDEX i ON t (a);")), vec!["create-index-non-concurrently"]);
        assert!(codes("CREATE INDEX CONCURRENTLY i ON t (a);").is_empty());
        assert!(codes("CREATE TABLE t (a bigint); CREATE INDEX i ON t (a);").is_empty());
        assert_eq!(codes(&format!("{P}DROP INDEX i;")), vec!["drop-index-non-concurrently"]);
        assert!(codes("DROP INDEX CONCURRENTLY IF EXISTS i;").is_empty());
        assert_eq!(codes("REINDEX TABLE t;"), vec!["reindex-non-concurrently"]);
        assert!(codes("REINDEX TABLE CONCURRENTLY t;").is_empty());
    }

    #[test]
    fn concurrent_index_on_a_partitioned_table() {
        let parent = "CREATE TABLE e (id bigint, at date) PARTITION BY RANGE (at);\n";
        assert_eq!(
            codes(&format!("{parent}CREATE INDEX CONCURRENTLY e_at ON e (at);")),
            vec!["concurrent-index-on-partitioned-table"]
        );
        assert!(codes(&format!("{parent}CREATE INDEX e_at ON ONLY e (at);")).is_empty());
        assert!(codes("CREATE TABLE e (id bigint) ; CREATE INDEX CONCURRENTLY e_id ON e (id);").is_empty());
    }
}
