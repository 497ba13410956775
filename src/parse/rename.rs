//! A statement's text as it reads after `ALTER TABLE … RENAME TO`: PostgreSQL binds views,
//! triggers, policies, rules, statistics and routine signatures to the table (and its row
//! type) by OID, so after a rename only their text names it anew. Only references to the
//! relation change: the relation itself where a statement names one (`FROM`, `JOIN`, a
//! `FROM` list, `ON` of a trigger, policy, index or rule, `TO` of a rule, `UPDATE`, `INTO`,
//! `TABLE`), the qualifiers of its columns (`category.name`), its row type (`::category`, a
//! routine's argument and result types). A column, an output column or an alias spelled
//! like the table (`category.name AS category`), a function of that name and string bodies
//! stay as written. A reader of tokens, not a parser: it follows the clauses of a query by
//! parenthesis depth, which is what the definitions PostgreSQL and `pg_dump` print need.

use super::lex::{Kind, Tok, tokenize};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Clause {
    /// Nothing known: a function's arguments, an expression in parentheses.
    None,
    Select,
    /// The `FROM` list of the query at this depth (including its join trees).
    From,
    /// Any other clause of a query (`WHERE`, `GROUP BY`, …).
    Other,
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    clause: Clause,
    /// In a `FROM` clause: inside a join condition (`ON …`, `USING (…)`).
    cond: bool,
}

const ROOT: Frame = Frame { clause: Clause::None, cond: false };

/// Words that end a routine's signature (what follows is its attributes and body).
const ROUTINE_ATTRIBUTES: &[&str] = &[
    "language",
    "as",
    "begin",
    "return",
    "immutable",
    "stable",
    "volatile",
    "strict",
    "security",
    "cost",
    "rows",
    "set",
    "window",
    "leakproof",
    "parallel",
    "called",
    "support",
    "external",
    "transform",
    "not",
];

/// `text` with the relation `schema.from` spelled `to` (already quoted) instead, for an
/// object that follows a renamed table (see the module comment). Text the lexer cannot read
/// is returned as written.
pub fn rename_relation(text: &str, schema: &str, from: &str, to: &str) -> String {
    let Ok(toks) = tokenize(text) else { return text.to_string() };
    let mut at = references(text, &toks, schema, from);
    at.sort_unstable();
    at.dedup();
    let mut out = String::with_capacity(text.len() + 16);
    let mut copied = 0;
    for k in at {
        out.push_str(&text[copied..toks[k].start]);
        out.push_str(to);
        copied = toks[k].end;
    }
    out.push_str(&text[copied..]);
    out
}

/// A routine's identity (`public.f(public.customer, integer)`) with the renamed table's row
/// type spelled `to`: every argument type that names it.
pub fn rename_row_type(identity: &str, schema: &str, from: &str, to: &str) -> String {
    let Ok(toks) = tokenize(identity) else { return identity.to_string() };
    let r = Reader { text: identity, toks: &toks };
    let Some(open) = (0..toks.len()).find(|&k| r.punct(k, "(")) else { return identity.to_string() };
    let mut out = String::with_capacity(identity.len() + 16);
    let mut copied = 0;
    for k in open + 1..toks.len() {
        if r.type_name_at(k, schema, from, true) {
            out.push_str(&identity[copied..toks[k].start]);
            out.push_str(to);
            copied = toks[k].end;
        }
    }
    out.push_str(&identity[copied..]);
    out
}

struct Reader<'a> {
    text: &'a str,
    toks: &'a [Tok],
}

