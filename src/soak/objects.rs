//! What a plan touches, read from the plan artifact alone: the tables (for tiers and blast
//! radius) and the *old path* — the columns, tables and views that `contract` drops, which
//! the old release reads and the new one must not. The contract SQL is scanned with a small
//! tokenizer that understands quoting, so `"Weird ""name"""` and `full_name` vs `name` are
//! told apart; the same tokenizer reads `pg_stat_statements` query texts.

use std::collections::BTreeSet;
use std::fmt;

use crate::model::{Ident, QualifiedName};
use crate::plan::{Phase, Plan};

/// Something the old release reads and `contract` removes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum OldObject {
    Column {
        table: QualifiedName,
        column: Ident,
    },
    /// A table or view dropped whole.
    Relation(QualifiedName),
}

impl fmt::Display for OldObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OldObject::Column { table, column } => write!(f, "{table}.{}", column.quoted_sql()),
            OldObject::Relation(t) => write!(f, "{t}"),
        }
    }
}

impl OldObject {
    /// Whether a statement text names this object: the relation's name and, for a column,
    /// the column's name appear as identifiers (not inside longer words).
    pub fn named_in(&self, tokens: &[Token]) -> bool {
        let has = |id: &Ident| tokens.iter().any(|t| matches!(t, Token::Ident(x) if x == id));
        match self {
            OldObject::Column { table, column } => has(&table.name) && has(column),
            OldObject::Relation(t) => has(&t.name),
        }
    }
}

/// The tables a plan touches, from its steps' lock targets, its backfills and its changes'
/// objects (`schema.table.column` → the table). May include index names; the gate resolves
/// them against the catalog where that matters.
pub fn plan_tables(plan: &Plan) -> Vec<QualifiedName> {
    let mut out = BTreeSet::new();
    for step in &plan.steps {
        if !step.lock_target.trim().is_empty()
            && let Ok(q) = QualifiedName::parse_sql(&step.lock_target, "public")
        {
            out.insert(q);
        }
        if let Some(b) = &step.backfill {
            out.insert(b.table.clone());
        }
    }
    for change in &plan.changes {
        if let Some(q) = change_relation(&change.object) {
            out.insert(q);
        }
    }
    // The ledger's own tables (the authority flags) are locked by plan steps but are not
    // application tables: they must not widen the blast radius.
    out.into_iter().filter(|q| q.schema.as_str() != "seqmig").collect()
}

/// The relation a change's object names: `a.b` or the first two parts of `a.b.c`.
pub fn change_relation(object: &str) -> Option<QualifiedName> {
    let parts = crate::model::split_qualified(object)?;
    let (schema, name) = match parts.as_slice() {
        [s, n] | [s, n, _] => (s, n),
        _ => return None,
    };
    Some(QualifiedName::new(Ident::from_sql(schema).ok()?, Ident::from_sql(name).ok()?))
}

/// The old path of a plan: what its `contract` steps drop. A column or table renamed in
/// `contract` before being dropped (a brownout) counts under both names.
pub fn dropped_objects(plan: &Plan) -> Vec<OldObject> {
    let mut out = BTreeSet::new();
    let mut renames: Vec<(OldObject, OldObject)> = Vec::new();
    for step in plan.steps_of(Phase::Contract) {
        scan_contract_sql(&step.sql, &mut out, &mut renames);
    }
    // Follow brownout renames back to the name the old release used.
    loop {
        let before = out.len();
        for (from, to) in &renames {
            if out.contains(to) {
                out.insert(from.clone());
            }
        }
        if out.len() == before {
            break;
        }
    }
    out.into_iter().collect()
}

