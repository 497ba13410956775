//! Indexes, sequences, types, domains, views, extensions, schemas, comments and ownership:
//! every modelled object other than tables (removals are in [`super::drop`]).

use std::collections::{BTreeMap, BTreeSet};

use super::cursor::{Cursor, Fail, PResult};
use super::lex::Kind;
use super::names::choose_name;
use super::table::relation_taken;
use crate::model::{
    ColumnRef, CompositeType, Domain, EnumType, Extension, Ident, Index, IndexExpr, IndexKey, ObjectRef,
    OpaqueKind, QualifiedName, Schema, Sequence, View,
};

mod comment;
mod domain;
mod extension;
mod index;
mod schema;
mod sequence;
mod types;
mod view;

pub use comment::{comment_on, object_ref};
pub use domain::{alter_domain, create_domain};
pub use extension::create_extension;
pub(crate) use index::expression_label;
pub use index::{alter_index, create_index};
pub use schema::create_schema;
pub use sequence::{alter_sequence, create_sequence};
pub use types::{alter_type, create_type};
pub use view::create_view;

/// `pg_catalog."C"` → `"C"`: how `pg_get_indexdef` and `format_type` spell a collation.
pub fn collation_text(raw: &str) -> String {
    raw.strip_prefix("pg_catalog.").unwrap_or(raw).to_string()
}

/// Qualifies an unqualified type name that names a type (or a table's row type) of the
/// model in the current schema, as `format_type` does with an empty `search_path`
/// (`mood` → `public.mood`); built-in and unknown names are left as written.
pub fn resolve_type(s: &Schema, c: &Cursor, ty: String) -> String {
    let base = ty.trim_end_matches("[]");
    let dims = &ty[base.len()..];
    if base.contains(['.', '(', ' ']) {
        return ty;
    }
    let Ok(id) = Ident::from_sql(base) else { return ty };
    let q = QualifiedName::new(c.default_ident(), id);
    let known = s.enums.contains_key(&q)
        || s.domains.contains_key(&q)
        || s.composites.contains_key(&q)
        || s.tables.contains_key(&q)
        || s.views.contains_key(&q)
        || s.opaque.contains_key(&crate::model::OpaqueId {
            kind: OpaqueKind::Other,
            identity: format!("type {}", q.quoted()),
        });
    if known { format!("{}{dims}", q.quoted()) } else { ty }
}

/// `f(integer, text)` signature text from an argument list `(a integer, OUT b text, c int DEFAULT 1)`:
/// argument types only, OUT arguments left out, as PostgreSQL identifies a routine.
pub fn signature(c: &Cursor, from: usize, to: usize) -> String {
    let mut types = Vec::new();
    let mut depth = 0;
    let mut start = from;
    for n in from..=to {
        let end = n == to || (depth == 0 && c.toks[n].kind == Kind::Punct && c.text(&c.toks[n]) == ",");
        if n < to && c.toks[n].kind == Kind::Punct {
            match c.text(&c.toks[n]) {
                "(" | "[" => depth += 1,
                ")" | "]" => depth -= 1,
                _ => {}
            }
        }
        if !end {
            continue;
        }
        let mut a = start;
        start = n + 1;
        if a >= n {
            continue;
        }
        let kw =
            |i: usize, w: &str| c.toks[i].kind == Kind::Word && c.text(&c.toks[i]).eq_ignore_ascii_case(w);
        let mut out_arg = false;
        if kw(a, "out") {
            out_arg = true;
            a += 1;
        } else if kw(a, "in") || kw(a, "inout") || kw(a, "variadic") {
            a += 1;
        }
        // Cut a default.
        let mut b = a;
        while b < n && !kw(b, "default") && c.text(&c.toks[b]) != "=" {
            b += 1;
        }
        if a >= b {
            continue;
        }
        // `name type` when a second token follows that does not continue a type name.
        if b - a >= 2 && matches!(c.toks[a].kind, Kind::Word | Kind::QuotedIdent) {
            let next = c.text(&c.toks[a + 1]).to_ascii_lowercase();
            let continues_type = ["precision", "varying", "with", "without", "(", "[", ".", "%"]
                .contains(&next.as_str())
                || (kw(a, "double") || kw(a, "character") || kw(a, "bit") || kw(a, "national"));
            if !continues_type {
                a += 1;
            }
        }
        if !out_arg {
            types.push(c.type_text(a, b));
        }
    }
    types.join(", ")
}

/// The identity of a routine named at the cursor: `public.f(integer, text)`.
pub fn routine_identity(c: &mut Cursor) -> PResult<String> {
    let name = c.qname()?;
    if !c.peek_punct("(") {
        return Ok(name.quoted());
    }
    let (a, b) = c.paren_group()?;
    Ok(format!("{}({})", name.quoted(), signature(c, a, b)))
}

