//! drop table: the switch flips the flag (the new release stops using the table); contract
//! optionally renames it out of the way (brownout), then drops it — the one-way door.

use serde_json::json;

use super::{Ctx, Steps, retire_flag_steps};
use crate::model::{ConstraintKind, Table};
use crate::plan::draft::{Res, StepDraft};
use crate::plan::sqltext::{constraint_def, derived_name};
use crate::plan::{LockMode, Phase};
use crate::render::qn;

pub fn steps(ctx: &Ctx<'_>, table: &Table) -> Steps {
    let t = &table.name;
    let (retire, forget) = retire_flag_steps(ctx, &t.to_string())?;
    let mut steps = vec![retire];
    let mut target = t.clone();
    if ctx.hints.brownout {
        let parked = crate::model::QualifiedName::new(
            t.schema.clone(),
            derived_name(t.name.as_str(), "__seqmig_brownout"),
        );
        steps.push(
            StepDraft::new(
                Phase::Contract,
                "brownout: rename the table away so a forgotten reader fails loudly while the data still exists",
                ctx.sql("rename", json!({ "kind": "table", "object": qn(t), "to": parked.name.as_str() }))?,
            )
            .rollback(ctx.sql("rename", json!({ "kind": "table", "object": qn(&parked), "to": t.name.as_str() }))?)
            .lock(LockMode::AccessExclusive, t),
        );
        target = parked;
    }
    // Foreign keys to other tables let go first, so tables dropped together that reference
    // each other can go in any order.
    for c in table.constraints.values() {
        if let ConstraintKind::ForeignKey { ref_table, ref_columns, .. } = &c.kind {
            if ref_table == t {
                continue;
            }
            steps.push(
                StepDraft::new(
                    Phase::Contract,
                    format!("drop foreign key {} so the referenced table is free to change", c.name.quoted_sql()),
                    ctx.sql("drop_constraint", json!({ "table": qn(&target), "name": c.name.as_str() }))?,
                )
                .rollback(ctx.sql("add_constraint", json!({ "table": qn(&target), "name": c.name.as_str(), "definition": constraint_def(c), "not_valid": true }))?)
                // ACCESS EXCLUSIVE, on the referenced table too (measured by `seqmig rehearse`).
                .lock(LockMode::AccessExclusive, &target)
                .releases([Res::Table(ref_table.clone()), Res::Key(ref_table.clone(), ref_columns.clone())]),
            );
        }
    }
    let mut removes = vec![Res::Table(t.clone())];
    removes.extend(table.columns.iter().map(|c| Res::Column(t.clone(), c.name.clone())));
    steps.push(
        StepDraft::new(
            Phase::Contract,
            format!("drop table {t} and its rows"),
            ctx.sql("drop_table", json!({ "table": qn(&target) }))?,
        )
        .lock(LockMode::AccessExclusive, &target)
        .verify(ctx.verify(json!({ "kind": "relation", "rel_text": target.quoted(), "present": false }))?)
        .removes(removes),
    );
    steps.push(forget);
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diff::Change;
    use crate::plan::Phase;

    #[test]
    fn drop_is_the_one_way_door_in_contract() {
        let current = schema_with(vec![users()]);
        let steps = run(&current, &Default::default(), &Change::DropTable { table: users() });
        assert_eq!(phases(&steps), [Phase::Switch, Phase::Contract, Phase::Contract]);
        assert!(steps[1].rollback_sql.is_none());
        assert_eq!(steps[1].sql, "DROP TABLE public.users;");
    }
}
