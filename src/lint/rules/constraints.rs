//! Constraints added in a way that scans or builds under a strong lock: CHECK and foreign
//! keys without `NOT VALID` (or validated in the same transaction), UNIQUE / PRIMARY KEY
//! without `USING INDEX`, primary keys over nullable columns, exclusion constraints,
//! `SET NOT NULL` without a validated check, partitions attached or detached the blocking
//! way, domain constraints; and, at the end of the file, foreign keys nothing indexed.

use super::{Out, column, finding_at, short};
use crate::finding::{Finding, FindingCode};
use crate::lint::Stmt;
use crate::lint::action::{Action, AlterOp, ConstraintKind, ConstraintSpec, Name};
use crate::lint::context::Ctx;

pub fn check(a: &Action, cx: &Ctx<'_>, out: &mut Out<'_>) {
    match a {
        Action::AlterTable { table, op } if cx.existing(table) => alter(table, op, cx, out),
        Action::AlterTable { table, op: AlterOp::ValidateConstraint(name) }
            if cx.in_tx && cx.not_valid_in_tx.contains(name) =>
        {
            validate_same_tx(table, name, out)
        }
        Action::AlterDomainAddConstraint { domain, not_valid: false } => out.push(
            FindingCode::DomainConstraint,
            short(domain),
            format!(
                "checks every column of every table that uses domain {} while locking them",
                short(domain)
            ),
        ),
        _ => {}
    }
}

fn validate_same_tx(table: &Name, name: &str, out: &mut Out<'_>) {
    out.push(
        FindingCode::ValidateInSameTransaction,
        format!("{}.{}", short(table), name),
        format!("{name} is validated in the transaction that added it, so the validation scan runs under the lock the ADD took until commit"),
    );
}

fn alter(table: &Name, op: &AlterOp, cx: &Ctx<'_>, out: &mut Out<'_>) {
    match op {
        AlterOp::AddConstraint(c) => add_constraint(table, c, cx, out),
        AlterOp::ValidateConstraint(name) if cx.in_tx && cx.not_valid_in_tx.contains(name) => {
            validate_same_tx(table, name, out)
        }
        AlterOp::SetNotNull(col) => set_not_null(table, col, cx, out),
        AlterOp::AttachPartition { child } if cx.existing(child) => {
            let prepared = cx.checks.iter().any(|(name, (t, _))| t == child && cx.validated.contains(name));
            if !prepared {
                out.push(
                    FindingCode::AttachPartitionWithoutCheck,
                    short(child),
                    format!(
                        "attaching {} scans it to prove every row fits the partition bound, holding an ACCESS EXCLUSIVE lock on it",
                        short(child)
                    ),
                );
            }
        }
        AlterOp::DetachPartition { child, concurrently: false } => out.push_with_help(
            FindingCode::DetachPartitionNonConcurrently,
            short(child),
            format!("detaching {} takes an ACCESS EXCLUSIVE lock on {}: every query on the partitioned table waits", short(child), short(table)),
            if cx.config.pg_version >= 14 {
                "use DETACH PARTITION … CONCURRENTLY, outside a transaction block"
            } else {
                "DETACH PARTITION … CONCURRENTLY needs PostgreSQL 14; until then detach in a maintenance window"
            },
        ),
        _ => {}
    }
}

