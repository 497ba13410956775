//! Small readers of SQL text for the modules downstream of the parser: the catalog's
//! definitions (`introspect`), a partition's key and bound (`model::partition`), an opaque
//! routine's head (`plan`), a backfill expression (`cli`), a view's `*`, the column
//! references a planned expression rewrites and the parts of a qualified name. They were hand-rolled scanners in those modules;
//! here they share the parser's lexer ([`super::lex`]), so quotes, dollar quotes and comments
//! are read one way everywhere (issue 19). This module and [`super::normalize`] import
//! nothing from the rest of the crate, so `model` may use them too.

use super::lex::{Kind, tokenize};
use super::normalize::dollar_tag;

/// The index of the `)` matching the `(` at `open`, outside quotes; `None` when there is no
/// `(` at `open`, it is not closed, or the lexer cannot read the text.
pub fn matching_paren(s: &str, open: usize) -> Option<usize> {
    if s.as_bytes().get(open) != Some(&b'(') {
        return None;
    }
    let toks = tokenize(&s[open..]).ok()?;
    let mut depth = 0;
    for t in &toks {
        match &s[open + t.start..open + t.end] {
            "(" if t.kind == Kind::Punct => depth += 1,
            ")" if t.kind == Kind::Punct => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + t.start);
                }
            }
            _ => {}
        }
    }
    None
}

/// `(…)` at the start of `s`: its inside and what follows the `)`.
pub fn paren_group(s: &str) -> Option<(&str, &str)> {
    let close = matching_paren(s, 0)?;
    Some((&s[1..close], &s[close + 1..]))
}

/// `s` without the parentheses that wrap all of it, repeatedly: `((a + 1))` → `a + 1`, while
/// `(a) + (b)` stays as it is.
pub fn unwrap_parens(s: &str) -> &str {
    let mut e = s.trim();
    while e.starts_with('(') && matching_paren(e, 0) == Some(e.len() - 1) {
        e = e[1..e.len() - 1].trim();
    }
    e
}

/// Splits at top-level commas (outside parentheses, brackets and quotes), parts trimmed; an
/// empty last part (blank text, a trailing comma) is dropped. Text the lexer cannot read
/// stays one part.
pub fn split_top_level(s: &str) -> Vec<&str> {
    let Ok(toks) = tokenize(s) else { return vec![s.trim()] };
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for t in toks.iter().filter(|t| t.kind == Kind::Punct) {
        match &s[t.start..t.end] {
            "(" | "[" => depth += 1,
            ")" | "]" => depth -= 1,
            "," if depth == 0 => {
                parts.push(s[start..t.start].trim());
                start = t.end;
            }
            _ => {}
        }
    }
    let last = s[start..].trim();
    if !last.is_empty() {
        parts.push(last);
    }
    parts
}

/// `s` when it is one identifier, bare or quoted (a partition key column rather than an
/// expression).
pub fn sole_identifier(s: &str) -> Option<&str> {
    match tokenize(s).ok()?.as_slice() {
        [t] if t.kind == Kind::Word || (t.kind == Kind::QuotedIdent && s[t.start..].starts_with('"')) => {
            Some(&s[t.start..t.end])
        }
        _ => None,
    }
}

/// Space-separated words, keeping `"quoted words"` and `(…)` groups whole. Text the lexer
/// cannot read is one word.
pub fn words(s: &str) -> Vec<&str> {
    let Ok(toks) = tokenize(s) else { return vec![s.trim()] };
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut word: Option<(usize, usize)> = None;
    for t in &toks {
        if depth == 0 && t.space_before {
            if let Some((a, b)) = word.take() {
                out.push(&s[a..b]);
            }
        }
        if t.kind == Kind::Punct {
            match &s[t.start..t.end] {
                "(" => depth += 1,
                ")" => depth -= 1,
                _ => {}
            }
        }
        word = Some((word.map_or(t.start, |(a, _)| a), t.end));
    }
    if let Some((a, b)) = word {
        out.push(&s[a..b]);
    }
    out
}

