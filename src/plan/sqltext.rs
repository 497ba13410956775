//! Pieces of SQL built from model values for the templates: column and constraint
//! definitions, index keys, helper names, and expressions re-pointed at other columns.
//! Names go through `Ident::quoted_sql` / `QualifiedName::quoted` only.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::model::{
    Column, Constraint, ConstraintKind, GeneratedKind, Ident, Identity, Index, IndexExpr, QualifiedName,
    quote_ident,
};
use crate::parse::text::repoint;
use crate::render::qn;

/// A column as templates receive it.
pub fn column_value(c: &Column) -> Value {
    json!({
        "name": c.name.as_str(),
        "type": c.data_type,
        "not_null": c.not_null,
        "default": c.default,
        "collation": c.collation,
        "identity": c.identity.map(|i| match i { Identity::Always => "ALWAYS", Identity::ByDefault => "BY DEFAULT" }),
        "generated": c.generated.as_ref().map(|g| g.expr.clone()),
        "generated_stored": c.generated.as_ref().map(|g| g.kind == GeneratedKind::Stored),
    })
}

fn idents(cols: &[Ident]) -> String {
    cols.iter().map(Ident::quoted_sql).collect::<Vec<_>>().join(", ")
}

/// `PRIMARY KEY (id)`, `FOREIGN KEY (a) REFERENCES s.t (b) ON DELETE CASCADE`, `CHECK (…)`.
pub fn constraint_def(c: &Constraint) -> String {
    let mut s = match &c.kind {
        ConstraintKind::PrimaryKey { columns, include } => {
            let mut s = format!("PRIMARY KEY ({})", idents(columns));
            if !include.is_empty() {
                s.push_str(&format!(" INCLUDE ({})", idents(include)));
            }
            s
        }
        ConstraintKind::Unique { columns, include, nulls_not_distinct } => {
            let mut s = String::from("UNIQUE ");
            if *nulls_not_distinct {
                s.push_str("NULLS NOT DISTINCT ");
            }
            s.push_str(&format!("({})", idents(columns)));
            if !include.is_empty() {
                s.push_str(&format!(" INCLUDE ({})", idents(include)));
            }
            s
        }
        ConstraintKind::ForeignKey { columns, ref_table, ref_columns, on_delete, on_update, match_full } => {
            let mut s = format!("FOREIGN KEY ({}) REFERENCES {}", idents(columns), ref_table.quoted());
            if !ref_columns.is_empty() {
                s.push_str(&format!(" ({})", idents(ref_columns)));
            }
            if *match_full {
                s.push_str(" MATCH FULL");
            }
            if *on_update != crate::model::FkAction::NoAction {
                s.push_str(&format!(" ON UPDATE {}", on_update.sql()));
            }
            if *on_delete != crate::model::FkAction::NoAction {
                s.push_str(&format!(" ON DELETE {}", on_delete.sql()));
            }
            s
        }
        ConstraintKind::Check { expr, no_inherit } => {
            let mut s = format!("CHECK ({expr})");
            if *no_inherit {
                s.push_str(" NO INHERIT");
            }
            s
        }
        ConstraintKind::Exclusion { method, elements, predicate } => {
            let els = elements.trim();
            let els = if els.starts_with('(') { els.to_string() } else { format!("({els})") };
            let mut s = format!("EXCLUDE USING {method} {els}");
            if let Some(p) = predicate {
                s.push_str(&format!(" WHERE ({p})"));
            }
            s
        }
    };
    if c.deferrable {
        s.push_str(" DEFERRABLE");
        if c.initially_deferred {
            s.push_str(" INITIALLY DEFERRED");
        }
    }
    s
}

