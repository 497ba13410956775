//! Objects seqmig keeps as text (functions, triggers, policies, grants, …): created in
//! expand, replaced in expand (`CREATE OR REPLACE` where PostgreSQL has it, drop + create
//! in one transaction otherwise), dropped in contract. The drop statement is derived from
//! the object's identity; where it cannot be, the step says so and the plan warns.

use serde_json::json;

use super::{Ctx, Steps};
use crate::model::{OpaqueKind, OpaqueObject, QualifiedName};
use crate::plan::draft::{Res, StepDraft};
use crate::plan::{LockMode, Phase};

pub(super) fn statement(o: &OpaqueObject) -> String {
    let t = o.text.trim();
    let stmt = if t.ends_with(';') { t.to_string() } else { format!("{t};") };
    match &o.search_path {
        // The text was written with unqualified names under this search_path.
        Some(sp) => format!("SET LOCAL search_path = {}, public;\n{stmt}", sp.quoted_sql()),
        None => stmt,
    }
}

/// `DROP …` for an object, or `None` when its kind gives no way to derive one.
pub fn drop_sql(ctx: &Ctx<'_>, o: &OpaqueObject) -> Option<String> {
    let id = o.id.identity.trim();
    let strip = |word: &str| {
        let lower = id.to_ascii_lowercase();
        if lower.starts_with(&format!("{word} ")) { id[word.len() + 1..].to_string() } else { id.to_string() }
    };
    let (kind, target) = match o.id.kind {
        OpaqueKind::Function => ("FUNCTION", strip("function")),
        OpaqueKind::Procedure => ("PROCEDURE", strip("procedure")),
        OpaqueKind::Aggregate => ("AGGREGATE", strip("aggregate")),
        OpaqueKind::Trigger => ("TRIGGER", strip("trigger")),
        OpaqueKind::Policy => ("POLICY", strip("policy")),
        OpaqueKind::Rule => ("RULE", strip("rule")),
        OpaqueKind::Cast => ("CAST", strip("cast")),
        OpaqueKind::Operator => ("OPERATOR", strip("operator")),
        OpaqueKind::Publication => ("PUBLICATION", strip("publication")),
        OpaqueKind::Statistics => ("STATISTICS", strip("statistics")),
        OpaqueKind::Grant => {
            let text = statement(o);
            let lower = text.to_ascii_lowercase();
            if !lower.starts_with("grant ") {
                return None;
            }
            let to = lower.rfind(" to ")?;
            return Some(format!("REVOKE {} FROM {}", &text[6..to], &text[to + 4..]));
        }
        OpaqueKind::Unparsed | OpaqueKind::Other => return None,
    };
    ctx.sql("drop_object", json!({ "kind": kind, "target": target, "if_exists": true })).ok()
}

pub(super) fn or_replace(o: &OpaqueObject) -> Option<String> {
    let s = statement(o);
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("create or replace ") {
        return Some(s);
    }
    for kind in ["function ", "procedure ", "trigger ", "aggregate "] {
        if lower.starts_with(&format!("create {kind}")) {
            return Some(format!("CREATE OR REPLACE {}", &s["create ".len()..]));
        }
    }
    None
}

fn needs(o: &OpaqueObject) -> Vec<Res> {
    o.depends_on.iter().cloned().map(Res::Table).collect()
}

/// The name of a function, procedure or aggregate (its identity without the argument list).
pub(super) fn routine_name(o: &OpaqueObject) -> Option<QualifiedName> {
    if !matches!(o.id.kind, OpaqueKind::Function | OpaqueKind::Procedure | OpaqueKind::Aggregate) {
        return None;
    }
    let head = o.id.identity.split('(').next()?.trim();
    let head = ["function ", "procedure ", "aggregate "]
        .iter()
        .find_map(|w| head.to_ascii_lowercase().starts_with(w).then(|| &head[w.len()..]))
        .unwrap_or(head);
    QualifiedName::parse_sql(head.trim(), "public").ok()
}

/// The routines of the desired schema that `text` calls, as needs: a step that creates a view
/// or trigger calling one comes after the step that creates or replaces it.
pub(super) fn routines_called(
    ctx: &Ctx<'_>,
    text: &str,
    search_path: Option<&crate::model::Ident>,
) -> Vec<Res> {
    let default = search_path.map_or("public", |s| s.as_str());
    let named = crate::parse::named_objects(text, default);
    ctx.desired
        .opaque
        .values()
        .filter_map(routine_name)
        .filter(|q| named.contains(q))
        .map(Res::Routine)
        .collect()
}

fn makes(o: &OpaqueObject) -> Vec<Res> {
    routine_name(o).map(Res::Routine).into_iter().collect()
}

