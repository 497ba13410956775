//! drop NOT NULL: one catalog-only `ALTER … DROP NOT NULL` in expand (brief lock). Undoing it
//! needs a scan, so the undo goes through a helper check validated in its own transaction
//! (`online_not_null_undo`): two steps before the drop exist only for their undo.

use serde_json::json;

use super::{Ctx, Steps, online_not_null_undo};
use crate::model::{Column, QualifiedName};
use crate::plan::draft::StepDraft;
use crate::plan::{LockMode, Phase};
use crate::render::qn;

pub fn steps(ctx: &Ctx<'_>, table: &QualifiedName, column: &Column) -> Steps {
    let c = &column.name;
    let (mut steps, undo) = online_not_null_undo(ctx, table, c, Phase::Expand)?;
    steps.push(
        StepDraft::new(
            Phase::Expand,
            format!("allow NULL in {} (catalog only)", c.quoted_sql()),
            ctx.sql(
                "alter_column",
                json!({ "table": qn(table), "column": c.as_str(), "action": "drop_not_null" }),
            )?,
        )
        .rollback(undo)
        .lock(LockMode::AccessExclusive, table)
        .verify(
            ctx.verify(json!({ "kind": "not_null", "table_text": table.quoted(), "column": c.as_str() }))?
                .replace("SELECT attnotnull AS ok", "SELECT NOT attnotnull AS ok"),
        ),
    );
    Ok(steps)
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
        assert_eq!(steps[2].sql, "ALTER TABLE public.users ALTER COLUMN id DROP NOT NULL;");
        // Undone last first, in three transactions: no scan under the ACCESS EXCLUSIVE lock.
        let undo: Vec<&str> = steps.iter().rev().map(|s| s.rollback_sql.as_deref().unwrap()).collect();
        assert_eq!(
            undo,
            [
                "ALTER TABLE public.users ADD CONSTRAINT users_id_seqmig_nn CHECK (id IS NOT NULL) NOT VALID;",
                "ALTER TABLE public.users VALIDATE CONSTRAINT users_id_seqmig_nn;",
                "ALTER TABLE public.users ALTER COLUMN id SET NOT NULL;\nALTER TABLE public.users DROP CONSTRAINT IF EXISTS users_id_seqmig_nn;",
            ]
        );
    }
}