fn scan_contract_sql(sql: &str, out: &mut BTreeSet<OldObject>, renames: &mut Vec<(OldObject, OldObject)>) {
    for stmt in tokenize(sql).split(|t| *t == Token::Punct(';')) {
        let mut p = Parser { toks: stmt, i: 0 };
        if p.keyword("ALTER") && p.keyword("TABLE") {
            p.keyword_seq(&["IF", "EXISTS"]);
            p.keyword("ONLY");
            let Some(table) = p.qualified() else { continue };
            // ALTER TABLE t DROP COLUMN a, DROP COLUMN b / RENAME [COLUMN] a TO b / RENAME TO u
            while p.i < p.toks.len() {
                if p.keyword("DROP") && p.keyword("COLUMN") {
                    p.keyword_seq(&["IF", "EXISTS"]);
                    if let Some(c) = p.ident() {
                        out.insert(OldObject::Column { table: table.clone(), column: c });
                    }
                } else if p.keyword("RENAME") {
                    if p.keyword("TO") {
                        if let Some(new) = p.ident() {
                            let to = QualifiedName::new(table.schema.clone(), new);
                            renames.push((OldObject::Relation(table.clone()), OldObject::Relation(to)));
                        }
                    } else {
                        p.keyword("COLUMN");
                        if let (Some(a), true, Some(b)) = (p.ident(), p.keyword("TO"), p.ident()) {
                            renames.push((
                                OldObject::Column { table: table.clone(), column: a },
                                OldObject::Column { table: table.clone(), column: b },
                            ));
                        }
                    }
                } else {
                    p.i += 1;
                }
            }
        } else {
            p.i = 0;
            if p.keyword("DROP")
                && (p.keyword("TABLE")
                    || p.keyword("VIEW")
                    || (p.keyword("MATERIALIZED") && p.keyword("VIEW")))
            {
                p.keyword_seq(&["IF", "EXISTS"]);
                while let Some(q) = p.qualified() {
                    out.insert(OldObject::Relation(q));
                    if !p.punct(',') {
                        break;
                    }
                }
            }
        }
    }
}

/// A lexical token of SQL, enough to find names: identifiers folded as PostgreSQL does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A bare word (folded to lower case) or a quoted identifier (exact).
    Ident(Ident),
    /// A bare word's original upper-cased spelling is kept for keyword tests.
    Punct(char),
    /// String literal, number, parameter or operator: never a name.
    Other,
}

/// Splits SQL into tokens, skipping comments, string literals and dollar-quoted bodies.
pub fn tokenize(sql: &str) -> Vec<Token> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == b'\'' {
            i += 1;
            while i < b.len() {
                if b[i] == b'\'' && b.get(i + 1) == Some(&b'\'') {
                    i += 2;
                } else if b[i] == b'\'' {
                    i += 1;
                    break;
                } else {
                    i += 1;
                }
            }
            out.push(Token::Other);
        } else if c == b'"' {
            let start = i + 1;
            i += 1;
            let mut name = String::new();
            let mut seg = start;
            while i < b.len() {
                if b[i] == b'"' && b.get(i + 1) == Some(&b'"') {
                    name.push_str(&sql[seg..=i]);
                    i += 2;
                    seg = i;
                } else if b[i] == b'"' {
                    break;
                } else {
                    i += 1;
                }
            }
            name.push_str(&sql[seg..i.min(b.len())]);
            i += 1;
            out.push(Ident::quoted(&name).map(Token::Ident).unwrap_or(Token::Other));
        } else if c == b'$' && dollar_tag(&sql[i..]).is_some() {
            let tag = dollar_tag(&sql[i..]).unwrap_or_default();
            i += tag.len();
            match sql[i..].find(&tag) {
                Some(end) => i += end + tag.len(),
                None => i = b.len(),
            }
            out.push(Token::Other);
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80)
            {
                i += 1;
            }
            out.push(Ident::unquoted(&sql[start..i]).map(Token::Ident).unwrap_or(Token::Other));
        } else if c.is_ascii_digit() || c == b'$' {
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            out.push(Token::Other);
        } else if matches!(c, b'.' | b',' | b';' | b'(' | b')') {
            out.push(Token::Punct(c as char));
            i += 1;
        } else {
            out.push(Token::Other);
            i += 1;
        }
    }
    out
}

/// `$tag$` at the start of `s`, if it opens a dollar quote.
fn dollar_tag(s: &str) -> Option<String> {
    let rest = &s[1..];
    let end = rest.find('$')?;
    let tag = &rest[..end];
    if tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !tag.starts_with(|c: char| c.is_ascii_digit())
    {
        Some(format!("${tag}$"))
    } else {
        None
    }
}

struct Parser<'a> {
    toks: &'a [Token],
    i: usize,
}