/// Creating a SQL-language function (or a trigger, rule, policy) parses what it names and
/// takes ACCESS SHARE on those tables (measured by `seqmig rehearse`); which tables is in
/// the opaque text, so the target stays empty.
fn reads_lock(mut s: StepDraft) -> StepDraft {
    s.lock = LockMode::AccessShare;
    s
}

/// The current columns a statement names on the tables it names (a column grant's list):
/// revoking it must come before those columns are dropped.
fn named_columns(ctx: &Ctx<'_>, o: &OpaqueObject) -> Vec<Res> {
    named_relations(ctx, o)
        .into_iter()
        .filter_map(|q| ctx.current.tables.get(&q))
        .flat_map(|t| {
            t.columns
                .iter()
                .filter(|c| crate::parse::lex::mentions(&o.text, c.name.as_str()))
                .map(|c| Res::Column(t.name.clone(), c.name.clone()))
        })
        .collect()
}

/// The relations of either schema that a statement names.
pub fn named_relations(ctx: &Ctx<'_>, o: &OpaqueObject) -> Vec<QualifiedName> {
    let default = o.search_path.as_ref().map_or("public", |s| s.as_str());
    crate::parse::named_objects(&o.text, default)
        .into_iter()
        .filter(|q| {
            [ctx.current, ctx.desired].iter().any(|s| {
                s.tables.contains_key(q)
                    || s.views.contains_key(q)
                    || s.sequences.contains_key(q)
                    || s.indexes.contains_key(q)
            })
        })
        .collect()
}

/// The lock creating (or dropping) an object attached to a table takes on that table, as
/// PostgreSQL 15 takes it: CREATE TRIGGER SHARE ROW EXCLUSIVE and DROP TRIGGER ACCESS
/// EXCLUSIVE; CREATE and DROP POLICY and RULE ACCESS EXCLUSIVE; CREATE and DROP STATISTICS
/// SHARE UPDATE EXCLUSIVE. Catalog only, so brief, but it queues behind running
/// transactions like any other. `None` for objects not attached to a table.
fn table_lock(o: &OpaqueObject, drops: bool) -> Option<LockMode> {
    if o.depends_on.is_empty() {
        return None;
    }
    match o.id.kind {
        OpaqueKind::Trigger if drops => Some(LockMode::AccessExclusive),
        OpaqueKind::Trigger => Some(LockMode::ShareRowExclusive),
        OpaqueKind::Policy | OpaqueKind::Rule => Some(LockMode::AccessExclusive),
        OpaqueKind::Statistics => Some(LockMode::ShareUpdateExclusive),
        _ => None,
    }
}

/// A statement seqmig cannot model may do anything to what it names: the prediction is the
/// strongest lock, ACCESS EXCLUSIVE, on every relation it names (never a guess in the
/// user's favour; `seqmig rehearse` measures the truth). Known forms (functions,
/// triggers, …) keep their measured lock.
fn opaque_lock(ctx: &Ctx<'_>, o: &OpaqueObject, mut s: StepDraft) -> StepDraft {
    if let Some(mode) = table_lock(o, s.sql.to_ascii_uppercase().contains("DROP ")) {
        s.lock = mode;
        s.lock_on = o.depends_on.clone();
    }
    if matches!(o.id.kind, OpaqueKind::Other | OpaqueKind::Unparsed) {
        let names = named_relations(ctx, o);
        s.lock = LockMode::AccessExclusive;
        s.needs.extend(names.iter().filter(|q| ctx.desired.tables.contains_key(q)).cloned().map(Res::Table));
        s.lock_on = names;
    }
    s
}

pub fn create(ctx: &Ctx<'_>, o: &OpaqueObject) -> Steps {
    let mut s = opaque_lock(
        ctx,
        o,
        reads_lock(
            StepDraft::new(Phase::Expand, format!("create {}", o.id.identity), statement(o))
                .needs(needs(o))
                .makes(makes(o)),
        ),
    );
    if let Some(d) = drop_sql(ctx, o) {
        s = s.rollback(d);
    }
    if o.id.kind == OpaqueKind::Unparsed {
        s.purpose = format!("run a statement seqmig keeps as text ({})", o.id.identity);
    }
    Ok(vec![s])
}