/// The key list of an index, with `rename` applied to plain column keys.
pub fn index_keys(i: &Index, rename: Option<(&Ident, &Ident)>) -> String {
    i.keys
        .iter()
        .map(|k| {
            let mut s = match &k.expr {
                IndexExpr::Column(c) => match rename {
                    Some((from, to)) if c == from => to.quoted_sql(),
                    _ => c.quoted_sql(),
                },
                IndexExpr::Expression(e) => match rename {
                    Some((from, to)) => {
                        format!("({})", repoint(e, &|n| (n == from.as_str()).then(|| to.quoted_sql())))
                    }
                    None => format!("({e})"),
                },
            };
            if let Some(c) = &k.collation {
                s.push_str(&format!(" COLLATE {c}"));
            }
            if let Some(o) = &k.opclass {
                s.push_str(&format!(" {o}"));
            }
            if k.descending {
                s.push_str(" DESC");
            }
            match k.nulls_first {
                Some(true) => s.push_str(" NULLS FIRST"),
                Some(false) => s.push_str(" NULLS LAST"),
                None => {}
            }
            s
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// An index as `create_index.sql` receives it.
pub fn index_value(i: &Index, name: &Ident, concurrently: bool, rename: Option<(&Ident, &Ident)>) -> Value {
    let predicate = match (&i.predicate, rename) {
        (Some(p), Some((from, to))) => Some(repoint(p, &|n| (n == from.as_str()).then(|| to.quoted_sql()))),
        (p, _) => p.clone(),
    };
    json!({
        "name": name.as_str(),
        "table": qn(&i.table),
        "unique": i.unique,
        "nulls_not_distinct": i.nulls_not_distinct,
        "method": i.method,
        "keys": index_keys(i, rename),
        "include": i.include.iter().map(|c| match rename { Some((f, t)) if c == f => t.as_str().to_string(), _ => c.as_str().to_string() }).collect::<Vec<_>>(),
        "predicate": predicate,
        "options": i.options,
        "only": i.only,
        "concurrently": concurrently,
    })
}

/// A helper object name `<base><suffix>`, shortened (with a hash, so two long names stay
/// distinct) to PostgreSQL's 63 bytes.
pub fn derived_name(base: &str, suffix: &str) -> Ident {
    let full = format!("{base}{suffix}");
    if full.len() <= crate::model::MAX_IDENT_BYTES {
        return Ident::exact(&full).expect("fits");
    }
    let hash: String = Sha256::digest(base.as_bytes()).iter().take(3).map(|b| format!("{b:02x}")).collect();
    let room = crate::model::MAX_IDENT_BYTES - suffix.len() - hash.len() - 1;
    let mut cut = room.min(base.len());
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    Ident::exact(&format!("{}_{hash}{suffix}", &base[..cut])).expect("fits")
}

/// `NEW."col"` style reference to a column of a trigger's row.
pub fn row_ref(row: &str, column: &Ident) -> String {
    format!("{row}.{}", column.quoted_sql())
}

/// An object name as a string literal's content (for `'…'::regclass`).
pub fn regclass_text(q: &QualifiedName) -> String {
    q.quoted()
}

/// A column name for templates, quoted by the `ident` filter.
pub fn name(i: &Ident) -> Value {
    Value::String(i.as_str().to_string())
}

/// `quote_ident` for places that build lists in Rust.
pub fn q(name: &str) -> String {
    quote_ident(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repoint_touches_columns_only() {
        let map = |n: &str| match n {
            "price" => Some("NEW.price".to_string()),
            "numeric" => Some("WRONG".to_string()),
            "we\"ird name" => Some("NEW.\"we\"\"ird name\"".to_string()),
            _ => None,
        };
        assert_eq!(repoint("(price * 100)::bigint", &map), "(NEW.price * 100)::bigint");
        assert_eq!(repoint("round(Price)::numeric(12,2)", &map), "round(NEW.price)::numeric(12,2)");
        assert_eq!(repoint("'price' || t.price", &map), "'price' || t.price");
        assert_eq!(repoint("\"we\"\"ird name\" + 1", &map), "NEW.\"we\"\"ird name\" + 1");
        assert_eq!(repoint("price(1)", &map), "price(1)");
        assert_eq!(repoint("E'price' || $$price$$ || price", &map), "E'price' || $$price$$ || NEW.price");
        assert_eq!(repoint("price::numeric -- price", &map), "NEW.price::numeric -- price");
    }

    #[test]
    fn derived_names_fit() {
        assert_eq!(derived_name("price", "__seqmig_new").as_str(), "price__seqmig_new");
        let long = "x".repeat(60);
        let d = derived_name(&long, "__seqmig_new");
        assert!(d.as_str().len() <= 63 && d.as_str().ends_with("__seqmig_new"));
        assert_ne!(d, derived_name(&format!("{}y", "x".repeat(59)), "__seqmig_new"));
    }
}
