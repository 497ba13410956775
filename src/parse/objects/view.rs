//! `CREATE [MATERIALIZED] VIEW` and the view-dependency analyser: which relations and
//! columns a view reads.

use super::*;

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
                    } else if c.toks.get(n + 2).is_some_and(|t| c.text(t) == "*") {
                        // `alias.*` binds every column the relation has, as pg_depend records.
                        for col in columns_of(rel) {
                            reads.insert(ColumnRef { table: rel.clone(), column: Some(col) });
                        }
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
