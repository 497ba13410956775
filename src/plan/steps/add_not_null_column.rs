//! add NOT NULL column without a default: added nullable in expand; a fill trigger covers
//! rows the old release writes (dual_write); existing rows are filled in batches, then a
//! `CHECK (c IS NOT NULL)` is added NOT VALID and validated (backfill); contract sets NOT
//! NULL using the validated check (no scan under the lock) and drops the helpers.
//!
//! The check is added after the fill, not in expand as a bare DESIGN §3 reading would
//! suggest: added earlier it would reject every insert of the old release, which does not
//! know the column.

use serde_json::json;

use super::{Ctx, Steps, add_bare_column_step, fill_null_steps, not_null_steps, set_default_step};
use crate::model::{Column, QualifiedName};
use crate::plan::Phase;
use crate::plan::draft::{Res, StepDraft};
use crate::render::qn;

pub fn steps(ctx: &Ctx<'_>, table: &QualifiedName, column: &Column, fill: Option<&str>) -> Steps {
    let c = &column.name;
    let add = add_bare_column_step(
        ctx,
        table,
        column,
        format!("add column {} nullable; NOT NULL comes after the fill", c.quoted_sql()),
    )?;
    let mut steps = vec![add];
    let mut contract = Vec::new();
    if let Some(fill) = fill {
        let (install, mut b, removal) = fill_null_steps(ctx, table, c, fill)?;
        steps.push(install);
        contract.push(removal);
        let pending = b.backfill.as_ref().map(|spec| spec.pending_predicate.clone()).unwrap_or_default();
        b.verify = Some(ctx.verify(json!({ "kind": "pending", "table": qn(table), "pending": pending }))?);
        steps.push(b);
    } else {
        // No fill value: the diff reported `missing-fill`; the validation below would fail.
        steps.push(
            StepDraft::new(
                Phase::Backfill,
                "no fill value given: existing rows keep NULL (see finding missing-fill)",
                "-- nothing to fill: no [[fill]] hint".into(),
            )
            .rollback("-- nothing to undo".into())
            .makes([Res::Data(table.clone(), c.clone())]),
        );
    }
    let (check, finish) = not_null_steps(ctx, table, c, c, Phase::Backfill)?;
    steps.extend(check);
    let mut fin = finish.into_iter();
    let set = fin.next().expect("set step");
    steps.push(set);
    steps.extend(fin);
    if let Some(d) = &column.default {
        steps.push(set_default_step(ctx, Phase::Contract, "set the column default".into(), table, c, d)?);
    }
    steps.extend(contract);
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diff::Change;
    use crate::model::{Column, Ident, QualifiedName};
    use crate::plan::Phase;

    #[test]
    fn fill_then_check_then_set_not_null() {
        let mut c = Column::new(Ident::exact("email").unwrap(), "text");
        c.not_null = true;
        let s = schema_with(vec![users()]);
        let steps = run(
            &s,
            &s,
            &Change::AddNotNullColumn {
                table: QualifiedName::of("public", "users"),
                column: c,
                fill: Some("lower(name) || '@example.invalid'".into()),
            },
        );
        assert_eq!(
            phases(&steps),
            [
                Phase::Expand,
                Phase::DualWrite,
                Phase::Backfill,
                Phase::Backfill,
                Phase::Backfill,
                Phase::Contract,
                Phase::Contract,
                Phase::Contract
            ]
        );
        assert!(
            steps[1].sql.contains("NEW.email := lower(NEW.name) || '@example.invalid';"),
            "{}",
            steps[1].sql
        );
        let spec = steps[2].backfill.as_ref().unwrap();
        assert_eq!(spec.pending_predicate, "email IS NULL");
        assert_eq!(spec.expr, "coalesce(email, lower(name) || '@example.invalid')");
        assert!(steps[3].sql.ends_with("CHECK (email IS NOT NULL) NOT VALID;"));
        assert!(steps[5].sql.ends_with("SET NOT NULL;"));
    }
}
