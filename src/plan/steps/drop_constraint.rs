//! drop a constraint: in contract (the old release may rely on it until then). The rollback
//! re-adds it — NOT VALID for checks and foreign keys, so undoing is quick; validate again
//! by hand if needed.

use serde_json::json;

use super::{Ctx, Steps};
use crate::model::{Constraint, ConstraintKind, QualifiedName};
use crate::plan::draft::{Res, StepDraft};
use crate::plan::sqltext::constraint_def;
use crate::plan::{LockMode, Phase};
use crate::render::qn;

pub fn steps(ctx: &Ctx<'_>, table: &QualifiedName, c: &Constraint) -> Steps {
    let not_valid = matches!(c.kind, ConstraintKind::Check { .. } | ConstraintKind::ForeignKey { .. });
    let mut releases: Vec<Res> =
        c.kind.columns().iter().map(|col| Res::Column(table.clone(), col.clone())).collect();
    if let ConstraintKind::Check { expr, .. } = &c.kind {
        if let Some(t) = ctx.current.tables.get(table) {
            releases.extend(
                t.columns
                    .iter()
                    .filter(|col| crate::diff::mentions(expr, col.name.as_str()))
                    .map(|col| Res::Column(table.clone(), col.name.clone())),
            );
        }
    }
    if let ConstraintKind::ForeignKey { ref_table, ref_columns, .. } = &c.kind {
        releases.push(Res::Table(ref_table.clone()));
        releases.push(Res::Key(ref_table.clone(), ref_columns.clone()));
    }
    let mut removes = vec![Res::Constraint(table.clone(), c.name.clone())];
    if matches!(c.kind, ConstraintKind::PrimaryKey { .. } | ConstraintKind::Unique { .. }) {
        removes.push(Res::Key(table.clone(), c.kind.columns().to_vec()));
    }
    Ok(vec![
        StepDraft::new(Phase::Contract, format!("drop constraint {}", c.name.quoted_sql()), ctx.sql("drop_constraint", json!({ "table": qn(table), "name": c.name.as_str() }))?)
            .rollback(ctx.sql("add_constraint", json!({ "table": qn(table), "name": c.name.as_str(), "definition": constraint_def(c), "not_valid": not_valid }))?)
            // Dropping a foreign key takes ACCESS EXCLUSIVE on both tables (it removes the RI
            // triggers on the referenced one too), measured by `seqmig rehearse`.
            .lock(LockMode::AccessExclusive, table)
            .releases(releases)
            .removes(removes),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diff::Change;
    use crate::model::QualifiedName;
    use crate::plan::Phase;

    #[test]
    fn dropped_in_contract_with_a_rollback() {
        let s = schema_with(vec![users()]);
        let pk = users().constraints.values().next().unwrap().clone();
        let steps = run(
            &s,
            &s,
            &Change::DropConstraint { table: QualifiedName::of("public", "users"), constraint: pk },
        );
        assert_eq!(phases(&steps), [Phase::Contract]);
        assert_eq!(
            steps[0].rollback_sql.as_deref(),
            Some("ALTER TABLE public.users ADD CONSTRAINT users_pkey PRIMARY KEY (id);")
        );
    }
}
