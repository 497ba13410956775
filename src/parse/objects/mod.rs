//! Indexes, sequences, types, domains, views, extensions, schemas, comments and ownership:
//! every modelled object other than tables (removals are in [`super::drop`]).

use std::collections::{BTreeMap, BTreeSet};

use super::cursor::{Cursor, Fail, PResult};
use super::lex::Kind;
use super::names::choose_name;
use super::table::relation_taken;
use crate::model::{
    ColumnRef, CompositeType, Domain, EnumType, Extension, Ident, Index, IndexExpr, IndexKey, ObjectRef,
    OpaqueKind, QualifiedName, Schema, Sequence, View, normalize_type,
};

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

/// `CREATE [UNIQUE] INDEX …`; the cursor is after `CREATE`.
pub fn create_index(s: &mut Schema, c: &mut Cursor) -> PResult<()> {
    let unique = c.eat_kw("unique");
    c.expect_kw("index")?;
    c.eat_kw("concurrently");
    let if_not_exists = c.eat_kws(&["if", "not", "exists"]);
    let name = if c.peek_kw("on") { None } else { Some(c.ident()?) };
    c.expect_kw("on")?;
    let only = c.eat_kw("only");
    let table = c.qname()?;
    let method = if c.eat_kw("using") { c.word()? } else { "btree".to_string() };
    c.expect_punct("(")?;
    let mut keys = Vec::new();
    loop {
        keys.push(index_key(c)?);
        if c.eat_punct(")") {
            break;
        }
        c.expect_punct(",")?;
    }
    let include = if c.eat_kw("include") { c.ident_list()? } else { vec![] };
    let mut nulls_not_distinct = false;
    if c.eat_kws(&["nulls", "not", "distinct"]) {
        nulls_not_distinct = true;
    } else {
        c.eat_kws(&["nulls", "distinct"]);
    }
    let options = if c.eat_kw("with") { c.options()? } else { vec![] };
    if c.eat_kw("tablespace") {
        c.ident()?;
    }
    let predicate = if c.eat_kw("where") {
        let (from, to) = c.rest();
        Some(c.expr_text(from, to))
    } else {
        None
    };
    c.expect_end()?;
    if !s.tables.contains_key(&table) && !s.views.get(&table).is_some_and(|v| v.materialized) {
        return c.fail(format!("table {table} does not exist"));
    }
    let name = match name {
        Some(n) => n,
        None => {
            let cols: Vec<String> = keys
                .iter()
                .map(|k| match &k.expr {
                    IndexExpr::Column(c) => c.as_str().to_string(),
                    IndexExpr::Expression(e) => expression_label(e),
                })
                .collect();
            choose_name(table.name.as_str(), Some(&cols.join("_")), if unique { "key" } else { "idx" }, |n| {
                relation_taken(s, &table.schema, n)
            })
        }
    };
    let q = QualifiedName::new(table.schema.clone(), name);
    if s.indexes.contains_key(&q) || relation_taken(s, &q.schema, q.name.as_str()) {
        if if_not_exists {
            return Ok(());
        }
        return c.fail(format!("relation {q} already exists"));
    }
    s.indexes.insert(
        q.clone(),
        Index {
            name: q,
            table,
            unique,
            nulls_not_distinct,
            method,
            keys,
            include,
            predicate,
            options,
            only,
            statistics: BTreeMap::new(),
        },
    );
    Ok(())
}

/// The word PostgreSQL uses for an expression key in a default index name (`lower` for
/// `lower(email)`, `expr` otherwise).
pub(crate) fn expression_label(e: &str) -> String {
    let word: String = e.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    if word.is_empty() || !e[word.len()..].starts_with('(') { "expr".into() } else { word }
}

