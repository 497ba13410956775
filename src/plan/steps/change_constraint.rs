//! change a constraint (same name, new definition): the new one is added under a temporary
//! name the safe way (NOT VALID + VALIDATE, or a concurrent unique index), and contract drops
//! the old one and gives the new one its name.

use serde_json::json;

use super::{Ctx, Steps, concurrent_index_step};
use crate::model::{Constraint, ConstraintKind, QualifiedName};
use crate::plan::draft::{Res, StepDraft};
use crate::plan::sqltext::{constraint_def, derived_name, index_value};
use crate::plan::{LockMode, Phase};
use crate::render::qn;

pub fn steps(ctx: &Ctx<'_>, table: &QualifiedName, from: &Constraint, to: &Constraint) -> Steps {
    if !from.validated && to.validated && (Constraint { validated: true, ..from.clone() }) == *to {
        return validate_only(ctx, table, to);
    }
    let tmp = derived_name(to.name.as_str(), "_seqmig_new");
    let unique = matches!(to.kind, ConstraintKind::PrimaryKey { .. } | ConstraintKind::Unique { .. });
    let mut steps = Vec::new();
    let data = super::add_constraint::data_needs(table, to);
    if unique {
        let idx = super::add_unique::backing_index(table, to, &tmp);
        steps.push(
            concurrent_index_step(
                ctx,
                Phase::Expand,
                format!("build the new unique index for {} under a temporary name", to.name.quoted_sql()),
                ctx.sql("create_index", json!({ "index": index_value(&idx, &tmp, true, None) }))?,
                &idx.name,
                table,
            )?
            // Not the columns' data: the index is built on what is there and kept up as the
            // backfill writes (a renamed key column is new and empty in expand).
            .needs(super::add_constraint::needs(table, to))
            .makes([Res::Key(table.clone(), to.kind.columns().to_vec())]),
        );
    } else {
        let not_valid = !matches!(to.kind, ConstraintKind::Exclusion { .. });
        steps.push(
            StepDraft::new(Phase::Expand, format!("add the new definition of {} under a temporary name", to.name.quoted_sql()), ctx.sql("add_constraint", json!({ "table": qn(table), "name": tmp.as_str(), "definition": constraint_def(to), "not_valid": not_valid }))?)
                .rollback(ctx.sql("drop_constraint", json!({ "table": qn(table), "name": tmp.as_str(), "if_exists": true }))?)
                .lock(if matches!(to.kind, ConstraintKind::ForeignKey { .. }) { LockMode::ShareRowExclusive } else { LockMode::AccessExclusive }, table)
                .needs(super::add_constraint::needs(table, to)),
        );
        if not_valid {
            steps.push(
                StepDraft::new(
                    Phase::Backfill,
                    "validate the new definition without blocking writes",
                    ctx.sql("validate_constraint", json!({ "table": qn(table), "name": tmp.as_str() }))?,
                )
                .rollback("-- nothing to undo: validation changes no data".into())
                .lock(LockMode::ShareUpdateExclusive, table)
                .scans()
                .needs(data),
            );
        }
    }
    let mut releases: Vec<Res> =
        from.kind.columns().iter().map(|c| Res::Column(table.clone(), c.clone())).collect();
    if let ConstraintKind::ForeignKey { ref_table, ref_columns, .. } = &from.kind {
        releases.push(Res::Table(ref_table.clone()));
        releases.push(Res::Key(ref_table.clone(), ref_columns.clone()));
    }
    let readd_old = ctx.sql("add_constraint", json!({ "table": qn(table), "name": from.name.as_str(), "definition": constraint_def(from), "not_valid": !matches!(from.kind, ConstraintKind::PrimaryKey { .. } | ConstraintKind::Unique { .. } | ConstraintKind::Exclusion { .. }) }))?;
    steps.push(
        StepDraft::new(
            Phase::Contract,
            format!("drop the old definition of {}", from.name.quoted_sql()),
            ctx.sql("drop_constraint", json!({ "table": qn(table), "name": from.name.as_str() }))?,
        )
        .rollback(readd_old)
        .lock(LockMode::AccessExclusive, table)
        .releases(releases)
        .removes([Res::Constraint(table.clone(), from.name.clone())]),
    );
    let finish = if unique {
        ctx.sql("add_constraint_using_index", json!({ "table": qn(table), "name": to.name.as_str(), "primary": matches!(to.kind, ConstraintKind::PrimaryKey { .. }), "index": tmp.as_str(), "deferrable": to.deferrable, "initially_deferred": to.initially_deferred }))?
    } else {
        ctx.sql(
            "rename",
            json!({ "kind": "constraint", "table": qn(table), "from": tmp.as_str(), "to": to.name.as_str() }),
        )?
    };
    let unfinish = if unique {
        ctx.sql(
            "drop_constraint",
            json!({ "table": qn(table), "name": to.name.as_str(), "if_exists": true }),
        )?
    } else {
        ctx.sql(
            "rename",
            json!({ "kind": "constraint", "table": qn(table), "from": to.name.as_str(), "to": tmp.as_str() }),
        )?
    };
    steps.push(
        StepDraft::new(
            Phase::Contract,
            format!("the new definition takes the name {}", to.name.quoted_sql()),
            finish,
        )
        .rollback(unfinish)
        .lock(LockMode::AccessExclusive, table)
        .needs(if matches!(to.kind, ConstraintKind::PrimaryKey { .. }) {
            super::add_unique::primary_key_not_null(ctx, table, to.kind.columns())
        } else {
            Vec::new()
        })
        .makes([Res::Constraint(table.clone(), to.name.clone())]),
    );
    Ok(steps)
}

/// The same definition, NOT VALID now and validated in the desired schema: one VALIDATE,
/// which scans under SHARE UPDATE EXCLUSIVE (reads and writes go on). A rollback leaves it
/// validated: validation changes no data, and un-validating would mean dropping it.
fn validate_only(ctx: &Ctx<'_>, table: &QualifiedName, to: &Constraint) -> Steps {
    let data = super::add_constraint::data_needs(table, to);
    Ok(vec![
        StepDraft::new(
            Phase::Backfill,
            format!("validate {} without blocking writes", to.name.quoted_sql()),
            ctx.sql("validate_constraint", json!({ "table": qn(table), "name": to.name.as_str() }))?,
        )
        .rollback("-- nothing to undo: validation changes no data".into())
        .lock(LockMode::ShareUpdateExclusive, table)
        .scans()
        .needs(data),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diff::Change;
    use crate::model::{ConstraintKind, QualifiedName};
    use crate::plan::Phase;

    #[test]
    fn check_is_swapped_by_name() {
        let s = schema_with(vec![users()]);
        let mk =
            |e: &str| constraint("name_len", ConstraintKind::Check { expr: e.into(), no_inherit: false });
        let steps = run(
            &s,
            &s,
            &Change::ChangeConstraint {
                table: QualifiedName::of("public", "users"),
                from: mk("length(name) < 10"),
                to: mk("length(name) < 20"),
            },
        );
        assert_eq!(phases(&steps), [Phase::Expand, Phase::Backfill, Phase::Contract, Phase::Contract]);
        assert!(steps[3].sql.contains("RENAME CONSTRAINT name_len_seqmig_new TO name_len"));
    }
}
