//! add column (nullable, or with a default PostgreSQL stores in the catalog): one
//! `ADD COLUMN` in expand, a brief ACCESS EXCLUSIVE lock, no rewrite — unless the default
//! is volatile, which the diff already reported.

use serde_json::json;

use super::{Ctx, Steps};
use crate::model::{Column, QualifiedName};
use crate::plan::draft::{Res, StepDraft};
use crate::plan::sqltext::column_value;
use crate::plan::{LockMode, Phase};
use crate::render::qn;

pub fn steps(ctx: &Ctx<'_>, table: &QualifiedName, column: &Column, rewrites: bool) -> Steps {
    let sql = ctx.sql("add_column", json!({ "table": qn(table), "column": column_value(column) }))?;
    let purpose = if rewrites {
        format!(
            "add column {} (rewrites the table: volatile default, identity or stored generated)",
            column.name.quoted_sql()
        )
    } else {
        format!("add column {} (catalog only, no rewrite)", column.name.quoted_sql())
    };
    Ok(vec![
        StepDraft::new(Phase::Expand, purpose, sql)
            .rollback(ctx.sql(
                "drop_column",
                json!({ "table": qn(table), "column": column.name.as_str(), "if_exists": true }),
            )?)
            .lock(LockMode::AccessExclusive, table)
            .rewrites(rewrites)
            .verify(ctx.verify_column(table, &column.name, true)?)
            .needs(ctx.column_needs(table, column))
            .makes([Res::Column(table.clone(), column.name.clone())]),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diff::Change;
    use crate::model::{Column, Ident, QualifiedName};

    #[test]
    fn one_step_with_default() {
        let mut c = Column::new(Ident::exact("status").unwrap(), "text");
        c.default = Some("'new'::text".into());
        c.not_null = true;
        let s = schema_with(vec![users()]);
        let steps = run(
            &s,
            &s,
            &Change::AddColumn { table: QualifiedName::of("public", "users"), column: c, rewrites: false },
        );
        assert_eq!(steps.len(), 1);
        assert_eq!(
            steps[0].sql,
            "ALTER TABLE public.users ADD COLUMN status text DEFAULT 'new'::text NOT NULL;"
        );
        assert!(!steps[0].rewrites_table);
    }
}