fn index_key(c: &mut Cursor) -> PResult<IndexKey> {
    let from = c.pos;
    let expr = if c.peek_punct("(") {
        let (a, b) = c.paren_group()?;
        IndexExpr::Expression(c.expr_text(a, b))
    } else {
        let parts = c.name_parts()?;
        if c.peek_punct("(") {
            c.paren_group()?;
            IndexExpr::Expression(c.expr_text(from, c.pos))
        } else if parts.len() == 1 {
            IndexExpr::Column(parts.into_iter().next().expect("one part"))
        } else {
            return c.fail("a qualified name is not an index key; wrap expressions in parentheses");
        }
    };
    let collation = if c.eat_kw("collate") {
        let f = c.pos;
        c.name_parts()?;
        Some(collation_text(&c.raw(f, c.pos)))
    } else {
        None
    };
    let opclass = if c.peek().is_some_and(|t| matches!(t.kind, Kind::Word | Kind::QuotedIdent))
        && !["asc", "desc", "nulls"].iter().any(|k| c.peek_kw(k))
    {
        let f = c.pos;
        c.name_parts()?;
        if c.peek_punct("(") {
            c.paren_group()?;
        }
        Some(c.raw(f, c.pos))
    } else {
        None
    };
    let descending = if c.eat_kw("desc") {
        true
    } else {
        c.eat_kw("asc");
        false
    };
    let mut nulls_first = if c.eat_kws(&["nulls", "first"]) {
        Some(true)
    } else if c.eat_kws(&["nulls", "last"]) {
        Some(false)
    } else {
        None
    };
    // The default (NULLS LAST ascending, NULLS FIRST descending) is not spelled out.
    if nulls_first == Some(descending) {
        nulls_first = None;
    }
    Ok(IndexKey { expr, collation, opclass, descending, nulls_first })
}

/// `ALTER INDEX name ATTACH PARTITION child | OWNER TO | SET (…) | RENAME TO …`.
pub fn alter_index(s: &mut Schema, c: &mut Cursor) -> PResult<()> {
    c.eat_kws(&["if", "exists"]);
    let name = c.qname()?;
    if !index_exists(s, &name) {
        return c.fail(format!("index {name} does not exist"));
    }
    if c.eat_kws(&["attach", "partition"]) {
        let child = c.qname()?;
        c.expect_end()?;
        if !index_exists(s, &child) {
            return c.fail(format!("index {child} does not exist"));
        }
        s.index_attachments.insert(child, name);
        return Ok(());
    }
    if c.eat_kw("set") && c.peek_punct("(") {
        let opts = c.options()?;
        let Some(ix) = s.indexes.get_mut(&name) else {
            return c.fail(format!("index {name} belongs to a constraint; its options are not modelled"));
        };
        for o in opts {
            let key = o.split('=').next().unwrap_or("").to_string();
            ix.options.retain(|x| x.split('=').next() != Some(key.as_str()));
            ix.options.push(o);
        }
        ix.options.sort();
        return c.expect_end();
    }
    if c.eat_kws(&["rename", "to"]) {
        let new = QualifiedName::new(name.schema.clone(), c.ident()?);
        c.expect_end()?;
        let Some(mut ix) = s.indexes.remove(&name) else {
            return c.fail(format!("index {name} belongs to a constraint; rename the constraint"));
        };
        ix.name = new.clone();
        s.indexes.insert(new, ix);
        return Ok(());
    }
    if c.eat_kws(&["owner", "to"]) {
        c.ident()?;
        return c.expect_end();
    }
    if c.eat_kw("alter") {
        c.eat_kw("column");
        let n = c.integer()?;
        c.expect_kws(&["set", "statistics"])?;
        let target = c.integer()?;
        c.expect_end()?;
        let Some(ix) = s.indexes.get_mut(&name) else {
            return c.fail(format!("index {name} belongs to a constraint; its statistics are not modelled"));
        };
        let Ok(pos) = u32::try_from(n) else { return c.fail("column number must be positive") };
        if target < 0 {
            ix.statistics.remove(&pos);
        } else {
            ix.statistics.insert(pos, target as i32);
        }
        return Ok(());
    }
    c.expected("an ALTER INDEX action seqmig understands")
}

/// A plain index or the index behind a primary key, unique or exclusion constraint.
pub fn index_exists(s: &Schema, q: &QualifiedName) -> bool {
    s.indexes.contains_key(q)
        || s.tables.values().filter(|t| t.name.schema == q.schema).any(|t| {
            t.constraints.get(&q.name).is_some_and(|k| {
                matches!(
                    k.kind,
                    crate::model::ConstraintKind::PrimaryKey { .. }
                        | crate::model::ConstraintKind::Unique { .. }
                        | crate::model::ConstraintKind::Exclusion { .. }
                )
            })
        })
}

