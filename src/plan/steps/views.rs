//! create / replace / drop view (and materialized view). A replaced view is dropped and
//! created again — `CREATE OR REPLACE` cannot remove or retype output columns — in the phase
//! where everything it reads exists: the DAG places these "floating" steps after the steps
//! that make the columns they read and before the steps that remove the columns the old
//! definition read (a view must be dropped before a column it reads, and recreated after).

use serde_json::json;

use super::{Ctx, Steps};
use std::collections::BTreeSet;

use crate::model::{Ident, QualifiedName, Schema, View};
use crate::plan::draft::{Res, StepDraft};
use crate::plan::sqltext::index_value;
use crate::plan::{LockMode, Phase};
use crate::render::qn;

fn reads(v: &View) -> Vec<Res> {
    let mut r = Vec::new();
    for c in &v.reads {
        r.push(Res::Table(c.table.clone()));
        r.push(Res::View(c.table.clone()));
        if let Some(col) = &c.column {
            r.push(Res::Column(c.table.clone(), col.clone()));
        }
    }
    r
}

/// Columns of tables read with `*`: a view over `SELECT *` is bound to every column.
fn star_reads(ctx: &Ctx<'_>, v: &View) -> Vec<Res> {
    if !crate::parse::text::selects_star(&v.definition) {
        return Vec::new();
    }
    v.reads
        .iter()
        .filter(|c| c.column.is_none())
        .filter_map(|c| ctx.current.tables.get(&c.table))
        .flat_map(|t| t.columns.iter().map(|col| Res::Column(t.name.clone(), col.name.clone())))
        .collect()
}

/// A `SELECT *` definition over one table, spelled out as the columns that table has in
/// `schema` (the schema the view is created for): the table, those columns and the text.
/// PostgreSQL binds `*` to every column the table has when the view is created, in physical
/// order: seqmig's shadow and parked columns too (the contract's drop of a parked column
/// would then fail on the view), and a renamed column where the rename left it. `None` when
/// the definition has no `*` or is not one [`crate::parse::text::expand_star`] reads.
fn spelled_out(v: &View, schema: &Schema) -> Option<(QualifiedName, Vec<Ident>, String)> {
    if !crate::parse::text::selects_star(&v.definition) {
        return None;
    }
    let tables: BTreeSet<&QualifiedName> = v.reads.iter().map(|r| &r.table).collect();
    let [table] = tables.into_iter().collect::<Vec<_>>()[..] else { return None };
    let t = schema.tables.get(table)?;
    let quoted: Vec<String> = t.columns.iter().map(|c| c.name.quoted_sql()).collect();
    let text = crate::parse::text::expand_star(&v.definition, &quoted)?;
    Some((table.clone(), t.columns.iter().map(|c| c.name.clone()).collect(), text))
}

pub fn create_sql(ctx: &Ctx<'_>, v: &View, schema: &Schema) -> Result<String, crate::render::RenderError> {
    let check = v.check_option.as_ref().map(|c| {
        let c = c.trim();
        if c.to_ascii_lowercase().contains("check option") {
            c.to_string()
        } else {
            format!("{} CHECK OPTION", c.to_ascii_uppercase())
        }
    });
    let create = ctx.sql(
        "create_view",
        json!({
            "view": qn(&v.name),
            "materialized": v.materialized,
            "columns": v.columns.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            "options": v.options,
            "definition": spelled_out(v, schema).map_or(v.definition.clone(), |s| s.2).trim_end_matches(';'),
            "check_option": check,
        }),
    )?;
    let mut parts = Vec::new();
    if let Some(sp) = &v.search_path {
        // The definition was written with unqualified names under this search_path.
        parts.push(format!("SET LOCAL search_path = {}, public;", sp.quoted_sql()));
    }
    parts.push(create);
    for (col, default) in &v.column_defaults {
        parts.push(format!(
            "ALTER VIEW {} ALTER COLUMN {} SET DEFAULT {default};",
            v.name.quoted(),
            col.quoted_sql()
        ));
    }
    Ok(parts.join("\n"))
}

/// `v` as `schema` has it, with everything that hangs on it ([`crate::diff::attached`]): a
/// view the plan drops must come back whole, forward as the desired schema has it and on undo
/// as the current one had it. Its owner, when `schema` does not say, is the one `other` says
/// (ownership is not diffed: recreated, the view would belong to whoever runs the step).
fn create_whole_sql(
    ctx: &Ctx<'_>,
    v: &View,
    schema: &Schema,
    other: &Schema,
) -> Result<String, crate::render::RenderError> {
    let mut parts = vec![create_sql(ctx, v, schema)?];
    let a = crate::diff::attached::attached(schema, &v.name);
    for i in &a.indexes {
        // The view was created in this transaction: nothing else can read it yet, so the
        // plain build (a matview's scan) blocks no one.
        parts.push(ctx.sql("create_index", json!({ "index": index_value(i, &i.name.name, false, None) }))?);
    }
    if let Some(role) = a.owner.or_else(|| crate::diff::attached::attached(other, &v.name).owner) {
        parts.push(ctx.sql(
            "schema_object",
            json!({
                "kind": "owner",
                "object": if v.materialized { "materialized view" } else { "view" },
                "name": qn(&v.name),
                "role": role.as_str(),
            }),
        )?);
    }
    for o in &a.objects {
        parts.push(super::opaque::statement(o));
        if o.search_path.is_some() {
            parts.push("SET LOCAL search_path TO DEFAULT;".into());
        }
    }
    for (target, text) in &a.comments {
        parts.push(
            ctx.sql("comment", json!({ "kind": target.kind, "target": target.identity, "text": text }))?,
        );
    }
    Ok(parts.join("\n"))
}

