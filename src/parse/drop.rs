//! PostgreSQL's semantics for the statements that remove objects, and for the `IF EXISTS`
//! guard on statements that change one, applied to the model being loaded.
//!
//! `pg_dump --clean --if-exists` opens every dump with the removal of everything the dump is
//! about to create (`DROP TABLE IF EXISTS`, `ALTER TABLE IF EXISTS ONLY … DROP CONSTRAINT IF
//! EXISTS`, …). Read in order against the model, as PostgreSQL would run them on an empty
//! database, they find nothing and do nothing: each is a *skip* the loader counts. A removal
//! that finds its object takes it out of the model, with what PostgreSQL takes with it
//! (a table's indexes, owned sequences, triggers, policies and comments; with `CASCADE` the
//! views and foreign keys that depend on it). A removal without `IF EXISTS` whose object is
//! missing would fail on a server; the model is left as it is and the loader reports a
//! `drop-of-missing-object` warning rather than guessing what the author meant.
//!
//! The readers say what happened through [`Notice`]s left on the cursor, like the server's
//! `NOTICE: … does not exist, skipping`.

use super::cursor::{Cursor, Fail, PResult};
use super::objects::{cast_identity, routine_identity};
use crate::model::{ConstraintKind, Ident, ObjectRef, OpaqueId, OpaqueKind, QualifiedName, Schema};

/// What a removal or a guarded change found, for the loader's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// `IF EXISTS` and the object is not there: nothing done (PostgreSQL's "skipping").
    Skipped(String),
    /// No `IF EXISTS` and the object is not there: nothing done, and a server would have
    /// refused the statement.
    Missing(String),
}

/// Records that `what` was not found: a skip under `IF EXISTS`, otherwise a missing object.
pub fn not_found(c: &mut Cursor, if_exists: bool, what: String) {
    c.notices.push(if if_exists { Notice::Skipped(what) } else { Notice::Missing(what) });
}

/// `ALTER <kind> IF EXISTS [ONLY] name …` whose relation or type is not in the model: the
/// whole statement is skipped, as PostgreSQL skips it. Returns false (cursor untouched)
/// when the statement has no such guard or its object exists.
pub fn skip_guarded_alter(s: &Schema, c: &mut Cursor, h: &[&str]) -> bool {
    let start = match h {
        ["alter", "table" | "index" | "sequence" | "view" | "type" | "domain", "if", "exists"] => 2,
        ["alter", "materialized", "view", "if"] => 3,
        _ => return false,
    };
    c.pos = start;
    if !c.eat_kws(&["if", "exists"]) {
        c.pos = 0;
        return false;
    }
    c.eat_kw("only");
    let Ok(name) = c.qname() else {
        c.pos = 0;
        return false;
    };
    let exists = s.tables.contains_key(&name)
        || s.views.contains_key(&name)
        || s.sequences.contains_key(&name)
        || s.indexes.contains_key(&name)
        || s.enums.contains_key(&name)
        || s.domains.contains_key(&name)
        || s.composites.contains_key(&name)
        || s.opaque
            .contains_key(&OpaqueId { kind: OpaqueKind::Other, identity: format!("type {}", name.quoted()) });
    if exists {
        c.pos = 0;
        return false;
    }
    c.notices.push(Notice::Skipped(format!("relation {name}")));
    c.pos = c.toks.len();
    true
}

/// `DROP <kind> [CONCURRENTLY] [IF EXISTS] name [, …] [CASCADE | RESTRICT]`.
pub fn drop(s: &mut Schema, c: &mut Cursor) -> PResult<()> {
    c.expect_kw("drop")?;
    let mut kind = c.word()?;
    if kind == "materialized" {
        c.expect_kw("view")?;
        kind = "materialized view".into();
    }
    if kind == "index" {
        c.eat_kw("concurrently");
    }
    if !MODELLED.contains(&kind.as_str()) {
        return drop_opaque(s, c, kind);
    }
    let if_exists = c.eat_kws(&["if", "exists"]);
    // The names are read first: CASCADE comes after all of them.
    let mut targets = Vec::new();
    loop {
        let at = c.offset();
        targets.push((at, target(c, &kind)?));
        if !c.eat_punct(",") {
            break;
        }
    }
    let cascade = c.eat_kw("cascade");
    if !cascade {
        c.eat_kw("restrict");
    }
    c.expect_end()?;
    for (_, t) in targets {
        let what = t.describe();
        if !remove(s, &t, cascade) {
            not_found(c, if_exists, what);
        }
    }
    Ok(())
}