/// Sequence options shared by `CREATE SEQUENCE` and `ALTER SEQUENCE`.
fn sequence_options(c: &mut Cursor, seq: &mut Sequence) -> PResult<()> {
    // Options as written; defaults are normalised away afterwards.
    loop {
        if c.eat_kw("as") {
            let from = c.pos;
            c.word()?;
            seq.data_type = normalize_type(&c.raw(from, c.pos));
        } else if c.eat_kw("increment") {
            c.eat_kw("by");
            seq.increment = Some(c.integer()?);
        } else if c.eat_kws(&["no", "minvalue"]) {
            seq.min_value = None;
        } else if c.eat_kws(&["no", "maxvalue"]) {
            seq.max_value = None;
        } else if c.eat_kws(&["no", "cycle"]) {
            seq.cycle = false;
        } else if c.eat_kw("minvalue") {
            seq.min_value = Some(c.integer()?);
        } else if c.eat_kw("maxvalue") {
            seq.max_value = Some(c.integer()?);
        } else if c.eat_kw("start") {
            c.eat_kw("with");
            seq.start = Some(c.integer()?);
        } else if c.eat_kw("restart") {
            if !c.eat_kw("with") && c.peek().is_none_or(|t| t.kind != Kind::Number) {
                continue;
            }
            c.integer()?;
        } else if c.eat_kw("cache") {
            seq.cache = Some(c.integer()?);
        } else if c.eat_kw("cycle") {
            seq.cycle = true;
        } else if c.eat_kws(&["owned", "by"]) {
            if c.eat_kw("none") {
                seq.owned_by = None;
            } else {
                let at = c.offset();
                let mut parts = c.name_parts()?;
                if parts.len() < 2 {
                    return Err(Fail { at, message: "OWNED BY needs table.column".into() });
                }
                let col = parts.pop().expect("two parts");
                seq.owned_by = Some((c.qualify(parts, at)?, col));
            }
        } else {
            return Ok(());
        }
    }
}

/// Replaces values equal to PostgreSQL's defaults with `None`, so that `START WITH 1 …
/// NO MAXVALUE CACHE 1` and a bare `CREATE SEQUENCE` compare equal.
pub fn normalize_sequence(seq: &mut Sequence) {
    let (type_min, type_max) = match seq.data_type.as_str() {
        "smallint" => (i64::from(i16::MIN), i64::from(i16::MAX)),
        "integer" => (i64::from(i32::MIN), i64::from(i32::MAX)),
        _ => (i64::MIN, i64::MAX),
    };
    if seq.increment == Some(1) {
        seq.increment = None;
    }
    let ascending = seq.increment.unwrap_or(1) > 0;
    let (min_default, max_default) = if ascending { (1, type_max) } else { (type_min, -1) };
    if seq.min_value == Some(min_default) {
        seq.min_value = None;
    }
    if seq.max_value == Some(max_default) {
        seq.max_value = None;
    }
    let start_default =
        if ascending { seq.min_value.unwrap_or(min_default) } else { seq.max_value.unwrap_or(max_default) };
    if seq.start == Some(start_default) {
        seq.start = None;
    }
    if seq.cache == Some(1) {
        seq.cache = None;
    }
}

pub fn create_sequence(s: &mut Schema, c: &mut Cursor) -> PResult<()> {
    let unlogged = c.eat_kw("unlogged");
    c.expect_kw("sequence")?;
    let if_not_exists = c.eat_kws(&["if", "not", "exists"]);
    let name = c.qname()?;
    let mut seq = Sequence::new(name.clone());
    if unlogged {
        seq.persistence = crate::model::Persistence::Unlogged;
    }
    sequence_options(c, &mut seq)?;
    c.expect_end()?;
    normalize_sequence(&mut seq);
    if relation_taken(s, &name.schema, name.name.as_str()) {
        if if_not_exists {
            return Ok(());
        }
        return c.fail(format!("relation {name} already exists"));
    }
    s.sequences.insert(name, seq);
    Ok(())
}

pub fn alter_sequence(s: &mut Schema, c: &mut Cursor) -> PResult<()> {
    c.eat_kws(&["if", "exists"]);
    let name = c.qname()?;
    if !s.sequences.contains_key(&name) {
        return c.fail(format!("sequence {name} does not exist"));
    }
    if c.eat_kws(&["owner", "to"]) {
        let role = c.ident()?;
        s.owners.insert(ObjectRef::new("sequence", name.quoted()), role);
        return c.expect_end();
    }
    let seq = s.sequences.get_mut(&name).expect("checked");
    sequence_options(c, seq)?;
    normalize_sequence(seq);
    c.expect_end()
}

