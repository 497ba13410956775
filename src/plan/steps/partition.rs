//! An index on a partitioned table (issue 21.3). PostgreSQL refuses `CREATE INDEX
//! CONCURRENTLY` on a partitioned table (SQLSTATE 0A000), and a plain `CREATE INDEX` on it
//! holds a SHARE lock on every partition while all of them build. So, bottom-up through the
//! partition tree: one `CREATE INDEX CONCURRENTLY` per leaf partition, then `CREATE INDEX …
//! ON ONLY` the partitioned table (catalog only; it starts INVALID), then `ALTER INDEX …
//! ATTACH PARTITION` for each partition's index; the parent's index turns valid with the
//! last attach.
//!
//! Undo runs in reverse: the attaches have nothing to undo on their own (an attached index
//! cannot be detached), dropping the parent's index drops every index attached to it, and
//! each leaf's build is undone with `DROP INDEX CONCURRENTLY IF EXISTS`, which also clears a
//! half-built set: a leaf index built but never attached, or one left INVALID by a failed
//! build (the executor drops that one before it retries the step).

use serde_json::json;

use super::{Ctx, Steps, add_index};
use crate::model::{Index, IndexExpr, QualifiedName};
use crate::plan::draft::StepDraft;
use crate::plan::sqltext::{derived_name, index_value};
use crate::plan::{LockMode, Phase};
use crate::render::qn;

/// Whether `index` goes on a partitioned table that exists already.
pub fn is_partitioned_index(ctx: &Ctx<'_>, index: &Index, new_table: bool) -> bool {
    !new_table && !index.only && ctx.current.tables.get(&index.table).is_some_and(|t| t.is_partitioned())
}

pub fn index_steps(ctx: &Ctx<'_>, index: &Index) -> Steps {
    let mut out = Vec::new();
    build(ctx, index, &index.table, &index.name, &mut out)?;
    if let Some(first) = out.first_mut() {
        first.needs.extend(add_index::needs(index));
    }
    if let Some(last) = out.last_mut() {
        last.makes.extend(add_index::makes(index));
        last.verify = Some(ctx.verify(json!({ "kind": "index", "index_text": index.name.quoted() }))?);
    }
    Ok(out)
}

/// The name of the index on partition `table` that belongs to `parent`: the desired schema's
/// (a pg_dump or the loader names it as PostgreSQL would), else PostgreSQL's own choice.
fn child_name(
    ctx: &Ctx<'_>,
    parent: &QualifiedName,
    table: &QualifiedName,
    keys: &[String],
) -> QualifiedName {
    if let Some(n) = ctx.desired.attached_index_on(parent, table) {
        return n.clone();
    }
    QualifiedName::new(
        table.schema.clone(),
        derived_name(table.name.as_str(), &format!("_{}_idx", keys.join("_"))),
    )
}

fn build(
    ctx: &Ctx<'_>,
    index: &Index,
    table: &QualifiedName,
    name: &QualifiedName,
    out: &mut Vec<StepDraft>,
) -> Result<(), crate::render::RenderError> {
    let keys: Vec<String> = index
        .keys
        .iter()
        .map(|k| match &k.expr {
            IndexExpr::Column(c) => c.as_str().to_string(),
            IndexExpr::Expression(_) => "expr".to_string(),
        })
        .collect();
    let mut children = Vec::new();
    for p in ctx.current.partitions_of(table) {
        let child = child_name(ctx, name, &p.name, &keys);
        if p.is_partitioned() {
            build(ctx, index, &p.name, &child, out)?;
        } else {
            let on_leaf = Index { name: child.clone(), table: p.name.clone(), only: false, ..index.clone() };
            out.push(
                StepDraft::new(
                    Phase::Expand,
                    format!(
                        "build index {} on partition {} without blocking writes",
                        child.name.quoted_sql(),
                        p.name.name.quoted_sql()
                    ),
                    ctx.sql(
                        "create_index",
                        json!({ "index": index_value(&on_leaf, &child.name, true, None) }),
                    )?,
                )
                .rollback(ctx.sql(
                    "drop_index",
                    json!({ "index": qn(&child), "concurrently": true, "if_exists": true }),
                )?)
                .lock(LockMode::ShareUpdateExclusive, &p.name)
                .verify(ctx.verify(json!({ "kind": "index", "index_text": child.quoted() }))?)
                .outside_transaction()
                .scans(),
            );
        }
        children.push(child);
    }
    let on_parent = Index { name: name.clone(), table: table.clone(), only: true, ..index.clone() };
    out.push(
        StepDraft::new(
            Phase::Expand,
            format!(
                "create index {} on the partitioned table {} alone (catalog only; invalid until every partition's index is attached)",
                name.name.quoted_sql(),
                table.name.quoted_sql()
            ),
            ctx.sql("create_index", json!({ "index": index_value(&on_parent, &name.name, false, None) }))?,
        )
        // Drops the indexes attached to it as well.
        .rollback(ctx.sql("drop_index", json!({ "index": qn(name), "concurrently": false, "if_exists": true }))?)
        .lock(LockMode::Share, table)
        .verify(ctx.verify(json!({ "kind": "relation", "rel_text": name.quoted(), "present": true }))?),
    );
    for child in children {
        out.push(
            StepDraft::new(
                Phase::Expand,
                format!("attach index {} to {}", child.name.quoted_sql(), name.name.quoted_sql()),
                ctx.sql("attach_index", json!({ "parent": qn(name), "child": qn(&child) }))?,
            )
            .rollback(format!(
                "-- an attached index cannot be detached; undoing the creation of {} drops it",
                name.name.quoted_sql()
            ))
            .lock(LockMode::ShareUpdateExclusive, table),
        );
    }
    Ok(())
}
