//! The model-based lifecycle test of `lifecycle_model_tests` on the backfill shapes the
//! plain table does not reach: a table walked in key-range slices by two workers (`--jobs 2`
//! or `[backfill] jobs = 2`), and RANGE, LIST and HASH partitioned tables walked partition by
//! partition. Besides the operations of the plain model, these kill the runner right after a
//! backfill batch commits (`SEQMIG_FAULT_AFTER_BATCHES`), with 1 to 3 workers, so that a
//! resume finds slices and partitions half walked, and possibly another worker count. The
//! tables hold 1500 rows per slice or partition, two batches or more each.
//!
//! `SEQMIG_MODEL2_CASES` (default 3 per test) and `SEQMIG_MODEL_SEED` choose the run;
//! `SEQMIG_MODEL_OPS` the operations per sequence, as for the plain model.

use crate::lifecycle_model_tests::{Shape, model_run_shape};
use crate::reliability_tests::env_number;

fn cases() -> u64 {
    env_number("SEQMIG_MODEL2_CASES", 3)
}

fn seed(default: u64) -> u64 {
    env_number("SEQMIG_MODEL_SEED", default)
}

/// The plain table, split into two key-range slices by `[backfill] jobs = 2`; 3000 rows, so
/// that each slice takes more than one batch (the first covers 1000 rows).
pub(crate) fn sliced_by_config() -> Shape {
    Shape { config: "\n[backfill]\njobs = 2\n".into(), backfill_kills: true, rows: 3000, ..Shape::plain() }
}

/// The plain table, split into two slices by `apply --phase backfill --jobs 2`.
pub(crate) fn sliced_by_flag() -> Shape {
    Shape { jobs: Some(2), backfill_kills: true, rows: 3000, ..Shape::plain() }
}

/// `public.orders` partitioned with `partitioning` (`BY RANGE (id)`) into `partitions`
/// (the `PARTITION OF` clauses after the table name), before and after.
fn partitioned(key: &str, extra: &str, partitioning: &str, partitions: &[(&str, &str)]) -> (String, String) {
    let ddl = |cols: &str| {
        let mut s = format!(
            "CREATE TABLE public.orders (id bigint NOT NULL, {extra}{cols}, PRIMARY KEY ({key})) PARTITION BY {partitioning};\n"
        );
        for (name, bound) in partitions {
            s.push_str(&format!("CREATE TABLE public.{name} PARTITION OF public.orders {bound};\n"));
        }
        s
    };
    (
        ddl("price numeric(12,2) NOT NULL, name text NOT NULL"),
        ddl("price_cents bigint NOT NULL, title text NOT NULL"),
    )
}

/// RANGE on `id`, three partitions; rows the writers insert land in the last.
pub(crate) fn range_partitioned() -> Shape {
    let (before, after) = partitioned(
        "id",
        "",
        "RANGE (id)",
        &[
            ("orders_low", "FOR VALUES FROM (MINVALUE) TO (1500)"),
            ("orders_mid", "FOR VALUES FROM (1500) TO (3000)"),
            ("orders_high", "FOR VALUES FROM (3000) TO (MAXVALUE)"),
        ],
    );
    Shape { before, after, jobs: Some(2), backfill_kills: true, rows: 4500, ..Shape::plain() }
}

/// LIST on a `region` column the migration does not touch, with a default partition; the
/// seed spreads rows over three regions, the writers insert into region 1. Jobs from the file.
pub(crate) fn list_partitioned() -> Shape {
    let (before, after) = partitioned(
        "id, region",
        "region int NOT NULL DEFAULT 1, ",
        "LIST (region)",
        &[("orders_r0", "FOR VALUES IN (0)"), ("orders_r1", "FOR VALUES IN (1)"), ("orders_rest", "DEFAULT")],
    );
    Shape {
        before,
        after,
        after_seed: "UPDATE public.orders SET region = id % 3;".into(),
        config: "\n[backfill]\njobs = 2\n".into(),
        backfill_kills: true,
        rows: 4500,
        ..Shape::plain()
    }
}

/// HASH on `id`, four partitions, three workers.
pub(crate) fn hash_partitioned() -> Shape {
    let parts: Vec<(String, String)> = (0..4)
        .map(|r| (format!("orders_h{r}"), format!("FOR VALUES WITH (MODULUS 4, REMAINDER {r})")))
        .collect();
    let parts: Vec<(&str, &str)> = parts.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let (before, after) = partitioned("id", "", "HASH (id)", &parts);
    Shape { before, after, jobs: Some(3), backfill_kills: true, rows: 6000, ..Shape::plain() }
}

#[test]
fn lifecycle_model_sliced_backfill_jobs_from_config() {
    model_run_shape("lifecycle model (slices, [backfill] jobs = 2)", &sliced_by_config(), seed(31), cases());
}

#[test]
fn lifecycle_model_sliced_backfill_jobs_flag() {
    model_run_shape("lifecycle model (slices, --jobs 2)", &sliced_by_flag(), seed(32), cases());
}

#[test]
fn lifecycle_model_range_partitioned() {
    model_run_shape("lifecycle model (RANGE partitions, --jobs 2)", &range_partitioned(), seed(33), cases());
}

#[test]
fn lifecycle_model_list_partitioned() {
    model_run_shape("lifecycle model (LIST partitions, jobs = 2)", &list_partitioned(), seed(34), cases());
}

#[test]
fn lifecycle_model_hash_partitioned() {
    model_run_shape("lifecycle model (HASH partitions, --jobs 3)", &hash_partitioned(), seed(35), cases());
}

/// A fixed path through a half-walked backfill, on slices, RANGE partitions and HASH
/// partitions: killed after the first batch, dual_write rolled back (no triggers), the old
/// release writes over rows already walked, killed again with another worker count, two
/// phases rolled back, more writes, then the plan driven to its end. The re-applied backfill
/// must not trust the walked slices and partitions: the data must equal the twin's.
#[test]
fn lifecycle_model_half_walked_backfill_rolled_back_under_writes() {
    use crate::lifecycle_model_tests::{Op, replay};
    for shape in [sliced_by_flag(), range_partitioned(), hash_partitioned()] {
        replay(
            &shape,
            &[
                Op::KillBackfill(1, 2),
                Op::Rollback(1),
                Op::OldWrites(3),
                Op::KillBackfill(3, 1),
                Op::Rollback(2),
                Op::OldWrites(4),
            ],
        );
    }
}
