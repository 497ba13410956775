//! How batches walk the table: keyset ranges on a unique NOT NULL btree key (the primary key
//! first), or TID page ranges (`ctid >= '(p,0)' AND ctid < '(q,0)'`, a TID range scan since
//! PostgreSQL 14) when the table has no such key. This file owns every statement the batch
//! loop runs; names enter them only through [`quote_ident`] / `QualifiedName::quoted()`, and
//! key values only as bind parameters (text, cast to the column's type).

use crate::model::quote_ident;

/// A unique NOT NULL key column with its SQL type (`format_type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyColumn {
    pub name: String,
    pub sql_type: String,
}

/// How the table is walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Walk {
    Keyset(Vec<KeyColumn>),
    Tid,
}

impl Walk {
    pub fn kind(&self) -> &'static str {
        match self {
            Walk::Keyset(_) => "key",
            Walk::Tid => "tid",
        }
    }

    pub fn column_names(&self) -> Vec<String> {
        match self {
            Walk::Keyset(cols) => cols.iter().map(|c| c.name.clone()).collect(),
            Walk::Tid => vec!["ctid".to_string()],
        }
    }
}

/// Unique, valid, non-partial btree indexes on plain NOT NULL columns; the primary key first,
/// then the narrowest. `$1`: the table as text (regclass input).
pub(crate) const FIND_KEY_SQL: &str = "\
SELECT array_agg(a.attname::text ORDER BY k.ord), array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY k.ord)
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
 CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
 WHERE i.indrelid = $1::text::regclass AND i.indisunique AND i.indisvalid AND i.indisready
   AND i.indpred IS NULL AND i.indexprs IS NULL AND k.ord <= i.indnkeyatts
 GROUP BY i.indexrelid, i.indisprimary
HAVING bool_and(a.attnotnull)
 ORDER BY i.indisprimary DESC, count(*), i.indexrelid
 LIMIT 1";

/// The types of named columns (an operator-chosen key). `$1` table, `$2` names.
pub(crate) const COLUMN_TYPES_SQL: &str = "\
SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull
  FROM pg_attribute a
 WHERE a.attrelid = $1::text::regclass AND a.attname = ANY($2::text[]) AND a.attnum > 0
   AND NOT a.attisdropped";

/// The statements of one backfill, built once and prepared once per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statements {
    /// Keyset: the key `$n` rows past the cursor (the batch's upper bound, as text[]); no
    /// row when fewer are left. `step_first` has no lower bound. The batch then runs
    /// `update` (or `update_first`) up to it, or `update_last` / `update_all` to the end.
    pub step: String,
    pub step_first: String,
    /// Keyset: `(lower, upper]`; TID: `[lower, upper)`.
    pub update: String,
    /// Keyset: up to `$1…` inclusive (the first batch).
    pub update_first: String,
    /// Keyset: everything past the cursor (the last batch).
    pub update_last: String,
    /// Keyset: the whole table (it has fewer rows than one batch).
    pub update_all: String,
    pub verify: String,
    /// The pending predicate the statements filter on (and the batches re-check).
    pub pending: String,
}

/// Builds every statement for writing `target = (expr)` into `table` where `pending` holds.
/// An empty `pending` means `target IS DISTINCT FROM (expr)`. Verification counts the rows
/// still pending: for a transform that is "new differs from up(old)"; for a fill (`expr` is
/// the value, `pending` is `target IS NULL`) it is "rows still NULL", not "rows whose
/// existing value differs from the fill value". The gate re-counts the same predicate.
pub fn statements(walk: &Walk, table: &str, target: &str, expr: &str, pending: &str) -> Statements {
    statements_up_to(walk, table, target, expr, pending, false)
}

