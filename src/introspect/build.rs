//! Turns catalog rows into model values: tables, columns, constraints, indexes, sequences,
//! types, views, comments and owners. Opaque objects are built in `opaque.rs`.

use std::collections::{BTreeMap, HashMap};

use tokio_postgres::Row;

use super::{Catalog, IntrospectError};
use crate::model::*;
use crate::parse::text::{matching_paren, split_top_level, words};
use crate::parse::{normalize_expr, normalize_type};

fn ident(name: &str, what: &str) -> Result<Ident, IntrospectError> {
    Ident::exact(name)
        .map_err(|e| IntrospectError::Catalog { object: format!("{what} '{name}'"), reason: e.to_string() })
}

pub(super) fn qname(schema: &str, name: &str) -> Result<QualifiedName, IntrospectError> {
    Ok(QualifiedName::new(ident(schema, "schema")?, ident(name, "object")?))
}

/// `key=value` storage options, sorted (the model's spelling).
fn options(raw: Vec<String>) -> Vec<String> {
    let mut v: Vec<String> = raw.into_iter().filter(|o| !o.starts_with("check_option=")).collect();
    v.sort();
    v
}

pub(super) fn schema(cat: &Catalog, bare_schema: Option<&str>) -> Result<Schema, IntrospectError> {
    let mut s = Schema::default();

    for r in &cat.namespaces {
        let kind: &str = r.get("kind");
        let name: String = r.get("name");
        match kind {
            "schema" => {
                let owner: Option<String> = r.get("owner");
                if name != "public" {
                    s.namespaces.insert(ident(&name, "schema")?);
                }
                if let Some(o) = owner.filter(|_| name != "public") {
                    s.owners.insert(
                        ObjectRef::new("schema", ident(&name, "schema")?.quoted_sql()),
                        ident(&o, "role")?,
                    );
                }
            }
            // plpgsql is in every database; a file may or may not say so.
            _ if name == "plpgsql" => {}
            _ => {
                let schema: Option<String> = r.get("schema");
                let e = Extension {
                    name: ident(&name, "extension")?,
                    schema: schema.map(|n| ident(&n, "schema")).transpose()?,
                    // pg_dump never writes a version and the planner does not upgrade
                    // extensions, so the installed version is not part of the model.
                    version: None,
                };
                s.extensions.insert(e.name.clone(), e);
            }
        }
    }

    // Relations by oid, for columns, constraints and inheritance.
    let mut tables: BTreeMap<u32, Table> = BTreeMap::new();
    let mut views: BTreeMap<u32, View> = BTreeMap::new();
    let mut composite_rels: HashMap<u32, QualifiedName> = HashMap::new();
    let mut names: HashMap<u32, QualifiedName> = HashMap::new();
    for r in &cat.relations {
        let oid: u32 = r.get("oid");
        let name = qname(r.get("schema"), r.get("name"))?;
        names.insert(oid, name.clone());
        let kind: &str = r.get("kind");
        let owner: String = r.get("owner");
        match kind {
            "r" | "p" => {
                let mut t = Table::new(name.clone());
                if r.get::<_, &str>("persistence") == "u" {
                    t.persistence = Persistence::Unlogged;
                }
                t.partition_key = r.get::<_, Option<String>>("partkey").map(|k| normalize_expr(&k));
                t.options = options(r.get("options"));
                t.replica_identity = match r.get::<_, &str>("replident") {
                    "f" => Some("full".into()),
                    "n" => Some("nothing".into()),
                    "i" => r
                        .get::<_, Option<&str>>("replident_index")
                        .map(|i| format!("using index {}", quote_ident(i))),
                    _ => None,
                };
                t.cluster_on =
                    r.get::<_, Option<&str>>("cluster_on").map(|i| ident(i, "index")).transpose()?;
                t.row_security = r.get("row_security");
                t.force_row_security = r.get("force_row_security");
                if r.get::<_, bool>("is_partition") {
                    // The parent is filled in from pg_inherits below.
                    let bound: Option<String> = r.get("bound");
                    t.partition_of = Some(PartitionOf {
                        parent: name.clone(),
                        bound: normalize_expr(bound.as_deref().unwrap_or_default()),
                    });
                }
                s.owners.insert(ObjectRef::new("table", name.quoted()), ident(&owner, "role")?);
                tables.insert(oid, t);
            }
            "v" | "m" => {
                let materialized = kind == "m";
                let def: String = r.get::<_, Option<String>>("viewdef").unwrap_or_default();
                let raw_options: Vec<String> = r.get("options");
                let check_option = raw_options
                    .iter()
                    .find_map(|o| o.strip_prefix("check_option="))
                    .map(|c| c.to_ascii_lowercase());
                views.insert(
                    oid,
                    View {
                        name: name.clone(),
                        materialized,
                        columns: Vec::new(),
                        definition: normalize_expr(def.trim().trim_end_matches(';')),
                        reads: Default::default(),
                        options: options(raw_options),
                        check_option,
                        // Introspected definitions are fully qualified by pg_get_viewdef.
                        search_path: None,
                        column_defaults: Default::default(),
                    },
                );
                let kind = if materialized { "materialized view" } else { "view" };
                s.owners.insert(ObjectRef::new(kind, name.quoted()), ident(&owner, "role")?);
            }
            "S" => {
                s.owners.insert(ObjectRef::new("sequence", name.quoted()), ident(&owner, "role")?);
            }
            _ => {}
        }
    }

    for r in &cat.inherits {
        let child: u32 = r.get("child");
        let parent = qname(r.get("schema"), r.get("name"))?;
        if matches!(r.get::<_, &str>("child_kind"), "i" | "I") {
            s.index_attachments.insert(qname(r.get("child_schema"), r.get("child_name"))?, parent);
            continue;
        }
        if let Some(t) = tables.get_mut(&child) {
            match &mut t.partition_of {
                Some(p) => p.parent = parent,
                None => t.inherits.push(parent),
            }
        }
    }

    for r in &cat.types {
        let rel: u32 = r.get("rel");
        if rel != 0 {
            composite_rels.insert(rel, qname(r.get("schema"), r.get("name"))?);
        }
    }
    let mut composites: BTreeMap<QualifiedName, CompositeType> = BTreeMap::new();

    for r in &cat.columns {
        let rel: u32 = r.get("rel");
        let name = ident(r.get("name"), "column")?;
        let ty: String = r.get("type");
        if let Some(t) = tables.get_mut(&rel) {
            let mut c = Column::new(name, &ty);
            c.not_null = r.get("not_null");
            let default: Option<String> = r.get("default_expr");
            let generated: &str = r.get("generated");
            if generated == "s" {
                c.generated = Some(Generated {
                    expr: normalize_expr(default.as_deref().unwrap_or_default()),
                    kind: GeneratedKind::Stored,
                });
            } else if generated == "v" {
                c.generated = Some(Generated {
                    expr: normalize_expr(default.as_deref().unwrap_or_default()),
                    kind: GeneratedKind::Virtual,
                });
            } else {
                c.default = default.map(|d| crate::parse::normalize_default(&d, &ty));
            }
            c.identity = match r.get::<_, &str>("identity") {
                "a" => Some(Identity::Always),
                "d" => Some(Identity::ByDefault),
                _ => None,
            };
            c.collation = r.get("collation");
            c.statistics = r.get("statistics");
            t.columns.push(c);
        } else if let Some(v) = views.get_mut(&rel) {
            // View columns are not modelled (a view's shape is its definition); their
            // defaults for inserts through the view are.
            if let Some(d) = r.get::<_, Option<String>>("default_expr") {
                v.column_defaults.insert(name, normalize_expr(&d));
            }
        } else if let Some(cname) = composite_rels.get(&rel) {
            composites
                .entry(cname.clone())
                .or_insert_with(|| CompositeType { name: cname.clone(), attributes: Vec::new() })
                .attributes
                .push((name, normalize_type(&ty)));
        }
    }

    let mut domain_checks: HashMap<u32, BTreeMap<Ident, String>> = HashMap::new();
    for r in &cat.constraints {
        let rel: u32 = r.get("rel");
        let typ: u32 = r.get("typ");
        let name = ident(r.get("name"), "constraint")?;
        let kind: &str = r.get("kind");
        let def: String = r.get("def");
        if typ != 0 {
            if kind == "c" {
                domain_checks.entry(typ).or_default().insert(name, check_expr(&def));
            }
            continue;
        }
        let Some(t) = tables.get_mut(&rel) else { continue };
        let is_local: bool = r.get("is_local");
        let cloned: bool = r.get("cloned");
        let partition_copy: bool = r.get("partition_copy");
        // A partition's copies of its parent's CHECK and FOREIGN KEY constraints are the
        // parent's; pg_dump does not write them either. Its PRIMARY KEY / UNIQUE are its own
        // (pg_dump writes them, and they are real indexes on the partition).
        if (kind == "c" && (!is_local || partition_copy)) || (kind == "f" && cloned) {
            continue;
        }
        let columns: Vec<Ident> = idents(r.get("columns"))?;
        let ck = match kind {
            "p" => ConstraintKind::PrimaryKey { columns, include: idents(r.get("include"))? },
            "u" => ConstraintKind::Unique {
                columns,
                include: idents(r.get("include"))?,
                nulls_not_distinct: r.get("nulls_not_distinct"),
            },
            "f" => ConstraintKind::ForeignKey {
                columns,
                ref_table: qname(r.get("ref_schema"), r.get("ref_name"))?,
                ref_columns: idents(r.get("ref_columns"))?,
                on_delete: fk_action(r.get("on_delete")),
                on_update: fk_action(r.get("on_update")),
                match_full: r.get::<_, &str>("match_type") == "f",
            },
            "c" => ConstraintKind::Check { expr: check_expr(&def), no_inherit: r.get("no_inherit") },
            "x" => exclusion(&def),
            _ => continue,
        };
        t.constraints.insert(
            name.clone(),
            Constraint {
                name,
                kind: ck,
                deferrable: r.get("deferrable"),
                initially_deferred: r.get("deferred"),
                validated: r.get("validated"),
            },
        );
    }

    for r in &cat.indexes {
        let name = qname(r.get("schema"), r.get("name"))?;
        let ix = index(r, name.clone())?;
        s.indexes.insert(name, ix);
    }

    for r in &cat.sequences {
        let name = qname(r.get("schema"), r.get("name"))?;
        let mut q = Sequence::new(name.clone());
        q.data_type = normalize_type(r.get("type"));
        q.start = Some(r.get("start"));
        q.increment = Some(r.get("increment"));
        q.min_value = Some(r.get("min"));
        q.max_value = Some(r.get("max"));
        q.cache = Some(r.get("cache"));
        q.cycle = r.get("cycle");
        if r.get::<_, &str>("persistence") == "u" {
            q.persistence = Persistence::Unlogged;
        }
        let owner_table: Option<String> = r.get("owner_table");
        if let (Some(os), Some(ot), Some(oc)) = (
            r.get::<_, Option<String>>("owner_schema"),
            owner_table,
            r.get::<_, Option<String>>("owner_column"),
        ) {
            q.owned_by = Some((qname(&os, &ot)?, ident(&oc, "column")?));
        }
        s.sequences.insert(name, q.without_default_options());
    }

    for r in &cat.types {
        let oid: u32 = r.get("oid");
        let name = qname(r.get("schema"), r.get("name"))?;
        let owner: String = r.get("owner");
        match r.get::<_, &str>("kind") {
            "e" => {
                s.enums.insert(name.clone(), EnumType { name: name.clone(), values: r.get("labels") });
                s.owners.insert(ObjectRef::new("type", name.quoted()), ident(&owner, "role")?);
            }
            "d" => {
                let d = Domain {
                    name: name.clone(),
                    data_type: normalize_type(r.get::<_, Option<&str>>("base").unwrap_or_default()),
                    not_null: r.get("not_null"),
                    default: r.get::<_, Option<String>>("default_expr").map(|d| normalize_expr(&d)),
                    collation: r.get("collation"),
                    checks: domain_checks.remove(&oid).unwrap_or_default(),
                };
                s.domains.insert(name.clone(), d);
                s.owners.insert(ObjectRef::new("domain", name.quoted()), ident(&owner, "role")?);
            }
            "c" => {
                let c = composites
                    .remove(&name)
                    .unwrap_or_else(|| CompositeType { name: name.clone(), attributes: Vec::new() });
                s.composites.insert(name.clone(), c);
                s.owners.insert(ObjectRef::new("type", name.quoted()), ident(&owner, "role")?);
            }
            _ => {}
        }
    }

    for r in &cat.view_reads {
        let view: u32 = r.get("view");
        if let Some(v) = views.get_mut(&view) {
            let table = qname(r.get("schema"), r.get("name"))?;
            let column = r.get::<_, Option<&str>>("col").map(|c| ident(c, "column")).transpose()?;
            v.reads.insert(ColumnRef { table, column });
        }
    }

    for t in tables.into_values() {
        s.tables.insert(t.name.clone(), t);
    }
    for v in views.into_values() {
        s.views.insert(v.name.clone(), v);
    }

    // Identity columns' sequences belong to their column, so neither they nor their owner
    // entry are listed.
    let sequences = s.sequences.keys().map(|q| q.quoted()).collect::<std::collections::BTreeSet<_>>();
    s.owners.retain(|r, _| r.kind != "sequence" || sequences.contains(&r.identity));

    super::opaque::add(cat, &mut s, bare_schema)?;
    comments(cat, &mut s)?;
    Ok(s)
}