/// `CREATE TYPE name AS ENUM (…) | AS (…)`; other forms return `Ok(false)` (opaque).
pub fn create_type(s: &mut Schema, c: &mut Cursor) -> PResult<bool> {
    c.expect_kw("type")?;
    let name = c.qname()?;
    if !c.eat_kw("as") {
        return Ok(false);
    }
    if c.eat_kw("enum") {
        c.expect_punct("(")?;
        let mut values = Vec::new();
        if !c.eat_punct(")") {
            loop {
                values.push(c.string()?);
                if c.eat_punct(")") {
                    break;
                }
                c.expect_punct(",")?;
            }
        }
        c.expect_end()?;
        s.enums.insert(name.clone(), EnumType { name, values });
        return Ok(true);
    }
    if c.peek_punct("(") {
        c.pos += 1;
        let mut attributes = Vec::new();
        if !c.eat_punct(")") {
            loop {
                let attr = c.ident()?;
                let from = c.until(|c| c.peek_punct(",") || c.peek_kw("collate"))?;
                let ty = resolve_type(s, c, c.type_text(from, c.pos));
                if c.eat_kw("collate") {
                    c.name_parts()?;
                }
                attributes.push((attr, ty));
                if c.eat_punct(")") {
                    break;
                }
                c.expect_punct(",")?;
            }
        }
        c.expect_end()?;
        s.composites.insert(name.clone(), CompositeType { name, attributes });
        return Ok(true);
    }
    Ok(false)
}

pub fn alter_type(s: &mut Schema, c: &mut Cursor) -> PResult<()> {
    let name = c.qname()?;
    if c.eat_kws(&["owner", "to"]) {
        let role = c.ident()?;
        if !s.enums.contains_key(&name) && !s.composites.contains_key(&name) {
            return c.fail(format!("type {name} is not modelled"));
        }
        s.owners.insert(ObjectRef::new("type", name.quoted()), role);
        return c.expect_end();
    }
    let Some(e) = s.enums.get_mut(&name) else {
        return c.fail(format!("enum type {name} does not exist"));
    };
    if c.eat_kws(&["add", "value"]) {
        let if_not_exists = c.eat_kws(&["if", "not", "exists"]);
        let v = c.string()?;
        let pos = if c.eat_kw("before") {
            let other = c.string()?;
            e.values.iter().position(|x| *x == other)
        } else if c.eat_kw("after") {
            let other = c.string()?;
            e.values.iter().position(|x| *x == other).map(|p| p + 1)
        } else {
            None
        };
        c.expect_end()?;
        if e.values.contains(&v) {
            if if_not_exists {
                return Ok(());
            }
            return c.fail(format!("enum value '{v}' already exists"));
        }
        match pos {
            Some(p) => e.values.insert(p, v),
            None => e.values.push(v),
        }
        return Ok(());
    }
    if c.eat_kws(&["rename", "value"]) {
        let old = c.string()?;
        c.expect_kw("to")?;
        let new = c.string()?;
        c.expect_end()?;
        for v in &mut e.values {
            if *v == old {
                v.clone_from(&new);
            }
        }
        return Ok(());
    }
    c.expected("an ALTER TYPE action seqmig understands")
}

pub fn create_domain(s: &mut Schema, c: &mut Cursor) -> PResult<()> {
    c.expect_kw("domain")?;
    let name = c.qname()?;
    c.eat_kw("as");
    let stop = ["collate", "default", "constraint", "not", "null", "check"];
    let from = c.until(|c| stop.iter().any(|k| c.peek_kw(k)))?;
    let data_type = resolve_type(s, c, c.type_text(from, c.pos));
    let mut d = Domain {
        name: name.clone(),
        data_type,
        not_null: false,
        default: None,
        collation: None,
        checks: BTreeMap::new(),
    };
    loop {
        let cname = if c.eat_kw("constraint") { Some(c.ident()?) } else { None };
        if c.eat_kw("collate") {
            let f = c.pos;
            c.name_parts()?;
            d.collation = Some(collation_text(&c.raw(f, c.pos)));
        } else if c.eat_kw("default") {
            let f = c.pos;
            if !c.peek_punct("(") {
                c.pos += 1;
            }
            c.until(|c| stop.iter().any(|k| c.peek_kw(k)))?;
            d.default = Some(c.expr_text(f, c.pos));
        } else if c.eat_kws(&["not", "null"]) {
            d.not_null = true;
        } else if c.eat_kw("null") {
            d.not_null = false;
        } else if c.eat_kw("check") {
            let (a, b) = c.paren_group()?;
            let expr = c.expr_text(a, b);
            c.eat_kws(&["not", "valid"]);
            let cn = cname.unwrap_or_else(|| {
                choose_name(name.name.as_str(), None, "check", |n| d.checks.keys().any(|k| k.as_str() == n))
            });
            d.checks.insert(cn, expr);
        } else if cname.is_some() {
            return c.expected("a domain constraint");
        } else {
            break;
        }
    }
    c.expect_end()?;
    s.domains.insert(name, d);
    Ok(())
}

