//! A new partition of a partitioned table that exists already (issue 21, lifecycle).
//! `CREATE TABLE … PARTITION OF` takes an ACCESS EXCLUSIVE lock on the parent: every query on
//! every partition waits behind it. `ALTER TABLE … ATTACH PARTITION` takes only SHARE UPDATE
//! EXCLUSIVE on the parent (reads and writes continue), but scans the new table under an
//! ACCESS EXCLUSIVE lock to prove each row fits the bound, and scans the parent's DEFAULT
//! partition the same way to prove none of its rows belongs to the new bound. So:
//!
//! 1. `CREATE TABLE` standalone, in the partition's shape (the parent's CHECK constraints
//!    included: PostgreSQL refuses to attach a table that lacks one, "child table is missing
//!    constraint"), with the partition's indexes (the table is empty, so they are instant);
//! 2. a `CHECK` matching the bound, `NOT VALID`, then `VALIDATE` (SHARE UPDATE EXCLUSIVE);
//! 3. with a DEFAULT partition, a `CHECK (NOT bound)` on it, `NOT VALID`, then `VALIDATE`:
//!    the scan of the default runs here, without blocking writes, and fails loudly if rows
//!    of the new bound sit in it (`default-partition-scan` says so at plan time);
//! 4. `ATTACH PARTITION`: both scans are skipped, the checks imply the constraints;
//! 5. the helper checks are dropped.

use serde_json::json;

use super::{Ctx, Steps};
use crate::model::{Bound, ConstraintKind, Ident, Index, QualifiedName, Table};
use crate::plan::draft::{Res, StepDraft};
use crate::plan::sqltext::{column_value, constraint_def, derived_name, index_value};
use crate::plan::{LockMode, Phase};
use crate::render::{qn, quote_literal};

/// Whether `table` is a new partition of a partitioned table that exists already.
pub fn applies(ctx: &Ctx<'_>, table: &Table) -> bool {
    table
        .partition_of
        .as_ref()
        .is_some_and(|p| ctx.current.tables.get(&p.parent).is_some_and(Table::is_partitioned))
}

/// Whether `table` is a new partition attached before its parent's own changes: the parent's
/// columns or CHECK constraints change in the same plan, so the partition is created in the
/// parent's current shape, attached first in `expand`, and every later step on the parent
/// (columns added, dropped, renamed, shadow columns, triggers, checks, indexes) reaches it
/// through PostgreSQL. Attached in the final shape it was refused (SQLSTATE 42804): the parent
/// has that shape only in `contract`.
pub fn attached_early(ctx: &Ctx<'_>, table: &Table) -> bool {
    let Some(p) = &table.partition_of else { return false };
    !ctx.current.tables.contains_key(&table.name)
        && ctx
            .current
            .tables
            .get(&p.parent)
            .filter(|t| t.is_partitioned())
            .zip(ctx.desired.tables.get(&p.parent))
            .is_some_and(|(now, then)| now.partition_shape_changes(then))
}

