//! drop column: switch flips the flag (the new release stops reading and writing the
//! column) and, for a NOT NULL column without default, gives it the `[[fill]]` as default,
//! or without one drops NOT NULL, so the new release can insert without it; contract
//! optionally renames it away (brownout) and drops it — the one-way door.

use serde_json::json;

use super::{Ctx, Steps, online_not_null_undo, retire_flag_steps, set_default_step};
use crate::model::{Column, QualifiedName};
use crate::plan::draft::{Res, StepDraft};
use crate::plan::sqltext::derived_name;
use crate::plan::{LockMode, Phase};
use crate::render::qn;

pub fn steps(ctx: &Ctx<'_>, table: &QualifiedName, column: &Column, fill: Option<&str>) -> Steps {
    let c = &column.name;
    let (retire, forget) = retire_flag_steps(ctx, &c.quoted_sql())?;
    let mut steps = vec![retire];
    if let Some(fill) = fill {
        // The new release's inserts take the fill as the default: NOT NULL stays, and rolling
        // switch back finds every row with a value.
        steps.push(set_default_step(
            ctx,
            Phase::Switch,
            format!(
                "give {} the default {fill} so inserts by the new release, which omit the column, keep it NOT NULL",
                c.quoted_sql()
            ),
            table,
            c,
            fill,
        )?);
    } else if column.needs_value() {
        let (prepare, undo) = online_not_null_undo(ctx, table, c, Phase::Switch)?;
        steps.extend(prepare);
        steps.push(
            StepDraft::new(
                Phase::Switch,
                "drop NOT NULL so inserts by the new release, which omit the column, succeed",
                ctx.sql(
                    "alter_column",
                    json!({ "table": qn(table), "column": c.as_str(), "action": "drop_not_null" }),
                )?,
            )
            .rollback(undo)
            .lock(LockMode::AccessExclusive, table),
        );
    }
    let mut target = c.clone();
    if ctx.hints.brownout {
        let parked = derived_name(c.as_str(), "__seqmig_brownout");
        steps.push(
            StepDraft::new(
                Phase::Contract,
                "brownout: rename the column away so a forgotten reader fails loudly while the data still exists",
                ctx.sql("rename", json!({ "kind": "column", "table": qn(table), "from": c.as_str(), "to": parked.as_str() }))?,
            )
            .rollback(ctx.sql("rename", json!({ "kind": "column", "table": qn(table), "from": parked.as_str(), "to": c.as_str() }))?)
            .lock(LockMode::AccessExclusive, table),
        );
        target = parked;
    }
    steps.push(
        StepDraft::new(
            Phase::Contract,
            format!("drop column {} and its data (catalog only; space is reclaimed by later updates or VACUUM FULL)", c.quoted_sql()),
            ctx.sql("drop_column", json!({ "table": qn(table), "column": target.as_str() }))?,
        )
        .lock(LockMode::AccessExclusive, table)
        .verify(ctx.verify_column(table, &target, false)?)
        .removes([Res::Column(table.clone(), c.clone())]),
    );
    steps.push(forget);
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diff::Change;
    use crate::model::QualifiedName;
    use crate::plan::Phase;

    #[test]
    fn drop_waits_for_contract() {
        let s = schema_with(vec![users()]);
        let col = users().columns[1].clone();
        let steps = run(
            &s,
            &s,
            &Change::DropColumn { table: QualifiedName::of("public", "users"), column: col, fill: None },
        );
        assert_eq!(phases(&steps), [Phase::Switch, Phase::Contract, Phase::Contract]);
        assert_eq!(steps[1].sql, "ALTER TABLE public.users DROP COLUMN name;");
        assert!(steps[1].rollback_sql.is_none());
    }
}