pub fn alter_domain(s: &mut Schema, c: &mut Cursor) -> PResult<()> {
    let name = c.qname()?;
    let Some(d) = s.domains.get_mut(&name) else {
        return c.fail(format!("domain {name} does not exist"));
    };
    if c.eat_kws(&["owner", "to"]) {
        let role = c.ident()?;
        s.owners.insert(ObjectRef::new("domain", name.quoted()), role);
        return c.expect_end();
    }
    if c.eat_kws(&["add", "constraint"]) {
        let cn = c.ident()?;
        c.expect_kw("check")?;
        let (a, b) = c.paren_group()?;
        d.checks.insert(cn, c.expr_text(a, b));
        c.eat_kws(&["not", "valid"]);
    } else if c.eat_kws(&["drop", "constraint"]) {
        let if_exists = c.eat_kws(&["if", "exists"]);
        let cn = c.ident()?;
        let _ = c.eat_kw("cascade") || c.eat_kw("restrict");
        if d.checks.remove(&cn).is_none() {
            super::drop::not_found(c, if_exists, format!("constraint {cn} of domain {name}"));
        }
    } else if c.eat_kws(&["set", "default"]) {
        let (f, t) = c.rest();
        d.default = Some(c.expr_text(f, t));
    } else if c.eat_kws(&["drop", "default"]) {
        d.default = None;
    } else if c.eat_kws(&["set", "not", "null"]) {
        d.not_null = true;
    } else if c.eat_kws(&["drop", "not", "null"]) {
        d.not_null = false;
    } else if c.eat_kws(&["validate", "constraint"]) {
        c.ident()?;
    } else {
        return c.expected("an ALTER DOMAIN action seqmig understands");
    }
    c.expect_end()
}

/// `CREATE [OR REPLACE] [MATERIALIZED] VIEW …`; the cursor is after `CREATE [OR REPLACE]`.
pub fn create_view(s: &mut Schema, c: &mut Cursor, replace: bool) -> PResult<()> {
    let materialized = c.eat_kw("materialized");
    if c.peek_kw("temp") || c.peek_kw("temporary") {
        return c.fail("temporary views are not part of a schema");
    }
    if c.eat_kw("recursive") {
        return c.fail("CREATE RECURSIVE VIEW is not supported");
    }
    c.expect_kw("view")?;
    let if_not_exists = c.eat_kws(&["if", "not", "exists"]);
    let name = c.qname()?;
    let columns = if c.peek_punct("(") { c.ident_list()? } else { vec![] };
    let mut options = Vec::new();
    loop {
        if c.eat_kw("using") {
            c.ident()?;
        } else if c.eat_kw("with") {
            options = c.options()?;
        } else if c.eat_kw("tablespace") {
            c.ident()?;
        } else {
            break;
        }
    }
    c.expect_kw("as")?;
    let from = c.pos;
    let mut to = c.toks.len();
    let mut check_option = None;
    let tail = |n: usize, words: &[&str]| {
        n >= c.pos + words.len()
            && words.iter().enumerate().all(|(i, w)| c.is_kw_at(n - words.len() + i - c.pos, w))
    };
    if materialized {
        if tail(to, &["with", "no", "data"]) {
            to -= 3;
        } else if tail(to, &["with", "data"]) {
            to -= 2;
        }
    } else if tail(to, &["with", "check", "option"]) {
        if tail(to, &["with", "cascaded", "check", "option"]) {
            to -= 4;
            check_option = Some("cascaded".to_string());
        } else if tail(to, &["with", "local", "check", "option"]) {
            to -= 4;
            check_option = Some("local".to_string());
        } else {
            to -= 3;
            check_option = Some("cascaded".to_string());
        }
    }
    if from >= to {
        return c.expected("the view's query");
    }
    let definition = c.expr_text(from, to);
    let reads = view_reads(s, c, from, to);
    c.pos = c.toks.len();
    if s.views.contains_key(&name) && !replace {
        if if_not_exists {
            return Ok(());
        }
        return c.fail(format!("view {name} already exists"));
    }
    if s.tables.contains_key(&name) {
        return c.fail(format!("relation {name} already exists"));
    }
    let search_path = (c.default_schema != "public").then(|| c.default_ident());
    s.views.insert(
        name.clone(),
        View {
            name,
            materialized,
            columns,
            definition,
            reads,
            options,
            check_option,
            search_path,
            column_defaults: BTreeMap::new(),
        },
    );
    Ok(())
}

