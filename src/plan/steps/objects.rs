//! Small catalog objects, one short step each: schemas, extensions, types, sequences,
//! statistics targets, comments. They are grouped in one file (rather than one file per
//! kind) because each is a single statement with its inverse and none has phases to plan.

use serde_json::{Value, json};

use super::{Ctx, Steps, type_needs};
use crate::diff::{Change, TypeDef};
use crate::model::{Ident, ObjectRef, QualifiedName, Sequence};
use crate::plan::draft::{Res, StepDraft};
use crate::plan::{LockMode, Phase};
use crate::render::qn;

fn type_sql(ctx: &Ctx<'_>, def: &TypeDef) -> Result<String, crate::render::RenderError> {
    let v = match def {
        TypeDef::Enum(e) => json!({ "kind": "enum", "name": qn(&e.name), "values": e.values }),
        TypeDef::Domain(d) => json!({
            "kind": "domain", "name": qn(&d.name), "data_type": d.data_type, "collation": d.collation,
            "default": d.default, "not_null": d.not_null,
            "checks": d.checks.iter().map(|(n, e)| json!({ "name": n.as_str(), "expr": e })).collect::<Vec<_>>(),
        }),
        TypeDef::Composite(c) => json!({
            "kind": "composite", "name": qn(&c.name),
            "attributes": c.attributes.iter().map(|(n, t)| json!({ "name": n.as_str(), "type": t })).collect::<Vec<_>>(),
        }),
    };
    ctx.sql("create_type", v)
}

fn drop_type_sql(ctx: &Ctx<'_>, def: &TypeDef) -> Result<String, crate::render::RenderError> {
    let kind = if matches!(def, TypeDef::Domain(_)) { "drop_domain" } else { "drop_type" };
    ctx.sql("schema_object", json!({ "kind": kind, "name": qn(def.name()) }))
}

fn seq_value(s: &Sequence, action: &str) -> Value {
    json!({
        "action": action, "name": qn(&s.name), "data_type": s.data_type, "increment": s.increment,
        "min_value": s.min_value, "max_value": s.max_value, "start": s.start, "cache": s.cache, "cycle": s.cycle,
    })
}

/// The relation a comment's target is or belongs to (a column's table).
fn comment_relation(target: &ObjectRef) -> Option<QualifiedName> {
    let parts = target.name_parts();
    match (target.kind.as_str(), parts.as_slice()) {
        ("table" | "view" | "materialized view" | "index" | "sequence", [s, t]) | ("column", [s, t, _]) => {
            Some(QualifiedName::new(s.clone(), t.clone()))
        }
        _ => None,
    }
}

fn comment_needs(target: &ObjectRef) -> Vec<Res> {
    let parts = target.name_parts();
    match (target.kind.as_str(), parts.as_slice()) {
        ("table", [s, t]) => vec![Res::Table(QualifiedName::new(s.clone(), t.clone()))],
        ("view" | "materialized view", [s, t]) => vec![Res::View(QualifiedName::new(s.clone(), t.clone()))],
        ("column", [s, t, c]) => vec![Res::Column(QualifiedName::new(s.clone(), t.clone()), c.clone())],
        ("index", [s, t]) => vec![Res::Index(QualifiedName::new(s.clone(), t.clone()))],
        ("type", [s, t]) => vec![Res::Type(QualifiedName::new(s.clone(), t.clone()))],
        ("sequence", [s, t]) => vec![Res::Sequence(QualifiedName::new(s.clone(), t.clone()))],
        ("schema", [s]) => vec![Res::Schema(s.clone())],
        ("extension", [e]) => vec![Res::Extension(e.clone())],
        _ => vec![],
    }
}

/// The comment an object has when its schema states none, where PostgreSQL gives it one that
/// the server alone knows otherwise: the public schema's. (An extension's comes from its control
/// file; the comment template reads it from the server.) Removing a comment restores this one.
fn default_comment(target: &ObjectRef) -> Option<&'static str> {
    (target.kind == "schema" && target.name_parts().first().is_some_and(|n| n.as_str() == "public"))
        .then_some("standard public schema")
}