fn add_constraint(table: &Name, c: &ConstraintSpec, cx: &Ctx<'_>, out: &mut Out<'_>) {
    let object = format!("{}.{}", short(table), c.name.as_deref().unwrap_or("(unnamed)"));
    match &c.kind {
        ConstraintKind::PrimaryKey { columns, using_index } | ConstraintKind::Unique { columns, using_index } => {
            let pk = matches!(c.kind, ConstraintKind::PrimaryKey { .. });
            let what = if pk { "primary key" } else { "unique constraint" };
            if using_index.is_none() {
                out.push(
                    FindingCode::AddUniqueWithoutIndex,
                    object.clone(),
                    format!("the {what} builds its index under an ACCESS EXCLUSIVE lock on {}: no reads or writes until it is built", short(table)),
                );
            }
            if pk {
                let columns = match using_index {
                    Some(index) => index_columns(index, table, cx),
                    None => columns.clone(),
                };
                let nullable: Vec<&String> =
                    columns.iter().filter(|col| cx.is_known_nullable(table, col)).collect();
                if !nullable.is_empty() {
                    let list = nullable.iter().map(|c| column(table, c)).collect::<Vec<_>>().join(", ");
                    out.push(
                        FindingCode::PrimaryKeyNullableColumn,
                        object,
                        format!("the primary key sets {list} NOT NULL, scanning the table under an ACCESS EXCLUSIVE lock"),
                    );
                }
            }
        }
        ConstraintKind::Exclude => out.push(
            FindingCode::ExclusionConstraint,
            object,
            format!("the exclusion constraint builds its index under an ACCESS EXCLUSIVE lock on {}", short(table)),
        ),
        ConstraintKind::Check { .. } if !c.not_valid => out.push(
            FindingCode::CheckWithoutNotValid,
            object,
            format!("every row of {} is checked under an ACCESS EXCLUSIVE lock: no reads or writes until the scan ends", short(table)),
        ),
        ConstraintKind::ForeignKey { references, .. } if !c.not_valid => out.push(
            FindingCode::ForeignKeyWithoutNotValid,
            object,
            format!(
                "every row of {} is checked against {} under SHARE ROW EXCLUSIVE locks on both: writes to both stop until the scan ends",
                short(table),
                short(references)
            ),
        ),
        ConstraintKind::NotNull { column: col } if !c.not_valid => set_not_null(table, col, cx, out),
        _ => {}
    }
}

/// The columns of the index a `… USING INDEX i` names, when this file created it.
fn index_columns(index: &str, table: &Name, cx: &Ctx<'_>) -> Vec<String> {
    cx.indexes
        .iter()
        .rev()
        .find(|(name, t, _)| t.schema == table.schema && name.as_deref() == Some(index))
        .map(|(_, _, cols)| cols.clone())
        .unwrap_or_default()
}

fn set_not_null(table: &Name, col: &str, cx: &Ctx<'_>, out: &mut Out<'_>) {
    if cx.config.pg_version >= 12 && cx.has_validated_not_null_check(table, col) {
        return;
    }
    let help = if cx.config.pg_version >= 18 {
        "add the constraint as NOT NULL … NOT VALID (ALTER TABLE … ADD CONSTRAINT c NOT NULL col NOT VALID), then VALIDATE CONSTRAINT c in a separate transaction"
    } else if cx.config.pg_version >= 12 {
        "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it in a separate transaction, then SET NOT NULL (the validated check lets PostgreSQL skip the scan) and drop the check"
    } else {
        "before PostgreSQL 12 SET NOT NULL always scans; keep a validated CHECK (col IS NOT NULL) NOT VALID constraint instead of the column constraint"
    };
    out.push_with_help(
        FindingCode::SetNotNull,
        column(table, col),
        format!(
            "setting {} NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock",
            column(table, col)
        ),
        help,
    );
}