const NOT_ALIAS: &[&str] = &[
    "where",
    "join",
    "left",
    "right",
    "inner",
    "outer",
    "full",
    "cross",
    "natural",
    "on",
    "using",
    "group",
    "order",
    "limit",
    "union",
    "except",
    "intersect",
    "having",
    "window",
    "offset",
    "fetch",
    "for",
    "lateral",
    "tablesample",
    "returning",
    "as",
    "with",
    "select",
    "into",
    "from",
];

/// The relations a view reads and the columns it names on each, from its tokens: best
/// effort (relation names after FROM/JOIN that exist in the schema, `alias.column`
/// references, and bare column names when the query reads exactly one relation).
fn view_reads(s: &Schema, c: &Cursor, from: usize, to: usize) -> BTreeSet<ColumnRef> {
    let word = |n: usize| {
        let t = &c.toks[n];
        (t.kind == Kind::Word).then(|| c.text(t).to_ascii_lowercase())
    };
    let ident_at = |n: usize| -> Option<Ident> {
        let t = c.toks.get(n)?;
        match t.kind {
            Kind::Word => Ident::unquoted(c.text(t)).ok(),
            Kind::QuotedIdent => Ident::from_sql(c.text(t)).ok(),
            _ => None,
        }
    };
    let is_dot = |n: usize| c.toks.get(n).is_some_and(|t| t.kind == Kind::Punct && c.text(t) == ".");
    // CTE names (`name AS (` / `name (cols) AS (`) are not relations.
    let mut ctes: BTreeSet<Ident> = BTreeSet::new();
    for n in from..to {
        let as_paren = |k: usize| {
            word(k).as_deref() == Some("as") && c.toks.get(k + 1).is_some_and(|t| c.text(t) == "(")
        };
        if let Some(id) = ident_at(n) {
            if n + 1 < to && as_paren(n + 1) {
                ctes.insert(id);
            } else if c.toks.get(n + 1).is_some_and(|t| c.text(t) == "(") {
                if let Ok(close) = c.matching(n + 1) {
                    if close + 1 < to && as_paren(close + 1) {
                        ctes.insert(id);
                    }
                }
            }
        }
    }
    // A FROM starts a relation list only inside a SELECT at the same parenthesis depth
    // (`extract(epoch FROM t)` and `substring(x FROM 2)` do not).
    let mut relational = vec![false; to.saturating_sub(from)];
    let mut stack: Vec<bool> = vec![false];
    for n in from..to {
        let t = &c.toks[n];
        if t.kind == Kind::Punct && c.text(t) == "(" {
            // `FROM (a JOIN b ON …)`: a parenthesised join continues the relation list.
            let prev = if n > from { c.text(&c.toks[n - 1]).to_ascii_lowercase() } else { String::new() };
            let joins = *stack.last().expect("never empty")
                && matches!(prev.as_str(), "from" | "join" | "," | "(")
                && c.toks.get(n + 1).is_some_and(|t| !c.text(t).eq_ignore_ascii_case("select"));
            relational[n - from] = joins;
            stack.push(joins);
        } else if t.kind == Kind::Punct && c.text(t) == ")" {
            if stack.len() > 1 {
                stack.pop();
            }
        } else if let Some(w) = word(n) {
            if w == "select" {
                *stack.last_mut().expect("never empty") = true;
            } else if w == "from" || w == "join" {
                relational[n - from] = *stack.last().expect("never empty");
            }
        }
    }
    let known = |q: &QualifiedName| !(q.schema.as_str() == c.default_schema && ctes.contains(&q.name));
    let columns_of = |q: &QualifiedName| -> Vec<Ident> {
        if let Some(t) = s.tables.get(q) {
            t.columns.iter().map(|c| c.name.clone()).collect()
        } else {
            Vec::new()
        }
    };

    // Relations after FROM / JOIN (and after commas in a FROM list), with their aliases.
    let mut aliases: BTreeMap<Ident, QualifiedName> = BTreeMap::new();
    let mut relations: BTreeSet<QualifiedName> = BTreeSet::new();
    let mut n = from;
    while n < to {
        let starts_list = relational[n - from] && !(n > from && word(n - 1).as_deref() == Some("distinct"));
        if starts_list && c.text(&c.toks[n]) == "(" {
            // The group's first relation; the JOINs inside are marked on their own.
            n += 1;
            if c.text(&c.toks[n.min(to - 1)]) == "(" {
                continue;
            }
        } else if starts_list {
            n += 1;
        }
        if !starts_list {
            n += 1;
            continue;
        }
        loop {
            while matches!(word(n.min(to - 1)).as_deref(), Some("only" | "lateral")) && n < to {
                n += 1;
            }
            if n >= to {
                break;
            }
            let mut parts = Vec::new();
            if let Some(id) = ident_at(n) {
                parts.push(id);
                n += 1;
                while is_dot(n) && n + 1 < to {
                    match ident_at(n + 1) {
                        Some(id) => parts.push(id),
                        None => break,
                    }
                    n += 2;
                }
            }
            let q = match parts.len() {
                1 => Some(QualifiedName::new(c.default_ident(), parts[0].clone())),
                2 => Some(QualifiedName::new(parts[0].clone(), parts[1].clone())),
                _ => None,
            };
            let is_call = c.toks.get(n).is_some_and(|t| c.text(t) == "(");
            if let Some(q) = q.filter(|q| !is_call && known(q)) {
                relations.insert(q.clone());
                aliases.insert(q.name.clone(), q.clone());
                if word(n.min(to - 1)).as_deref() == Some("as") && n < to {
                    n += 1;
                }
                if n < to {
                    let alias_ok = match word(n) {
                        Some(w) => !NOT_ALIAS.contains(&w.as_str()),
                        None => c.toks[n].kind == Kind::QuotedIdent,
                    };
                    if alias_ok {
                        if let Some(a) = ident_at(n) {
                            aliases.insert(a, q);
                            n += 1;
                        }
                    }
                }
            }
            if n < to && c.toks[n].kind == Kind::Punct && c.text(&c.toks[n]) == "," {
                // A comma continues the FROM list only at this level; deeper commas belong
                // to function arguments and are harmless to follow (unknown names are ignored).
                n += 1;
                continue;
            }
            break;
        }
    }

    let mut reads: BTreeSet<ColumnRef> =
        relations.iter().map(|q| ColumnRef { table: q.clone(), column: None }).collect();
    let single = (relations.len() == 1).then(|| relations.iter().next().cloned()).flatten();
    let single_cols = single.as_ref().map(&columns_of).unwrap_or_default();
    let mut n = from;
    while n < to {
        if let Some(first) = ident_at(n) {
            if is_dot(n + 1) {
                // alias.column or schema.table.column
                if let Some(rel) = aliases.get(&first) {
                    if let Some(col) = ident_at(n + 2) {
                        reads.insert(ColumnRef { table: rel.clone(), column: Some(col) });
                    }
                } else if let (Some(tbl), true, Some(col)) = (ident_at(n + 2), is_dot(n + 3), ident_at(n + 4))
                {
                    let q = QualifiedName::new(first.clone(), tbl);
                    if relations.contains(&q) {
                        reads.insert(ColumnRef { table: q, column: Some(col) });
                    }
                }
                n += 3;
                continue;
            }
            if let Some(q) = &single {
                if single_cols.contains(&first) && !(n > from && is_dot(n - 1)) {
                    reads.insert(ColumnRef { table: q.clone(), column: Some(first) });
                }
            }
        }
        n += 1;
    }
    // As in pg_depend: a relation is listed as a whole (`column: None`) only when none of
    // its columns is named.
    let with_columns: BTreeSet<QualifiedName> =
        reads.iter().filter(|r| r.column.is_some()).map(|r| r.table.clone()).collect();
    reads.retain(|r| r.column.is_some() || !with_columns.contains(&r.table));
    reads
}