fn drop_sql(ctx: &Ctx<'_>, v: &View, if_exists: bool) -> Result<String, crate::render::RenderError> {
    ctx.sql(
        "drop_view",
        json!({ "view": qn(&v.name), "materialized": v.materialized, "if_exists": if_exists }),
    )
}

fn create_step(ctx: &Ctx<'_>, v: &View) -> Result<StepDraft, crate::render::RenderError> {
    let mut s = StepDraft::new(
        Phase::Expand,
        format!("create {} {}", if v.materialized { "materialized view" } else { "view" }, v.name),
        create_sql(ctx, v, ctx.desired)?,
    )
    .rollback(drop_sql(ctx, v, true)?)
    // CREATE [OR REPLACE] VIEW takes ACCESS EXCLUSIVE on the view (measured by `seqmig
    // rehearse`): queries on a view being replaced wait for it.
    .lock(LockMode::AccessExclusive, &v.name)
    .verify(ctx.verify(json!({ "kind": "relation", "rel_text": v.name.quoted(), "present": true }))?)
    .floating()
    .needs(reads(v))
    .needs(super::opaque::routines_called(ctx, &v.definition, v.search_path.as_ref()))
    .makes([Res::View(v.name.clone())]);
    // Spelled out, it binds exactly these columns: after whatever makes them (a swap).
    if let Some((table, columns, _)) = spelled_out(v, ctx.desired) {
        s = s.needs(columns.into_iter().map(|c| Res::Column(table.clone(), c)));
    }
    if v.materialized {
        s = s.scans();
    }
    Ok(s)
}

pub fn create(ctx: &Ctx<'_>, v: &View) -> Steps {
    Ok(vec![create_step(ctx, v)?])
}

pub fn replace(ctx: &Ctx<'_>, from: &View, to: &View) -> Steps {
    let mut old_reads = reads(from);
    old_reads.extend(star_reads(ctx, from));
    let drop = StepDraft::new(
        Phase::Expand,
        format!("drop {} so the columns under it can change", from.name),
        drop_sql(ctx, from, false)?,
    )
    .rollback(create_whole_sql(ctx, from, ctx.current, ctx.desired)?)
    .lock(LockMode::AccessExclusive, &from.name)
    .floating()
    .releases(old_reads.clone())
    .removes([Res::View(from.name.clone())]);
    let mut create = create_step(ctx, to)?;
    create.sql = create_whole_sql(ctx, to, ctx.desired, ctx.current)?;
    // Its triggers call their functions: after whatever creates or replaces them.
    for o in crate::diff::attached::attached(ctx.desired, &to.name).objects {
        create.needs.extend(super::opaque::routines_called(ctx, &o.text, o.search_path.as_ref()));
    }
    create.purpose = format!("recreate {} over the new columns", to.name);
    // A `SELECT *` view binds every column at creation: unless its `*` is spelled out as the
    // desired columns, recreate it only after the columns that go away are gone, or it would
    // hold on to them again.
    if spelled_out(to, ctx.desired).is_none() {
        create = create.after_removal(star_reads(ctx, to));
    }
    Ok(vec![drop, create])
}

