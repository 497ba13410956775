//! add UNIQUE / PRIMARY KEY: the unique index is built `CONCURRENTLY` in expand (writes
//! continue), and contract attaches it with `ADD CONSTRAINT … USING INDEX`, a catalog-only
//! step. A primary key over nullable columns would make that step scan under the lock, so
//! it waits for the columns' NOT NULL.

use serde_json::json;

use super::{Ctx, Steps, concurrent_index_step};
use crate::model::{Constraint, ConstraintKind, Ident, Index, IndexExpr, IndexKey, QualifiedName};
use crate::plan::draft::{Res, StepDraft};
use crate::plan::sqltext::{constraint_def, derived_name, index_value};
use crate::plan::{LockMode, Phase};
use crate::render::qn;

/// The unique index behind a PRIMARY KEY / UNIQUE constraint.
pub fn backing_index(table: &QualifiedName, c: &Constraint, name: &crate::model::Ident) -> Index {
    let (columns, include, nnd) = match &c.kind {
        ConstraintKind::PrimaryKey { columns, include } => (columns.clone(), include.clone(), false),
        ConstraintKind::Unique { columns, include, nulls_not_distinct } => {
            (columns.clone(), include.clone(), *nulls_not_distinct)
        }
        _ => (vec![], vec![], false),
    };
    Index {
        name: QualifiedName::new(table.schema.clone(), name.clone()),
        table: table.clone(),
        unique: true,
        nulls_not_distinct: nnd,
        method: "btree".into(),
        keys: columns
            .into_iter()
            .map(|c| IndexKey {
                expr: IndexExpr::Column(c),
                collation: None,
                opclass: None,
                descending: false,
                nulls_first: None,
            })
            .collect(),
        include,
        predicate: None,
        options: vec![],
        only: false,
        statistics: Default::default(),
    }
}

pub fn steps(ctx: &Ctx<'_>, table: &QualifiedName, c: &Constraint, new_table: bool) -> Steps {
    let primary = matches!(c.kind, ConstraintKind::PrimaryKey { .. });
    let cols = c.kind.columns().to_vec();
    let drop_constraint = ctx
        .sql("drop_constraint", json!({ "table": qn(table), "name": c.name.as_str(), "if_exists": true }))?;
    let col_needs: Vec<Res> = cols.iter().map(|col| Res::Column(table.clone(), col.clone())).collect();
    if new_table {
        return Ok(vec![
            StepDraft::new(Phase::Expand, format!("add {} to the new (empty) table", c.name.quoted_sql()), ctx.sql("add_constraint", json!({ "table": qn(table), "name": c.name.as_str(), "definition": constraint_def(c), "not_valid": false }))?)
                .rollback(drop_constraint)
                .lock(LockMode::AccessExclusive, table)
                .needs(col_needs)
                .makes([Res::Key(table.clone(), cols), Res::Constraint(table.clone(), c.name.clone())]),
        ]);
    }
    if ctx.current.tables.get(table).is_some_and(|t| t.is_partitioned()) {
        return partitioned(ctx, table, c, primary, drop_constraint);
    }
    let index = backing_index(table, c, &c.name);
    let build = concurrent_index_step(
        ctx,
        Phase::Expand,
        format!("build the unique index {} without blocking writes", c.name.quoted_sql()),
        ctx.sql("create_index", json!({ "index": index_value(&index, &c.name, true, None) }))?,
        &index.name,
        table,
    )?
    .verify(ctx.verify(json!({ "kind": "index", "index_text": index.name.quoted() }))?)
    .needs(col_needs)
    .makes([Res::Key(table.clone(), cols.clone()), Res::Index(index.name.clone())]);
    let mut attach_needs = vec![Res::Index(index.name.clone())];
    if primary {
        attach_needs.extend(primary_key_not_null(ctx, table, &cols));
    }
    let attach = StepDraft::new(
        Phase::Contract,
        format!("attach the index as {} {}", if primary { "primary key" } else { "unique constraint" }, c.name.quoted_sql()),
        ctx.sql("add_constraint_using_index", json!({ "table": qn(table), "name": c.name.as_str(), "primary": primary, "index": c.name.as_str(), "deferrable": c.deferrable, "initially_deferred": c.initially_deferred }))?,
    )
    // Dropping the constraint drops its index; the expand rollback then finds nothing to drop.
    .rollback(drop_constraint)
    .lock(LockMode::AccessExclusive, table)
    .needs(attach_needs)
    .makes([Res::Constraint(table.clone(), c.name.clone())]);
    Ok(vec![build, attach])
}

/// What a primary key over `cols` waits for: the NOT NULL of each column the current schema
/// does not hold NOT NULL (nullable there, or new: added or renamed by this plan), so that
/// `USING INDEX` finds them NOT NULL and does not scan under its lock.
pub fn primary_key_not_null(ctx: &Ctx<'_>, table: &QualifiedName, cols: &[Ident]) -> Vec<Res> {
    let current = ctx.current.tables.get(table);
    cols.iter()
        .filter(|col| !current.and_then(|t| t.column(col)).is_some_and(|c| c.not_null))
        .map(|col| Res::NotNull(table.clone(), col.clone()))
        .collect()
}