/// `(text AS integer)` → `(text as integer)` with both types normalised.
pub fn cast_identity(c: &Cursor, a: usize, b: usize) -> String {
    let split =
        (a..b).find(|&n| c.toks[n].kind == Kind::Word && c.text(&c.toks[n]).eq_ignore_ascii_case("as"));
    match split {
        Some(m) => format!("({} as {})", c.type_text(a, m), c.type_text(m + 1, b)),
        None => format!("({})", c.raw(a, b)),
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Ident, IndexExpr, ObjectRef, OpaqueKind, QualifiedName, Schema};
    use crate::parse::load_str;

    fn load(sql: &str) -> Schema {
        load_str("t.sql", sql).unwrap_or_else(|e| panic!("{e}")).schema
    }

    #[test]
    fn indexes_keep_method_keys_opclass_order_include_and_predicate() {
        let s = load(
            "CREATE TABLE t (a text, b int, c int);
             CREATE UNIQUE INDEX t_x ON ONLY public.t USING btree (lower(a) DESC NULLS LAST, b NULLS FIRST, (c + 1))
                 INCLUDE (c) WITH (fillfactor='80') WHERE (b > 0);
             CREATE INDEX t_trgm ON public.t USING gin (a public.gin_trgm_ops);
             CREATE INDEX ON t (b);
             ALTER INDEX public.t_trgm ALTER COLUMN 1 SET STATISTICS 3000;",
        );
        let x = &s.indexes[&QualifiedName::of("public", "t_x")];
        assert!(x.unique && x.only);
        assert_eq!(x.keys[0].expr, IndexExpr::Expression("lower(a)".into()));
        assert!(x.keys[0].descending);
        assert_eq!(x.keys[0].nulls_first, Some(false));
        assert_eq!(x.keys[1].nulls_first, Some(true));
        assert_eq!(x.keys[2].expr, IndexExpr::Expression("c + 1".into()));
        assert_eq!(x.include, [Ident::exact("c").unwrap()]);
        assert_eq!(x.options, ["fillfactor=80"]);
        assert_eq!(x.predicate.as_deref(), Some("b > 0"));
        let g = &s.indexes[&QualifiedName::of("public", "t_trgm")];
        assert_eq!((g.method.as_str(), g.keys[0].opclass.as_deref()), ("gin", Some("public.gin_trgm_ops")));
        assert_eq!(g.statistics.get(&1), Some(&3000));
        assert!(s.indexes.contains_key(&QualifiedName::of("public", "t_b_idx")), "default index name");
    }

    #[test]
    fn types_domains_views_comments_and_opaque_objects() {
        let s = load(
            "CREATE TYPE public.mood AS ENUM ('sad', 'ok');
             ALTER TYPE public.mood ADD VALUE 'meh' BEFORE 'ok';
             CREATE TYPE public.pair AS (a integer, b text);
             CREATE DOMAIN public.pos AS integer NOT NULL DEFAULT 1 CHECK (VALUE > 0);
             CREATE TABLE public.t (id int, m public.mood);
             CREATE VIEW public.v WITH (security_barrier = true) AS SELECT t.id, x.m FROM public.t JOIN public.t x ON x.id = t.id;
             CREATE MATERIALIZED VIEW public.mv AS SELECT id FROM public.t WITH NO DATA;
             CREATE FUNCTION public.f(a integer, OUT b text, c text DEFAULT 'x') RETURNS text LANGUAGE sql AS $$ SELECT c $$;
             COMMENT ON FUNCTION public.f(a integer, c text) IS 'f';
             COMMENT ON COLUMN public.t.id IS 'the id';
             CREATE TRIGGER trg BEFORE INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION public.tf();
             GRANT SELECT ON public.t TO reader;
             CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;",
        );
        assert_eq!(s.enums[&QualifiedName::of("public", "mood")].values, ["sad", "meh", "ok"]);
        assert_eq!(s.composites[&QualifiedName::of("public", "pair")].attributes.len(), 2);
        let d = &s.domains[&QualifiedName::of("public", "pos")];
        assert!(d.not_null);
        assert_eq!(d.checks[&Ident::exact("pos_check").unwrap()], "value > 0");
        let v = &s.views[&QualifiedName::of("public", "v")];
        let t = QualifiedName::of("public", "t");
        assert!(v.reads.iter().any(|r| r.table == t && r.column.as_ref().map(Ident::as_str) == Some("m")));
        assert!(v.reads.iter().any(|r| r.table == t && r.column.as_ref().map(Ident::as_str) == Some("id")));
        assert_eq!(v.options, ["security_barrier=true"]);
        assert!(s.views[&QualifiedName::of("public", "mv")].materialized);
        assert!(s.comments.contains_key(&ObjectRef::new("function", "public.f(integer, text)")));
        assert!(s.comments.contains_key(&ObjectRef::new("column", "public.t.id")));
        let kinds: Vec<OpaqueKind> = s.opaque.keys().map(|k| k.kind).collect();
        assert_eq!(kinds, [OpaqueKind::Function, OpaqueKind::Trigger, OpaqueKind::Grant]);
        assert!(s.opaque.keys().any(|k| k.identity == "public.f(integer, text)"));
        assert!(s.opaque.keys().any(|k| k.identity == "trg on public.t"));
    }

    #[test]
    fn sequences_normalise_defaults_away() {
        let s = load(
            "CREATE SEQUENCE a START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1;
             CREATE SEQUENCE b AS integer START 10 INCREMENT 5 MAXVALUE 2147483647 CYCLE;
             CREATE UNLOGGED SEQUENCE c;",
        );
        let a = &s.sequences[&QualifiedName::of("public", "a")];
        assert_eq!((a.start, a.increment, a.min_value, a.max_value, a.cache), (None, None, None, None, None));
        let b = &s.sequences[&QualifiedName::of("public", "b")];
        assert_eq!((b.start, b.increment, b.max_value, b.cycle), (Some(10), Some(5), None, true));
        assert_eq!(
            s.sequences[&QualifiedName::of("public", "c")].persistence,
            crate::model::Persistence::Unlogged
        );
    }

    #[test]
    fn drops_remove_from_the_model() {
        let s = load(
            "CREATE TABLE t (id serial); CREATE INDEX t_i ON t (id); DROP TABLE IF EXISTS t, nope CASCADE;
             DROP DOMAIN IF EXISTS d; CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1'; DROP FUNCTION f();",
        );
        assert!(s.tables.is_empty() && s.indexes.is_empty() && s.sequences.is_empty() && s.opaque.is_empty());
    }
}