impl Reader<'_> {
    fn raw(&self, k: usize) -> &str {
        self.toks.get(k).map_or("", |t| &self.text[t.start..t.end])
    }

    /// The identifier at `k` (keywords too), folded as PostgreSQL folds it.
    fn name(&self, k: usize) -> Option<String> {
        let t = self.toks.get(k)?;
        let raw = &self.text[t.start..t.end];
        match t.kind {
            Kind::Word => Some(raw.to_ascii_lowercase()),
            Kind::QuotedIdent if raw.starts_with('"') => Some(raw[1..raw.len() - 1].replace("\"\"", "\"")),
            _ => None,
        }
    }

    /// The unquoted word at `k`, lower-cased (a keyword is never quoted).
    fn word(&self, k: usize) -> Option<String> {
        self.toks.get(k).filter(|t| t.kind == Kind::Word).map(|_| self.raw(k).to_ascii_lowercase())
    }

    fn punct(&self, k: usize, p: &str) -> bool {
        self.toks.get(k).is_some_and(|t| t.kind == Kind::Punct && self.raw(k) == p)
    }

    fn op(&self, k: usize, p: &str) -> bool {
        self.toks.get(k).is_some_and(|t| t.kind == Kind::Op && self.raw(k) == p)
    }

    fn is(&self, k: usize, name: &str) -> bool {
        self.name(k).as_deref() == Some(name)
    }

    /// `from` at `k` names the relation's row type in a type position: `::from`,
    /// `::schema.from`, and in a signature (`in_signature`) a type that ends an argument
    /// (`from,`, `from)`, `from[]`, `from DEFAULT …`) or follows `SETOF` or `RETURNS`.
    fn type_name_at(&self, k: usize, schema: &str, from: &str, in_signature: bool) -> bool {
        if !self.is(k, from) || self.punct(k + 1, ".") || self.punct(k + 1, "(") {
            return false;
        }
        let (qualified, before) = if k >= 2 && self.punct(k - 1, ".") {
            if !self.is(k - 2, schema) || (k >= 3 && self.punct(k - 3, ".")) {
                return false;
            }
            (true, k.checked_sub(3))
        } else {
            (false, k.checked_sub(1))
        };
        let prev_cast = before.is_some_and(|b| self.op(b, "::"));
        if !in_signature {
            return prev_cast;
        }
        let prev_kw = before.and_then(|b| self.word(b));
        let next_ends = self.punct(k + 1, ",")
            || self.punct(k + 1, ")")
            || self.punct(k + 1, "[")
            || self.op(k + 1, "%")
            || self.op(k + 1, "=")
            || self.word(k + 1).as_deref() == Some("default");
        qualified || prev_cast || matches!(prev_kw.as_deref(), Some("setof" | "returns")) || next_ends
    }
}

/// The index of the `)` that closes the `(` at `open`.
fn matching(r: &Reader<'_>, open: usize) -> Option<usize> {
    if !r.punct(open, "(") {
        return None;
    }
    let mut depth = 0usize;
    for k in open..r.toks.len() {
        if r.punct(k, "(") {
            depth += 1;
        } else if r.punct(k, ")") {
            depth -= 1;
            if depth == 0 {
                return Some(k);
            }
        }
    }
    None
}