/// The identifier-like words of `text` outside string literals and `$tag$…$tag$` bodies,
/// with their double quotes removed: the names a routine's signature and clauses spell.
pub fn words_outside_bodies(text: &str) -> Vec<String> {
    without_quoted(text)
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '"'))
        .map(|w| w.trim_matches('"').to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

/// The text with `$tag$…$tag$` bodies and string literals removed.
fn without_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(['$', '\'']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix('\'') {
            match after.find('\'') {
                Some(end) => rest = &after[end + 1..],
                None => return out,
            }
            continue;
        }
        match dollar_tag(tail) {
            Some(tag) => match tail[tag.len()..].find(tag) {
                Some(end) => rest = &tail[tag.len() + end + tag.len()..],
                None => return out,
            },
            None => {
                out.push('$');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Splits `a."b.c"."d""e"` on the dots outside quotes; `None` when quotes are unbalanced.
pub fn split_qualified(text: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut chars = text.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if in_quotes && chars.peek() == Some(&'"') => {
                cur.push_str("\"\"");
                chars.next();
            }
            '"' => {
                in_quotes = !in_quotes;
                cur.push('"');
            }
            '.' if !in_quotes => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if in_quotes {
        return None;
    }
    parts.push(cur);
    Some(parts.into_iter().map(|p| p.trim().to_string()).collect())
}

/// Whether a view definition selects `*` (its column list then follows its tables').
pub fn selects_star(definition: &str) -> bool {
    let d = definition.to_ascii_lowercase();
    d.contains("select *") || d.contains(".*") || d.contains(", *") || d.contains("distinct *")
}

/// A view definition's `*` spelled out: `SELECT * FROM public.orders o WHERE …` with
/// `columns` (already quoted) → `SELECT o.id, o.total FROM public.orders o WHERE …`.
/// PostgreSQL binds `*` to the columns a table has when the view is created, in their
/// physical order, so a view created over a table that holds seqmig's shadow or parked
/// columns, or whose columns were added in another order, would bind those. Only a single
/// `SELECT` over one relation is spelled out (`*` and `rel.*` in its select list); anything
/// else (joins, several relations, set operations, `WITH`, a subquery in `FROM`) gives `None`.
pub fn expand_star(definition: &str, columns: &[String]) -> Option<String> {
    let toks = tokenize(definition).ok()?;
    let text = |k: usize| &definition[toks[k].start..toks[k].end];
    let word = |k: usize| (toks[k].kind == Kind::Word).then(|| text(k).to_ascii_lowercase());
    // Depth of every token (a token inside parentheses is not at the top level).
    let mut depth = Vec::with_capacity(toks.len());
    let mut d = 0i32;
    for t in &toks {
        let punct = |p: &str| t.kind == Kind::Punct && &definition[t.start..t.end] == p;
        if punct(")") {
            d -= 1;
        }
        depth.push(d);
        if punct("(") {
            d += 1;
        }
    }
    let top: Vec<usize> = (0..toks.len()).filter(|&k| depth[k] == 0).collect();
    if word(*top.first()?).as_deref() != Some("select") {
        return None;
    }
    let from = *top.iter().find(|&&k| word(k).as_deref() == Some("from"))?;
    const ENDS: [&str; 12] = [
        "where",
        "group",
        "having",
        "window",
        "order",
        "limit",
        "offset",
        "fetch",
        "for",
        "union",
        "intersect",
        "except",
    ];
    if top.iter().any(|&k| matches!(word(k).as_deref(), Some("union" | "intersect" | "except"))) {
        return None;
    }
    let end = top
        .iter()
        .copied()
        .find(|&k| k > from && (word(k).is_some_and(|w| ENDS.contains(&w.as_str())) || text(k) == ";"))
        .unwrap_or(toks.len());
    // FROM: one relation, `name`, `schema.name`, then `[AS] alias`.
    let rel: Vec<usize> = (from + 1..end).collect();
    if rel.iter().any(|&k| depth[k] != 0 || (toks[k].kind == Kind::Punct && text(k) != ".")) {
        return None;
    }
    let is_name = |k: usize| matches!(toks[k].kind, Kind::Word | Kind::QuotedIdent);
    let (name_end, alias) = match rel.len() {
        1 => (rel[0], None),
        3 if text(rel[1]) == "." => (rel[2], None),
        2 => (rel[0], Some(rel[1])),
        4 if text(rel[1]) == "." => (rel[2], Some(rel[3])),
        3 if word(rel[1]).as_deref() == Some("as") => (rel[0], Some(rel[2])),
        5 if text(rel[1]) == "." && word(rel[3]).as_deref() == Some("as") => (rel[2], Some(rel[4])),
        _ => return None,
    };
    if !rel.iter().all(|&k| is_name(k) || text(k) == ".") {
        return None;
    }
    if let Some(a) = alias
        && word(a).is_some_and(|w| {
            ["join", "natural", "cross", "lateral", "tablesample", "only"].contains(&w.as_str())
        })
    {
        return None;
    }
    let prefix = text(alias.unwrap_or(name_end));
    let same = |k: usize| {
        let t = text(k);
        if toks[k].kind == Kind::QuotedIdent { t == prefix } else { t.eq_ignore_ascii_case(prefix) }
    };
    // Select-list items at the top level, split at commas; a star item is `*` or `q.*`.
    // After `SELECT`, `ALL`, `DISTINCT` or `DISTINCT ON (…)`.
    let mut first = top[0] + 1;
    match word(first).as_deref() {
        Some("all") => first += 1,
        Some("distinct") if word(first + 1).as_deref() == Some("on") => {
            first = *top.iter().find(|&&k| k > first + 1 && text(k) == ")")? + 1;
        }
        Some("distinct") => first += 1,
        _ => {}
    }
    let mut items: Vec<(usize, usize)> = Vec::new();
    let mut start = first;
    for &k in top.iter().filter(|&&k| k >= first && k <= from) {
        if k == from || (toks[k].kind == Kind::Punct && text(k) == ",") {
            items.push((start, k));
            start = k + 1;
        }
    }
    let mut out = String::with_capacity(definition.len() + 64);
    let mut copied = 0;
    let mut any = false;
    for (a, b) in items {
        let item: Vec<usize> = (a..b).collect();
        let star = match item.len() {
            1 => text(item[0]) == "*",
            3 => text(item[2]) == "*" && text(item[1]) == "." && same(item[0]),
            _ => item.last().is_some_and(|&k| text(k) == "*") && text(item[item.len() - 2]) == ".",
        };
        if !star {
            // `schema.table.*` or another relation's `*`: not one this reader spells out.
            if item.last().is_some_and(|&k| text(k) == "*") {
                return None;
            }
            continue;
        }
        if item.len() > 3 {
            return None;
        }
        out.push_str(&definition[copied..toks[a].start]);
        out.push_str(&columns.iter().map(|c| format!("{prefix}.{c}")).collect::<Vec<_>>().join(", "));
        copied = toks[b - 1].end;
        any = true;
    }
    if !any || columns.is_empty() {
        return None;
    }
    out.push_str(&definition[copied..]);
    Some(out)
}

/// `text` with the relation `schema.from` spelled `to` (already quoted) instead, for an
/// object that follows a renamed table (PostgreSQL binds it by OID, so only its text changes):
/// every bare or quoted identifier spelling `from`, unqualified or qualified by `schema`, that
/// is not a function call nor an output column's alias (`AS name`, outside `CAST(… AS type)`:
/// the table's row type is renamed with it). Text the lexer cannot read is returned as written.
pub fn rename_relation(text: &str, schema: &str, from: &str, to: &str) -> String {
    let Ok(toks) = tokenize(text) else { return text.to_string() };
    let name = |k: usize| -> Option<String> {
        let t = toks.get(k)?;
        let raw = &text[t.start..t.end];
        match t.kind {
            Kind::Word => Some(raw.to_ascii_lowercase()),
            Kind::QuotedIdent => Some(raw[1..raw.len() - 1].replace("\"\"", "\"")),
            _ => None,
        }
    };
    let punct =
        |k: usize, p: &str| toks.get(k).is_some_and(|t| t.kind == Kind::Punct && &text[t.start..t.end] == p);
    let word = |k: usize, w: &str| {
        toks.get(k).is_some_and(|t| t.kind == Kind::Word && text[t.start..t.end].eq_ignore_ascii_case(w))
    };
    let mut out = String::with_capacity(text.len() + 16);
    let mut copied = 0;
    // For each open parenthesis, whether it opens a `CAST(`.
    let mut parens: Vec<bool> = Vec::new();
    for (k, t) in toks.iter().enumerate() {
        if punct(k, "(") {
            parens.push(k > 0 && word(k - 1, "cast"));
        } else if punct(k, ")") {
            parens.pop();
        }
        if name(k).as_deref() != Some(from) || punct(k + 1, "(") {
            continue;
        }
        if k > 0 && word(k - 1, "as") && parens.last() != Some(&true) {
            continue;
        }
        let qualified = k > 0 && punct(k - 1, ".");
        if qualified && (k < 2 || name(k - 2).as_deref() != Some(schema)) {
            continue;
        }
        out.push_str(&text[copied..t.start]);
        out.push_str(to);
        copied = t.end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Rewrites the column references in `expr`: every bare or quoted identifier for which
/// `map` returns a replacement is replaced. Identifiers inside string literals, after `.`
/// or `::`, before `(` or `.` are left alone (qualified names, types, functions). An
/// expression the lexer cannot read is returned as written (the model only holds
/// expressions a lexer has read).
pub fn repoint(expr: &str, map: &dyn Fn(&str) -> Option<String>) -> String {
    let Ok(toks) = tokenize(expr) else { return expr.to_string() };
    let text = |k: usize| toks.get(k).map(|t| &expr[t.start..t.end]);
    let mut out = String::with_capacity(expr.len() + 16);
    let mut copied = 0;
    for (k, t) in toks.iter().enumerate() {
        let raw = &expr[t.start..t.end];
        let name = match t.kind {
            Kind::Word => raw.to_lowercase(),
            Kind::QuotedIdent if raw.starts_with('"') => raw[1..raw.len() - 1].replace("\"\"", "\""),
            _ => continue,
        };
        let qualified_or_cast = k > 0 && matches!(text(k - 1), Some("." | "::"));
        let call_or_qualifier = matches!(text(k + 1), Some("(" | "."));
        if qualified_or_cast || call_or_qualifier {
            continue;
        }
        if let Some(rep) = map(&name) {
            out.push_str(&expr[copied..t.start]);
            out.push_str(&rep);
            copied = t.end;
        }
    }
    out.push_str(&expr[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_relation_follows_the_table_not_its_columns_or_functions() {
        assert_eq!(
            rename_relation("select o.id, o.a from public.o where o(1) and x.o > 0", "public", "o", "p"),
            "select p.id, p.a from public.p where o(1) and x.o > 0"
        );
        assert_eq!(
            rename_relation("create trigger tr before update on \"o\" for each row", "public", "o", "\"P\""),
            "create trigger tr before update on \"P\" for each row"
        );
        // An output column's alias is not the table; a cast to its row type is.
        assert_eq!(
            rename_relation("select o.name as o, cast(x as o) from o", "public", "o", "p"),
            "select p.name as o, cast(x as p) from p"
        );
    }

    #[test]
    fn expand_star_spells_out_one_relations_columns() {
        let cols = ["id".to_string(), "\"Total\"".to_string()];
        assert_eq!(
            expand_star("SELECT * FROM public.orders WHERE id > 1", &cols).as_deref(),
            Some("SELECT orders.id, orders.\"Total\" FROM public.orders WHERE id > 1")
        );
        assert_eq!(
            expand_star("select o.*, 1 AS one from orders AS o order by 1", &cols).as_deref(),
            Some("select o.id, o.\"Total\", 1 AS one from orders AS o order by 1")
        );
        assert_eq!(
            expand_star("SELECT DISTINCT * FROM orders o", &cols).as_deref(),
            Some("SELECT DISTINCT o.id, o.\"Total\" FROM orders o")
        );
        assert_eq!(
            expand_star("SELECT DISTINCT ON (id) * FROM orders", &cols).as_deref(),
            Some("SELECT DISTINCT ON (id) orders.id, orders.\"Total\" FROM orders")
        );
        for unread in [
            "SELECT * FROM a JOIN b USING (id)",
            "SELECT * FROM a, b",
            "SELECT * FROM (SELECT 1) s",
            "SELECT * FROM a UNION SELECT * FROM b",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "SELECT id FROM orders",
            "SELECT b.* FROM orders o",
            "SELECT count(*) FROM orders",
        ] {
            assert_eq!(expand_star(unread, &cols), None, "{unread}");
        }
    }

    #[test]
    fn index_key_suffixes_are_split_into_words() {
        assert_eq!(
            words(" COLLATE \"C\" public.gin_trgm_ops DESC NULLS LAST"),
            ["COLLATE", "\"C\"", "public.gin_trgm_ops", "DESC", "NULLS", "LAST"]
        );
        assert_eq!(split_top_level("a, lower((b)::text), (c + d)"), ["a", "lower((b)::text)", "(c + d)"]);
    }

    #[test]
    fn top_level_lists_keep_quoted_commas_and_drop_an_empty_tail() {
        assert_eq!(split_top_level("'a, b', 'c'"), ["'a, b'", "'c'"]);
        assert_eq!(split_top_level("\"x,y\", z,"), ["\"x,y\"", "z"]);
        assert!(split_top_level("  ").is_empty());
        assert_eq!(sole_identifier(" \"Tenant\" "), Some("\"Tenant\""));
        assert_eq!(sole_identifier("created_at"), Some("created_at"));
        assert_eq!(sole_identifier("lower(region)"), None);
    }

    #[test]
    fn parentheses_are_matched_outside_quotes() {
        assert_eq!(paren_group("(a, ')') TO (b)"), Some(("a, ')'", " TO (b)")));
        assert_eq!(paren_group("a (b)"), None);
        assert_eq!(unwrap_parens(" ((price * 100)::bigint) "), "(price * 100)::bigint");
        assert_eq!(unwrap_parens("(a) + (b)"), "(a) + (b)");
        assert_eq!(unwrap_parens("((a))"), "a");
    }

    #[test]
    fn words_outside_bodies_skip_literals_and_dollar_bodies() {
        assert_eq!(
            words_outside_bodies("CREATE FUNCTION f(\"T\" int) AS $b$ select orders $b$ LANGUAGE sql 'x y'"),
            ["CREATE", "FUNCTION", "f", "T", "int", "AS", "LANGUAGE", "sql"]
        );
    }
}