/// The kinds of object whose removal the model follows by name; every other DROP removes
/// an opaque object (see [`drop_opaque`]).
const MODELLED: &[&str] = &[
    "table",
    "view",
    "materialized view",
    "index",
    "sequence",
    "type",
    "domain",
    "schema",
    "extension",
    "function",
    "procedure",
    "aggregate",
    "routine",
    "trigger",
    "policy",
    "rule",
    "cast",
];

/// Object kinds spelled in more than one word after `DROP`, so that the name is not taken
/// for part of the kind.
const MULTI_WORD_KINDS: &[&[&str]] = &[
    &["foreign", "data", "wrapper"],
    &["foreign", "table"],
    &["text", "search", "configuration"],
    &["text", "search", "dictionary"],
    &["text", "search", "parser"],
    &["text", "search", "template"],
    &["operator", "class"],
    &["operator", "family"],
    &["event", "trigger"],
    &["user", "mapping"],
    &["access", "method"],
];

/// `DROP <kind> [IF EXISTS] <identity> [CASCADE | RESTRICT]` of an object seqmig keeps as an
/// opaque statement (servers, operators, collations, publications, …): removes the opaque
/// object its `CREATE` statement made, found by the kind and the name it was created under.
fn drop_opaque(s: &mut Schema, c: &mut Cursor, first: String) -> PResult<()> {
    let mut kind = vec![first];
    for words in MULTI_WORD_KINDS {
        if words[0] == kind[0] && c.peek_kws(&words[1..]) {
            c.pos += words.len() - 1;
            kind = words.iter().map(|w| w.to_string()).collect();
            break;
        }
    }
    let kind = kind.join(" ");
    let if_exists = c.eat_kws(&["if", "exists"]);
    let from = c.pos;
    let mut to = c.toks.len();
    if to > from && (c.is_kw_at(to - from - 1, "cascade") || c.is_kw_at(to - from - 1, "restrict")) {
        to -= 1;
    }
    if to == from {
        return c.expected("a name");
    }
    let identity = c.raw(from, to);
    c.pos = c.toks.len();
    let prefix = format!("create {kind} {identity}");
    let special = match kind.as_str() {
        "statistics" => Some(OpaqueId { kind: OpaqueKind::Statistics, identity: identity.clone() }),
        "publication" => Some(OpaqueId { kind: OpaqueKind::Publication, identity: identity.clone() }),
        "event trigger" => {
            Some(OpaqueId { kind: OpaqueKind::Trigger, identity: format!("event trigger {identity}") })
        }
        _ => None,
    };
    let before = s.opaque.len();
    s.opaque.retain(|id, o| {
        let created_so =
            o.text.strip_prefix(&prefix).is_some_and(|r| r.is_empty() || r.starts_with([' ', '(', ';']));
        !(created_so || special.as_ref() == Some(id))
    });
    if s.opaque.len() == before {
        not_found(c, if_exists, format!("{kind} {identity}"));
    }
    Ok(())
}

/// One object a DROP names.
enum Target {
    Table(QualifiedName),
    View(QualifiedName),
    Index(QualifiedName),
    Sequence(QualifiedName),
    Type(QualifiedName),
    Namespace(Ident),
    Extension(Ident),
    Routine(String),
    Attached(OpaqueKind, String),
    Cast(String),
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Target::Table(q) => format!("table {q}"),
            Target::View(q) => format!("view {q}"),
            Target::Index(q) => format!("index {q}"),
            Target::Sequence(q) => format!("sequence {q}"),
            Target::Type(q) => format!("type {q}"),
            Target::Namespace(n) => format!("schema {}", n.quoted_sql()),
            Target::Extension(n) => format!("extension {}", n.quoted_sql()),
            Target::Routine(id) => format!("function {id}"),
            Target::Attached(k, id) => format!("{} {id}", format!("{k:?}").to_lowercase()),
            Target::Cast(id) => format!("cast {id}"),
        }
    }
}

