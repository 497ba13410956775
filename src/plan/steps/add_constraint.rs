//! add CHECK / FOREIGN KEY: `ADD … NOT VALID` in expand (new rows are checked at once, the
//! lock is brief), `VALIDATE CONSTRAINT` in backfill (scans without blocking writes). On a
//! table created by the same plan the constraint is added directly. EXCLUDE constraints
//! cannot be NOT VALID: they are added in one step, which the diff warns about.

use serde_json::json;

use super::{Ctx, Steps};
use crate::model::{Constraint, ConstraintKind, QualifiedName};
use crate::plan::draft::{Res, StepDraft};
use crate::plan::sqltext::constraint_def;
use crate::plan::{LockMode, Phase};
use crate::render::qn;

pub fn needs(table: &QualifiedName, c: &Constraint) -> Vec<Res> {
    let mut r = vec![Res::Table(table.clone())];
    r.extend(c.kind.columns().iter().map(|col| Res::Column(table.clone(), col.clone())));
    if let ConstraintKind::ForeignKey { ref_table, ref_columns, .. } = &c.kind {
        r.push(Res::Table(ref_table.clone()));
        r.push(Res::Key(ref_table.clone(), ref_columns.clone()));
    }
    r
}

/// What validating `c` reads: its columns' data and, for a foreign key, the referenced
/// columns' (a key the plan renames or retypes holds its values only after the backfill).
pub fn data_needs(table: &QualifiedName, c: &Constraint) -> Vec<Res> {
    let mut r: Vec<Res> = c.kind.columns().iter().map(|col| Res::Data(table.clone(), col.clone())).collect();
    if let ConstraintKind::ForeignKey { ref_table, ref_columns, .. } = &c.kind {
        r.extend(ref_columns.iter().map(|col| Res::Data(ref_table.clone(), col.clone())));
    }
    r
}

pub fn steps(ctx: &Ctx<'_>, table: &QualifiedName, c: &Constraint, new_table: bool) -> Steps {
    let fk = matches!(c.kind, ConstraintKind::ForeignKey { .. });
    let exclusion = matches!(c.kind, ConstraintKind::Exclusion { .. });
    let lock = if fk { LockMode::ShareRowExclusive } else { LockMode::AccessExclusive };
    let drop = ctx
        .sql("drop_constraint", json!({ "table": qn(table), "name": c.name.as_str(), "if_exists": true }))?;
    let data = data_needs(table, c);
    if new_table || exclusion {
        // NOT VALID when the desired schema keeps it so (only checks and foreign keys can be).
        let sql = ctx.sql("add_constraint", json!({ "table": qn(table), "name": c.name.as_str(), "definition": constraint_def(c), "not_valid": !c.validated && !exclusion }))?;
        // A foreign key from a new table locks the table it references, which is the one the
        // running release writes to: that is the lock to predict.
        let (lock_on, what) = match &c.kind {
            ConstraintKind::ForeignKey { ref_table, .. } if new_table => (
                ref_table,
                format!(
                    "add {} to the new (empty) table; briefly locks {} against writes",
                    c.name.quoted_sql(),
                    ref_table.quoted()
                ),
            ),
            _ if new_table => (table, format!("add {} to the new (empty) table", c.name.quoted_sql())),
            _ => (
                table,
                format!("add exclusion constraint {} (checks every row under the lock)", c.name.quoted_sql()),
            ),
        };
        let mut step = StepDraft::new(Phase::Expand, what, sql)
            .rollback(drop)
            .lock(lock, lock_on)
            .needs(needs(table, c))
            .needs(data)
            .makes([Res::Constraint(table.clone(), c.name.clone())]);
        if exclusion && !new_table {
            step = step.scans();
        }
        return Ok(vec![step]);
    }
    if fk && c.validated && ctx.current.tables.get(table).is_some_and(|t| t.is_partitioned()) {
        return partitioned_fk(ctx, table, c, drop, data);
    }
    let add = StepDraft::new(
        Phase::Expand,
        format!("add {} NOT VALID: enforced for new rows, existing rows checked later", c.name.quoted_sql()),
        ctx.sql("add_constraint", json!({ "table": qn(table), "name": c.name.as_str(), "definition": constraint_def(c), "not_valid": true }))?,
    )
    .rollback(drop)
    .lock(lock, table)
    .needs(needs(table, c))
    .makes([Res::Constraint(table.clone(), c.name.clone())]);
    if !c.validated {
        // The desired schema keeps it NOT VALID: existing rows are not checked.
        return Ok(vec![add]);
    }
    let validate = StepDraft::new(
        Phase::Backfill,
        format!("validate {}: scans existing rows without blocking writes", c.name.quoted_sql()),
        ctx.sql("validate_constraint", json!({ "table": qn(table), "name": c.name.as_str() }))?,
    )
    .rollback("-- nothing to undo: validation changes no data".into())
    .lock(LockMode::ShareUpdateExclusive, table)
    .scans()
    .verify(
        ctx.verify(json!({ "kind": "constraint", "table_text": table.quoted(), "name": c.name.as_str() }))?,
    )
    .needs(data);
    Ok(vec![add, validate])
}