/// [`statements`] for a walk that stops at an upper bound of its own (a slice of a table
/// walked by several workers, `--jobs N`): `step` and `step_first` look for the batch's bound
/// only up to it, given after their other parameters (`step`: `$2n+2…`, `step_first`:
/// `$2…`). The other statements need nothing new: the last batch of a slice is `update` (or
/// `update_first`) with the slice's bound as the batch's.
pub fn statements_up_to(
    walk: &Walk,
    table: &str,
    target: &str,
    expr: &str,
    pending: &str,
    bounded: bool,
) -> Statements {
    let set = format!("UPDATE {table} SET {} = ({expr})", quote_ident(target));
    let pending = pending_predicate(target, expr, pending);
    let pending = pending.as_str();
    let verify =
        format!("SELECT {} count(*) FROM {table} WHERE ({pending})", crate::db::OWN_STATEMENT_MARKER);
    match walk {
        Walk::Keyset(cols) => {
            let n = cols.len();
            let names = cols.iter().map(|c| quote_ident(&c.name)).collect::<Vec<_>>();
            let row = format!("({})", names.join(", "));
            // The bound query qualifies every column with the alias `b`, so `ORDER BY` can
            // never mean an output column of the same name (`id::text` is also named `id`).
            let qualified = names.iter().map(|c| format!("b.{c}")).collect::<Vec<_>>();
            let brow = format!("({})", qualified.join(", "));
            let params = |from: usize| {
                let p = cols
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("CAST(${}::text AS {})", from + i, c.sql_type))
                    .collect::<Vec<_>>();
                format!("({})", p.join(", "))
            };
            let order = qualified.join(", ");
            let lower = params(1);
            let upper_after_lower = params(n + 1);
            let bound = |bound_where: &str, offset: usize| {
                format!(
                    "SELECT ARRAY[{}] FROM {table} AS b{bound_where} ORDER BY {order} OFFSET ${offset} LIMIT 1",
                    qualified.iter().map(|c| format!("{c}::text")).collect::<Vec<_>>().join(", "),
                )
            };
            let (step_where, first_where) = if bounded {
                (
                    format!(" WHERE {brow} > {lower} AND {brow} <= {}", params(n + 2)),
                    format!(" WHERE {brow} <= {}", params(2)),
                )
            } else {
                (format!(" WHERE {brow} > {lower}"), String::new())
            };
            Statements {
                step: bound(&step_where, n + 1),
                step_first: bound(&first_where, 1),
                update: format!(
                    "{set} WHERE {row} > {lower} AND {row} <= {upper_after_lower} AND ({pending})"
                ),
                update_first: format!("{set} WHERE {row} <= {lower} AND ({pending})"),
                update_last: format!("{set} WHERE {row} > {lower} AND ({pending})"),
                update_all: format!("{set} WHERE ({pending})"),
                verify,
                pending: pending.to_string(),
            }
        }
        Walk::Tid => Statements {
            step: String::new(),
            step_first: String::new(),
            update: format!("{set} WHERE ctid >= $1::text::tid AND ctid < $2::text::tid AND ({pending})"),
            update_first: String::new(),
            update_last: String::new(),
            update_all: String::new(),
            verify,
            pending: pending.to_string(),
        },
    }
}

/// The count of rows still pending in one slice of a keyset walk: keys above `$1…` (when
/// `has_lower`) and up to the next `n` parameters (when `has_upper`).
pub fn slice_verify(
    cols: &[KeyColumn],
    table: &str,
    pending: &str,
    has_lower: bool,
    has_upper: bool,
) -> String {
    let row = format!("({})", cols.iter().map(|c| quote_ident(&c.name)).collect::<Vec<_>>().join(", "));
    let params = |from: usize| {
        let p = cols
            .iter()
            .enumerate()
            .map(|(i, c)| format!("CAST(${}::text AS {})", from + i, c.sql_type))
            .collect::<Vec<_>>();
        format!("({})", p.join(", "))
    };
    let mut conditions = Vec::new();
    if has_lower {
        conditions.push(format!("{row} > {}", params(1)));
    }
    if has_upper {
        conditions.push(format!("{row} <= {}", params(if has_lower { cols.len() + 1 } else { 1 })));
    }
    conditions.push(format!("({pending})"));
    format!(
        "SELECT {} count(*) FROM {table} WHERE {}",
        crate::db::OWN_STATEMENT_MARKER,
        conditions.join(" AND ")
    )
}

/// The spec's pending predicate, or the transform's default when it is empty.
pub fn pending_predicate(target: &str, expr: &str, pending: &str) -> String {
    if pending.trim().is_empty() {
        format!("{} IS DISTINCT FROM ({expr})", quote_ident(target))
    } else {
        pending.to_string()
    }
}

/// The table's size in pages right now (TID mode walks up to it).
pub(crate) const PAGES_SQL: &str =
    "SELECT (pg_relation_size($1::text::regclass) / current_setting('block_size')::bigint)::bigint";

/// Rows in the table: the planner's estimate when there is one, else a count.
pub(crate) const ESTIMATE_SQL: &str = "\
SELECT CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint END, c.relpages::bigint
  FROM pg_class c WHERE c.oid = $1::text::regclass";

pub fn tid(page: i64) -> String {
    format!("({page},0)")
}

