//! sqlx and Rails runner files (issue 23), driven by the real `sqlx` CLI and ActiveRecord's
//! own migrator on a real database with writers, phase by phase, as `runner_tests` does for
//! psql, sqitch, Alembic, Django and node-pg-migrate: the contract migration is refused while
//! the gate is closed and runs once an open verdict is recorded; `seqmig status` then shows
//! the plan complete. Missing runner binaries fail the tests.

use crate::runner_tests::{RENAME, Runner, TYPE_CHANGE, concurrently_case, run_case};

#[test]
fn issue23_1_sqlx_runs_the_phases_rename() {
    run_case(Runner::Sqlx, &RENAME);
}

#[test]
fn issue23_1_sqlx_runs_the_phases_type_change() {
    run_case(Runner::Sqlx, &TYPE_CHANGE);
}

/// Example 14's `CONCURRENTLY` steps each run alone in a `-- no-transaction` migration.
#[test]
fn issue23_1_sqlx_runs_concurrently_steps_outside_transactions_and_break_glass_is_audited() {
    concurrently_case(Runner::Sqlx);
}

#[test]
fn issue23_2_rails_runs_the_phases_rename() {
    run_case(Runner::Rails, &RENAME);
}

#[test]
fn issue23_2_rails_runs_the_phases_type_change() {
    run_case(Runner::Rails, &TYPE_CHANGE);
}

/// Example 14's `CONCURRENTLY` steps run in `disable_ddl_transaction!` migrations.
#[test]
fn issue23_2_rails_runs_concurrently_steps_outside_transactions_and_break_glass_is_audited() {
    concurrently_case(Runner::Rails);
}
