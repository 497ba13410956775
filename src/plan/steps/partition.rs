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
use crate::model::{Ident, Index, IndexExpr, QualifiedName};
use crate::plan::draft::{Res, StepDraft};
use crate::plan::sqltext::{derived_name, index_value};
use crate::plan::{LockMode, Phase};
use crate::render::qn;

/// Whether `index` goes on a partitioned table that exists already.
pub fn is_partitioned_index(ctx: &Ctx<'_>, index: &Index, new_table: bool) -> bool {
    !new_table && !index.only && ctx.current.tables.get(&index.table).is_some_and(|t| t.is_partitioned())
}

pub fn index_steps(ctx: &Ctx<'_>, index: &Index) -> Steps {
    let mut out = Vec::new();
    let spec = Spec { phase: Phase::Expand, rename: None, suffix: None };
    build(ctx, index, &spec, &index.table, &index.name, &index.name, &mut out, &mut Vec::new())?;
    if let Some(first) = out.first_mut() {
        first.needs.extend(add_index::needs(ctx, index));
    }
    if let Some(last) = out.last_mut() {
        last.makes.extend(add_index::makes(index));
        last.verify = Some(ctx.verify(json!({ "kind": "index", "index_text": index.name.quoted() }))?);
    }
    Ok(out)
}

/// How a partitioned index is built: in which phase, over which column (a type change builds
/// it on the shadow column), and with which suffix on every name (so it can stand next to the
/// index it replaces until contract).
#[derive(Debug, Clone, Copy)]
pub struct Spec<'a> {
    pub phase: Phase,
    pub rename: Option<(&'a Ident, &'a Ident)>,
    pub suffix: Option<&'a str>,
}

/// `(temporary, final)` names of the partitions' indexes a type change builds.
pub type Renames = Vec<(QualifiedName, QualifiedName)>;

/// The steps building `index` on its partitioned table under the name `actual`, and for each
/// partition's index built under a temporary name, `(temporary, final)` names, so the caller
/// can rename them when the index they replace is gone.
pub fn index_steps_as(
    ctx: &Ctx<'_>,
    index: &Index,
    actual: &QualifiedName,
    spec: &Spec<'_>,
) -> Result<(Vec<StepDraft>, Renames), crate::render::RenderError> {
    let mut out = Vec::new();
    let mut renames = Vec::new();
    build(ctx, index, spec, &index.table, &index.name, actual, &mut out, &mut renames)?;
    if let Some(last) = out.last_mut() {
        last.verify = Some(ctx.verify(json!({ "kind": "index", "index_text": actual.quoted() }))?);
    }
    Ok((out, renames))
}

/// A script that builds `index` on its partitioned table again, the way [`index_steps`]
/// builds it (one `CREATE INDEX CONCURRENTLY` per leaf, `CREATE INDEX … ON ONLY` per
/// partitioned table, `ALTER INDEX … ATTACH PARTITION` each): the undo of a dropped
/// partitioned index, run statement by statement outside a transaction. It starts with those
/// steps' own undo, last first, so a run interrupted halfway (a leaf index left INVALID, one
/// built but never attached, a parent index still invalid) is cleared and built again.
pub fn rebuild_script(
    ctx: &Ctx<'_>,
    index: &Index,
    phase: Phase,
) -> Result<String, crate::render::RenderError> {
    let spec = Spec { phase, rename: None, suffix: None };
    let (steps, _) = index_steps_as(ctx, index, &index.name, &spec)?;
    let mut out: Vec<&str> = steps.iter().rev().filter_map(|s| s.rollback_sql.as_deref()).collect();
    out.extend(steps.iter().map(|s| s.sql.as_str()));
    Ok(out.join("\n"))
}

/// The name of the index on partition `table` that belongs to `parent`: the desired schema's
/// (a pg_dump or the loader names it as PostgreSQL would), else PostgreSQL's own choice.
fn child_name(
    ctx: &Ctx<'_>,
    parent: &QualifiedName,
    table: &QualifiedName,
    keys: &[String],
) -> QualifiedName {
    // The current schema's name when the index is built again after its drop.
    if let Some(n) =
        ctx.desired.attached_index_on(parent, table).or_else(|| ctx.current.attached_index_on(parent, table))
    {
        return n.clone();
    }
    QualifiedName::new(
        table.schema.clone(),
        derived_name(table.name.as_str(), &format!("_{}_idx", keys.join("_"))),
    )
}