/// Foreign keys added by the file whose referencing columns no index of the file leads with.
pub fn finish(stmts: &[Stmt], cx: &mut Ctx<'_>, found: &mut Vec<Finding>) {
    for s in stmts {
        for a in &s.actions {
            let fks: Vec<(&Name, &ConstraintSpec)> = match a {
                Action::CreateTable { table, constraints, .. } => {
                    constraints.iter().map(|c| (table, c)).collect()
                }
                Action::AlterTable { table, op: AlterOp::AddConstraint(c) } => vec![(table, c)],
                _ => Vec::new(),
            };
            for (table, c) in fks {
                let ConstraintKind::ForeignKey { columns, .. } = &c.kind else { continue };
                if columns.is_empty() {
                    continue;
                }
                let indexed = cx.indexes.iter().any(|(_, t, cols)| t == table && cols.starts_with(columns));
                if !indexed {
                    let list = columns.join(", ");
                    found.push(finding_at(
                        FindingCode::ForeignKeyWithoutIndex,
                        s,
                        format!("{}({list})", short(table)),
                        format!(
                            "no index on {}({list}): deletes and key updates on the referenced table scan {} for every row",
                            short(table),
                            short(table)
                        ),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::LintConfig;
    use crate::lint::rules::testing::{codes, codes_with};

    const P: &str = "SET lock_timeout = '1s'; SET statement_timeout = '1min';\n";

    #[test]
    fn constraints_need_not_valid_and_a_separate_validation() {
        assert_eq!(
            codes(&format!("{P}ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0);")),
            vec!["check-without-not-valid"]
        );
        assert!(codes(&format!("{P}ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT c;")).is_empty());
        assert_eq!(
            codes(&format!(
                "{P}BEGIN;\nALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT c;\nCOMMIT;"
            )),
            vec!["access-exclusive-held", "validate-in-same-transaction"]
        );
        assert_eq!(
            codes(&format!(
                "{P}ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES u (id);\nCREATE INDEX CONCURRENTLY i ON t (u);"
            )),
            vec!["foreign-key-without-not-valid"]
        );
    }

    #[test]
    fn unique_and_primary_keys() {
        assert_eq!(
            codes(&format!("{P}ALTER TABLE t ADD CONSTRAINT k UNIQUE (a);")),
            vec!["add-unique-without-index"]
        );
        assert_eq!(
            codes(&format!("{P}ALTER TABLE t ADD COLUMN id bigint;\nALTER TABLE t ADD PRIMARY KEY (id);")),
            vec!["add-unique-without-index", "primary-key-nullable-column"]
        );
        // Nullability of a column the files never mention is not guessed.
        assert_eq!(
            codes(&format!("{P}ALTER TABLE t ADD PRIMARY KEY (id);")),
            vec!["add-unique-without-index"]
        );
        assert!(codes(&format!("{P}CREATE UNIQUE INDEX CONCURRENTLY k ON t (a);\nALTER TABLE t ADD CONSTRAINT k UNIQUE USING INDEX k;")).is_empty());
        assert_eq!(
            codes(&format!("{P}ALTER TABLE t ADD CONSTRAINT x EXCLUDE USING gist (r WITH &&);")),
            vec!["exclusion-constraint"]
        );
    }

    #[test]
    fn set_not_null_needs_a_validated_check_and_version_matters() {
        assert_eq!(codes(&format!("{P}ALTER TABLE t ALTER COLUMN a SET NOT NULL;")), vec!["set-not-null"]);
        let recipe = format!(
            "{P}ALTER TABLE t ADD CONSTRAINT a_nn CHECK (a IS NOT NULL) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT a_nn;\nALTER TABLE t ALTER COLUMN a SET NOT NULL;"
        );
        assert!(codes(&recipe).is_empty());
        let pg11 = LintConfig { pg_version: 11, ..LintConfig::default() };
        assert_eq!(codes_with(&recipe, &pg11), vec!["set-not-null"]);
    }

    #[test]
    fn a_validated_check_follows_its_column_through_a_rename() {
        let sql = format!(
            "{P}ALTER TABLE t ADD COLUMN a__new bigint;\nALTER TABLE t ADD CONSTRAINT nn CHECK (a__new IS NOT NULL) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT nn;\nCREATE UNIQUE INDEX CONCURRENTLY k ON t (a__new);\nALTER TABLE t RENAME COLUMN a TO a__old; -- seqmig:ignore rename-column\nALTER TABLE t RENAME COLUMN a__new TO a;\nALTER TABLE t ALTER COLUMN a SET NOT NULL;\nALTER TABLE t ADD CONSTRAINT t_pkey PRIMARY KEY USING INDEX k;"
        );
        assert!(codes(&sql).is_empty(), "{:?}", codes(&sql));
    }

    #[test]
    fn foreign_keys_want_an_index() {
        assert_eq!(
            codes("CREATE TABLE a (id bigint PRIMARY KEY, b_id bigint REFERENCES b (id));"),
            vec!["foreign-key-without-index"]
        );
        assert!(codes("CREATE TABLE a (id bigint PRIMARY KEY, b_id bigint REFERENCES b (id));\nCREATE INDEX a_b ON a (b_id);").is_empty());
    }
}
