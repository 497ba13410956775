//! add column (nullable, or with a default PostgreSQL stores in the catalog): one
//! `ADD COLUMN` in expand, a brief ACCESS EXCLUSIVE lock, no rewrite.
//!
//! A volatile default (`gen_random_uuid()`, `clock_timestamp()`, `nextval(…)`) would make
//! `ADD COLUMN` compute a value per row under ACCESS EXCLUSIVE, rewriting the table (issue
//! 17.4). It is planned online instead: the column is added bare (catalog only), the default
//! is set (catalog only: new rows, the old release's included, get their own value), existing
//! rows are filled in batches with the default expression, and NOT NULL, if wanted, comes
//! through a validated check. Identity and stored generated columns have no online form:
//! their single step rewrites the table and plan/build.rs blocks it.

use serde_json::json;

use super::{Ctx, Steps, add_bare_column_step, backfill_step, not_null_steps};
use crate::model::{Column, QualifiedName};
use crate::plan::draft::{Res, StepDraft};
use crate::plan::sqltext::column_value;
use crate::plan::{LockMode, Phase};
use crate::render::qn;

pub fn steps(ctx: &Ctx<'_>, table: &QualifiedName, column: &Column, rewrites: bool) -> Steps {
    if let Some(d) = column.default.as_deref().filter(|d| !rewrites && crate::diff::is_volatile(d)) {
        return volatile_default(ctx, table, column, d);
    }
    let sql = ctx.sql("add_column", json!({ "table": qn(table), "column": column_value(column) }))?;
    let purpose = if rewrites {
        format!("add column {} (rewrites the table: identity or stored generated)", column.name.quoted_sql())
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

fn volatile_default(ctx: &Ctx<'_>, table: &QualifiedName, column: &Column, default: &str) -> Steps {
    let c = &column.name;
    let drop_default = ctx
        .sql("alter_column", json!({ "table": qn(table), "column": c.as_str(), "action": "drop_default" }))?;
    let add = add_bare_column_step(
        ctx,
        table,
        column,
        format!("add column {} without its volatile default (catalog only, no rewrite)", c.quoted_sql()),
    )?;
    let set = StepDraft::new(
        Phase::Expand,
        format!(
            "set the default of {} (catalog only: rows inserted from now on get their own value)",
            c.quoted_sql()
        ),
        ctx.sql(
            "alter_column",
            json!({ "table": qn(table), "column": c.as_str(), "action": "set_default", "value": default }),
        )?,
    )
    .rollback(drop_default)
    .lock(LockMode::AccessExclusive, table)
    .needs([Res::Column(table.clone(), c.clone())]);
    // Only NULLs are pending: each existing row gets its own value of the default, once.
    let mut fill = backfill_step(ctx, table, c, default)?;
    let pending = crate::plan::BackfillSpec::nulls_of(c);
    fill.purpose =
        format!("give existing rows their own value of the default of {}, in batches", c.quoted_sql());
    if let Some(spec) = &mut fill.backfill {
        spec.pending_predicate = pending.clone();
        spec.expr = format!("coalesce({}, {default})", c.quoted_sql());
    }
    fill.sql = ctx.sql(
        "backfill",
        json!({ "table": qn(table), "column": c.as_str(), "expr": default, "pending": pending }),
    )?;
    fill.verify = Some(ctx.verify(json!({ "kind": "pending", "table": qn(table), "pending": pending }))?);
    let mut steps = vec![add, set, fill];
    if column.not_null {
        let (check, finish) = not_null_steps(ctx, table, c, c, Phase::Backfill)?;
        steps.extend(check);
        steps.extend(finish);
    }
    Ok(steps)
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
