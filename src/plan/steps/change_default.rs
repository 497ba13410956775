//! change default: `SET DEFAULT` / `DROP DEFAULT` in expand — catalog only, affects new rows
//! only, brief lock; the rollback restores the previous default.

use serde_json::json;

use super::{Ctx, Steps};
use crate::model::{Ident, QualifiedName};
use crate::plan::draft::{Res, StepDraft};
use crate::plan::{LockMode, Phase};
use crate::render::qn;

pub fn steps(
    ctx: &Ctx<'_>,
    table: &QualifiedName,
    column: &Ident,
    from: Option<&str>,
    to: Option<&str>,
) -> Steps {
    let set = |d: Option<&str>| match d {
        Some(v) => ctx.sql(
            "alter_column",
            json!({ "table": qn(table), "column": column.as_str(), "action": "set_default", "value": v }),
        ),
        None => ctx.sql(
            "alter_column",
            json!({ "table": qn(table), "column": column.as_str(), "action": "drop_default" }),
        ),
    };
    let mut needs = vec![Res::Column(table.clone(), column.clone())];
    if let Some(seq) = to.and_then(crate::diff::nextval_sequence) {
        needs.push(Res::Sequence(seq));
    }
    Ok(vec![
        StepDraft::new(
            Phase::Expand,
            format!("change the default of {} (new rows only; catalog only)", column.quoted_sql()),
            set(to)?,
        )
        .rollback(set(from)?)
        .lock(LockMode::AccessExclusive, table)
        .needs(needs),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diff::Change;
    use crate::model::{Ident, QualifiedName};

    #[test]
    fn set_and_restore() {
        let s = schema_with(vec![users()]);
        let steps = run(
            &s,
            &s,
            &Change::ChangeDefault {
                table: QualifiedName::of("public", "users"),
                column: Ident::exact("name").unwrap(),
                from: Some("'public'::text".into()),
                to: Some("'trackable'::text".into()),
            },
        );
        assert_eq!(steps[0].sql, "ALTER TABLE public.users ALTER COLUMN name SET DEFAULT 'trackable'::text;");
        assert_eq!(
            steps[0].rollback_sql.as_deref(),
            Some("ALTER TABLE public.users ALTER COLUMN name SET DEFAULT 'public'::text;")
        );
    }
}