fn target(c: &mut Cursor, kind: &str) -> PResult<Target> {
    let at = c.offset();
    Ok(match kind {
        "table" => Target::Table(c.qname()?),
        "view" | "materialized view" => Target::View(c.qname()?),
        "index" => Target::Index(c.qname()?),
        "sequence" => Target::Sequence(c.qname()?),
        "type" | "domain" => Target::Type(c.qname()?),
        "schema" => Target::Namespace(c.ident()?),
        "extension" => Target::Extension(c.ident()?),
        "function" | "procedure" | "aggregate" | "routine" => Target::Routine(routine_identity(c)?),
        "trigger" | "policy" | "rule" => {
            let n = c.ident()?;
            c.expect_kw("on")?;
            let t = c.qname()?;
            let k = match kind {
                "trigger" => OpaqueKind::Trigger,
                "policy" => OpaqueKind::Policy,
                _ => OpaqueKind::Rule,
            };
            Target::Attached(k, format!("{} on {}", n.quoted_sql(), t.quoted()))
        }
        "cast" => {
            let (a, b) = c.paren_group()?;
            Target::Cast(cast_identity(c, a, b))
        }
        other => return Err(Fail { at, message: format!("DROP {} is not supported", other.to_uppercase()) }),
    })
}

/// Takes the object out of the model with what PostgreSQL removes with it; false when it
/// is not there.
fn remove(s: &mut Schema, t: &Target, cascade: bool) -> bool {
    match t {
        Target::Table(q) => drop_table(s, q, cascade),
        Target::View(q) => drop_view(s, q, cascade),
        Target::Index(q) => s.indexes.remove(q).is_some(),
        Target::Sequence(q) => s.sequences.remove(q).is_some(),
        Target::Type(q) => {
            let a = s.enums.remove(q).is_some();
            let b = s.composites.remove(q).is_some();
            let d = s.domains.remove(q).is_some();
            let o = s
                .opaque
                .remove(&OpaqueId { kind: OpaqueKind::Other, identity: format!("type {}", q.quoted()) })
                .is_some();
            a || b || d || o
        }
        Target::Namespace(n) => {
            let found = s.namespaces.remove(n);
            if found && cascade {
                drop_namespace_contents(s, n);
            }
            found
        }
        Target::Extension(n) => s.extensions.remove(n).is_some(),
        Target::Routine(id) => {
            let mut found = false;
            for kind in [OpaqueKind::Function, OpaqueKind::Procedure, OpaqueKind::Aggregate] {
                found |= s.opaque.remove(&OpaqueId { kind, identity: id.clone() }).is_some();
            }
            found
        }
        Target::Attached(kind, id) => {
            s.opaque.remove(&OpaqueId { kind: *kind, identity: id.clone() }).is_some()
        }
        Target::Cast(id) => {
            s.opaque.remove(&OpaqueId { kind: OpaqueKind::Cast, identity: id.clone() }).is_some()
        }
    }
}

/// A table goes with its indexes, the sequences it owns, the triggers, policies and rules on
/// it and its comments; with CASCADE also the foreign keys that reference it and the views
/// that read it.
fn drop_table(s: &mut Schema, q: &QualifiedName, cascade: bool) -> bool {
    if s.tables.remove(q).is_none() {
        return false;
    }
    s.indexes.retain(|_, i| i.table != *q);
    s.sequences.retain(|_, sq| sq.owned_by.as_ref().is_none_or(|(t, _)| t != q));
    s.opaque.retain(|id, o| {
        !(matches!(id.kind, OpaqueKind::Trigger | OpaqueKind::Policy | OpaqueKind::Rule)
            && o.depends_on.contains(q))
    });
    forget_comments(s, q);
    if cascade {
        for t in s.tables.values_mut() {
            t.constraints.retain(
                |_, k| !matches!(&k.kind, ConstraintKind::ForeignKey { ref_table, .. } if ref_table == q),
            );
        }
        drop_readers(s, q);
    }
    true
}

fn drop_view(s: &mut Schema, q: &QualifiedName, cascade: bool) -> bool {
    if s.views.remove(q).is_none() {
        return false;
    }
    s.indexes.retain(|_, i| i.table != *q);
    forget_comments(s, q);
    if cascade {
        drop_readers(s, q);
    }
    true
}