/// The tokens of `text` that name the relation `schema.from`.
fn references(text: &str, toks: &[Tok], schema: &str, from: &str) -> Vec<usize> {
    let r = Reader { text, toks };
    let head: Vec<String> = (0..toks.len().min(4)).map(|k| r.word(k).unwrap_or_default()).collect();
    let head: Vec<&str> = head.iter().map(String::as_str).collect();
    let create = head.first() == Some(&"create");
    let kind_at = if head.get(1..3) == Some(&["or", "replace"]) { 3 } else { 1 };
    let kind = if create { head.get(kind_at).copied().unwrap_or("") } else { "" };
    // `ON table` of CREATE TRIGGER, POLICY, INDEX, RULE; `TO table` of CREATE RULE.
    let on_relation =
        create && matches!(kind, "trigger" | "constraint" | "policy" | "index" | "unique" | "rule");
    let rule = create && kind == "rule";
    let routine = create && matches!(kind, "function" | "procedure" | "aggregate");

    // A routine's signature: its argument list and `RETURNS …`, up to its first attribute.
    let signature_end = if routine {
        let open = (0..toks.len()).find(|&k| r.punct(k, "(")).unwrap_or(0);
        let close = matching(&r, open).unwrap_or(0);
        let mut depth = 0i32;
        (close + 1..toks.len())
            .find(|&k| {
                if r.punct(k, "(") {
                    depth += 1;
                } else if r.punct(k, ")") {
                    depth -= 1;
                }
                depth == 0
                    && toks[k].kind == Kind::Word
                    && r.word(k).is_some_and(|w| ROUTINE_ATTRIBUTES.contains(&w.as_str()))
            })
            .unwrap_or(toks.len())
    } else {
        0
    };

    let mut definite = Vec::new();
    let mut qualifiers = Vec::new();
    // `from` names something else as well: an alias or a WITH query. Its qualifiers (and for
    // a WITH query its unqualified relation references) then mean that one.
    let mut shadowed = false;
    let mut cte = false;
    let mut frames = vec![ROOT];
    let mut relation_next = false;
    let mut alias_next = false;
    let mut k = 0;
    while k < toks.len() {
        if k < signature_end {
            if r.type_name_at(k, schema, from, true) {
                definite.push(k);
            }
            k += 1;
            continue;
        }
        let top = *frames.last().expect("the root frame stays");
        let depth0 = frames.len() == 1;
        let t = toks[k];
        if t.kind == Kind::Punct {
            match r.raw(k) {
                "(" => {
                    let join_tree = top.clause == Clause::From && !top.cond && relation_next;
                    frames.push(Frame {
                        clause: if join_tree { Clause::From } else { Clause::None },
                        cond: false,
                    });
                    relation_next = join_tree;
                    alias_next = false;
                }
                ")" => {
                    let closed = frames.pop().expect("the root frame stays");
                    if frames.is_empty() {
                        frames.push(ROOT);
                    }
                    let parent = *frames.last().expect("the root frame stays");
                    // `(SELECT …) alias`, `(a JOIN b) alias` in a FROM list.
                    alias_next = parent.clause == Clause::From
                        && !parent.cond
                        && matches!(closed.clause, Clause::From | Clause::Select | Clause::Other);
                    relation_next = false;
                }
                "," => {
                    let f = frames.last_mut().expect("the root frame stays");
                    relation_next = f.clause == Clause::From;
                    if relation_next {
                        f.cond = false;
                    }
                    alias_next = false;
                }
                ";" => {
                    frames = vec![ROOT];
                    relation_next = false;
                    alias_next = false;
                }
                _ => {}
            }
            k += 1;
            continue;
        }
        if let Some(w) = r.word(k) {
            let f = frames.last_mut().expect("the root frame stays");
            let keyword = match w.as_str() {
                "select" => {
                    f.clause = Clause::Select;
                    relation_next = false;
                    true
                }
                // Not `IS [NOT] DISTINCT FROM`.
                "from"
                    if (depth0 || f.clause != Clause::None)
                        && r.word(k.wrapping_sub(1)).as_deref() != Some("distinct") =>
                {
                    f.clause = Clause::From;
                    f.cond = false;
                    relation_next = true;
                    true
                }
                "join" if f.clause == Clause::From => {
                    f.cond = false;
                    relation_next = true;
                    true
                }
                "on" | "using" if f.clause == Clause::From => {
                    f.cond = true;
                    relation_next = false;
                    true
                }
                "on" if depth0 && on_relation => {
                    relation_next = true;
                    true
                }
                "to" if depth0 && rule => {
                    relation_next = true;
                    true
                }
                "only" | "lateral" if relation_next => true,
                "update" | "into" | "table" => {
                    relation_next = true;
                    true
                }
                "delete" | "insert" => {
                    f.clause = Clause::Other;
                    relation_next = false;
                    true
                }
                "where" | "group" | "having" | "window" | "order" | "limit" | "offset" | "fetch"
                | "returning" | "set" | "values" | "union" | "intersect" | "except" | "for" => {
                    f.clause = Clause::Other;
                    f.cond = false;
                    relation_next = false;
                    true
                }
                "as" if alias_next => {
                    k += 1;
                    continue;
                }
                _ => false,
            };
            if keyword {
                alias_next = false;
                k += 1;
                continue;
            }
        }
        let Some(name) = r.name(k) else {
            relation_next = false;
            alias_next = false;
            k += 1;
            continue;
        };
        if alias_next {
            alias_next = false;
            if name == from && !r.punct(k + 1, ".") {
                shadowed = true;
            }
            k += 1;
            continue;
        }
        // `from AS (…)` or `from (a, b) AS (…)`: a WITH query of that name.
        if name == from
            && (r.word(k + 1).as_deref() == Some("as") && r.punct(k + 2, "(")
                || r.punct(k + 1, "(") && {
                    let close = matching(&r, k + 1).unwrap_or(0);
                    close > 0 && r.word(close + 1).as_deref() == Some("as") && r.punct(close + 2, "(")
                })
        {
            shadowed = true;
            cte = true;
            k += 1;
            continue;
        }
        if relation_next {
            relation_next = false;
            // `name`, `schema.name` or `db.schema.name`; a function in FROM is followed by `(`.
            let mut last = k;
            while r.punct(last + 1, ".") && r.name(last + 2).is_some() {
                last += 2;
            }
            if r.punct(last + 1, "(") {
                k = last + 1;
                continue;
            }
            let qualifier = (last > k).then(|| r.name(last - 2)).flatten();
            if r.is(last, from)
                && qualifier.as_deref().is_none_or(|q| q == schema)
                && (qualifier.is_some() || !cte)
            {
                definite.push(last);
            }
            alias_next = frames.last().is_some_and(|f| f.clause == Clause::From);
            k = last + 1;
            continue;
        }
        if r.type_name_at(k, schema, from, false) {
            definite.push(k);
        } else if name == from
            && r.punct(k + 1, ".")
            && (r.name(k + 2).is_some() || r.op(k + 2, "*"))
            && !r.punct(k + 3, "(")
        {
            // `from.column`, or `schema.from.column`; not `x.from.column`.
            let after_dot = k >= 1 && r.punct(k - 1, ".");
            let cast = k >= 1 && r.op(k - 1, "::");
            let plain = !after_dot && !cast;
            let schema_qualified =
                after_dot && k >= 2 && r.is(k - 2, schema) && !(k >= 3 && r.punct(k - 3, "."));
            if plain {
                qualifiers.push(k);
            } else if schema_qualified {
                definite.push(k);
            }
        }
        k += 1;
    }
    if !shadowed {
        definite.extend(qualifiers);
    }
    definite
}

