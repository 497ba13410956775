//! `CREATE INDEX` and `ALTER INDEX`: the index model, its keys and its default name.

use super::*;

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