/// The partitions `table` has when the index is built: the current ones, and new ones that
/// are attached before the parent changes ([`super::attach_partition::attached_early`]); a
/// table the plan creates has the desired ones.
fn partitions_now<'a>(ctx: &Ctx<'a>, table: &QualifiedName) -> Vec<&'a crate::model::Table> {
    if !ctx.current.tables.contains_key(table) {
        return ctx.desired.partitions_of(table);
    }
    let mut out = ctx.current.partitions_of(table);
    out.extend(
        ctx.desired
            .partitions_of(table)
            .into_iter()
            .filter(|d| super::attach_partition::attached_early(ctx, d)),
    );
    out
}

#[allow(clippy::too_many_arguments)]
fn build(
    ctx: &Ctx<'_>,
    index: &Index,
    spec: &Spec<'_>,
    table: &QualifiedName,
    name: &QualifiedName,
    actual: &QualifiedName,
    out: &mut Vec<StepDraft>,
    renames: &mut Vec<(QualifiedName, QualifiedName)>,
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
    for p in partitions_now(ctx, table) {
        let child = child_name(ctx, name, &p.name, &keys);
        let child_actual = match spec.suffix {
            Some(sfx) => {
                let tmp = QualifiedName::new(child.schema.clone(), derived_name(child.name.as_str(), sfx));
                renames.push((tmp.clone(), child.clone()));
                tmp
            }
            None => child.clone(),
        };
        if p.is_partitioned() {
            build(ctx, index, spec, &p.name, &child, &child_actual, out, renames)?;
        } else {
            let on_leaf =
                Index { name: child_actual.clone(), table: p.name.clone(), only: false, ..index.clone() };
            out.push(
                StepDraft::new(
                    spec.phase,
                    format!(
                        "build index {} on partition {} without blocking writes",
                        child_actual.name.quoted_sql(),
                        p.name.name.quoted_sql()
                    ),
                    ctx.sql(
                        "create_index",
                        json!({ "index": index_value(&on_leaf, &child_actual.name, true, spec.rename) }),
                    )?,
                )
                .rollback(ctx.sql(
                    "drop_index",
                    json!({ "index": qn(&child_actual), "concurrently": true, "if_exists": true }),
                )?)
                .lock(LockMode::ShareUpdateExclusive, &p.name)
                // A partition the plan creates exists once its creation ran.
                .needs((!ctx.current.tables.contains_key(&p.name)).then(|| Res::Table(p.name.clone())))
                .verify(ctx.verify(json!({ "kind": "index", "index_text": child_actual.quoted() }))?)
                .outside_transaction()
                .scans(),
            );
        }
        children.push(child_actual);
    }
    let on_parent = Index { name: actual.clone(), table: table.clone(), only: true, ..index.clone() };
    out.push(
        StepDraft::new(
            spec.phase,
            format!(
                "create index {} on the partitioned table {} alone (catalog only; invalid until every partition's index is attached)",
                actual.name.quoted_sql(),
                table.name.quoted_sql()
            ),
            ctx.sql("create_index", json!({ "index": index_value(&on_parent, &actual.name, false, spec.rename) }))?,
        )
        // Drops the indexes attached to it as well. PostgreSQL cannot drop a partitioned
        // index concurrently (0A000); the drop is catalog only, the lock brief.
        .rollback(format!(
            "{} -- seqmig:ignore drop-index-non-concurrently",
            ctx.sql("drop_index", json!({ "index": qn(actual), "concurrently": false, "if_exists": true }))?
        ))
        .lock(LockMode::Share, table)
        .verify(ctx.verify(json!({ "kind": "relation", "rel_text": actual.quoted(), "present": true }))?),
    );
    for child in children {
        out.push(
            StepDraft::new(
                spec.phase,
                format!("attach index {} to {}", child.name.quoted_sql(), actual.name.quoted_sql()),
                ctx.sql("attach_index", json!({ "parent": qn(actual), "child": qn(&child) }))?,
            )
            .rollback(format!(
                "-- an attached index cannot be detached; undoing the creation of {} drops it",
                actual.name.quoted_sql()
            ))
            .lock(LockMode::ShareUpdateExclusive, table),
        );
    }
    Ok(())
}
