//! Statements that rewrite a whole existing table under an ACCESS EXCLUSIVE lock: columns
//! whose initial value must be computed per row (volatile defaults, serial, identity, stored
//! generated), `SET LOGGED/UNLOGGED`, `SET TABLESPACE`, `VACUUM FULL`, `CLUSTER`.

use super::{Out, column, short};
use crate::finding::FindingCode;
use crate::lint::action::{Action, AlterOp, ColumnSpec, Name};
use crate::lint::context::Ctx;

/// Functions whose value differs per row, so a default calling them cannot be stored once.
const VOLATILE: &[&str] = &[
    "random",
    "random_normal",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "uuidv4",
    "uuidv7",
    "clock_timestamp",
    "timeofday",
    "nextval",
    "txid_current",
    "setseed",
];

pub fn check(a: &Action, cx: &Ctx<'_>, out: &mut Out<'_>) {
    let rewrite = |t: &Name| {
        format!("rewrites {} under an ACCESS EXCLUSIVE lock: no reads or writes until it ends", short(t))
    };
    match a {
        Action::AlterTable { table, op } if cx.existing(table) => match op {
            AlterOp::AddColumn(col) => add_column(table, col, cx, out),
            AlterOp::SetLogged | AlterOp::SetUnlogged => {
                out.push(FindingCode::SetTablePersistence, short(table), rewrite(table))
            }
            AlterOp::SetTablespace => out.push(
                FindingCode::SetTablespace,
                short(table),
                format!("copies {} to the new tablespace under an ACCESS EXCLUSIVE lock", short(table)),
            ),
            _ => {}
        },
        Action::VacuumFull { table } if table.as_ref().is_none_or(|t| cx.existing(t)) => {
            let what = table.as_ref().map(short).unwrap_or_else(|| "every table".into());
            out.push(
                FindingCode::VacuumFull,
                what.clone(),
                format!("vacuum full rewrites {what} under an ACCESS EXCLUSIVE lock"),
            );
        }
        Action::Cluster { table } if table.as_ref().is_none_or(|t| cx.existing(t)) => {
            let what = table.as_ref().map(short).unwrap_or_else(|| "every clustered table".into());
            out.push(
                FindingCode::Cluster,
                what.clone(),
                format!("cluster rewrites {what} under an ACCESS EXCLUSIVE lock"),
            );
        }
        _ => {}
    }
}

fn add_column(table: &Name, col: &ColumnSpec, cx: &Ctx<'_>, out: &mut Out<'_>) {
    let object = column(table, &col.name);
    if col.is_serial() {
        out.push(
            FindingCode::AddColumnSerial,
            object,
            format!("a serial column calls nextval() for every existing row: {}", rewrite_msg(table)),
        );
    } else if col.identity {
        out.push(
            FindingCode::AddColumnIdentity,
            object,
            format!("an identity column numbers every existing row: {}", rewrite_msg(table)),
        );
    } else if col.generated_stored {
        out.push(
            FindingCode::AddColumnGeneratedStored,
            object,
            format!("a stored generated column is computed for every existing row: {}", rewrite_msg(table)),
        );
    } else if let Some(default) = &col.default {
        if cx.config.pg_version < 11 {
            out.push_with_help(
                FindingCode::AddColumnVolatileDefault,
                object,
                format!("before PostgreSQL 11 any default is written into every existing row: {}", rewrite_msg(table)),
                "add the column without a default, then SET DEFAULT for new rows and backfill existing rows in batches",
            );
        } else if let Some(f) = volatile_call(default) {
            out.push(
                FindingCode::AddColumnVolatileDefault,
                object,
                format!(
                    "the default calls {f}(), which is volatile, so every existing row is written: {}",
                    rewrite_msg(table)
                ),
            );
        }
    }
}

fn rewrite_msg(t: &Name) -> String {
    format!("the table {} is rewritten under an ACCESS EXCLUSIVE lock", short(t))
}

/// The first volatile function `expr` calls, if any.
fn volatile_call(expr: &str) -> Option<&'static str> {
    let squeezed: String = expr.chars().filter(|c| !c.is_whitespace()).collect();
    VOLATILE.iter().copied().find(|f| {
        squeezed
            .match_indices(&format!("{f}("))
            .any(|(i, _)| i == 0 || !squeezed[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
    })
}

#[cfg(test)]
mod tests {
    use super::volatile_call;
    use crate::lint::LintConfig;
    use crate::lint::rules::testing::{codes, codes_with};

    const P: &str = "SET lock_timeout = '1s'; SET statement_timeout = '1min';\n";

    #[test]
    fn volatile_defaults_are_found_by_function_name() {
        assert_eq!(volatile_call("gen_random_uuid()"), Some("gen_random_uuid"));
        assert_eq!(volatile_call("(random() * 10)::int"), Some("random"));
        assert_eq!(volatile_call("now()"), None);
        assert_eq!(volatile_call("my_random()"), None);
    }

    #[test]
    fn rewriting_columns() {
        assert_eq!(
            codes(&format!("{P}ALTER TABLE t ADD COLUMN u uuid DEFAULT gen_random_uuid();")),
            vec!["add-column-volatile-default"]
        );
        assert!(codes(&format!("{P}ALTER TABLE t ADD COLUMN at timestamptz DEFAULT now();")).is_empty());
        let pg10 = LintConfig { pg_version: 10, ..LintConfig::default() };
        assert_eq!(
            codes_with(&format!("{P}ALTER TABLE t ADD COLUMN n int DEFAULT 0;"), &pg10),
            vec!["add-column-volatile-default"]
        );
        assert_eq!(
            codes(&format!("{P}ALTER TABLE t ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY;")),
            vec!["add-column-identity"]
        );
        assert_eq!(
            codes(&format!("{P}ALTER TABLE t ADD COLUMN g int GENERATED ALWAYS AS (a * 2) STORED;")),
            vec!["add-column-generated-stored"]
        );
    }

    #[test]
    fn table_rewrites() {
        assert_eq!(codes(&format!("{P}ALTER TABLE t SET LOGGED;")), vec!["set-table-persistence"]);
        assert_eq!(codes(&format!("{P}ALTER TABLE t SET TABLESPACE fast;")), vec!["set-tablespace"]);
        assert_eq!(codes(&format!("{P}VACUUM FULL t;")), vec!["vacuum-full"]);
        assert_eq!(codes(&format!("{P}CLUSTER t USING i;")), vec!["cluster"]);
    }
}
