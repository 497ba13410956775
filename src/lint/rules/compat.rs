//! Changes that break the release still running while the migration applies (and the one
//! you may roll back to): renames, type changes, new required columns, nullability and
//! default changes, and `json` columns that break `DISTINCT`.

use super::{Out, column, short};
use crate::finding::FindingCode;
use crate::lint::action::{Action, AlterOp};
use crate::lint::context::Ctx;

pub fn check(a: &Action, cx: &Ctx<'_>, out: &mut Out<'_>) {
    match a {
        Action::RenameSchema { schema } => out.push(
            FindingCode::RenameSchema,
            schema,
            format!("renames schema {schema}; every query of the previous release that qualifies names with it fails"),
        ),
        Action::RenameEnumValue { ty } => out.push(
            FindingCode::RenameEnumValue,
            short(ty),
            format!("renames a label of {}; the previous release still writes and compares the old one", short(ty)),
        ),
        Action::AlterTable { table, op } if cx.existing(table) => alter(table, op, cx, out),
        _ => {}
    }
}

fn alter(table: &crate::lint::action::Name, op: &AlterOp, cx: &Ctx<'_>, out: &mut Out<'_>) {
    let added = |c: &str| cx.added_columns.contains(&(table.clone(), c.to_string()));
    match op {
        AlterOp::RenameTable { to } => out.push(
            FindingCode::RenameTable,
            short(table),
            format!(
                "renames {} to {to} under a brief ACCESS EXCLUSIVE lock; the previous release fails on every query that uses the old name",
                short(table)
            ),
        ),
        AlterOp::RenameColumn { from, to } if !added(from) => out.push(
            FindingCode::RenameColumn,
            column(table, from),
            format!(
                "renames {} to {to} under a brief ACCESS EXCLUSIVE lock; the previous release fails on every query that uses the old name",
                column(table, from)
            ),
        ),
        AlterOp::SetType { column: c, ty } if !added(c) => out.push(
            FindingCode::ChangeColumnType,
            column(table, c),
            format!(
                "changing {} to {ty} rewrites the table and its indexes under an ACCESS EXCLUSIVE lock unless the change is binary-compatible, and the previous release still uses the old type",
                column(table, c)
            ),
        ),
        AlterOp::AddColumn(col)
            if col.not_null && col.default.is_none() && !col.identity && !col.generated_stored && !col.is_serial() =>
        {
            out.push(
                FindingCode::AddRequiredColumn,
                column(table, &col.name),
                format!(
                    "adding {} as NOT NULL without a default fails on a table with rows, and the previous release cannot insert without it",
                    column(table, &col.name)
                ),
            )
        }
        AlterOp::AddColumn(col) if col.ty == "json" => out.push(
            FindingCode::AddJsonColumn,
            column(table, &col.name),
            "json has no equality operator: SELECT DISTINCT, UNION and GROUP BY over the table's columns start failing",
        ),
        AlterOp::DropNotNull(c) if !added(c) => out.push(
            FindingCode::DropNotNull,
            column(table, c),
            format!(
                "{} may now hold NULLs that readers of the previous release do not expect (the ALTER itself takes only a brief ACCESS EXCLUSIVE lock)",
                column(table, c)
            ),
        ),
        AlterOp::SetDefault(c) | AlterOp::DropDefault(c) if !added(c) => out.push(
            FindingCode::ChangeColumnDefault,
            column(table, c),
            format!(
                "rows the previous release inserts without {} silently get the new default (the ALTER itself takes only a brief ACCESS EXCLUSIVE lock)",
                column(table, c)
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
    fn renames_break_the_previous_release() {
        assert_eq!(codes(&format!("{P}ALTER TABLE a RENAME TO b;")), vec!["rename-table"]);
        assert_eq!(codes(&format!("{P}ALTER TABLE a RENAME COLUMN x TO y;")), vec!["rename-column"]);
        assert_eq!(codes("ALTER SCHEMA s RENAME TO t;"), vec!["rename-schema"]);
        assert_eq!(codes("ALTER TYPE e RENAME VALUE 'a' TO 'b';"), vec!["rename-enum-value"]);
        assert!(codes("CREATE TABLE a (x bigint); ALTER TABLE a RENAME COLUMN x TO y;").is_empty());
    }

    #[test]
    fn columns_old_code_writes() {
        assert_eq!(
            codes(&format!("{P}ALTER TABLE a ADD COLUMN b text NOT NULL;")),
            vec!["add-required-column"]
        );
        assert!(codes(&format!("{P}ALTER TABLE a ADD COLUMN b text NOT NULL DEFAULT '';")).is_empty());
        assert_eq!(
            codes(&format!("{P}ALTER TABLE a ALTER COLUMN b TYPE bigint;")),
            vec!["change-column-type"]
        );
        assert_eq!(codes(&format!("{P}ALTER TABLE a ALTER COLUMN b DROP NOT NULL;")), vec!["drop-not-null"]);
        assert_eq!(
            codes(&format!("{P}ALTER TABLE a ALTER COLUMN b SET DEFAULT 1;")),
            vec!["change-column-default"]
        );
        assert!(
            codes(&format!("{P}ALTER TABLE a ADD COLUMN b int; ALTER TABLE a ALTER COLUMN b SET DEFAULT 1;"))
                .is_empty()
        );
        assert_eq!(codes(&format!("{P}ALTER TABLE a ADD COLUMN b json;")), vec!["add-json-column"]);
    }
}
