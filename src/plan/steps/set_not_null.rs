//! set NOT NULL on an existing column: `CHECK (c IS NOT NULL) NOT VALID` (expand), then
//! `VALIDATE` (backfill, no write-blocking lock), then `SET NOT NULL`, which PostgreSQL
//! proves from the valid check without a scan, and the helper check is dropped (contract).
//! With a `[[fill]]` hint, NULLs are first replaced in batches and a fill trigger covers
//! the old release's writes; the check then waits for the fill.

use super::{Ctx, Steps, fill_null_steps, not_null_steps};
use crate::model::{Column, QualifiedName};
use crate::plan::Phase;
use crate::plan::draft::Res;

pub fn steps(ctx: &Ctx<'_>, table: &QualifiedName, column: &Column, fill: Option<&str>) -> Steps {
    let c = &column.name;
    let mut steps = Vec::new();
    let mut contract = Vec::new();
    let check_phase = if let Some(fill) = fill {
        let (install, mut b, removal) = fill_null_steps(ctx, table, c, fill)?;
        steps.push(install);
        contract.push(removal);
        b.purpose = format!("replace NULLs in {} with the fill value, in batches", c.quoted_sql());
        steps.push(b);
        Phase::Backfill
    } else {
        Phase::Expand
    };
    let (mut check, finish) = not_null_steps(ctx, table, c, c, check_phase)?;
    if fill.is_none() {
        // Nothing fills the column: validation only needs the check to exist.
        for s in &mut check {
            s.needs.retain(|r| !matches!(r, Res::Data(..)));
        }
    }
    steps.extend(check);
    steps.extend(finish);
    steps.extend(contract);
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diff::Change;
    use crate::model::QualifiedName;
    use crate::plan::Phase;

    #[test]
    fn check_validate_set() {
        let s = schema_with(vec![users()]);
        let steps = run(
            &s,
            &s,
            &Change::SetNotNull {
                table: QualifiedName::of("public", "users"),
                column: users().columns[1].clone(),
                fill: None,
            },
        );
        assert_eq!(phases(&steps), [Phase::Expand, Phase::Backfill, Phase::Contract, Phase::Contract]);
        assert!(steps[1].sql.contains("VALIDATE CONSTRAINT users_name_seqmig_nn"));
        assert!(steps[1].scans_table);
        assert!(!steps[2].scans_table, "SET NOT NULL relies on the validated check");
    }
}
