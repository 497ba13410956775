//! change type (same name). Binary-coercible changes (`varchar(20)` → `varchar(50)`,
//! `varchar` → `text`) are one catalog-only `ALTER COLUMN … TYPE` in expand. Everything
//! else goes through a shadow column: added in expand, kept in step by dual-write triggers
//! (`up` / `down`), filled by the backfill, indexes rebuilt on it concurrently; at switch
//! one short transaction swaps the names (and the trigger, defaults, owned sequences, the
//! flag); contract drops the parked old column — the one-way door — and renames the
//! rebuilt indexes into place.

use serde_json::json;

use super::{
    Binding, Ctx, DualWrite, Steps, backfill_step, bare_column, concurrent_index_step, drop_with_trigger,
    dual_write_sql, dual_write_steps, flag_steps, not_null_steps,
};
use crate::diff::TypeChange;
use crate::model::{Column, Constraint, ConstraintKind, Ident, Index, ObjectRef, OpaqueKind, QualifiedName};
use crate::plan::draft::{Res, StepDraft};
use crate::plan::sqltext::{column_value, constraint_def, derived_name, index_value};
use crate::plan::{LockMode, Phase};
use crate::render::RenderError;
use crate::render::qn;

pub fn shadow_name(column: &Ident) -> Ident {
    derived_name(column.as_str(), "__seqmig_new")
}

pub fn parked_name(column: &Ident) -> Ident {
    derived_name(column.as_str(), "__seqmig_old")
}

/// Objects PostgreSQL binds to a column itself (its attribute number), not to its name: a
/// trigger's `UPDATE OF` list and `WHEN`, a policy's expressions, a rule's action, extended
/// statistics, column privileges, a `BEGIN ATOMIC` routine body. Renamed aside by the swap, they would stay on the parked column: a trigger
/// firing on it, a policy filtering on it, and the contract's drop of it failing with 2BP01
/// (or, for statistics, taking them with it). So the swap drops each of them and creates it
/// again from its text, which binds by name to the column that now has the name; the undo
/// does the same after the names are back. At switch every object of the desired schema
/// exists as the desired text says (expand created or replaced it) and the current schema's
/// others still exist (contract drops them). Returns those statements.
fn rebind_sql(ctx: &Ctx<'_>, table: &QualifiedName, column: &Ident) -> Result<Vec<String>, RenderError> {
    let mut out = Vec::new();
    let at_switch = ctx
        .desired
        .opaque
        .values()
        .chain(ctx.current.opaque.values().filter(|o| !ctx.desired.opaque.contains_key(&o.id)));
    for o in at_switch {
        if !crate::parse::lex::mentions(&o.text, column.as_str()) {
            continue;
        }
        let on_table =
            || o.depends_on.contains(table) || super::opaque::named_relations(ctx, o).contains(table);
        match o.id.kind {
            OpaqueKind::Trigger | OpaqueKind::Policy | OpaqueKind::Rule | OpaqueKind::Statistics
                if on_table() =>
            {
                let Some(drop) = super::opaque::drop_sql(ctx, o) else { continue };
                out.push(drop);
                out.push(super::opaque::statement(o));
            }
            // Column privileges (`GRANT SELECT (id, total) …`) live on the attribute: granted
            // again, they reach the column that now has the name.
            OpaqueKind::Grant if on_table() => out.push(super::opaque::statement(o)),
            // A `BEGIN ATOMIC` body is parsed at creation and depends on the attribute;
            // replaced, it is parsed again.
            OpaqueKind::Function | OpaqueKind::Procedure
                if o.text.to_ascii_lowercase().contains("begin atomic") && on_table() =>
            {
                let Some(replace) = super::opaque::or_replace(o) else { continue };
                out.push(replace);
            }
            _ => continue,
        }
        if o.search_path.is_some() {
            // What follows in the transaction resolves names as before.
            out.push("SET LOCAL search_path TO DEFAULT;".into());
        }
    }
    Ok(out)
}

