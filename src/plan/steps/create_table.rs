//! create table: `CREATE TABLE` in expand, with its primary key, unique, check and
//! exclusion constraints inline. Foreign keys and indexes are their own changes (the table
//! is empty, so they are plain and fast), which keeps tables that reference each other
//! free of cycles.

use serde_json::json;

use super::{Ctx, Steps, type_needs};
use crate::model::{ConstraintKind, Table};
use crate::plan::draft::{Res, StepDraft};
use crate::plan::sqltext::{column_value, constraint_def};
use crate::plan::{LockMode, Phase};
use crate::render::qn;

pub fn steps(ctx: &Ctx<'_>, table: &Table) -> Steps {
    if super::attach_partition::applies(ctx, table) {
        return super::attach_partition::steps(ctx, table);
    }
    let t = &table.name;
    // A partition gets its copies of the parent's keys from PostgreSQL (with PARTITION OF);
    // stating them again is "multiple primary keys" (42P16).
    let constraints: Vec<_> = table
        .constraints
        .values()
        .filter(|c| {
            table.partition_of.is_none()
                || !ctx
                    .desired
                    .index_attachments
                    .contains_key(&crate::model::QualifiedName::new(t.schema.clone(), c.name.clone()))
        })
        .map(|c| json!({ "name": c.name.as_str(), "definition": constraint_def(c) }))
        .collect();
    let sql = ctx.sql(
        "create_table",
        json!({
            "table": qn(t),
            "unlogged": table.persistence == crate::model::Persistence::Unlogged,
            "columns": table.columns.iter().map(column_value).collect::<Vec<_>>(),
            "constraints": constraints,
            "partition_of": table.partition_of.as_ref().map(|p| qn(&p.parent)),
            "bound": table.partition_of.as_ref().map(|p| p.bound.clone()),
            "inherits": table.inherits.iter().map(qn).collect::<Vec<_>>(),
            "partition_key": table.partition_key,
            "options": table.options,
        }),
    )?;
    // CREATE TABLE cannot give a column a statistics target: one statement each, in the
    // same transaction.
    let mut sql = sql;
    for c in table.columns.iter().filter(|c| c.statistics.is_some()) {
        sql.push('\n');
        sql.push_str(&ctx.sql(
            "alter_column",
            json!({ "table": qn(t), "column": c.name.as_str(), "action": "statistics", "value": c.statistics }),
        )?);
    }
    let (mut needs, makes) = table_needs_and_makes(ctx, t, table);
    if let Some(p) = &table.partition_of {
        needs.push(Res::Table(p.parent.clone()));
    }
    needs.extend(table.inherits.iter().cloned().map(Res::Table));
    let step =
        StepDraft::new(Phase::Expand, format!("create table {t} (empty, so nothing waits on it)"), sql)
            .rollback(ctx.sql("drop_table", json!({ "table": qn(t), "if_exists": true }))?)
            .lock(LockMode::AccessExclusive, t)
            .verify(ctx.verify(json!({ "kind": "relation", "rel_text": t.quoted(), "present": true }))?)
            .needs(needs)
            .makes(makes);
    Ok(vec![step])
}

/// What creating `table` as `t` needs (its schema, column types and sequences) and makes
/// (the table, its columns, keys and constraints); shared by a plain create and a partition
/// created on its own to be attached.
pub(super) fn table_needs_and_makes(
    ctx: &Ctx,
    t: &crate::model::QualifiedName,
    table: &Table,
) -> (Vec<Res>, Vec<Res>) {
    let mut needs = Vec::new();
    if t.schema.as_str() != "public" {
        needs.push(Res::Schema(t.schema.clone()));
    }
    for c in &table.columns {
        needs.extend(type_needs(ctx.desired, &c.data_type));
        if let Some(seq) = c.default.as_deref().and_then(crate::diff::nextval_sequence) {
            needs.push(Res::Sequence(seq));
        }
    }
    let mut makes = vec![Res::Table(t.clone())];
    makes.extend(table.columns.iter().map(|c| Res::Column(t.clone(), c.name.clone())));
    for c in table.constraints.values() {
        if let ConstraintKind::PrimaryKey { columns, .. } | ConstraintKind::Unique { columns, .. } = &c.kind {
            makes.push(Res::Key(t.clone(), columns.clone()));
        }
        makes.push(Res::Constraint(t.clone(), c.name.clone()));
    }
    (needs, makes)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diff::Change;
    use crate::model::{QualifiedName, Schema};
    use crate::plan::Phase;

    #[test]
    fn creates_in_expand_with_inline_key() {
        let mut t = users();
        t.name = QualifiedName::of("My App", "we\"ird Name");
        let desired = schema_with(vec![t.clone()]);
        let steps = run(&Schema::default(), &desired, &Change::CreateTable { table: t });
        assert_eq!(phases(&steps), [Phase::Expand]);
        assert!(steps[0].sql.starts_with("CREATE TABLE \"My App\".\"we\"\"ird Name\" ("), "{}", steps[0].sql);
        assert!(steps[0].sql.contains("CONSTRAINT users_pkey PRIMARY KEY (id)"));
        assert!(steps[0].rollback_sql.as_deref().unwrap().starts_with("DROP TABLE IF EXISTS"));
    }
}
