//! The one integration-test binary: modules per area, sharing one PostgreSQL cluster.

mod harness;

mod backfill_partition_tests;
mod backfill_replica_tests;
mod backfill_tests;
mod backfill_throttle_tests;
mod book_tests;
mod config_tests;
mod drift_tests;
mod dump_clean_tests;
mod effects_tests;
mod exec_examples_tests;
mod exec_tests;
mod gate_tests;
mod harness_tests;
mod inflight_tests;
mod introspect_tests;
mod ledger_tests;
mod lifecycle_model_tests;
mod lint_tests;
mod online_ddl_tests;
mod parse_tests;
mod partition_tests;
mod plan_tests;
mod privileges_tests;
mod rehearse_tests;
mod reliability_faults_tests;
mod reliability_tests;
mod replay_classes_tests;
mod replay_tests;
mod runner_tests;
mod scale_tests;
mod trust_tests;
mod unmodelled_changes_tests;