/// A key on a partitioned table. PostgreSQL refuses `CREATE UNIQUE INDEX CONCURRENTLY` on it
/// (0A000) and `ADD CONSTRAINT … USING INDEX` on it ("not supported on partitioned tables"),
/// and a plain `ADD CONSTRAINT … UNIQUE` builds every partition's index under a SHARE lock.
/// But that `ADD CONSTRAINT` adopts a partition's index that already backs a matching
/// constraint instead of building one. So: the unique index built concurrently on each leaf
/// partition (expand), attached there as its constraint with `USING INDEX`, then the
/// constraint added on the parent, which builds nothing (contract; brief ACCESS EXCLUSIVE on
/// the parent, SHARE on each partition, catalog only). Sub-partitioned partitions get their
/// constraint from the parent's, as PostgreSQL creates it.
fn partitioned(
    ctx: &Ctx<'_>,
    table: &QualifiedName,
    c: &Constraint,
    primary: bool,
    drop_constraint: String,
) -> Steps {
    let cols = c.kind.columns().to_vec();
    let parent_key = QualifiedName::new(table.schema.clone(), c.name.clone());
    let mut builds = Vec::new();
    let mut attaches = Vec::new();
    let mut attach_needs = Vec::new();
    for leaf in ctx.current.leaf_partitions(table) {
        let name = ctx.desired.attached_index_on(&parent_key, &leaf.name).cloned().unwrap_or_else(|| {
            let suffix = if primary {
                "_pkey".to_string()
            } else {
                format!("_{}_key", cols.iter().map(|c| c.as_str()).collect::<Vec<_>>().join("_"))
            };
            QualifiedName::new(leaf.name.schema.clone(), derived_name(leaf.name.name.as_str(), &suffix))
        });
        let index = backing_index(&leaf.name, c, &name.name);
        builds.push(
            concurrent_index_step(
                ctx,
                Phase::Expand,
                format!(
                    "build the unique index {} on partition {} without blocking writes",
                    name.name.quoted_sql(),
                    leaf.name.name.quoted_sql()
                ),
                ctx.sql("create_index", json!({ "index": index_value(&index, &name.name, true, None) }))?,
                &name,
                &leaf.name,
            )?
            .verify(ctx.verify(json!({ "kind": "index", "index_text": name.quoted() }))?)
            .needs(cols.iter().map(|col| Res::Column(table.clone(), col.clone())))
            .makes([Res::Index(name.clone())]),
        );
        attaches.push(
            StepDraft::new(
                Phase::Contract,
                format!(
                    "attach the index as {} on partition {} (catalog only)",
                    name.name.quoted_sql(),
                    leaf.name.name.quoted_sql()
                ),
                ctx.sql("add_constraint_using_index", json!({ "table": qn(&leaf.name), "name": name.name.as_str(), "primary": primary, "index": name.name.as_str(), "deferrable": c.deferrable, "initially_deferred": c.initially_deferred }))?,
            )
            .rollback(ctx.sql("drop_constraint", json!({ "table": qn(&leaf.name), "name": name.name.as_str(), "if_exists": true }))?)
            .lock(LockMode::AccessExclusive, &leaf.name)
            .needs([Res::Index(name.clone())])
            .makes([Res::Constraint(leaf.name.clone(), name.name.clone())]),
        );
        attach_needs.push(Res::Constraint(leaf.name.clone(), name.name.clone()));
    }
    if primary {
        attach_needs.extend(primary_key_not_null(ctx, table, &cols));
    }
    let on_parent = StepDraft::new(
        Phase::Contract,
        format!(
            "add {} {} on the partitioned table: it adopts each partition's constraint and builds nothing",
            if primary { "primary key" } else { "unique constraint" },
            c.name.quoted_sql()
        ),
        // Lint cannot see that every partition's index exists already.
        format!(
            "{} -- seqmig:ignore add-unique-without-index",
            ctx.sql("add_constraint", json!({ "table": qn(table), "name": c.name.as_str(), "definition": constraint_def(c), "not_valid": false }))?
        ),
    )
    // Dropping it drops the partitions' constraints and indexes attached to it.
    .rollback(drop_constraint)
    .lock(LockMode::AccessExclusive, table)
    .needs(attach_needs)
    .makes([Res::Key(table.clone(), cols), Res::Constraint(table.clone(), c.name.clone())]);
    let mut out = builds;
    out.extend(attaches);
    out.push(on_parent);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diff::Change;
    use crate::model::{ConstraintKind, Ident, QualifiedName};
    use crate::plan::Phase;

    #[test]
    fn concurrent_index_then_using_index() {
        let s = schema_with(vec![users()]);
        let c = constraint(
            "users_name_key",
            ConstraintKind::Unique {
                columns: vec![Ident::exact("name").unwrap()],
                include: vec![],
                nulls_not_distinct: false,
            },
        );
        let steps = run(
            &s,
            &s,
            &Change::AddUnique {
                table: QualifiedName::of("public", "users"),
                constraint: c,
                new_table: false,
            },
        );
        assert_eq!(phases(&steps), [Phase::Expand, Phase::Contract]);
        assert_eq!(steps[0].sql, "CREATE UNIQUE INDEX CONCURRENTLY users_name_key ON public.users (name);");
        assert!(!steps[0].transactional);
        assert_eq!(
            steps[1].sql,
            "ALTER TABLE public.users ADD CONSTRAINT users_name_key UNIQUE USING INDEX users_name_key;"
        );
    }
}
