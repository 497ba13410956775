//! Statements that delete data: dropping databases, schemas, tables, columns and foreign
//! keys, and `TRUNCATE … CASCADE`. Objects the file itself created are exempt.

use super::{Out, column, short};
use crate::finding::FindingCode;
use crate::lint::action::{Action, AlterOp, DropKind};
use crate::lint::context::Ctx;

pub fn check(a: &Action, cx: &Ctx<'_>, out: &mut Out<'_>) {
    match a {
        Action::Drop { kind: DropKind::Database, names } => {
            for n in names {
                out.push(
                    FindingCode::DropDatabase,
                    &n.name,
                    "drops the whole database with every table and row in it",
                );
            }
        }
        Action::Drop { kind: DropKind::Schema, names } => {
            for n in names {
                out.push(
                    FindingCode::DropSchema,
                    &n.name,
                    format!("drops schema {} and the data of every object in it; the previous release fails on each query that touches it", n.name),
                );
            }
        }
        Action::Drop { kind: DropKind::Table, names } => {
            for n in names.iter().filter(|n| cx.existing(n)) {
                out.push(
                    FindingCode::DropTable,
                    short(n),
                    format!("deletes table {} and all its rows under an ACCESS EXCLUSIVE lock; the previous release fails on every query that names it", short(n)),
                );
            }
        }
        Action::Truncate { tables, cascade: true } => {
            let list = tables.iter().map(short).collect::<Vec<_>>().join(", ");
            out.push(
                FindingCode::TruncateCascade,
                list.clone(),
                format!("empties {list} and, through CASCADE, every table that references them, recursively"),
            );
        }
        Action::AlterTable { table, op: AlterOp::DropColumn(col) }
            if cx.existing(table) && !cx.added_columns.contains(&(table.clone(), col.clone())) =>
        {
            out.push(
                FindingCode::DropColumn,
                column(table, col),
                format!("deletes column {} and its data under an ACCESS EXCLUSIVE lock; the previous release fails on queries that name it", column(table, col)),
            );
        }
        Action::AlterTable { table, op: AlterOp::DropConstraint(name) } if cx.existing(table) => {
            let is_fk = cx.foreign_keys.contains(name) || name.ends_with("_fkey") || name.starts_with("fk_");
            if is_fk {
                out.push(
                    FindingCode::DropForeignKey,
                    format!("{}.{}", short(table), name),
                    format!(
                        "drops foreign key {name} on {}: nothing prevents orphaned rows from then on",
                        short(table)
                    ),
                );
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::rules::testing::codes;

    #[test]
    fn drops_of_existing_objects() {
        let prelude = "SET lock_timeout = '1s'; SET statement_timeout = '1min';";
        assert_eq!(
            codes(&format!("{prelude} DROP TABLE IF EXISTS a, b CASCADE;")),
            vec!["drop-table", "drop-table"]
        );
        assert!(codes("CREATE TABLE a (id bigint); DROP TABLE a;").is_empty());
        assert_eq!(codes("DROP SCHEMA s CASCADE; DROP DATABASE d;"), vec!["drop-schema", "drop-database"]);
        assert_eq!(codes(&format!("{prelude} TRUNCATE a CASCADE;")), vec!["truncate-cascade"]);
        assert!(codes(&format!("{prelude} TRUNCATE a;")).is_empty());
    }

    #[test]
    fn drop_column_and_foreign_key() {
        let prelude = "SET lock_timeout = '1s'; SET statement_timeout = '1min';";
        assert_eq!(codes(&format!("{prelude} ALTER TABLE t DROP COLUMN a;")), vec!["drop-column"]);
        assert_eq!(
            codes(&format!("{prelude} ALTER TABLE t DROP CONSTRAINT t_user_id_fkey;")),
            vec!["drop-foreign-key"]
        );
        assert!(codes(&format!("{prelude} ALTER TABLE t DROP CONSTRAINT t_amount_check;")).is_empty());
    }
}
