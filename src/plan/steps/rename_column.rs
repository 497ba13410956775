//! rename column: the new column is added in expand; dual-write triggers keep old and new in
//! step both ways; the backfill copies existing rows; switch flips the flag; contract drops
//! the old column (the one-way door) and finishes NOT NULL / default on the new one. With a
//! `[[transform]]` the copy uses `up` and the reverse `down` instead of the plain value.

use serde_json::json;

use super::{
    Binding, Ctx, DualWrite, Steps, backfill_step, bare_column, drop_with_trigger, dual_write_steps,
    flag_steps, not_null_steps, online_not_null_undo, set_default_step,
};
use crate::model::{Column, Ident, QualifiedName};
use crate::plan::draft::{Res, StepDraft};
use crate::plan::sqltext::column_value;
use crate::plan::{LockMode, Phase};
use crate::render::qn;

pub fn steps(
    ctx: &Ctx<'_>,
    table: &QualifiedName,
    from: &Column,
    to: &Column,
    up: Option<&str>,
    down: Option<&str>,
) -> Steps {
    let (old, new) = (&from.name, &to.name);
    let cols: Vec<Ident> = ctx
        .current
        .tables
        .values()
        .find(|t| &t.name == table || ctx.hints.table_renames.get(&t.name) == Some(table))
        .map(|t| t.columns.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    let mut all_cols = cols.clone();
    all_cols.push(new.clone());
    let bind = Binding { pairs: vec![] };
    let up_expr = up.map(str::to_string).unwrap_or_else(|| old.quoted_sql());
    let down_expr = match (up, down) {
        (_, Some(d)) => Some(d.to_string()),
        (None, None) => Some(new.quoted_sql()),
        (Some(_), None) => None,
    };
    let dw = DualWrite {
        table,
        named_after: new,
        old,
        new,
        up: bind.apply(&up_expr, "NEW", &all_cols),
        down: down_expr.as_deref().map(|d| bind.apply(d, "NEW", &all_cols)),
    };
    let (flag_insert, flag_switch, flag_delete) = flag_steps(ctx)?;
    let add = StepDraft::new(
        Phase::Expand,
        format!("add the new column {} (nullable, no default, so the trigger can tell what the old release wrote)", new.quoted_sql()),
        ctx.sql("add_column", json!({ "table": qn(table), "column": column_value(&bare_column(to, new)) }))?,
    )
    .rollback(ctx.sql("drop_column", json!({ "table": qn(table), "column": new.as_str(), "if_exists": true }))?)
    .lock(LockMode::AccessExclusive, table)
    .verify(ctx.verify_column(table, new, true)?)
    .needs(ctx.column_needs(table, to))
    .makes([Res::Column(table.clone(), new.clone())]);
    // The new column gets the statistics target the desired schema gives it (the old one's
    // goes with the old column).
    let statistics = to
        .statistics
        .map(|n| {
            let v = |n: i32| {
                ctx.sql(
                    "alter_column",
                    json!({ "table": qn(table), "column": new.as_str(), "action": "statistics", "value": n }),
                )
            };
            Ok::<_, crate::render::RenderError>(
                StepDraft::new(
                    Phase::Expand,
                    format!("set the statistics target of {}", new.quoted_sql()),
                    v(n)?,
                )
                .rollback(v(-1)?)
                .lock(LockMode::ShareUpdateExclusive, table)
                .needs([Res::Column(table.clone(), new.clone())]),
            )
        })
        .transpose()?;
    let (install, removal) = dual_write_steps(ctx, &dw, (old, new))?;
    let copy = backfill_step(ctx, table, new, &bind.apply(&up_expr, "", &all_cols))?;
    let mut steps = vec![add];
    steps.extend(statistics);
    steps.extend([flag_insert, install, copy]);
    let mut contract = Vec::new();
    let finish_nn = if to.not_null {
        let (check, finish) = not_null_steps(ctx, table, new, new, Phase::Backfill)?;
        steps.extend(check);
        finish
    } else {
        Vec::new()
    };
    steps.push(flag_switch);
    if let Some(d) = &to.default {
        steps.push(set_default_step(
            ctx,
            Phase::Switch,
            format!("give {} its default for the new release", new.quoted_sql()),
            table,
            new,
            d,
        )?);
    }
    if from.not_null && from.default.is_none() && down_expr.is_none() {
        let (prepare, undo) = online_not_null_undo(ctx, table, old, Phase::Switch)?;
        steps.extend(prepare);
        steps.push(
            StepDraft::new(
                Phase::Switch,
                "drop NOT NULL on the old column: without a down expression the trigger cannot fill it",
                ctx.sql(
                    "alter_column",
                    json!({ "table": qn(table), "column": old.as_str(), "action": "drop_not_null" }),
                )?,
            )
            .rollback(undo)
            .lock(LockMode::AccessExclusive, table),
        );
    }
    contract.push(drop_with_trigger(
        removal,
        StepDraft::new(
            Phase::Contract,
            format!("drop the old column {} and its data", old.quoted_sql()),
            ctx.sql("drop_column", json!({ "table": qn(table), "column": old.as_str() }))?,
        )
        .lock(LockMode::AccessExclusive, table)
        .verify(ctx.verify_column(table, old, false)?)
        .removes([Res::Column(table.clone(), old.clone())]),
    ));
    contract.extend(finish_nn);
    contract.push(flag_delete);
    steps.extend(contract);
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diff::Change;
    use crate::model::{Ident, QualifiedName};
    use crate::plan::Phase;

    #[test]
    fn five_phases_and_a_lossless_trigger() {
        let cur = schema_with(vec![users()]);
        let mut t = users();
        t.columns[1].name = Ident::exact("full_name").unwrap();
        let des = schema_with(vec![t.clone()]);
        let steps = run(
            &cur,
            &des,
            &Change::RenameColumn {
                table: QualifiedName::of("public", "users"),
                from: users().columns[1].clone(),
                to: t.columns[1].clone(),
                up: None,
                down: None,
            },
        );
        let ph = phases(&steps);
        assert_eq!(
            ph,
            [
                Phase::Expand,
                Phase::Expand,
                Phase::DualWrite,
                Phase::Backfill,
                Phase::Switch,
                Phase::Contract,
                Phase::Contract
            ]
        );
        assert!(steps[2].sql.contains("NEW.full_name := NEW.name;"), "{}", steps[2].sql);
        assert!(steps[2].sql.contains("NEW.name := NEW.full_name;"));
        assert!(steps[2].sql.contains("BEFORE INSERT OR UPDATE OF name, full_name ON public.users"));
        assert_eq!(
            steps[3].backfill.as_ref().unwrap().pending_predicate,
            "full_name IS DISTINCT FROM (name)"
        );
        assert!(steps[5].rollback_sql.is_none(), "dropping the old column is the one-way door");
        // Issue 6: no moment between the trigger's removal and the drop where N's inserts
        // would meet the old column's NOT NULL with nothing filling it.
        let drop = &steps[5].sql;
        let (trigger, column) = (drop.find("DROP TRIGGER").unwrap(), drop.find("DROP COLUMN name").unwrap());
        assert!(trigger < column, "{drop}");
    }
}