fn idents(v: Vec<String>) -> Result<Vec<Ident>, IntrospectError> {
    v.iter().map(|n| ident(n, "column")).collect()
}

fn fk_action(c: &str) -> FkAction {
    match c {
        "r" => FkAction::Restrict,
        "c" => FkAction::Cascade,
        "n" => FkAction::SetNull,
        "d" => FkAction::SetDefault,
        _ => FkAction::NoAction,
    }
}

/// `CHECK ((price > 0)) NO INHERIT NOT VALID` → `price > 0`.
pub(super) fn check_expr(def: &str) -> String {
    let body = def.trim().strip_prefix("CHECK ").unwrap_or(def).trim();
    let inner = match matching_paren(body, 0) {
        Some(close) => &body[..=close],
        None => body,
    };
    normalize_expr(inner)
}

/// `EXCLUDE USING gist (room WITH =, during WITH &&) WHERE ((x > 0))` → its parts.
fn exclusion(def: &str) -> ConstraintKind {
    let rest = def.trim().strip_prefix("EXCLUDE USING ").unwrap_or(def);
    let (method, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let rest = rest.trim();
    let (elements, after) = match matching_paren(rest, 0) {
        Some(close) => (&rest[..=close], rest[close + 1..].trim()),
        None => (rest, ""),
    };
    // pg_get_constraintdef adds `INCLUDE (…)`/`WITH (…)` before `WHERE`; keep the predicate.
    let predicate = after.find("WHERE ").map(|i| normalize_expr(after[i + 6..].trim()));
    ConstraintKind::Exclusion {
        method: method.to_ascii_lowercase(),
        // Spelled as the loader spells it: the list without its parentheses.
        elements: normalize_expr(elements),
        predicate,
    }
}

fn strip_catalog(name: &str) -> String {
    name.strip_prefix("pg_catalog.").unwrap_or(name).to_string()
}

fn index(r: &Row, name: QualifiedName) -> Result<Index, IntrospectError> {
    let def: String = r.get("def");
    let nkeys = r.get::<_, i32>("nkeys") as usize;
    let attnames: Vec<Option<String>> = r.get("attnames");
    let keydefs: Vec<String> = r.get("keydefs");
    let method: String = r.get("method");
    // The key list follows `USING method `; its elements add COLLATE, opclass and ordering
    // to the bare key text when they differ from the defaults.
    let marker = format!(" USING {method} ");
    let elements: Vec<&str> = def
        .find(&marker)
        .map(|i| i + marker.len())
        .and_then(|open| matching_paren(&def, open).map(|close| split_top_level(&def[open + 1..close])))
        .unwrap_or_default();
    let mut keys = Vec::new();
    for i in 0..nkeys {
        let keydef = keydefs.get(i).map(String::as_str).unwrap_or_default();
        let expr = match attnames.get(i).cloned().flatten() {
            Some(col) => IndexExpr::Column(ident(&col, "column")?),
            None => IndexExpr::Expression(normalize_expr(keydef)),
        };
        let mut key = IndexKey { expr, collation: None, opclass: None, descending: false, nulls_first: None };
        let rest = elements.get(i).and_then(|e| e.strip_prefix(keydef)).unwrap_or_default();
        let w = words(rest);
        let mut j = 0;
        while j < w.len() {
            match w[j] {
                "COLLATE" if j + 1 < w.len() => {
                    key.collation = Some(strip_catalog(w[j + 1]));
                    j += 1;
                }
                "DESC" => key.descending = true,
                "ASC" => {}
                "NULLS" if j + 1 < w.len() => {
                    key.nulls_first = Some(w[j + 1] == "FIRST");
                    j += 1;
                }
                other => key.opclass = Some(strip_catalog(other)),
            }
            j += 1;
        }
        keys.push(key);
    }
    let include = attnames[nkeys.min(attnames.len())..]
        .iter()
        .flatten()
        .map(|c| ident(c, "column"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Index {
        name,
        table: qname(r.get("table_schema"), r.get("table_name"))?,
        unique: r.get("is_unique"),
        nulls_not_distinct: r.get("nulls_not_distinct"),
        method,
        keys,
        include,
        predicate: r.get::<_, Option<String>>("predicate").map(|p| normalize_expr(&p)),
        options: options(r.get("storage")),
        only: false,
        statistics: r
            .get::<_, Vec<String>>("statistics")
            .iter()
            .filter_map(|e| e.split_once('=').and_then(|(k, v)| Some((k.parse().ok()?, v.parse().ok()?))))
            .collect(),
    })
}

/// `COMMENT ON …`: named the way the model names each kind of object.
fn comments(cat: &Catalog, s: &mut Schema) -> Result<(), IntrospectError> {
    for r in &cat.comments {
        let Some(kind) = r.get::<_, Option<&str>>("kind") else { continue };
        let schema: Option<&str> = r.get("schema");
        let name: &str = r.get("name");
        let q = || -> Result<String, IntrospectError> {
            Ok(match schema {
                Some(sc) => qname(sc, name)?.quoted(),
                None => ident(name, "object")?.quoted_sql(),
            })
        };
        let parent = || -> Result<String, IntrospectError> {
            qname(schema.unwrap_or("public"), r.get::<_, Option<&str>>("parent").unwrap_or_default())
                .map(|p| p.quoted())
        };
        let identity = match kind {
            "column" => {
                format!("{}.{}", q()?, ident(r.get::<_, &str>("column_name"), "column")?.quoted_sql())
            }
            "function" | "procedure" | "aggregate" => {
                let args: Vec<String> = r.get("arg_types");
                format!("{}({})", q()?, args.iter().map(|a| normalize_type(a)).collect::<Vec<_>>().join(", "))
            }
            "schema" | "extension" => ident(name, "object")?.quoted_sql(),
            "constraint" | "trigger" | "policy" | "rule" => {
                format!("{} on {}", ident(name, "object")?.quoted_sql(), parent()?)
            }
            "domain constraint" => format!("{} on domain {}", ident(name, "object")?.quoted_sql(), parent()?),
            _ => q()?,
        };
        let kind = if kind == "domain constraint" { "constraint" } else { kind };
        if kind == "extension" && name == "plpgsql" {
            continue;
        }
        s.comments.insert(ObjectRef::new(kind, identity), r.get("description"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_definitions_lose_their_wrapper() {
        assert_eq!(check_expr("CHECK ((price > (0)::numeric))"), "price > (0)::numeric");
        assert_eq!(check_expr("CHECK ((a > 0)) NO INHERIT NOT VALID"), "a > 0");
        assert_eq!(check_expr("CHECK ((VALUE ~ '^x'::text))"), "value ~ '^x'::text");
    }

    #[test]
    fn exclusion_definitions_split_into_parts() {
        let k = exclusion("EXCLUDE USING gist (room WITH =, during WITH &&) WHERE ((room > 0))");
        assert_eq!(
            k,
            ConstraintKind::Exclusion {
                method: "gist".into(),
                elements: "room with =, during with &&".into(),
                predicate: Some("room > 0".into()),
            }
        );
    }
}