/// Steps run as one (one transaction): a view replaced around the catalog steps it waits
/// for. The SQL in order, the rollbacks in reverse, the strongest lock on every relation,
/// and every member's check.
pub(crate) fn one_transaction<'a>(members: impl IntoIterator<Item = &'a StepDraft>) -> StepDraft {
    let members: Vec<&StepDraft> = members.into_iter().collect();
    let mut out = members[0].clone();
    let views: Vec<String> = members
        .iter()
        .flat_map(|m| m.makes.iter())
        .filter_map(|r| match r {
            Res::View(v) => Some(v.to_string()),
            _ => None,
        })
        .collect();
    out.purpose = format!(
        "replace {} in one transaction, so queries on {} never find it missing: {}",
        views.join(", "),
        if views.len() == 1 { "it" } else { "them" },
        members.iter().map(|m| m.purpose.as_str()).collect::<Vec<_>>().join("; ")
    );
    out.sql = members.iter().map(|m| m.sql.as_str()).collect::<Vec<_>>().join("\n");
    // One-way if any member is (contract: a column the old definition read is dropped).
    out.rollback_sql = members
        .iter()
        .rev()
        .map(|m| m.rollback_sql.as_deref())
        .collect::<Option<Vec<_>>>()
        .map(|r| r.join("\n"));
    for m in &members[1..] {
        out.lock = out.lock.max(m.lock);
        for r in &m.lock_on {
            if !out.lock_on.contains(r) {
                out.lock_on.push(r.clone());
            }
        }
        out.needs.extend(m.needs.iter().cloned());
        out.makes.extend(m.makes.iter().cloned());
        out.removes.extend(m.removes.iter().cloned());
        out.releases.extend(m.releases.iter().cloned());
        out.after_removal.extend(m.after_removal.iter().cloned());
    }
    let checks: Vec<String> = members
        .iter()
        .filter_map(|m| m.verify.as_deref())
        .enumerate()
        .map(|(k, q)| format!("(SELECT ok FROM ({}) v{k})", q.trim().trim_end_matches(';')))
        .collect();
    out.verify = match checks.len() {
        0 => None,
        _ => Some(format!("SELECT coalesce({}, false) AS ok;", checks.join(" AND "))),
    };
    out
}

pub fn drop(ctx: &Ctx<'_>, v: &View) -> Steps {
    let mut rel = reads(v);
    rel.extend(star_reads(ctx, v));
    Ok(vec![
        StepDraft::new(
            Phase::Contract,
            format!("drop {} {}", if v.materialized { "materialized view" } else { "view" }, v.name),
            drop_sql(ctx, v, false)?,
        )
        .rollback(create_whole_sql(ctx, v, ctx.current, ctx.current)?)
        .lock(LockMode::AccessExclusive, &v.name)
        .verify(ctx.verify(json!({ "kind": "relation", "rel_text": v.name.quoted(), "present": false }))?)
        .releases(rel)
        .removes([Res::View(v.name.clone())]),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diff::{Change, ViewReason};
    use crate::model::{ColumnRef, Ident, QualifiedName, View};

    #[test]
    fn replace_is_drop_then_create() {
        let s = schema_with(vec![users()]);
        let v = View {
            name: QualifiedName::of("public", "active_users"),
            materialized: false,
            columns: vec![],
            definition: "SELECT id, name FROM public.users".into(),
            reads: [ColumnRef {
                table: QualifiedName::of("public", "users"),
                column: Some(Ident::exact("name").unwrap()),
            }]
            .into(),
            options: vec![],
            check_option: None,
            search_path: None,
            column_defaults: Default::default(),
        };
        let steps =
            run(&s, &s, &Change::ReplaceView { from: v.clone(), to: v, reason: ViewReason::Dependency });
        assert_eq!(steps[0].sql, "DROP VIEW public.active_users;");
        assert_eq!(steps[1].sql, "CREATE VIEW public.active_users AS SELECT id, name FROM public.users;");
        assert!(steps.iter().all(|s| s.floating));
    }

    /// The recreate brings back what the drop took along, as the desired schema has it; the
    /// drop's undo as the current one had it (owner kept from the current schema).
    #[test]
    fn replace_brings_back_what_hangs_on_the_view() {
        let load = |sql: &str| crate::parse::load_str("s.sql", sql).unwrap().schema;
        let base = "CREATE TABLE t (id integer PRIMARY KEY, name text);
CREATE MATERIALIZED VIEW m AS SELECT id, name FROM t;
ALTER MATERIALIZED VIEW m OWNER TO reporting;
GRANT SELECT ON TABLE m TO PUBLIC;";
        let cur =
            load(&format!("{base}\nCREATE INDEX m_name ON m (name);\nCOMMENT ON COLUMN m.name IS 'old';"));
        let des = load(
            &format!("{base}\nCREATE INDEX m_name ON m (lower(name));\nCOMMENT ON COLUMN m.name IS 'new';")
                .replace("ALTER MATERIALIZED VIEW m OWNER TO reporting;", ""),
        );
        let m = QualifiedName::of("public", "m");
        let (from, to) = (cur.views[&m].clone(), des.views[&m].clone());
        let steps = run(&cur, &des, &Change::ReplaceView { from, to, reason: ViewReason::Dependency });
        let undo = steps[0].rollback_sql.as_deref().unwrap();
        assert!(undo.contains("CREATE INDEX m_name ON public.m (name);"), "{undo}");
        assert!(undo.contains("COMMENT ON COLUMN public.m.name IS 'old';"), "{undo}");
        let redo = &steps[1].sql;
        assert!(redo.contains("CREATE INDEX m_name ON public.m ((lower(name)));"), "{redo}");
        assert!(redo.contains("COMMENT ON COLUMN public.m.name IS 'new';"), "{redo}");
        for sql in [undo, redo.as_str()] {
            assert!(sql.contains("ALTER MATERIALIZED VIEW public.m OWNER TO reporting;"), "{sql}");
            assert!(sql.contains("grant select on table m to public;"), "{sql}");
        }
    }
}