/// The CHECK expression PostgreSQL accepts as proof of `bound` on a partition of `parent`
/// (ATTACH then logs "partition constraint … is implied by existing constraints"): the form
/// of `pg_get_partition_constraintdef` for a one-column RANGE or LIST key, and
/// `satisfies_hash_partition` for HASH. `None` for a DEFAULT bound, an expression key or a
/// RANGE key of several columns (whose constraint PostgreSQL simplifies in ways a CHECK
/// need not imply); the attach then scans, which on a new table costs nothing.
pub fn bound_check(parent: &Table, bound: &Bound) -> Option<String> {
    let cols = parent.partition_columns()?;
    match bound {
        Bound::Default => None,
        Bound::Range { from, to } => {
            let [c] = cols.as_slice() else { return None };
            let c = c.quoted_sql();
            let mut parts = vec![format!("{c} IS NOT NULL")];
            let lower = from.first()?;
            if !lower.eq_ignore_ascii_case("minvalue") {
                parts.push(format!("{c} >= {lower}"));
            }
            let upper = to.first()?;
            if !upper.eq_ignore_ascii_case("maxvalue") {
                parts.push(format!("{c} < {upper}"));
            }
            Some(parts.join(" AND "))
        }
        Bound::List(items) => {
            let [c] = cols.as_slice() else { return None };
            let c = c.quoted_sql();
            let (nulls, values): (Vec<&String>, Vec<&String>) =
                items.iter().partition(|v| v.eq_ignore_ascii_case("null"));
            let inside = (!values.is_empty()).then(|| {
                format!("{c} IN ({})", values.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", "))
            });
            Some(match (nulls.is_empty(), inside) {
                (true, Some(inside)) => format!("{c} IS NOT NULL AND {inside}"),
                (false, Some(inside)) => format!("{c} IS NULL OR {inside}"),
                (false, None) => format!("{c} IS NULL"),
                (true, None) => return None,
            })
        }
        Bound::Hash { modulus, remainder } => Some(format!(
            "satisfies_hash_partition({}::regclass, {modulus}, {remainder}, {})",
            quote_literal(&parent.name.quoted()),
            cols.iter().map(|c| c.quoted_sql()).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// The name of a helper check on `table`.
pub fn helper_name(table: &QualifiedName, suffix: &str) -> Ident {
    derived_name(table.name.as_str(), suffix)
}

/// The CHECK constraints a partition of `parent` must carry in `schema`: the parent's and its
/// ancestors' (the model keeps a check on the table that declares it).
fn inherited_checks<'a>(
    schema: &'a crate::model::Schema,
    parent: &QualifiedName,
) -> Vec<&'a crate::model::Constraint> {
    let mut out = Vec::new();
    let mut at = schema.tables.get(parent);
    while let Some(t) = at {
        out.extend(
            t.constraints
                .values()
                .filter(|c| matches!(c.kind, ConstraintKind::Check { no_inherit: false, .. })),
        );
        at = t.partition_of.as_ref().and_then(|p| schema.tables.get(&p.parent));
    }
    out
}

pub fn steps(ctx: &Ctx<'_>, table: &Table) -> Steps {
    build(ctx, table, false)
}

/// A table that exists on its own, with rows, attached as a partition: the same steps
/// without the `CREATE TABLE`. The check's `VALIDATE` scans its rows without blocking
/// writes, so the attach skips the scan under its lock.
pub fn steps_existing(ctx: &Ctx<'_>, table: &Table) -> Steps {
    build(ctx, table, true)
}

fn build(ctx: &Ctx<'_>, table: &Table, existing: bool) -> Steps {
    let t = &table.name;
    let p = table.partition_of.as_ref().expect("applies() checked it");
    let parent_now = &ctx.current.tables[&p.parent];
    let parent = ctx.desired.tables.get(&p.parent).unwrap_or(parent_now);
    let early = !existing && attached_early(ctx, table);

    // 1. The table on its own, in the partition's shape: the final one, or, attached before
    // the parent changes, the parent's current one (a column the desired partition has under
    // the same name and type keeps its definition there).
    let shape = if early {
        let mut s = table.clone();
        s.columns = parent_now
            .columns
            .iter()
            .map(|c| {
                table
                    .column(&c.name)
                    .filter(|d| d.data_type == c.data_type && d.not_null == c.not_null)
                    .unwrap_or(c)
                    .clone()
            })
            .collect();
        s
    } else {
        table.clone()
    };
    let (checks_from, keep_index) = if early { (ctx.current, true) } else { (ctx.desired, false) };
    let mut constraints: Vec<_> = table
        .constraints
        .values()
        .filter(|c| !matches!(c.kind, ConstraintKind::ForeignKey { .. }))
        .map(|c| json!({ "name": c.name.as_str(), "definition": constraint_def(c) }))
        .collect();
    for c in inherited_checks(checks_from, &p.parent) {
        if !table.constraints.contains_key(&c.name) {
            constraints.push(json!({ "name": c.name.as_str(), "definition": constraint_def(c) }));
        }
    }
    let mut sql = ctx.sql(
        "create_table",
        json!({
            "table": qn(t),
            "unlogged": table.persistence == crate::model::Persistence::Unlogged,
            "columns": shape.columns.iter().map(column_value).collect::<Vec<_>>(),
            "constraints": constraints,
            "partition_of": null,
            "bound": null,
            "inherits": [],
            "partition_key": table.partition_key,
            "options": table.options,
        }),
    )?;
    // The partition's own copies of the parent's indexes, under the names the desired
    // schema gives them; ATTACH finds them and attaches them instead of building its own.
    // Attached before the parent changes, only the copies of indexes the parent has now
    // unchanged: its new or changed indexes are built on this partition with the others
    // (plan/steps/partition.rs), and ATTACH creates copies of those it drops later.
    for (child, of) in ctx.desired.index_attachments.iter() {
        if keep_index && ctx.current.indexes.get(of) != ctx.desired.indexes.get(of) {
            continue;
        }
        if let Some(i) = ctx.desired.indexes.get(child).filter(|i| &i.table == t) {
            let plain = Index { only: false, ..i.clone() };
            sql.push('\n');
            sql.push_str(
                &ctx.sql("create_index", json!({ "index": index_value(&plain, &child.name, false, None) }))?,
            );
        }
    }
    let (needs, makes) = super::create_table::table_needs_and_makes(ctx, t, &shape);
    let mut out = Vec::new();
    let create = vec![
        StepDraft::new(
            Phase::Expand,
            format!(
                "create {t} on its own, in the shape of a partition of {} (empty; no lock on the parent)",
                p.parent
            ),
            sql,
        )
        .rollback(ctx.sql("drop_table", json!({ "table": qn(t), "if_exists": true }))?)
        .lock(LockMode::AccessExclusive, t)
        .verify(ctx.verify(json!({ "kind": "relation", "rel_text": t.quoted(), "present": true }))?)
        .needs(needs)
        .makes(makes),
    ];
    if !existing {
        out.extend(create);
    }

    // 2. and 3. Checks that let the attach skip its scans.
    let bound = table.bound();
    let leaf = !table.is_partitioned();
    let own_check = bound.as_ref().filter(|_| leaf).and_then(|b| bound_check(parent, b));
    let default = ctx
        .current
        .partitions_of(&p.parent)
        .into_iter()
        .find(|d| d.bound() == Some(Bound::Default) && !d.is_partitioned() && &d.name != t)
        .map(|d| d.name.clone());
    let default_check = default.as_ref().and(bound.as_ref().and_then(|b| bound_check(parent, b)));
    let mut helpers: Vec<(QualifiedName, Ident)> = Vec::new();
    let mut add_helper =
        |on: &QualifiedName, name: Ident, expr: String, why: String, out: &mut Vec<StepDraft>| {
            let drop = ctx.sql(
                "drop_constraint",
                json!({ "table": qn(on), "name": name.as_str(), "if_exists": true }),
            )?;
            out.push(
                StepDraft::new(
                    Phase::Expand,
                    format!("add CHECK ({expr}) NOT VALID on {on}: {why}"),
                    ctx.sql(
                        "add_check",
                        json!({ "table": qn(on), "name": name.as_str(), "expr": expr, "not_valid": true }),
                    )?,
                )
                .rollback(drop)
                .lock(LockMode::AccessExclusive, on),
            );
            out.push(
                StepDraft::new(
                    Phase::Expand,
                    format!("validate {} on {on} without blocking writes", name.quoted_sql()),
                    ctx.sql("validate_constraint", json!({ "table": qn(on), "name": name.as_str() }))?,
                )
                .rollback("-- nothing to undo: validating changes no data".into())
                .lock(LockMode::ShareUpdateExclusive, on)
                .scans(),
            );
            helpers.push((on.clone(), name));
            Ok::<(), crate::render::RenderError>(())
        };
    if let Some(expr) = &own_check {
        add_helper(
            t,
            helper_name(t, "_seqmig_bound"),
            expr.clone(),
            "the attach then skips its scan under the lock".into(),
            &mut out,
        )?;
    }
    if let (Some(d), Some(expr)) = (&default, &default_check) {
        add_helper(
            d,
            helper_name(d, "_seqmig_not_bound"),
            format!("NOT ({expr})"),
            format!(
                "proves no row of {t}'s bound is in the default partition, so the attach does not scan it"
            ),
            &mut out,
        )?;
    }

    // 4. The attach.
    let mut attach_purpose = format!(
        "attach {t} to {} (SHARE UPDATE EXCLUSIVE on the parent: reads and writes continue)",
        p.parent
    );
    if own_check.is_none() {
        if existing {
            attach_purpose.push_str(&format!(
                "; {t} is scanned under an ACCESS EXCLUSIVE lock (no CHECK can prove its bound), and it holds rows"
            ));
        } else {
            attach_purpose.push_str(&format!("; {t} is scanned under the lock, and it is empty"));
        }
    }
    match (&default, &default_check) {
        (Some(d), None) => attach_purpose
            .push_str(&format!("; the default partition {d} is scanned under an ACCESS EXCLUSIVE lock")),
        (Some(d), Some(_)) => attach_purpose.push_str(&format!(
            "; ACCESS EXCLUSIVE on the default partition {d}, briefly (its scan is skipped)"
        )),
        _ => {}
    }
    let mut attach_needs = vec![Res::Table(t.clone()), Res::Table(p.parent.clone())];
    attach_needs.extend(ctx.desired.partitions_of(t).into_iter().map(|c| Res::Table(c.name.clone())));
    // The parent's new indexes first: ATTACH PARTITION then attaches the partition's own
    // copy of each (created with the table) to the parent's index. Attached before the
    // parent's index exists, the copy stays unattached and the parent's index invalid
    // (found by the reliability generator: a new partition and a new index in one plan).
    // Attached before the parent changes, the parent's new indexes come after instead, and
    // are built on this partition too.
    if !early {
        attach_needs.extend(
            ctx.desired
                .indexes
                .values()
                .filter(|i| i.table == p.parent && !ctx.current.indexes.contains_key(&i.name))
                .map(|i| Res::Index(i.name.clone())),
        );
    }
    let attach = StepDraft::new(
        Phase::Expand,
        attach_purpose,
        ctx.sql("attach_partition", json!({ "parent": qn(&p.parent), "table": qn(t), "bound": p.bound }))?,
    )
    // Undone with a plain DETACH: a rollback runs in a transaction, which CONCURRENTLY
    // refuses; the ACCESS EXCLUSIVE lock on the parent is brief (catalog only).
    .rollback(format!(
        "{} -- seqmig:ignore detach-partition-non-concurrently{}",
        ctx.sql(
            "detach_partition",
            json!({ "parent": qn(&p.parent), "table": qn(t), "concurrently": false }),
        )?,
        if existing { String::new() } else { move_back(parent_now, t) }
    ))
    .needs(attach_needs)
    .verify(ctx.verify(json!({ "kind": "partition", "table_text": t.quoted(), "attached": true }))?);
    let attach = if early { attach.leads([p.parent.clone()]) } else { attach };
    // SHARE UPDATE EXCLUSIVE on the parent; ACCESS EXCLUSIVE on the partition and on the
    // default partition (brief once its scan is skipped): queries reaching them wait for the
    // attach (PostgreSQL 15, pg_locks: tests/lock_modes_tests.rs).
    let mut locks = vec![(LockMode::ShareUpdateExclusive, &p.parent), (LockMode::AccessExclusive, t)];
    if let Some(d) = &default {
        locks.push((LockMode::AccessExclusive, d));
    }
    out.push(attach.lock_each(&locks));

    // 5. The helpers are no longer needed: the partition constraint holds now.
    for (on, name) in helpers {
        out.push(
            StepDraft::new(
                Phase::Expand,
                format!(
                    "drop the helper check {} on {on}: the partition constraint holds now",
                    name.quoted_sql()
                ),
                ctx.sql(
                    "drop_constraint",
                    json!({ "table": qn(&on), "name": name.as_str(), "if_exists": true }),
                )?,
            )
            .rollback("-- nothing to undo: the check was only needed for the attach".into())
            .lock(LockMode::AccessExclusive, &on),
        );
    }
    Ok(out)
}

/// After the undo of an attach: the rows written into the new partition `t` since, moved back
/// through `parent` (its columns as before the plan, which the rollback has restored by then),
/// so they land where the old release would have written them, in the default partition.
/// Where no partition takes them the INSERT fails (SQLSTATE 23514, *no partition of relation
/// … found for row*) and rolls the detach back with it: the rollback stops at this step with
/// the rows still attached, never dropping them with the table.
fn move_back(parent: &Table, t: &QualifiedName) -> String {
    let cols: Vec<String> =
        parent.columns.iter().filter(|c| c.generated.is_none()).map(|c| c.name.quoted_sql()).collect();
    let overriding =
        if parent.columns.iter().any(|c| c.identity.is_some()) { " OVERRIDING SYSTEM VALUE" } else { "" };
    format!(
        "\n-- the rows written into {t} since it was attached go back through {} (to its default partition); with no partition to take them this fails and the rollback stops here, keeping them\nINSERT INTO {} ({}){overriding} SELECT {} FROM {};",
        parent.name,
        parent.name.quoted(),
        cols.join(", "),
        cols.join(", "),
        t.quoted()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent(key: &str) -> Table {
        let mut t = Table::new(QualifiedName::of("public", "events"));
        t.partition_key = Some(key.into());
        t
    }

    #[test]
    fn checks_matching_each_bound() {
        let range = Bound::Range { from: vec!["'2025-01-01'".into()], to: vec!["'2026-01-01'".into()] };
        assert_eq!(
            bound_check(&parent("RANGE (at)"), &range).unwrap(),
            "at IS NOT NULL AND at >= '2025-01-01' AND at < '2026-01-01'"
        );
        let open = Bound::Range { from: vec!["MINVALUE".into()], to: vec!["10".into()] };
        assert_eq!(bound_check(&parent("RANGE (n)"), &open).unwrap(), "n IS NOT NULL AND n < 10");
        let list = Bound::List(vec!["'us'".into(), "NULL".into()]);
        assert_eq!(
            bound_check(&parent("LIST (region)"), &list).unwrap(),
            "region IS NULL OR region IN ('us')"
        );
        let hash = Bound::Hash { modulus: 4, remainder: 1 };
        assert_eq!(
            bound_check(&parent("HASH (id)"), &hash).unwrap(),
            "satisfies_hash_partition('public.events'::regclass, 4, 1, id)"
        );
        assert_eq!(bound_check(&parent("RANGE (a, b)"), &range), None);
        assert_eq!(bound_check(&parent("RANGE (a)"), &Bound::Default), None);
    }
}