/// A foreign key from a partitioned table. PostgreSQL 15 refuses `NOT VALID` on it (SQLSTATE
/// 42809, *cannot add NOT VALID foreign key on partitioned table*), and a plain `ADD` on the
/// parent scans every partition under SHARE ROW EXCLUSIVE, blocking writes. A leaf partition
/// takes `NOT VALID` and `VALIDATE` like any table, and the parent's `ADD CONSTRAINT` then
/// adopts each partition's validated constraint of the same definition without scanning
/// again (tested on PostgreSQL 15 by `issue21_a_foreign_key_from_a_partitioned_table_is_built_per_partition`).
fn partitioned_fk(
    ctx: &Ctx<'_>,
    table: &QualifiedName,
    c: &Constraint,
    drop: String,
    data: Vec<Res>,
) -> Steps {
    let mut out = Vec::new();
    let leaves: Vec<QualifiedName> =
        ctx.current.leaf_partitions(table).iter().map(|t| t.name.clone()).collect();
    for leaf in &leaves {
        out.push(
            StepDraft::new(
                Phase::Expand,
                format!(
                    "add {} NOT VALID on partition {}: enforced for its new rows (PostgreSQL 15 refuses NOT VALID on the partitioned table)",
                    c.name.quoted_sql(),
                    leaf.quoted()
                ),
                ctx.sql("add_constraint", json!({ "table": qn(leaf), "name": c.name.as_str(), "definition": constraint_def(c), "not_valid": true }))?,
            )
            .rollback(ctx.sql("drop_constraint", json!({ "table": qn(leaf), "name": c.name.as_str(), "if_exists": true }))?)
            .lock(LockMode::ShareRowExclusive, leaf)
            .needs(needs(table, c)),
        );
    }
    for leaf in &leaves {
        out.push(
            StepDraft::new(
                Phase::Backfill,
                format!(
                    "validate {} on partition {}: scans its rows without blocking writes",
                    c.name.quoted_sql(),
                    leaf.quoted()
                ),
                ctx.sql("validate_constraint", json!({ "table": qn(leaf), "name": c.name.as_str() }))?,
            )
            .rollback("-- nothing to undo: validation changes no data".into())
            .lock(LockMode::ShareUpdateExclusive, leaf)
            .scans()
            .needs(data.clone()),
        );
    }
    out.push(
        StepDraft::new(
            Phase::Backfill,
            format!(
                "add {} on the partitioned table {}: adopts each partition's validated constraint and scans nothing (a brief SHARE ROW EXCLUSIVE on the table, its partitions and the referenced table)",
                c.name.quoted_sql(),
                table.quoted()
            ),
            ctx.sql("add_constraint", json!({ "table": qn(table), "name": c.name.as_str(), "definition": constraint_def(c), "not_valid": false }))?,
        )
        // Dropping the parent's constraint drops the partitions' adopted ones with it.
        .rollback(drop)
        .lock(LockMode::ShareRowExclusive, table)
        .needs(needs(table, c))
        .makes([Res::Constraint(table.clone(), c.name.clone())])
        .verify(ctx.verify(json!({ "kind": "constraint", "table_text": table.quoted(), "name": c.name.as_str() }))?),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diff::Change;
    use crate::model::{FkAction, QualifiedName};
    use crate::plan::{LockMode, Phase};

    #[test]
    fn fk_not_valid_then_validate() {
        let s = schema_with(vec![users()]);
        let fk = fk_to_users("orders_user_id_fkey", "user_id", FkAction::Cascade);
        let steps = run(
            &s,
            &s,
            &Change::AddConstraint {
                table: QualifiedName::of("public", "orders"),
                constraint: fk,
                new_table: false,
            },
        );
        assert_eq!(phases(&steps), [Phase::Expand, Phase::Backfill]);
        assert_eq!(
            steps[0].sql,
            "ALTER TABLE public.orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users (id) ON DELETE CASCADE NOT VALID;"
        );
        assert_eq!(steps[0].lock, LockMode::ShareRowExclusive);
        assert_eq!(steps[1].lock, LockMode::ShareUpdateExclusive);
    }
}