#[cfg(test)]
mod tests {
    use super::*;

    fn carry(text: &str) -> String {
        rename_relation(text, "public", "category", "category_renamed")
    }

    #[test]
    fn the_relation_and_its_qualifiers_follow_not_a_column_or_alias_spelled_like_it() {
        // pagila's film_list
        assert_eq!(
            carry(
                "SELECT film.film_id AS fid, category.name AS category FROM ((public.category \
                 LEFT JOIN public.film_category ON ((category.category_id = film_category.category_id))) \
                 LEFT JOIN public.film ON ((film_category.film_id = film.film_id))) GROUP BY film.film_id, category.name"
            ),
            "SELECT film.film_id AS fid, category_renamed.name AS category FROM ((public.category_renamed \
             LEFT JOIN public.film_category ON ((category_renamed.category_id = film_category.category_id))) \
             LEFT JOIN public.film ON ((film_category.film_id = film.film_id))) GROUP BY film.film_id, category_renamed.name"
        );
        // An alias of the table, a column named like it, a function named like it.
        assert_eq!(
            carry(
                "SELECT c.name AS category, category(c.x), f.category FROM public.category c JOIN f ON f.category = c.name"
            ),
            "SELECT c.name AS category, category(c.x), f.category FROM public.category_renamed c JOIN f ON f.category = c.name"
        );
        // A FROM list, a subquery, EXISTS; `extract(… FROM column)` is no relation.
        assert_eq!(
            carry(
                "select extract(year from category) from film, category where exists (select 1 from only \"category\" x)"
            ),
            "select extract(year from category) from film, category_renamed where exists (select 1 from only category_renamed x)"
        );
        // Another relation aliased like the table: its qualifiers mean that one.
        assert_eq!(
            carry(
                "select category.name from public.genre category join public.category g on g.id = category.id"
            ),
            "select category.name from public.genre category join public.category_renamed g on g.id = category.id"
        );
        // A WITH query named like the table.
        assert_eq!(
            carry("with category as (select 1 as id) select category.id from category, public.category k"),
            "with category as (select 1 as id) select category.id from category, public.category_renamed k"
        );
        // Another schema's table of that name.
        assert_eq!(carry("select x.category.id from x.category"), "select x.category.id from x.category");
        assert_eq!(
            carry("select public.category.id from public.category"),
            "select public.category_renamed.id from public.category_renamed"
        );
        // A cast to its row type.
        assert_eq!(
            carry("select (1, 'a')::category, y::public.category"),
            "select (1, 'a')::category_renamed, y::public.category_renamed"
        );
    }

    #[test]
    fn statements_on_a_table_follow_it() {
        assert_eq!(
            carry(
                "create trigger last_updated before update of category on public.category for each row execute function public.last_updated()"
            ),
            "create trigger last_updated before update of category on public.category_renamed for each row execute function public.last_updated()"
        );
        assert_eq!(
            carry("create policy p on category using ((category = current_user))"),
            "create policy p on category_renamed using ((category = current_user))"
        );
        assert_eq!(
            carry(
                "create rule r as on insert to public.category do instead insert into log values (new.category)"
            ),
            "create rule r as on insert to public.category_renamed do instead insert into log values (new.category)"
        );
        assert_eq!(
            carry("create statistics s on category, name from public.category"),
            "create statistics s on category, name from public.category_renamed"
        );
        assert_eq!(
            rename_relation("create trigger tr before update on \"o\" for each row", "public", "o", "\"P\""),
            "create trigger tr before update on \"P\" for each row"
        );
    }

    #[test]
    fn a_routine_signature_follows_the_row_type_not_its_body_or_argument_names() {
        assert_eq!(
            carry(
                "create function public.f(category public.category, n integer default 1) returns setof category \
                 language plpgsql as $$ begin return query select * from category; end $$"
            ),
            "create function public.f(category public.category_renamed, n integer default 1) returns setof category_renamed \
             language plpgsql as $$ begin return query select * from category; end $$"
        );
        assert_eq!(
            carry(
                "create function f(category) returns table (category text, c category) language sql as 'select 1'"
            ),
            "create function f(category_renamed) returns table (category text, c category_renamed) language sql as 'select 1'"
        );
        assert_eq!(
            rename_row_type(
                "public.f(public.category, integer, category[])",
                "public",
                "category",
                "category_renamed"
            ),
            "public.f(public.category_renamed, integer, category_renamed[])"
        );
    }
}
