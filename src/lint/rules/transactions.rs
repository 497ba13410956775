//! Transaction shape: nested and unclosed transactions, `CONCURRENTLY` inside a transaction
//! block, statements queued behind an ACCESS EXCLUSIVE lock, and the timeouts that should be
//! set before DDL that locks an existing table.

use super::{Out, finding_at, short};
use crate::finding::{Finding, FindingCode};
use crate::lint::Stmt;
use crate::lint::action::{Action, AlterOp};
use crate::lint::context::{Ctx, Lock};

pub fn check(s: &Stmt, a: &Action, cx: &mut Ctx<'_>, out: &mut Out<'_>) {
    match a {
        Action::Begin if cx.in_tx => out.push(
            FindingCode::NestedTransaction,
            "transaction",
            "begin inside an open transaction is ignored, so the first commit ends both",
        ),
        Action::CreateIndex { concurrently: true, table, .. } if cx.in_tx => {
            concurrent(out, "create index concurrently", short(table))
        }
        Action::DropIndex { concurrently: true, names } if cx.in_tx => {
            concurrent(out, "drop index concurrently", names.iter().map(short).collect::<Vec<_>>().join(", "))
        }
        Action::Reindex { concurrently: true, target } if cx.in_tx => {
            concurrent(out, "reindex concurrently", target.clone())
        }
        Action::AlterTable { table, op: AlterOp::DetachPartition { concurrently: true, .. } } if cx.in_tx => {
            concurrent(out, "detach partition concurrently", short(table))
        }
        _ => {}
    }

    if !matches!(a, Action::Commit | Action::Rollback) && !cx.exclusive_reported {
        if let Some((table, held_at)) = &cx.exclusive_holder {
            if *held_at != s.span {
                out.push(
                    FindingCode::AccessExclusiveHeld,
                    short(table),
                    format!(
                        "the ACCESS EXCLUSIVE lock on {} taken at line {} is held while this statement runs, blocking every read and write of the table until commit",
                        short(table),
                        held_at.line
                    ),
                );
                cx.exclusive_reported = true;
            }
        }
    }

    if let Some((lock, table)) = cx.lock_of(a) {
        if lock >= Lock::Share && !cx.timeout_reported {
            if !cx.lock_timeout {
                out.push(
                    FindingCode::MissingLockTimeout,
                    short(&table),
                    format!(
                        "this statement waits for {} on {} with no lock_timeout; while it waits, every query on the table queues behind it",
                        lock.describe(),
                        short(&table)
                    ),
                );
            }
            if !cx.statement_timeout {
                out.push(
                    FindingCode::MissingStatementTimeout,
                    short(&table),
                    format!(
                        "nothing bounds how long this statement holds {} on {}",
                        lock.describe(),
                        short(&table)
                    ),
                );
            }
            cx.timeout_reported = true;
        }
    }
}

fn concurrent(out: &mut Out<'_>, what: &str, object: String) {
    out.push(
        FindingCode::ConcurrentlyInTransaction,
        object,
        format!(
            "{what} cannot run inside a transaction block; PostgreSQL rejects it and the migration fails"
        ),
    );
}

pub fn finish(stmts: &[Stmt], cx: &mut Ctx<'_>, found: &mut Vec<Finding>) {
    if let Some(span) = &cx.tx_span {
        if let Some(s) = stmts.iter().find(|s| &s.span == span) {
            found.push(finding_at(
                FindingCode::UnclosedTransaction,
                s,
                "transaction".into(),
                "this transaction is never committed in the file; the runner either rolls it back or leaves it open holding its locks".into(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::LintConfig;
    use crate::lint::rules::testing::{codes, codes_with};

    #[test]
    fn concurrently_inside_begin_is_rejected() {
        assert_eq!(
            codes("BEGIN; CREATE INDEX CONCURRENTLY i ON t (a); COMMIT;"),
            vec!["concurrently-in-transaction"]
        );
        assert!(codes("CREATE INDEX CONCURRENTLY i ON t (a);").is_empty());
    }

    #[test]
    fn nested_and_unclosed() {
        assert_eq!(codes("BEGIN; BEGIN; COMMIT;"), vec!["nested-transaction"]);
        assert_eq!(codes("BEGIN; SELECT 1;"), vec!["unclosed-transaction"]);
        let wrapped = LintConfig { assume_in_transaction: true, ..LintConfig::default() };
        assert_eq!(codes_with("BEGIN; COMMIT;", &wrapped), vec!["nested-transaction"]);
    }

    #[test]
    fn statements_after_access_exclusive_in_one_transaction() {
        let sql = "SET lock_timeout = '1s'; SET statement_timeout = '1min';\nBEGIN;\nALTER TABLE t ADD COLUMN a int;\nUPDATE t SET a = 1 WHERE id = 3;\nCOMMIT;";
        assert_eq!(codes(sql), vec!["access-exclusive-held"]);
    }

    #[test]
    fn timeouts_are_required_once_before_locking_ddl() {
        assert_eq!(
            codes("ALTER TABLE t ADD COLUMN a int; ALTER TABLE t ADD COLUMN b int;"),
            vec!["missing-lock-timeout", "missing-statement-timeout"]
        );
        assert!(
            codes("SET lock_timeout = '2s'; SET statement_timeout = '5min'; ALTER TABLE t ADD COLUMN a int;")
                .is_empty()
        );
        assert_eq!(
            codes("SET lock_timeout = 0; SET statement_timeout = '5min'; ALTER TABLE t ADD COLUMN a int;"),
            vec!["missing-lock-timeout"]
        );
    }
}
