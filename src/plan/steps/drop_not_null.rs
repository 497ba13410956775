//! drop NOT NULL: one catalog-only `ALTER … DROP NOT NULL` in expand (brief lock). Undoing it
//! needs a scan, so the rollback is the plain `SET NOT NULL` and the runbook says so.

use serde_json::json;

use super::{Ctx, Steps};
use crate::model::{Column, QualifiedName};
use crate::plan::draft::StepDraft;
use crate::plan::{LockMode, Phase};
use crate::render::qn;

pub fn steps(ctx: &Ctx<'_>, table: &QualifiedName, column: &Column) -> Steps {
    let c = &column.name;
    Ok(vec![
        StepDraft::new(
            Phase::Expand,
            format!("allow NULL in {} (catalog only)", c.quoted_sql()),
            ctx.sql(
                "alter_column",
                json!({ "table": qn(table), "column": c.as_str(), "action": "drop_not_null" }),
            )?,
        )
        .rollback(ctx.sql(
            "alter_column",
            json!({ "table": qn(table), "column": c.as_str(), "action": "set_not_null" }),
        )?)
        .lock(LockMode::AccessExclusive, table)
        .verify(
            ctx.verify(json!({ "kind": "not_null", "table_text": table.quoted(), "column": c.as_str() }))?
                .replace("SELECT attnotnull AS ok", "SELECT NOT attnotnull AS ok"),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diff::Change;
    use crate::model::QualifiedName;

    #[test]
    fn one_brief_step() {
        let s = schema_with(vec![users()]);
        let steps = run(
            &s,
            &s,
            &Change::DropNotNull {
                table: QualifiedName::of("public", "users"),
                column: users().columns[0].clone(),
            },
        );
        assert_eq!(steps[0].sql, "ALTER TABLE public.users ALTER COLUMN id DROP NOT NULL;");
    }
}