impl Parser<'_> {
    fn keyword(&mut self, kw: &str) -> bool {
        match self.toks.get(self.i) {
            Some(Token::Ident(id)) if id.as_str().eq_ignore_ascii_case(kw) => {
                self.i += 1;
                true
            }
            _ => false,
        }
    }

    fn keyword_seq(&mut self, kws: &[&str]) -> bool {
        let save = self.i;
        if kws.iter().all(|k| self.keyword(k)) {
            true
        } else {
            self.i = save;
            false
        }
    }

    fn punct(&mut self, c: char) -> bool {
        if self.toks.get(self.i) == Some(&Token::Punct(c)) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> Option<Ident> {
        match self.toks.get(self.i) {
            Some(Token::Ident(id)) => {
                self.i += 1;
                Some(id.clone())
            }
            _ => None,
        }
    }

    fn qualified(&mut self) -> Option<QualifiedName> {
        let first = self.ident()?;
        if self.punct('.') {
            let second = self.ident()?;
            Some(QualifiedName::new(first, second))
        } else {
            Some(QualifiedName::new(Ident::exact("public").ok()?, first))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{GateSpec, LockMode, PlannedChange, Step};

    pub(crate) fn step(id: &str, phase: Phase, sql: &str, target: &str) -> Step {
        Step {
            one_way: phase == Phase::Contract,
            ..Step::new(id, "c1", phase, sql, LockMode::AccessExclusive, target)
        }
    }

    fn plan(steps: Vec<Step>) -> Plan {
        let change = PlannedChange {
            id: "c1".into(),
            kind: "rename_column".into(),
            object: "public.users.name".into(),
            one_way: true,
            summary: String::new(),
        };
        Plan::assemble(vec![change], steps, vec![], GateSpec::default())
    }

    #[test]
    fn ledger_flags_do_not_widen_the_blast_radius() {
        let p = plan(vec![
            step("s1", Phase::Switch, "UPDATE seqmig.flags SET authority = 'new'", "seqmig.flags"),
            step("s2", Phase::Contract, "ALTER TABLE public.users DROP COLUMN name", "public.users"),
        ]);
        assert_eq!(plan_tables(&p), vec![QualifiedName::of("public", "users")]);
    }

    #[test]
    fn contract_drops_are_the_old_path() {
        let p = plan(vec![
            step(
                "s1",
                Phase::Contract,
                "ALTER TABLE public.users DROP COLUMN IF EXISTS name;",
                "public.users",
            ),
            step("s2", Phase::Contract, r#"DROP TABLE IF EXISTS "Legacy"."Events ""x""", public.t2"#, ""),
            step(
                "s3",
                Phase::Contract,
                "ALTER TABLE public.orders RENAME COLUMN price TO price__brownout; \
                 ALTER TABLE ONLY public.orders DROP COLUMN price__brownout",
                "public.orders",
            ),
            step("s4", Phase::Contract, "DROP VIEW public.people", "public.people"),
            step("s5", Phase::Contract, "ALTER TABLE public.users DROP CONSTRAINT users_chk", "public.users"),
        ]);
        let got: Vec<String> = dropped_objects(&p).iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "public.orders.price",
                "public.orders.price__brownout",
                "public.users.name",
                r#""Legacy"."Events ""x""""#,
                "public.people",
                "public.t2",
            ]
        );
        let tables: Vec<String> = plan_tables(&p).iter().map(ToString::to_string).collect();
        assert_eq!(tables, ["public.orders", "public.people", "public.users"]);
    }

    #[test]
    fn statement_texts_match_by_identifier_not_substring() {
        let old = OldObject::Column {
            table: QualifiedName::of("public", "users"),
            column: Ident::exact("name").unwrap(),
        };
        assert!(old.named_in(&tokenize("SELECT name FROM users WHERE id = $1")));
        assert!(old.named_in(&tokenize(r#"select "name" from public."users""#)));
        assert!(!old.named_in(&tokenize("SELECT full_name FROM users WHERE id = $1")));
        assert!(!old.named_in(&tokenize("SELECT name FROM customers")));
        assert!(!old.named_in(&tokenize("SELECT full_name FROM users -- name")));
        assert!(!old.named_in(&tokenize("SELECT 'name' FROM users")));
        assert!(!old.named_in(&tokenize(r#"SELECT "Name" FROM users"#)));
        assert!(old.named_in(&tokenize("SELECT NAME FROM USERS")));
    }
}
