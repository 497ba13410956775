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
    // A partition of a table that stays: detached at switch, so the drop in contract locks
    // only the detached table (a DROP of a partition takes ACCESS EXCLUSIVE on the parent).
    if let Some(p) = table.partition_of.as_ref().filter(|p| ctx.desired.tables.contains_key(&p.parent)) {
        steps.push(detach_step(ctx, table, &p.parent, &p.bound)?);
    }
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

/// A partition the desired schema keeps as a table of its own: detached at switch (its rows
/// leave the parent, as for a dropped partition), and in contract the CHECK a concurrent
/// detach leaves on the table (a copy of its bound) is dropped, so the table ends as the
/// desired schema declares it.
pub fn steps_detach_and_keep(ctx: &Ctx<'_>, table: &Table) -> Steps {
    let Some(p) = table.partition_of.as_ref() else { return Ok(Vec::new()) };
    let mut steps = vec![detach_step(ctx, table, &p.parent, &p.bound)?];
    let concurrently = detaches_concurrently(ctx, &p.parent);
    if let Some(name) = concurrently.then(|| detach_check_name(ctx, table, &p.parent)).flatten() {
        let t = &table.name;
        // Undone by adding the bound back NOT VALID (catalog only); the re-attach a rollback
        // of switch runs then scans the table.
        let check = ctx
            .current
            .tables
            .get(&p.parent)
            .zip(table.bound())
            .and_then(|(parent, bound)| super::attach_partition::bound_check(parent, &bound));
        let mut step = StepDraft::new(
            Phase::Contract,
            format!("drop {name}, the copy of its old bound the concurrent detach left on {t}"),
            ctx.sql("drop_constraint", json!({ "table": qn(t), "name": name, "if_exists": true }))?,
        )
        .lock(LockMode::AccessExclusive, t);
        if let Some(check) = check {
            step = step.rollback(ctx.sql(
                "add_constraint",
                json!({ "table": qn(t), "name": name, "definition": format!("CHECK ({check})"), "not_valid": true }),
            )?);
        }
        steps.push(step);
    }
    Ok(steps)
}

/// `DETACH PARTITION … CONCURRENTLY`: SHARE UPDATE EXCLUSIVE on the parent, in two
/// transactions of its own (PostgreSQL refuses it in a transaction block), waiting for every
/// query that might still see the partition. PostgreSQL refuses CONCURRENTLY while the parent
/// has a DEFAULT partition (0A000, "cannot detach partitions concurrently when a default
/// partition exists"); then the plain DETACH, with a brief ACCESS EXCLUSIVE lock on the
/// parent, is the only form.
fn detach_step(
    ctx: &Ctx<'_>,
    table: &Table,
    parent: &crate::model::QualifiedName,
    bound: &str,
) -> Result<StepDraft, crate::render::RenderError> {
    let t = &table.name;
    let concurrently = detaches_concurrently(ctx, parent);
    let mut sql = ctx.sql(
        "detach_partition",
        json!({ "parent": qn(parent), "table": qn(t), "concurrently": concurrently }),
    )?;
    if !concurrently {
        // The only form PostgreSQL allows here.
        sql.push_str(" -- seqmig:ignore detach-partition-non-concurrently");
    }
    // Undo: attach it again. A concurrent detach of a RANGE or LIST partition leaves a CHECK
    // copying the bound on the table, so the attach skips its scan; that check goes after.
    let mut rollback = format!(
        "{} -- seqmig:ignore attach-partition-without-check",
        ctx.sql("attach_partition", json!({ "parent": qn(parent), "table": qn(t), "bound": bound }))?
    );
    if let Some(name) = concurrently.then(|| detach_check_name(ctx, table, parent)).flatten() {
        rollback.push('\n');
        rollback.push_str(
            &ctx.sql("drop_constraint", json!({ "table": qn(t), "name": name, "if_exists": true }))?,
        );
    }
    let step = StepDraft::new(
        Phase::Switch,
        if concurrently {
            format!("detach {t} from {parent} concurrently (SHARE UPDATE EXCLUSIVE on the parent: reads and writes continue; then ACCESS EXCLUSIVE on {t} once no query uses it); its rows leave the parent")
        } else {
            format!("detach {t} from {parent}: ACCESS EXCLUSIVE on the parent, briefly, since PostgreSQL refuses a concurrent detach while a default partition exists; its rows leave the parent")
        },
        sql,
    )
    .rollback(rollback)
    .verify(ctx.verify(json!({ "kind": "partition", "table_text": t.quoted(), "attached": false }))?);
    // As PostgreSQL 15 takes them (pg_locks, tests/lock_modes_tests.rs): the concurrent form
    // holds SHARE UPDATE EXCLUSIVE on the parent and, in its second transaction, once no query
    // that could see the partition through the parent is left, ACCESS EXCLUSIVE on the
    // partition; the plain form ACCESS EXCLUSIVE on both.
    Ok(if concurrently {
        step.lock_each(&[(LockMode::ShareUpdateExclusive, parent), (LockMode::AccessExclusive, t)])
            .outside_transaction()
    } else {
        step.lock_each(&[(LockMode::AccessExclusive, parent), (LockMode::AccessExclusive, t)])
    })
}

/// Whether a partition of `parent` can be detached concurrently: not while the parent has a
/// DEFAULT partition.
fn detaches_concurrently(ctx: &Ctx<'_>, parent: &crate::model::QualifiedName) -> bool {
    !ctx.current.partitions_of(parent).iter().any(|p| p.bound() == Some(crate::model::Bound::Default))
}

/// The name PostgreSQL gives the CHECK that `DETACH … CONCURRENTLY` adds to a RANGE or LIST
/// partition (`AddRelationNewConstraints` without a name: `<table>_<column>_check` when the
/// bound reads one column, `<table>_check` otherwise, numbered past a name the schema uses).
/// `None` for HASH, which gets none, and for a name PostgreSQL would have to shorten.
fn detach_check_name(ctx: &Ctx<'_>, table: &Table, parent: &crate::model::QualifiedName) -> Option<String> {
    let p = ctx.current.tables.get(parent)?;
    if p.strategy() == Some(crate::model::Strategy::Hash)
        || table.bound() == Some(crate::model::Bound::Default)
    {
        return None;
    }
    let base = match p.partition_columns()?.as_slice() {
        [c] => format!("{}_{}_check", table.name.name.as_str(), c.as_str()),
        _ => format!("{}_check", table.name.name.as_str()),
    };
    let taken = |n: &str| {
        ctx.current
            .tables
            .values()
            .any(|t| t.name.schema == table.name.schema && t.constraints.keys().any(|k| k.as_str() == n))
    };
    let name =
        std::iter::once(base.clone()).chain((1..).map(|i| format!("{base}{i}"))).find(|n| !taken(n))?;
    (name.len() <= crate::model::MAX_IDENT_BYTES).then_some(name)
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