pub fn create_extension(s: &mut Schema, c: &mut Cursor) -> PResult<()> {
    c.expect_kw("extension")?;
    c.eat_kws(&["if", "not", "exists"]);
    let name = c.ident()?;
    c.eat_kw("with");
    let mut ext = Extension { name: name.clone(), schema: None, version: None };
    loop {
        if c.eat_kw("schema") {
            ext.schema = Some(c.ident()?);
        } else if c.eat_kw("version") {
            ext.version =
                Some(if c.peek().is_some_and(|t| t.kind == Kind::Str) { c.string()? } else { c.word()? });
        } else if c.eat_kw("cascade") {
        } else {
            break;
        }
    }
    c.expect_end()?;
    // plpgsql is in every database (since PostgreSQL 9.0) whether a file says so or not, and
    // introspection leaves it out: a file that stops creating it drops nothing.
    if name.as_str() != "plpgsql" {
        s.extensions.insert(name, ext);
    }
    Ok(())
}

pub fn create_schema(s: &mut Schema, c: &mut Cursor) -> PResult<()> {
    c.expect_kw("schema")?;
    c.eat_kws(&["if", "not", "exists"]);
    let (name, owner) = if c.eat_kw("authorization") {
        let r = c.ident()?;
        (r.clone(), Some(r))
    } else {
        let n = c.ident()?;
        let o = if c.eat_kw("authorization") { Some(c.ident()?) } else { None };
        (n, o)
    };
    c.expect_end()?;
    if let Some(o) = owner {
        s.owners.insert(ObjectRef::new("schema", name.quoted_sql()), o);
    }
    if name.as_str() != "public" {
        s.namespaces.insert(name);
    }
    Ok(())
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

/// The `ObjectRef` a `COMMENT ON`/`ALTER … OWNER TO` names; the cursor is at the kind.
pub fn object_ref(c: &mut Cursor) -> PResult<ObjectRef> {
    const TWO_WORD: &[&str] = &[
        "materialized view",
        "foreign table",
        "event trigger",
        "access method",
        "foreign data",
        "text search",
        "operator class",
        "operator family",
        "large object",
    ];
    let mut kind = c.word()?;
    if let Some(t) = c.peek() {
        let two = format!("{kind} {}", c.text(t).to_ascii_lowercase());
        if TWO_WORD.contains(&two.as_str()) {
            c.pos += 1;
            kind = two;
            if kind == "text search" || kind == "foreign data" {
                kind = format!("{kind} {}", c.word()?);
            }
        }
    }
    let identity = match kind.as_str() {
        "table" | "view" | "materialized view" | "sequence" | "index" | "type" | "domain"
        | "foreign table" | "collation" | "conversion" | "statistics" => c.qname()?.quoted(),
        "column" => {
            let at = c.offset();
            let mut parts = c.name_parts()?;
            if parts.len() < 2 {
                return Err(Fail { at, message: "COMMENT ON COLUMN needs table.column".into() });
            }
            let col = parts.pop().expect("two parts");
            format!("{}.{}", c.qualify(parts, at)?.quoted(), col.quoted_sql())
        }
        "schema"
        | "extension"
        | "role"
        | "database"
        | "language"
        | "publication"
        | "subscription"
        | "event trigger"
        | "server"
        | "tablespace"
        | "access method"
        | "foreign data wrapper" => c.ident()?.quoted_sql(),
        "constraint" | "trigger" | "policy" | "rule" => {
            let n = c.ident()?;
            c.expect_kw("on")?;
            let on_domain = c.eat_kw("domain");
            let t = c.qname()?;
            if on_domain {
                format!("{} on domain {}", n.quoted_sql(), t.quoted())
            } else {
                format!("{} on {}", n.quoted_sql(), t.quoted())
            }
        }
        "function" | "procedure" | "routine" | "aggregate" => routine_identity(c)?,
        "cast" => {
            let (a, b) = c.paren_group()?;
            cast_identity(c, a, b)
        }
        _ => {
            let from = c.pos;
            c.until(|c| c.peek_kw("is") || c.peek_kw("owner"))?;
            c.raw(from, c.pos)
        }
    };
    let kind = if kind == "routine" { "function".to_string() } else { kind };
    Ok(ObjectRef { kind, identity })
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

/// `COMMENT ON … IS '…' | NULL`.
pub fn comment_on(s: &mut Schema, c: &mut Cursor) -> PResult<()> {
    c.expect_kws(&["comment", "on"])?;
    let obj = object_ref(c)?;
    c.expect_kw("is")?;
    if obj.kind == "extension" && obj.identity == "plpgsql" {
        // Implied like the extension itself (see create_extension).
        if !c.eat_kw("null") {
            c.string()?;
        }
        return c.expect_end();
    }
    if c.eat_kw("null") {
        s.comments.remove(&obj);
    } else {
        let text = c.string()?;
        s.comments.insert(obj, text);
    }
    c.expect_end()
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