/// Views that read `q`, and the views that read those.
fn drop_readers(s: &mut Schema, q: &QualifiedName) {
    let readers: Vec<QualifiedName> =
        s.views.values().filter(|v| v.reads.iter().any(|r| r.table == *q)).map(|v| v.name.clone()).collect();
    for r in readers {
        drop_view(s, &r, true);
    }
}

/// `DROP SCHEMA … CASCADE`: everything the model holds in it.
fn drop_namespace_contents(s: &mut Schema, n: &Ident) {
    let tables: Vec<QualifiedName> = s.tables.keys().filter(|q| q.schema == *n).cloned().collect();
    for t in tables {
        drop_table(s, &t, true);
    }
    let views: Vec<QualifiedName> = s.views.keys().filter(|q| q.schema == *n).cloned().collect();
    for v in views {
        drop_view(s, &v, true);
    }
    s.sequences.retain(|q, _| q.schema != *n);
    s.indexes.retain(|q, _| q.schema != *n);
    s.enums.retain(|q, _| q.schema != *n);
    s.domains.retain(|q, _| q.schema != *n);
    s.composites.retain(|q, _| q.schema != *n);
}

/// Comments on a relation and on its columns.
fn forget_comments(s: &mut Schema, q: &QualifiedName) {
    let quoted = q.quoted();
    let columns = format!("{quoted}.");
    s.comments.retain(|r: &ObjectRef, _| {
        !(r.identity == quoted && r.kind != "column"
            || r.kind == "column" && r.identity.starts_with(&columns))
    });
}

#[cfg(test)]
mod tests {
    use crate::model::QualifiedName;
    use crate::parse::load_str;

    #[test]
    fn issue_17_1_a_clean_prelude_on_an_empty_model_is_skipped() {
        let l = load_str(
            "t.sql",
            "ALTER TABLE IF EXISTS ONLY public.t DROP CONSTRAINT IF EXISTS t_pkey;
             ALTER TABLE IF EXISTS public.t ALTER COLUMN id DROP DEFAULT;
             DROP INDEX IF EXISTS public.t_i; DROP TABLE IF EXISTS public.t; DROP SEQUENCE IF EXISTS public.t_id_seq;
             DROP FUNCTION IF EXISTS public.f(integer); DROP EXTENSION IF EXISTS pg_trgm; DROP SERVER IF EXISTS s;
             DROP SCHEMA IF EXISTS app; DROP TYPE IF EXISTS public.mood;
             CREATE TABLE public.t (id integer NOT NULL);",
        )
        .unwrap();
        assert_eq!((l.report.if_exists_skips, l.report.unparsed), (10, 0));
        assert!(l.report.findings.is_empty(), "{:?}", l.report.findings);
        assert_eq!(l.schema.tables.len(), 1);
    }

    #[test]
    fn issue_17_1_a_drop_of_a_missing_object_is_a_warning_and_changes_nothing() {
        let l =
            load_str("t.sql", "CREATE TABLE t (id int); DROP TABLE nope; ALTER TABLE t DROP CONSTRAINT c;")
                .unwrap();
        let codes: Vec<(&str, &str)> =
            l.report.findings.iter().map(|f| (f.code.as_str(), f.object.as_str())).collect();
        assert_eq!(
            codes,
            [
                ("drop-of-missing-object", "table public.nope"),
                ("drop-of-missing-object", "constraint c of table public.t")
            ]
        );
        assert_eq!((l.report.modelled, l.report.unparsed), (3, 0));
        assert_eq!(l.schema.tables.len(), 1);
    }

    #[test]
    fn issue_17_1_cascade_takes_dependent_views_and_foreign_keys() {
        let l = load_str(
            "t.sql",
            "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (a_id int REFERENCES a);
             CREATE VIEW v AS SELECT id FROM a; CREATE VIEW w AS SELECT id FROM v;
             CREATE FUNCTION tg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
             CREATE TRIGGER x BEFORE INSERT ON a FOR EACH ROW EXECUTE FUNCTION tg();
             COMMENT ON TABLE a IS 'gone';
             DROP TABLE a CASCADE;",
        )
        .unwrap();
        let s = l.schema;
        assert!(s.views.is_empty() && s.comments.is_empty());
        assert!(s.tables[&QualifiedName::of("public", "b")].constraints.is_empty());
        assert_eq!(s.opaque.len(), 1, "only the function is left: {:?}", s.opaque.keys());
    }
}