/// A routine's argument list and result as written (`(a integer, b text)`, `integer`),
/// lower-cased: what `CREATE OR REPLACE` cannot change (PostgreSQL refuses a new parameter
/// name, 42P13, or a new return type, 42P13). `None` for other statements.
fn routine_head(o: &OpaqueObject) -> Option<(String, String)> {
    if !matches!(o.id.kind, OpaqueKind::Function | OpaqueKind::Procedure | OpaqueKind::Aggregate) {
        return None;
    }
    let t = o.text.to_ascii_lowercase();
    let open = t.find('(')?;
    let close = crate::parse::text::matching_paren(&t, open)?;
    let args = t[open..=close].split_whitespace().collect::<Vec<_>>().join(" ");
    let rest = t[close + 1..].trim_start();
    let result = match rest.strip_prefix("returns ") {
        Some(r) => {
            const NEXT: [&str; 16] = [
                " language ",
                " as ",
                " immutable",
                " stable",
                " volatile",
                " strict",
                " security ",
                " parallel ",
                " cost ",
                " rows ",
                " set ",
                " window",
                " leakproof",
                " called ",
                " not ",
                " support ",
            ];
            let end = NEXT.iter().filter_map(|k| r.find(k)).min().unwrap_or(r.len());
            r[..end].split_whitespace().collect::<Vec<_>>().join(" ")
        }
        None => String::new(),
    };
    Some((args, result))
}

pub fn replace(ctx: &Ctx<'_>, from: &OpaqueObject, to: &OpaqueObject) -> Steps {
    let in_place = routine_head(from) == routine_head(to);
    let (sql, back) = match (or_replace(to), or_replace(from)) {
        (Some(a), Some(b)) if in_place => (a, Some(b)),
        _ => match drop_sql(ctx, from) {
            Some(d) => (
                format!("{d}\n{}", statement(to)),
                drop_sql(ctx, to).map(|d2| format!("{d2}\n{}", statement(from))),
            ),
            None => (statement(to), None),
        },
    };
    let mut s = opaque_lock(
        ctx,
        to,
        reads_lock(
            StepDraft::new(Phase::Expand, format!("replace {}", to.id.identity), sql)
                .needs(needs(to))
                .makes(makes(to)),
        ),
    );
    s.rollback_sql = back;
    Ok(vec![s])
}

pub fn drop(ctx: &Ctx<'_>, o: &OpaqueObject) -> Steps {
    let sql = drop_sql(ctx, o).unwrap_or_else(|| {
        format!("-- seqmig cannot derive how to remove: {}", o.id.identity.replace('\n', " "))
    });
    let mut s = StepDraft::new(Phase::Contract, format!("drop {}", o.id.identity), sql)
        .rollback(statement(o))
        .releases(needs(o))
        .releases(named_columns(ctx, o));
    if let Some(mode) = table_lock(o, true) {
        s.lock = mode;
        s.lock_on = o.depends_on.clone();
    }
    Ok(vec![s])
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diff::Change;
    use crate::model::{OpaqueId, OpaqueKind, OpaqueObject};

    #[test]
    fn functions_are_replaced_in_place() {
        let mk = |body: &str| OpaqueObject {
            id: OpaqueId { kind: OpaqueKind::Function, identity: "public.f()".into() },
            text: format!("CREATE FUNCTION public.f() RETURNS integer LANGUAGE sql AS $$ SELECT {body} $$"),
            depends_on: vec![],
            search_path: None,
        };
        let s = schema_with(vec![]);
        let steps = run(&s, &s, &Change::ReplaceObject { from: mk("1"), to: mk("2") });
        assert!(steps[0].sql.starts_with("CREATE OR REPLACE FUNCTION public.f()"));
        let steps = run(&s, &s, &Change::DropObject { object: mk("1") });
        assert_eq!(steps[0].sql, "DROP FUNCTION IF EXISTS public.f();");
    }

    #[test]
    fn a_renamed_parameter_or_new_result_type_drops_and_creates() {
        let mk = |head: &str| OpaqueObject {
            id: OpaqueId { kind: OpaqueKind::Function, identity: "public.f(integer)".into() },
            text: format!("CREATE FUNCTION public.f({head} LANGUAGE sql IMMUTABLE AS $$ SELECT 1 $$"),
            depends_on: vec![],
            search_path: None,
        };
        let s = schema_with(vec![]);
        for (a, b) in [
            ("x integer) RETURNS integer", "y integer) RETURNS integer"),
            ("x integer) RETURNS integer", "x integer) RETURNS bigint"),
        ] {
            let steps = run(&s, &s, &Change::ReplaceObject { from: mk(a), to: mk(b) });
            assert!(
                steps[0].sql.starts_with("DROP FUNCTION IF EXISTS public.f(integer);\nCREATE FUNCTION"),
                "{}",
                steps[0].sql
            );
            assert!(
                steps[0]
                    .rollback_sql
                    .as_deref()
                    .unwrap()
                    .starts_with("DROP FUNCTION IF EXISTS public.f(integer);\nCREATE FUNCTION")
            );
        }
        let steps = run(
            &s,
            &s,
            &Change::ReplaceObject {
                from: mk("x integer) RETURNS integer"),
                to: mk("x integer) RETURNS integer STRICT"),
            },
        );
        assert!(steps[0].sql.starts_with("CREATE OR REPLACE FUNCTION"), "{}", steps[0].sql);
    }
}
