//! Type choices that cost later (warnings): 32-bit keys, serial instead of identity,
//! `varchar(n)`/`char(n)`, `timestamp` without time zone, `json` in new tables.

use std::collections::BTreeSet;

use super::{Out, column};
use crate::finding::FindingCode;
use crate::lint::action::{Action, AlterOp, ColumnSpec, ConstraintKind, Name};
use crate::lint::context::Ctx;

pub fn check(a: &Action, cx: &Ctx<'_>, out: &mut Out<'_>) {
    match a {
        Action::CreateTable { table, columns, constraints, .. } => {
            let keys: BTreeSet<&String> = constraints
                .iter()
                .filter_map(|c| match &c.kind {
                    ConstraintKind::PrimaryKey { columns, .. } => Some(columns),
                    _ => None,
                })
                .flatten()
                .collect();
            for col in columns {
                column_types(table, col, col.primary_key || keys.contains(&col.name), true, out);
            }
        }
        Action::AlterTable { table, op: AlterOp::AddColumn(col) } => {
            column_types(table, col, col.primary_key, !cx.existing(table), out);
        }
        Action::AlterTable { table, op: AlterOp::SetType { column: c, ty } } => {
            let col = ColumnSpec { name: c.clone(), ty: ty.clone(), ..ColumnSpec::default() };
            column_types(table, &col, false, false, out);
        }
        _ => {}
    }
}

fn column_types(table: &Name, col: &ColumnSpec, key: bool, new_table: bool, out: &mut Out<'_>) {
    let object = column(table, &col.name);
    let small_int = matches!(col.ty.as_str(), "integer" | "smallint")
        || matches!(col.written_ty.as_str(), "serial" | "serial4" | "smallserial" | "serial2");
    if small_int && (key || col.identity || col.is_serial()) {
        out.push(
            FindingCode::PreferBigint,
            object.clone(),
            format!("{object} is a 32-bit key and runs out at 2,147,483,647 rows"),
        );
    }
    if col.is_serial() {
        out.push(
            FindingCode::PreferIdentity,
            object.clone(),
            format!("{object} is a serial column: a default plus a loosely owned sequence"),
        );
    }
    if col.ty.starts_with("character varying(") || col.ty.starts_with("character(") || col.ty == "character" {
        out.push(
            FindingCode::PreferText,
            object.clone(),
            format!("{object} is {}: the length limit can only be lowered with a table rewrite", col.ty),
        );
    }
    if col.ty.starts_with("timestamp") && col.ty.ends_with("without time zone") {
        out.push(
            FindingCode::PreferTimestamptz,
            object.clone(),
            format!("{object} stores wall-clock time with no time zone"),
        );
    }
    if col.ty == "json" && new_table {
        out.push(
            FindingCode::PreferJsonb,
            object.clone(),
            format!("{object} is json: no equality operator, no GIN index"),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::rules::testing::codes;

    #[test]
    fn type_hygiene_on_new_tables() {
        assert_eq!(
            codes("CREATE TABLE t (id serial PRIMARY KEY, a varchar(20), b timestamp, c json);"),
            vec!["prefer-bigint", "prefer-identity", "prefer-jsonb", "prefer-text", "prefer-timestamptz"]
        );
        assert!(codes("CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, a text, b timestamptz, c jsonb, n integer);").is_empty());
        assert_eq!(
            codes("CREATE TABLE t (id integer, CONSTRAINT t_pkey PRIMARY KEY (id));"),
            vec!["prefer-bigint"]
        );
    }
}