pub fn steps(ctx: &Ctx<'_>, change: &Change) -> Steps {
    let step = match change {
        Change::CreateSchema { name } => StepDraft::new(Phase::Expand, format!("create schema {}", name.quoted_sql()), ctx.sql("schema_object", json!({ "kind": "create_schema", "name": name.as_str() }))?)
            .rollback(ctx.sql("schema_object", json!({ "kind": "drop_schema", "name": name.as_str() }))?)
            .makes([Res::Schema(name.clone())]),
        Change::CreateExtension { ext } => StepDraft::new(Phase::Expand, format!("create extension {}", ext.name.quoted_sql()), ctx.sql("schema_object", json!({ "kind": "create_extension", "name": ext.name.as_str(), "schema": ext.schema.as_ref().map(Ident::as_str) }))?)
            .rollback(ctx.sql("schema_object", json!({ "kind": "drop_extension", "name": ext.name.as_str() }))?)
            .needs(ext.schema.iter().filter(|s| s.as_str() != "public").cloned().map(Res::Schema))
            .makes([Res::Extension(ext.name.clone())]),
        // One-way: CREATE EXTENSION does not bring back what the drop took with it.
        Change::DropExtension { ext } => StepDraft::new(Phase::Contract, format!("drop extension {}", ext.name.quoted_sql()), ctx.sql("schema_object", json!({ "kind": "drop_extension", "name": ext.name.as_str() }))?)
            .removes([Res::Extension(ext.name.clone())]),
        Change::CreateType { def } => {
            let mut needs = Vec::new();
            if def.name().schema.as_str() != "public" {
                needs.push(Res::Schema(def.name().schema.clone()));
            }
            if let TypeDef::Domain(d) = def {
                needs.extend(type_needs(ctx.desired, &d.data_type));
            }
            if let TypeDef::Composite(c) = def {
                needs.extend(c.attributes.iter().filter_map(|(_, t)| type_needs(ctx.desired, t)));
            }
            StepDraft::new(Phase::Expand, format!("create type {}", def.name()), type_sql(ctx, def)?)
                .rollback(drop_type_sql(ctx, def)?)
                .needs(needs)
                .makes([Res::Type(def.name().clone())])
        }
        Change::DropType { def } => StepDraft::new(Phase::Contract, format!("drop type {}", def.name()), drop_type_sql(ctx, def)?)
            .rollback(type_sql(ctx, def)?)
            .removes([Res::Type(def.name().clone())]),
        Change::CreateSequence { seq } => {
            let create = StepDraft::new(Phase::Expand, format!("create sequence {}", seq.name), ctx.sql("sequence", seq_value(seq, "create"))?)
                .rollback(ctx.sql("sequence", json!({ "action": "drop", "name": qn(&seq.name), "if_exists": true }))?)
                .makes([Res::Sequence(seq.name.clone())]);
            let mut steps = vec![create];
            if let Some((t, c)) = &seq.owned_by {
                steps.push(
                    StepDraft::new(Phase::Expand, format!("tie sequence {} to {}.{}", seq.name, t, c.quoted_sql()), ctx.sql("sequence", json!({ "action": "owned_by", "name": qn(&seq.name), "table": qn(t), "column": c.as_str() }))?)
                        .rollback(ctx.sql("sequence", json!({ "action": "owned_by", "name": qn(&seq.name) }))?)
                        .needs([Res::Column(t.clone(), c.clone())]),
                );
            }
            return Ok(steps);
        }
        Change::DropSequence { seq } => StepDraft::new(Phase::Contract, format!("drop sequence {}", seq.name), ctx.sql("sequence", json!({ "action": "drop", "name": qn(&seq.name) }))?)
            .rollback(ctx.sql("sequence", seq_value(seq, "create"))?)
            .removes([Res::Sequence(seq.name.clone())]),
        Change::AlterSequence { from, to } => StepDraft::new(Phase::Expand, format!("alter sequence {}", to.name), ctx.sql("sequence", seq_value(to, "alter"))?)
            .rollback(ctx.sql("sequence", seq_value(from, "alter"))?)
            .lock(LockMode::RowExclusive, &to.name),
        Change::SetStatistics { table, column, from, to } => {
            let v = |n: Option<i32>| ctx.sql("alter_column", json!({ "table": qn(table), "column": column.as_str(), "action": "statistics", "value": n.unwrap_or(-1) }));
            StepDraft::new(Phase::Expand, format!("set the statistics target of {}", column.quoted_sql()), v(*to)?)
                .rollback(v(*from)?)
                .lock(LockMode::ShareUpdateExclusive, table)
                .needs([Res::Column(table.clone(), column.clone())])
        }
        Change::SetComment { target, from, to } => {
            let name = target.name_parts().first().map(|n| n.as_str().to_string());
            let sql = |text: &Option<String>| {
                ctx.sql("comment", json!({ "kind": target.kind, "target": target.identity, "name": name, "text": text.as_deref().or(default_comment(target)) }))
            };
            let s = StepDraft::new(Phase::Expand, format!("comment on {} {}", target.kind, target.identity), sql(to)?)
                .rollback(sql(from)?)
                .needs(comment_needs(target));
            // COMMENT ON a relation or a column locks the relation SHARE UPDATE EXCLUSIVE.
            match comment_relation(target) {
                Some(rel) => s.lock(LockMode::ShareUpdateExclusive, &rel),
                None => s,
            }
        }
        Change::RenameConstraint { table, from, to } => {
            let r = |a: &Ident, b: &Ident| ctx.sql("rename", json!({ "kind": "constraint", "table": qn(table), "from": a.as_str(), "to": b.as_str() }));
            StepDraft::new(Phase::Expand, format!("rename constraint {} to {} (catalog only)", from.quoted_sql(), to.name.quoted_sql()), r(from, &to.name)?)
                .rollback(r(&to.name, from)?)
                .lock(LockMode::AccessExclusive, table)
                .needs([Res::Table(table.clone())])
                .removes([Res::Constraint(table.clone(), from.clone())])
                .makes([Res::Constraint(table.clone(), to.name.clone())])
        }
        Change::RenameIndex { from, to } => {
            let r = |a: &QualifiedName, b: &Ident| ctx.sql("rename", json!({ "kind": "index", "object": qn(a), "to": b.as_str() }));
            StepDraft::new(Phase::Expand, format!("rename index {} to {} (catalog only)", from.name, to.name.name.quoted_sql()), r(&from.name, &to.name.name)?)
                .rollback(r(&to.name, &from.name.name)?)
                .lock(LockMode::ShareUpdateExclusive, &to.table)
                .needs([Res::Table(to.table.clone())])
                .removes([Res::Index(from.name.clone())])
                .makes([Res::Index(to.name.clone())])
        }
        other => unreachable!("objects::steps called for {}", other.kind()),
    };
    Ok(vec![step])
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diff::{Change, TypeDef};
    use crate::model::{EnumType, ObjectRef, QualifiedName, Sequence};

    #[test]
    fn small_objects_render_and_reparse() {
        let s = schema_with(vec![users()]);
        let e = TypeDef::Enum(EnumType {
            name: QualifiedName::of("app", "mood"),
            values: vec!["sad".into(), "it's".into()],
        });
        let steps = run(&s, &s, &Change::CreateType { def: e });
        assert_eq!(steps[0].sql, "CREATE TYPE app.mood AS ENUM ('sad', 'it''s');");
        let steps =
            run(&s, &s, &Change::CreateSequence { seq: Sequence::new(QualifiedName::of("public", "s")) });
        assert_eq!(steps[0].sql, "CREATE SEQUENCE public.s;");
        let steps = run(
            &s,
            &s,
            &Change::SetComment {
                target: ObjectRef::new("table", "public.users"),
                from: None,
                to: Some("people".into()),
            },
        );
        assert_eq!(steps[0].sql, "COMMENT ON TABLE public.users IS 'people';");
        assert_eq!(steps[0].rollback_sql.as_deref(), Some("COMMENT ON TABLE public.users IS NULL;"));
    }
}