/// Parses `(p,0)` back into `p`.
pub fn tid_page(text: &str) -> Option<i64> {
    text.trim().strip_prefix('(')?.split(',').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, t: &str) -> KeyColumn {
        KeyColumn { name: name.into(), sql_type: t.into() }
    }

    #[test]
    fn composite_keys_use_row_comparison() {
        let walk = Walk::Keyset(vec![col("tenant", "integer"), col("Id", "bigint")]);
        let s = statements(&walk, "public.t", "new", "old * 2", "new IS DISTINCT FROM (old * 2)");
        assert_eq!(
            s.update,
            "UPDATE public.t SET new = (old * 2) WHERE (tenant, \"Id\") > (CAST($1::text AS integer), \
             CAST($2::text AS bigint)) AND (tenant, \"Id\") <= (CAST($3::text AS integer), \
             CAST($4::text AS bigint)) AND (new IS DISTINCT FROM (old * 2))"
        );
    }

    #[test]
    fn the_bound_is_found_by_key_and_the_update_runs_up_to_it() {
        let walk = Walk::Keyset(vec![col("a", "integer"), col("b", "text")]);
        let s = statements(&walk, "t", "c", "x", "c IS NULL");
        assert_eq!(
            s.step,
            "SELECT ARRAY[b.a::text, b.b::text] FROM t AS b WHERE (b.a, b.b) > \
             (CAST($1::text AS integer), CAST($2::text AS text)) ORDER BY b.a, b.b OFFSET $3 LIMIT 1"
        );
        assert_eq!(
            s.step_first,
            "SELECT ARRAY[b.a::text, b.b::text] FROM t AS b ORDER BY b.a, b.b OFFSET $1 LIMIT 1"
        );
        assert_eq!(
            s.update_first,
            "UPDATE t SET c = (x) WHERE (a, b) <= (CAST($1::text AS integer), CAST($2::text AS text)) AND (c IS NULL)"
        );
    }

    #[test]
    fn a_slice_looks_for_its_bounds_only_up_to_its_end() {
        let walk = Walk::Keyset(vec![col("a", "integer"), col("b", "text")]);
        let s = statements_up_to(&walk, "t", "c", "x", "c IS NULL", true);
        assert_eq!(
            s.step,
            "SELECT ARRAY[b.a::text, b.b::text] FROM t AS b WHERE (b.a, b.b) > \
             (CAST($1::text AS integer), CAST($2::text AS text)) AND (b.a, b.b) <= \
             (CAST($4::text AS integer), CAST($5::text AS text)) ORDER BY b.a, b.b OFFSET $3 LIMIT 1"
        );
        assert_eq!(
            s.step_first,
            "SELECT ARRAY[b.a::text, b.b::text] FROM t AS b WHERE (b.a, b.b) <= \
             (CAST($2::text AS integer), CAST($3::text AS text)) ORDER BY b.a, b.b OFFSET $1 LIMIT 1"
        );
        let Walk::Keyset(cols) = &walk else { unreachable!() };
        assert_eq!(
            slice_verify(cols, "t", "c IS NULL", true, true),
            "SELECT /* seqmig:gate */ count(*) FROM t WHERE (a, b) > (CAST($1::text AS integer), \
             CAST($2::text AS text)) AND (a, b) <= (CAST($3::text AS integer), CAST($4::text AS text)) AND (c IS NULL)"
        );
        assert_eq!(
            slice_verify(cols, "t", "c IS NULL", false, true),
            "SELECT /* seqmig:gate */ count(*) FROM t WHERE (a, b) <= (CAST($1::text AS integer), \
             CAST($2::text AS text)) AND (c IS NULL)"
        );
    }

    #[test]
    fn only_the_target_column_is_written() {
        let walk = Walk::Keyset(vec![col("id", "bigint")]);
        let s = statements(&walk, "public.t", "we\"ird Name", "x", "true");
        for sql in [&s.update, &s.update_last, &s.update_all] {
            assert!(sql.starts_with("UPDATE public.t SET \"we\"\"ird Name\" = (x) WHERE"), "{sql}");
            assert!(!sql.contains("id ="), "{sql}");
        }
    }

    #[test]
    fn an_empty_pending_predicate_means_differs_from_the_expression() {
        let s = statements(&Walk::Tid, "s.t", "New", "old + 1", " ");
        assert_eq!(
            s.verify,
            "SELECT /* seqmig:gate */ count(*) FROM s.t WHERE (\"New\" IS DISTINCT FROM (old + 1))"
        );
    }

    #[test]
    fn tid_ranges_are_half_open_page_ranges() {
        let s = statements(&Walk::Tid, "s.t", "c", "1", "c IS NULL");
        assert_eq!(
            s.update,
            "UPDATE s.t SET c = (1) WHERE ctid >= $1::text::tid AND ctid < $2::text::tid AND (c IS NULL)"
        );
        assert_eq!(s.verify, "SELECT /* seqmig:gate */ count(*) FROM s.t WHERE (c IS NULL)");
        assert_eq!(tid(12), "(12,0)");
        assert_eq!(tid_page("(12,0)"), Some(12));
    }
}