pub fn steps(ctx: &Ctx<'_>, tc: &TypeChange) -> Steps {
    let (table, c) = (&tc.table, &tc.to.name);
    if tc.in_place {
        // PostgreSQL keeps the default through the new type, respelt with a cast to the type
        // it had (`'CHAT'::text` on a column changed back to varchar): the column's own
        // default is set again after the type, so each way ends with the default as written.
        let ty = |t: &Column| -> Result<String, RenderError> {
            let mut sql = ctx.sql(
                "alter_column",
                json!({ "table": qn(table), "column": c.as_str(), "action": "type", "value": t.data_type }),
            )?;
            if let Some(d) = &t.default {
                sql.push('\n');
                sql.push_str(&ctx.sql(
                    "alter_column",
                    json!({ "table": qn(table), "column": c.as_str(), "action": "set_default", "value": d }),
                )?);
            }
            Ok(sql)
        };
        return Ok(vec![
            StepDraft::new(
                Phase::Expand,
                format!(
                    "change the type of {} to {} in place (binary-coercible: no rewrite)",
                    c.quoted_sql(),
                    tc.to.data_type
                ),
                ty(&tc.to)?,
            )
            .rollback(ty(&tc.from)?)
            .lock(LockMode::AccessExclusive, table)
            .removes([Res::Column(table.clone(), c.clone())])
            .makes([Res::Column(table.clone(), c.clone())]),
        ]);
    }
    let shadow = shadow_name(c);
    let parked = parked_name(c);
    let mut cols: Vec<Ident> = ctx
        .desired
        .tables
        .get(table)
        .map(|t| t.columns.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    cols.push(shadow.clone());
    // Before the swap: `c` in up is the old column, `c` in down the shadow.
    let before_up = Binding { pairs: vec![] };
    let before_down = Binding { pairs: vec![(c, shadow.clone())] };
    // After the swap: `c` in up is the parked old column, `c` in down the new one.
    let after_up = Binding { pairs: vec![(c, parked.clone())] };
    let after_down = Binding { pairs: vec![] };
    let dw_before = DualWrite {
        table,
        named_after: c,
        old: c,
        new: &shadow,
        up: before_up.apply(&tc.up, "NEW", &cols),
        down: tc.down.as_deref().map(|d| before_down.apply(d, "NEW", &cols)),
    };
    let mut cols_after = cols.clone();
    cols_after.push(parked.clone());
    let dw_after = DualWrite {
        table,
        named_after: c,
        old: &parked,
        new: c,
        up: after_up.apply(&tc.up, "NEW", &cols_after),
        down: tc.down.as_deref().map(|d| after_down.apply(d, "NEW", &cols_after)),
    };

    let (flag_insert, _flag_switch, flag_delete) = flag_steps(ctx)?;
    let add = StepDraft::new(
        Phase::Expand,
        format!("add the shadow column {} {} (nullable, no default)", shadow.quoted_sql(), tc.to.data_type),
        ctx.sql(
            "add_column",
            json!({ "table": qn(table), "column": column_value(&bare_column(&tc.to, &shadow)) }),
        )?,
    )
    .rollback(
        ctx.sql("drop_column", json!({ "table": qn(table), "column": shadow.as_str(), "if_exists": true }))?,
    )
    .lock(LockMode::AccessExclusive, table)
    .verify(ctx.verify_column(table, &shadow, true)?)
    .needs(ctx.column_needs(table, &tc.to))
    .makes([Res::Column(table.clone(), shadow.clone())]);
    let (install, _) = dual_write_steps(ctx, &dw_before, (c, &shadow))?;
    let (_, removal) = dual_write_steps(ctx, &dw_after, (&parked, c))?;
    let copy = backfill_step(ctx, table, &shadow, &before_up.apply(&tc.up, "", &cols))?;
    let mut steps = vec![add, flag_insert, install, copy];

    // Indexes over the column, rebuilt on the shadow under a temporary name.
    let mut renames = Vec::new();
    for idx in &tc.indexes {
        let tmp = derived_name(idx.name.name.as_str(), "_seqmig_new");
        let tmp_q = QualifiedName::new(idx.name.schema.clone(), tmp.clone());
        if ctx.current.tables.get(table).is_some_and(|t| t.is_partitioned()) {
            // PostgreSQL refuses CONCURRENTLY on a partitioned table: built per partition and
            // attached (plan/steps/partition.rs); each partition's index renamed with it.
            let spec = super::partition::Spec {
                phase: Phase::Backfill,
                rename: Some((c, &shadow)),
                suffix: Some("_seqmig_new"),
            };
            let (mut built, child_renames) = super::partition::index_steps_as(ctx, idx, &tmp_q, &spec)?;
            if let Some(first) = built.first_mut() {
                first.needs.push(Res::Data(table.clone(), shadow.clone()));
            }
            steps.append(&mut built);
            for (from, to) in child_renames {
                renames.push(
                    StepDraft::new(
                        Phase::Contract,
                        format!("give the rebuilt partition index its name {}", to.name.quoted_sql()),
                        ctx.sql(
                            "rename",
                            json!({ "kind": "index", "object": qn(&from), "to": to.name.as_str() }),
                        )?,
                    )
                    .rollback(ctx.sql(
                        "rename",
                        json!({ "kind": "index", "object": qn(&to), "to": from.name.as_str() }),
                    )?)
                    .lock(LockMode::ShareUpdateExclusive, table)
                    .makes([Res::Index(to.clone())]),
                );
            }
        } else {
            steps.push(
                concurrent_index_step(
                    ctx,
                    Phase::Backfill,
                    format!(
                        "build index {} on the shadow column without blocking writes",
                        idx.name.name.quoted_sql()
                    ),
                    ctx.sql(
                        "create_index",
                        json!({ "index": index_value(idx, &tmp, true, Some((c, &shadow))) }),
                    )?,
                    &tmp_q,
                    table,
                )?
                .verify(ctx.verify(json!({ "kind": "index", "index_text": tmp_q.quoted() }))?)
                .needs([Res::Data(table.clone(), shadow.clone())]),
            );
        }
        renames.push(
            StepDraft::new(
                Phase::Contract,
                format!("give the rebuilt index its name {}", idx.name.name.quoted_sql()),
                ctx.sql(
                    "rename",
                    json!({ "kind": "index", "object": qn(&tmp_q), "to": idx.name.name.as_str() }),
                )?,
            )
            .rollback(
                ctx.sql("rename", json!({ "kind": "index", "object": qn(&idx.name), "to": tmp.as_str() }))?,
            )
            .lock(LockMode::ShareUpdateExclusive, table)
            .makes([Res::Index(idx.name.clone())]),
        );
    }
    // Unique indexes for the primary key / unique constraints, built on the shadow column.
    let mut unique_tmp = Vec::new();
    for con in tc
        .constraints
        .iter()
        .filter(|k| matches!(k.kind, ConstraintKind::PrimaryKey { .. } | ConstraintKind::Unique { .. }))
    {
        let tmp = derived_name(con.name.as_str(), "_seqmig_new");
        let idx = super::add_unique::backing_index(table, con, &tmp);
        steps.push(
            concurrent_index_step(
                ctx,
                Phase::Backfill,
                format!(
                    "build the unique index for {} on the shadow column without blocking writes",
                    con.name.quoted_sql()
                ),
                ctx.sql(
                    "create_index",
                    json!({ "index": index_value(&idx, &tmp, true, Some((c, &shadow))) }),
                )?,
                &idx.name,
                table,
            )?
            .verify(ctx.verify(json!({ "kind": "index", "index_text": idx.name.quoted() }))?)
            .needs([Res::Data(table.clone(), shadow.clone())]),
        );
        unique_tmp.push((con, tmp, idx));
    }
    let finish_nn = if tc.to.not_null {
        let (check, finish) = not_null_steps(ctx, table, &shadow, c, Phase::Backfill)?;
        steps.extend(check);
        finish
    } else {
        Vec::new()
    };

    // The swap: names, trigger body, default, owned sequences, flag — one transaction.
    let mut swap = Vec::new();
    let mut unswap = Vec::new();
    let drop_con = |t: &QualifiedName, k: &Constraint| {
        ctx.sql("drop_constraint", json!({ "table": qn(t), "name": k.name.as_str() }))
    };
    let add_con = |t: &QualifiedName, k: &Constraint, not_valid: bool| {
        ctx.sql("add_constraint", json!({ "table": qn(t), "name": k.name.as_str(), "definition": constraint_def(k), "not_valid": not_valid }))
    };
    // Constraints over the old column let go of it (foreign keys pointing at it first).
    for (t, k) in &tc.incoming {
        swap.push(drop_con(t, k)?);
    }
    for (t, k) in &tc.incoming {
        unswap.push(drop_con(t, k)?);
    }
    for k in &tc.constraints {
        swap.push(drop_con(table, k)?);
        unswap.push(drop_con(table, k)?);
    }
    swap.push(ctx.sql("swap_columns", json!({ "table": qn(table), "column": c.as_str(), "shadow": shadow.as_str(), "parked": parked.as_str() }))?);
    unswap.push(ctx.sql("swap_columns", json!({ "table": qn(table), "column": c.as_str(), "shadow": parked.as_str(), "parked": shadow.as_str() }))?);
    let mut validate = Vec::new();
    let mut unswap_nullability = Vec::new();
    let mut pre_swap = Vec::new();
    for k in &tc.constraints {
        match unique_tmp.iter().find(|(con, _, _)| con.name == k.name) {
            Some((con, tmp, _)) => {
                if matches!(con.kind, ConstraintKind::PrimaryKey { .. }) {
                    // Proven by the validated helper check: no scan under the lock.
                    swap.push(ctx.sql(
                        "alter_column",
                        json!({ "table": qn(table), "column": c.as_str(), "action": "set_not_null" }),
                    )?);
                    // Undo: the shadow was nullable before switch (dropping the key leaves
                    // NOT NULL behind), guarded by the helper check alone.
                    unswap_nullability.push(ctx.sql(
                        "alter_column",
                        json!({ "table": qn(table), "column": shadow.as_str(), "action": "drop_not_null" }),
                    )?);
                }
                let attach = |index: &Ident| {
                    ctx.sql("add_constraint_using_index", json!({ "table": qn(table), "name": con.name.as_str(), "primary": matches!(con.kind, ConstraintKind::PrimaryKey { .. }), "index": index.as_str(), "deferrable": con.deferrable, "initially_deferred": con.initially_deferred }))
                };
                swap.push(attach(tmp)?);
                // Undo: the old column gets its constraint back on a standby index built
                // beforehand, never under the swap's lock; the shadow's index, consumed by the
                // swap, is rebuilt concurrently after the swap back (see the steps below).
                let standby = derived_name(con.name.as_str(), "_seqmig_old");
                unswap.push(attach(&standby)?);
                let on_old = super::add_unique::backing_index(table, con, &standby);
                let on_shadow = super::add_unique::backing_index(table, con, tmp);
                let build = |idx: &Index, name: &Ident, rename| {
                    ctx.sql(
                        "create_index",
                        json!({ "index": index_value(idx, name, true, rename), "if_not_exists": true }),
                    )
                };
                let standby_q = QualifiedName::new(table.schema.clone(), standby.clone());
                pre_swap.push(
                    concurrent_index_step(
                        ctx,
                        Phase::Switch,
                        format!(
                            "build a standby unique index {} on the old column without blocking writes: undoing switch gives {} back to it",
                            standby.quoted_sql(),
                            con.name.quoted_sql()
                        ),
                        build(&on_old, &standby, None)?,
                        &standby_q,
                        table,
                    )?
                    .verify(ctx.verify(json!({ "kind": "index", "index_text": standby_q.quoted() }))?),
                );
                let rebuild = build(&on_shadow, tmp, Some((c, &shadow)))?;
                pre_swap.push(
                    StepDraft::new(
                        Phase::Switch,
                        format!(
                            "check the shadow's unique index {} is there (no-op); undoing switch rebuilds it without blocking writes",
                            tmp.quoted_sql()
                        ),
                        rebuild.clone(),
                    )
                    .rollback(rebuild)
                    .outside_transaction()
                    .lock(LockMode::ShareUpdateExclusive, table)
                    .verify(ctx.verify(json!({ "kind": "index", "index_text": on_shadow.name.quoted() }))?),
                );
            }
            None => {
                // Re-added NOT VALID (no scan under the lock) and validated in its own step;
                // exclusion constraints cannot be NOT VALID, and one that never was valid
                // stays as it was.
                let later = k.validated && !matches!(k.kind, ConstraintKind::Exclusion { .. });
                let not_valid = later || !k.validated;
                swap.push(add_con(table, k, not_valid)?);
                unswap.push(add_con(table, k, not_valid)?);
                if later {
                    validate.push((table.clone(), k.clone()));
                }
            }
        }
    }
    for (t, k) in &tc.incoming {
        swap.push(add_con(t, k, true)?);
        unswap.push(add_con(t, k, true)?);
        if k.validated {
            validate.push((t.clone(), k.clone()));
        }
    }
    swap.push(dual_write_sql(ctx, &dw_after, false)?);
    unswap.push(dual_write_sql(ctx, &dw_before, false)?);
    if tc.from.default.is_some() {
        swap.push(ctx.sql(
            "alter_column",
            json!({ "table": qn(table), "column": parked.as_str(), "action": "drop_default" }),
        )?);
    }
    if let Some(d) = &tc.to.default {
        swap.push(ctx.sql(
            "alter_column",
            json!({ "table": qn(table), "column": c.as_str(), "action": "set_default", "value": d }),
        )?);
        unswap.push(ctx.sql(
            "alter_column",
            json!({ "table": qn(table), "column": shadow.as_str(), "action": "drop_default" }),
        )?);
    }
    if let Some(d) = &tc.from.default {
        unswap.push(ctx.sql(
            "alter_column",
            json!({ "table": qn(table), "column": c.as_str(), "action": "set_default", "value": d }),
        )?);
    }
    for s in &tc.owned_sequences {
        swap.push(ctx.sql(
            "sequence",
            json!({ "action": "owned_by", "name": qn(s), "table": qn(table), "column": c.as_str() }),
        )?);
        unswap.push(ctx.sql(
            "sequence",
            json!({ "action": "owned_by", "name": qn(s), "table": qn(table), "column": c.as_str() }),
        )?);
    }
    if tc.from.not_null && tc.down.is_none() {
        swap.push(ctx.sql(
            "alter_column",
            json!({ "table": qn(table), "column": parked.as_str(), "action": "drop_not_null" }),
        )?);
        // Without `down`, rows written by N after switch have no old value: undoing the
        // switch then fails here, loudly, instead of handing N-1 rows it cannot read.
        unswap_nullability.push(ctx.sql(
            "alter_column",
            json!({ "table": qn(table), "column": c.as_str(), "action": "set_not_null" }),
        )?);
    }
    unswap.extend(unswap_nullability);
    swap.push(ctx.flag_sql("set", "new")?);
    unswap.push(ctx.flag_sql("set", "old")?);
    // The attribute's own settings stay with the parked column: the new one gets the
    // desired statistics target and comment (the original keeps its own for the undo).
    let desired = ctx.desired.tables.get(table).and_then(|t| t.columns.iter().find(|x| &x.name == c));
    if let Some(n) = desired.and_then(|x| x.statistics) {
        swap.push(ctx.sql(
            "alter_column",
            json!({ "table": qn(table), "column": c.as_str(), "action": "statistics", "value": n }),
        )?);
    }
    let comment = ObjectRef::new("column", crate::diff::column_object(table, c));
    if let Some(text) = ctx.desired.comments.get(&comment) {
        swap.push(ctx.sql(
            "comment",
            json!({ "kind": "column", "target": comment.identity, "name": null, "text": text }),
        )?);
        let shadow_ref = crate::diff::column_object(table, &shadow);
        unswap.push(
            ctx.sql(
                "comment",
                json!({ "kind": "column", "target": shadow_ref, "name": null, "text": null }),
            )?,
        );
    }
    if desired.and_then(|x| x.statistics).is_some() {
        unswap.push(ctx.sql(
            "alter_column",
            json!({ "table": qn(table), "column": shadow.as_str(), "action": "statistics", "value": -1 }),
        )?);
    }
    let rebind = rebind_sql(ctx, table, c)?;
    swap.extend(rebind.iter().cloned());
    unswap.extend(rebind);
    let unswap_sql = unswap.join("\n");
    steps.extend(pre_swap);
    // Undoing the swap re-adds these constraints NOT VALID; the rollback of switch runs its
    // steps last first, so a step placed before the swap is the one whose undo can validate
    // them again once the swap back has committed. Applied, it finds them valid: no scan.
    for (t, k) in &validate {
        let sql = ctx.sql("validate_constraint", json!({ "table": qn(t), "name": k.name.as_str() }))?;
        steps.push(
            StepDraft::new(
                Phase::Switch,
                format!(
                    "check {} is validated before the swap (no scan); undoing switch validates it again without blocking writes",
                    k.name.quoted_sql()
                ),
                sql.clone(),
            )
            .rollback(sql)
            .lock(LockMode::ShareUpdateExclusive, t)
            .verify(
                ctx.verify(
                    json!({ "kind": "constraint", "table_text": t.quoted(), "name": k.name.as_str() }),
                )?,
            ),
        );
    }
    steps.push(
        StepDraft::new(
            Phase::Switch,
            format!(
                "swap: {} becomes the {} column, the old one is parked as {}",
                c.quoted_sql(),
                tc.to.data_type,
                parked.quoted_sql()
            ),
            swap.join("\n"),
        )
        .rollback(unswap_sql)
        .lock(LockMode::AccessExclusive, table)
        .verify(ctx.verify_flag("new")?)
        .needs([Res::Data(table.clone(), shadow.clone())])
        .removes([Res::Column(table.clone(), c.clone())])
        .makes([Res::Column(table.clone(), c.clone()), Res::Column(table.clone(), parked.clone())]),
    );
    for (t, k) in &validate {
        steps.push(
            StepDraft::new(
                Phase::Switch,
                format!("validate {} on the new column without blocking writes", k.name.quoted_sql()),
                ctx.sql("validate_constraint", json!({ "table": qn(t), "name": k.name.as_str() }))?,
            )
            .rollback("-- nothing to undo: validation changes no data".into())
            .lock(LockMode::ShareUpdateExclusive, t)
            .scans()
            .verify(
                ctx.verify(
                    json!({ "kind": "constraint", "table_text": t.quoted(), "name": k.name.as_str() }),
                )?,
            ),
        );
    }
    steps.push(drop_with_trigger(
        removal,
        StepDraft::new(
            Phase::Contract,
            format!("drop the parked old column {} and its data", parked.quoted_sql()),
            ctx.sql("drop_column", json!({ "table": qn(table), "column": parked.as_str() }))?,
        )
        .lock(LockMode::AccessExclusive, table)
        .verify(ctx.verify_column(table, &parked, false)?)
        .removes([Res::Column(table.clone(), parked.clone())]),
    ));
    // The sequence feeding the column is widened last (issue 17.5): before this, the parked
    // old column still gets every value through the dual-write trigger and could not hold
    // one above its type's maximum.
    for (from, to) in &tc.widen_sequences {
        let alter = |s: &crate::model::Sequence| {
            ctx.sql(
                "sequence",
                json!({
                    "action": "alter", "name": qn(&s.name), "data_type": s.data_type, "increment": s.increment,
                    "min_value": s.min_value, "max_value": s.max_value, "cache": s.cache, "cycle": s.cycle,
                }),
            )
        };
        steps.push(
            StepDraft::new(
                Phase::Contract,
                format!(
                    "widen sequence {} to {}: the column can hold its values now the old column is gone",
                    to.name, to.data_type
                ),
                alter(to)?,
            )
            .rollback(alter(from)?)
            .lock(LockMode::RowExclusive, &to.name)
            .needs([Res::Sequence(to.name.clone())])
            .after_removal([Res::Column(table.clone(), parked.clone())]),
        );
    }
    steps.extend(renames);
    steps.extend(finish_nn);
    steps.push(flag_delete);
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::diff::Change;
    use crate::plan::Phase;

    /// `users.id` from bigint to `to`'s numeric by a shadow column, with the key constraints
    /// and incoming foreign keys given.
    fn id_to_numeric(
        to: &crate::model::Table,
        constraints: Vec<Constraint>,
        incoming: Vec<(QualifiedName, Constraint)>,
    ) -> Change {
        Change::ChangeType(TypeChange {
            table: QualifiedName::of("public", "users"),
            from: users().columns[0].clone(),
            to: to.columns[0].clone(),
            up: "id::numeric".into(),
            down: Some("id::bigint".into()),
            in_place: false,
            indexes: vec![],
            owned_sequences: vec![],
            constraints,
            incoming,
            widen_sequences: vec![],
        })
    }

    #[test]
    fn shadow_swap_and_parked_drop() {
        let cur = schema_with(vec![users()]);
        let mut t = users();
        t.columns[0].data_type = "numeric".into();
        let des = schema_with(vec![t.clone()]);
        let steps = run(&cur, &des, &id_to_numeric(&t, vec![], vec![]));
        let ph = phases(&steps);
        assert_eq!(ph.first(), Some(&Phase::Expand));
        assert!(ph.windows(2).all(|w| w[0] <= w[1]));
        let swap = steps.iter().find(|s| s.phase == Phase::Switch).unwrap();
        assert!(swap.sql.contains("RENAME COLUMN id TO id__seqmig_old;"));
        assert!(swap.sql.contains("NEW.id := NEW.id__seqmig_old::numeric;"), "{}", swap.sql);
        assert!(swap.sql.contains("NEW.id__seqmig_old := NEW.id::bigint;"));
        let install = steps.iter().find(|s| s.phase == Phase::DualWrite).unwrap();
        assert!(install.sql.contains("NEW.id__seqmig_new := NEW.id::numeric;"), "{}", install.sql);
        assert!(install.sql.contains("NEW.id := NEW.id__seqmig_new::bigint;"));
        let drop = steps.iter().find(|s| s.sql.contains("DROP COLUMN id__seqmig_old")).unwrap();
        assert!(drop.rollback_sql.is_none());
    }

    /// Issue 6/9: undoing the switch of a key's type change must give back the schema before
    /// it: the shadow nullable again and the incoming foreign key validated, the latter by a
    /// step of its own after the swap back (never a scan under the swap's lock).
    #[test]
    fn undoing_the_switch_restores_nullability_and_validates_incoming_keys() {
        let mut sessions = crate::model::Table::new(QualifiedName::of("public", "sessions"));
        sessions.columns.push(Column::new(Ident::exact("user_id").unwrap(), "bigint"));
        let fk = fk_to_users("sessions_user_id_fkey", "user_id", Default::default());
        sessions.constraints.insert(fk.name.clone(), fk.clone());
        let cur = schema_with(vec![users(), sessions.clone()]);
        let mut t = users();
        t.columns[0].data_type = "numeric".into();
        let des = schema_with(vec![t.clone(), sessions]);
        let steps = run(
            &cur,
            &des,
            &id_to_numeric(
                &t,
                users().constraints.values().cloned().collect(),
                vec![(QualifiedName::of("public", "sessions"), fk)],
            ),
        );
        let switch: Vec<&StepDraft> = steps.iter().filter(|s| s.phase == Phase::Switch).collect();
        let validate = "ALTER TABLE public.sessions VALIDATE CONSTRAINT sessions_user_id_fkey;";
        // Rolled back last first: the pre-swap steps' undo runs after the swap back. The key
        // goes back to a standby index built concurrently before the swap, and the shadow's
        // index (consumed by the swap) is rebuilt concurrently.
        let rollbacks: Vec<&str> = switch.iter().map(|s| s.rollback_sql.as_deref().unwrap()).collect();
        assert_eq!(
            switch[0].sql,
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_pkey_seqmig_old ON public.users (id);"
        );
        assert!(!switch[0].transactional);
        assert_eq!(
            rollbacks[1],
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_pkey_seqmig_new ON public.users (id__seqmig_new);"
        );
        assert_eq!(rollbacks[2], validate);
        let unswap = rollbacks[3];
        assert!(unswap.contains("PRIMARY KEY USING INDEX users_pkey_seqmig_old;"), "{unswap}");
        assert!(unswap.contains("REFERENCES public.users (id) NOT VALID;"), "{unswap}");
        for slow in ["VALIDATE", "CREATE UNIQUE INDEX", "PRIMARY KEY (id)"] {
            assert!(!unswap.contains(slow), "no scan or build under the swap's lock: {unswap}");
        }
        assert!(
            unswap.contains("ALTER TABLE public.users ALTER COLUMN id__seqmig_new DROP NOT NULL;"),
            "{unswap}"
        );
        assert_eq!(switch[4].sql, validate);
    }

    #[test]
    fn binary_coercible_is_one_step() {
        let mut t = users();
        t.columns[1].data_type = "character varying(20)".into();
        let cur = schema_with(vec![t.clone()]);
        let mut t2 = t.clone();
        t2.columns[1].data_type = "text".into();
        let des = schema_with(vec![t2.clone()]);
        let steps = run(
            &cur,
            &des,
            &Change::ChangeType(TypeChange {
                table: QualifiedName::of("public", "users"),
                from: t.columns[1].clone(),
                to: t2.columns[1].clone(),
                up: "name::text".into(),
                down: None,
                in_place: true,
                indexes: vec![],
                owned_sequences: vec![],
                constraints: vec![],
                incoming: vec![],
                widen_sequences: vec![],
            }),
        );
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].sql, "ALTER TABLE public.users ALTER COLUMN name TYPE text;");
    }
}
