//! The token-level reader for statements sqlparser 0.64 rejects (`DROP INDEX CONCURRENTLY`,
//! `REINDEX`, `CLUSTER`, `ALTER TABLE … SET TABLESPACE`, `ALTER DOMAIN`, PostgreSQL 18's
//! `ADD CONSTRAINT … NOT NULL col NOT VALID`, …). It matches keyword shapes only, which is
//! enough for the rules: a lint that goes silent because the parser is behind PostgreSQL
//! would be worse than a coarse reading.

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use super::action::{Action, AlterOp, ColumnSpec, ConstraintKind, ConstraintSpec, Name};
use crate::parse::normalize_type;

/// One significant token: words and quoted identifiers keep how they were written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A bare word, lower-cased.
    Word(String),
    /// A double-quoted identifier, unescaped.
    Quoted(String),
    /// Anything else, as text (`(`, `,`, a literal, an operator).
    Punct(String),
}

impl Tok {
    fn is(&self, w: &str) -> bool {
        matches!(self, Tok::Word(x) if x == w)
    }

    /// The identifier this token names, folded.
    pub fn ident(&self) -> Option<&str> {
        match self {
            Tok::Word(w) | Tok::Quoted(w) => Some(w),
            Tok::Punct(_) => None,
        }
    }

    fn text(&self) -> String {
        match self {
            Tok::Word(w) => w.clone(),
            Tok::Quoted(q) => format!("\"{}\"", q.replace('"', "\"\"")),
            Tok::Punct(p) => p.clone(),
        }
    }
}

/// Tokenizes with sqlparser's PostgreSQL tokenizer (strings, dollar quotes and comments are
/// handled there), dropping whitespace. `None` when even the tokenizer gives up.
pub fn tokens(sql: &str) -> Option<Vec<Tok>> {
    let raw = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    Some(
        raw.into_iter()
            .filter_map(|t| match t {
                Token::Whitespace(_) => None,
                Token::Word(w) if w.quote_style == Some('"') => Some(Tok::Quoted(w.value)),
                Token::Word(w) => Some(Tok::Word(w.value.to_ascii_lowercase())),
                other => Some(Tok::Punct(other.to_string())),
            })
            .collect(),
    )
}

/// A cursor over tokens with keyword matching.
struct Cur<'a> {
    t: &'a [Tok],
    i: usize,
}

impl<'a> Cur<'a> {
    fn new(t: &'a [Tok]) -> Self {
        Cur { t, i: 0 }
    }

    fn peek(&self) -> Option<&'a Tok> {
        self.t.get(self.i)
    }

    fn eat(&mut self, w: &str) -> bool {
        if self.peek().is_some_and(|t| t.is(w)) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn eat_all(&mut self, ws: &[&str]) -> bool {
        let save = self.i;
        for w in ws {
            if !self.eat(w) {
                self.i = save;
                return false;
            }
        }
        true
    }

    /// A possibly qualified name: `a`, `a.b`, `"A"."b"`.
    fn name(&mut self) -> Option<Name> {
        let mut parts = Vec::new();
        loop {
            let part = self.peek()?.ident()?.to_string();
            parts.push(part);
            self.i += 1;
            if matches!(self.peek(), Some(Tok::Punct(p)) if p == ".") {
                self.i += 1;
            } else {
                break;
            }
        }
        match parts.as_slice() {
            [n] => Some(Name { schema: "public".into(), name: n.clone() }),
            [.., s, n] => Some(Name { schema: s.clone(), name: n.clone() }),
            [] => None,
        }
    }

    fn ident(&mut self) -> Option<String> {
        let s = self.peek()?.ident()?.to_string();
        self.i += 1;
        Some(s)
    }

    fn rest(&self) -> &'a [Tok] {
        &self.t[self.i.min(self.t.len())..]
    }

    fn contains(&self, w: &str) -> bool {
        self.rest().iter().any(|t| t.is(w))
    }

    /// Skips one parenthesised group if the cursor is at `(`.
    fn skip_parens(&mut self) {
        if !matches!(self.peek(), Some(Tok::Punct(p)) if p == "(") {
            return;
        }
        let mut depth = 0usize;
        while let Some(t) = self.peek() {
            self.i += 1;
            match t {
                Tok::Punct(p) if p == "(" => depth += 1,
                Tok::Punct(p) if p == ")" => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }
}

/// Reads the statement shapes the rules need from tokens. Unknown shapes are `Other`.
pub fn classify_tokens(toks: &[Tok]) -> Vec<Action> {
    let mut c = Cur::new(toks);
    if c.eat_all(&["drop", "index"]) {
        let concurrently = c.eat("concurrently");
        c.eat_all(&["if", "exists"]);
        let mut names = Vec::new();
        while let Some(n) = c.name() {
            names.push(n);
            if !matches!(c.peek(), Some(Tok::Punct(p)) if p == ",") {
                break;
            }
            c.i += 1;
        }
        return vec![Action::DropIndex { names, concurrently }];
    }
    if c.eat("reindex") {
        c.skip_parens();
        let kind = c.ident().unwrap_or_default();
        let concurrently = c.eat("concurrently");
        let target = c.name().map(|n| format!("{kind} {n}")).unwrap_or(kind);
        return vec![Action::Reindex { target, concurrently }];
    }
    if c.eat("cluster") {
        c.eat("verbose");
        return vec![Action::Cluster { table: c.name() }];
    }
    if c.eat("vacuum") {
        let full = c.rest().iter().take_while(|t| !matches!(t, Tok::Quoted(_))).any(|t| t.is("full"));
        if !full {
            return vec![Action::Other];
        }
        c.skip_parens();
        while c.eat("full") || c.eat("verbose") || c.eat("analyze") || c.eat("freeze") {}
        return vec![Action::VacuumFull { table: c.name() }];
    }
    if c.eat_all(&["alter", "domain"]) {
        let Some(domain) = c.name() else { return vec![Action::Other] };
        if c.eat("add") {
            let not_valid = ends_with(c.rest(), &["not", "valid"]);
            return vec![Action::AlterDomainAddConstraint { domain, not_valid }];
        }
        return vec![Action::Other];
    }
    if c.eat_all(&["alter", "type"]) {
        let Some(ty) = c.name() else { return vec![Action::Other] };
        if c.eat_all(&["rename", "value"]) {
            return vec![Action::RenameEnumValue { ty }];
        }
        return vec![Action::Other];
    }
    if c.eat_all(&["alter", "schema"]) {
        let Some(schema) = c.ident() else { return vec![Action::Other] };
        if c.eat_all(&["rename", "to"]) {
            return vec![Action::RenameSchema { schema }];
        }
        return vec![Action::Other];
    }
    if c.eat("create") {
        // A table (or materialized view) sqlparser could not read still makes the name new.
        let save = c.i;
        while c.eat("unlogged") || c.eat("temporary") || c.eat("temp") || c.eat("global") || c.eat("local") {}
        if c.eat("table") || c.eat_all(&["materialized", "view"]) {
            c.eat_all(&["if", "not", "exists"]);
            return match c.name() {
                Some(table) => {
                    // `PARTITION BY` outside parentheses (a window's is inside OVER (…)).
                    let mut depth = 0i32;
                    let mut partitioned = false;
                    for w in c.t[c.i..].windows(2) {
                        match &w[0] {
                            Tok::Punct(p) if p == "(" => depth += 1,
                            Tok::Punct(p) if p == ")" => depth -= 1,
                            t if depth == 0 && t.is("partition") && w[1].is("by") => partitioned = true,
                            _ => {}
                        }
                    }
                    vec![Action::CreateTable {
                        table,
                        columns: Vec::new(),
                        constraints: Vec::new(),
                        partition_of: None,
                        partitioned,
                    }]
                }
                None => vec![Action::Other],
            };
        }
        c.eat_all(&["or", "replace"]);
        while c.eat("temporary") || c.eat("temp") || c.eat("recursive") {}
        if c.eat("view") {
            return c
                .name()
                .map(|name| vec![Action::CreateView { name }])
                .unwrap_or_else(|| vec![Action::Other]);
        }
        c.i = save;
        let unique = c.eat("unique");
        if !c.eat("index") {
            return vec![Action::Other];
        }
        let concurrently = c.eat("concurrently");
        c.eat_all(&["if", "not", "exists"]);
        let name = if c.peek().is_some_and(|t| t.is("on")) { None } else { c.ident() };
        if !c.eat("on") {
            return vec![Action::Other];
        }
        // `ON ONLY` a partitioned table builds nothing: the index is created invalid, in the
        // catalog only, and becomes valid as each partition's index is attached.
        if c.eat("only") {
            return vec![Action::Other];
        }
        let Some(table) = c.name() else { return vec![Action::Other] };
        return vec![Action::CreateIndex { name, table, unique, concurrently, columns: Vec::new() }];
    }
    if c.eat_all(&["alter", "table"]) {
        c.eat_all(&["if", "exists"]);
        c.eat("only");
        let Some(table) = c.name() else { return vec![Action::Other] };
        let mut ops: Vec<Action> = split_commas(c.rest())
            .into_iter()
            .map(|op| Action::AlterTable { table: table.clone(), op: alter_op(op) })
            .collect();
        if ops.is_empty() {
            ops.push(Action::Other);
        }
        return ops;
    }
    vec![Action::Other]
}

fn ends_with(toks: &[Tok], words: &[&str]) -> bool {
    toks.len() >= words.len() && toks[toks.len() - words.len()..].iter().zip(words).all(|(t, w)| t.is(w))
}

/// Splits at commas outside parentheses.
fn split_commas(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Punct(p) if p == "(" => depth += 1,
            Tok::Punct(p) if p == ")" => depth -= 1,
            Tok::Punct(p) if p == "," && depth == 0 => {
                out.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < toks.len() {
        out.push(&toks[start..]);
    }
    out
}

/// Identifiers listed in the first parenthesised group after the cursor.
fn paren_idents(c: &mut Cur<'_>) -> Vec<String> {
    while let Some(t) = c.peek() {
        if matches!(t, Tok::Punct(p) if p == "(") {
            break;
        }
        c.i += 1;
    }
    let start = c.i;
    c.skip_parens();
    let inner = &c.t[(start + 1).min(c.i)..c.i.saturating_sub(1).max(start + 1).min(c.t.len())];
    split_commas(inner)
        .iter()
        .filter_map(|part| part.first().and_then(|t| t.ident()).map(str::to_string))
        .collect()
}

const COLUMN_STOP: &[&str] = &[
    "default",
    "not",
    "null",
    "primary",
    "unique",
    "references",
    "check",
    "constraint",
    "generated",
    "collate",
];

fn alter_op(op: &[Tok]) -> AlterOp {
    let mut c = Cur::new(op);
    let not_valid = ends_with(op, &["not", "valid"]);
    if c.eat("add") {
        let name = if c.eat("constraint") { c.ident() } else { None };
        let kind = if c.eat("check") {
            Some(ConstraintKind::Check { expr: text_of(c.rest()) })
        } else if c.eat_all(&["foreign", "key"]) {
            let columns = paren_idents(&mut c);
            c.eat("references");
            let references = c.name().unwrap_or_else(|| Name::parse("?"));
            Some(ConstraintKind::ForeignKey { columns, references })
        } else if c.eat("unique") {
            let using_index = using_index(&c);
            let columns = if using_index.is_some() { Vec::new() } else { paren_idents(&mut c) };
            Some(ConstraintKind::Unique { columns, using_index })
        } else if c.eat_all(&["primary", "key"]) {
            let using_index = using_index(&c);
            let columns = if using_index.is_some() { Vec::new() } else { paren_idents(&mut c) };
            Some(ConstraintKind::PrimaryKey { columns, using_index })
        } else if c.eat("exclude") {
            Some(ConstraintKind::Exclude)
        } else if name.is_some() && c.eat_all(&["not", "null"]) {
            Some(ConstraintKind::NotNull { column: c.ident().unwrap_or_default() })
        } else {
            None
        };
        if let Some(kind) = kind {
            return AlterOp::AddConstraint(ConstraintSpec { name, kind, not_valid });
        }
        c.eat("column");
        c.eat_all(&["if", "not", "exists"]);
        let Some(col) = c.ident() else { return AlterOp::Other };
        return AlterOp::AddColumn(column_from_tokens(col, c.rest()));
    }
    if c.eat("drop") {
        if c.eat("constraint") {
            c.eat_all(&["if", "exists"]);
            return c.ident().map(AlterOp::DropConstraint).unwrap_or(AlterOp::Other);
        }
        c.eat("column");
        c.eat_all(&["if", "exists"]);
        return c.ident().map(AlterOp::DropColumn).unwrap_or(AlterOp::Other);
    }
    if c.eat("rename") {
        if c.eat("to") {
            return c.ident().map(|to| AlterOp::RenameTable { to }).unwrap_or(AlterOp::Other);
        }
        if c.eat("constraint") {
            return AlterOp::Other;
        }
        c.eat("column");
        let Some(from) = c.ident() else { return AlterOp::Other };
        c.eat("to");
        return c.ident().map(|to| AlterOp::RenameColumn { from, to }).unwrap_or(AlterOp::Other);
    }
    if c.eat("alter") {
        c.eat("column");
        let Some(column) = c.ident() else { return AlterOp::Other };
        if c.eat("type") || c.eat_all(&["set", "data", "type"]) {
            let ty: Vec<&Tok> = c.rest().iter().take_while(|t| !t.is("using") && !t.is("collate")).collect();
            let ty = ty.iter().map(|t| t.text()).collect::<Vec<_>>().join(" ");
            return AlterOp::SetType { column, ty: normalize_type(&ty) };
        }
        if c.eat_all(&["set", "not", "null"]) {
            return AlterOp::SetNotNull(column);
        }
        if c.eat_all(&["drop", "not", "null"]) {
            return AlterOp::DropNotNull(column);
        }
        if c.eat_all(&["set", "default"]) {
            return AlterOp::SetDefault(column);
        }
        if c.eat_all(&["drop", "default"]) {
            return AlterOp::DropDefault(column);
        }
        if c.eat_all(&["add", "generated"]) {
            return AlterOp::AddIdentity(column);
        }
        return AlterOp::Other;
    }
    if c.eat_all(&["validate", "constraint"]) {
        return c.ident().map(AlterOp::ValidateConstraint).unwrap_or(AlterOp::Other);
    }
    if c.eat_all(&["set", "logged"]) {
        return AlterOp::SetLogged;
    }
    if c.eat_all(&["set", "unlogged"]) {
        return AlterOp::SetUnlogged;
    }
    if c.eat_all(&["set", "tablespace"]) {
        return AlterOp::SetTablespace;
    }
    if c.eat_all(&["attach", "partition"]) {
        return c.name().map(|child| AlterOp::AttachPartition { child }).unwrap_or(AlterOp::Other);
    }
    if c.eat_all(&["detach", "partition"]) {
        let Some(child) = c.name() else { return AlterOp::Other };
        let concurrently = c.eat("concurrently") || c.eat("finalize");
        return AlterOp::DetachPartition { child, concurrently };
    }
    AlterOp::Other
}

/// The index named by `USING INDEX name`, if the rest of the sub-command has one.
fn using_index(c: &Cur<'_>) -> Option<String> {
    let rest = c.rest();
    rest.windows(3)
        .find(|w| w[0].is("using") && w[1].is("index"))
        .and_then(|w| w[2].ident().map(str::to_string))
}

fn text_of(toks: &[Tok]) -> String {
    toks.iter().map(Tok::text).collect::<Vec<_>>().join(" ")
}

fn column_from_tokens(name: String, rest: &[Tok]) -> ColumnSpec {
    let ty_end = rest.iter().position(|t| COLUMN_STOP.iter().any(|w| t.is(w))).unwrap_or(rest.len());
    let written = text_of(&rest[..ty_end]).replace(" ( ", "(").replace(" )", ")").replace(" , ", ",");
    let mut spec =
        ColumnSpec { name, ty: normalize_type(&written), written_ty: written, ..ColumnSpec::default() };
    let mut c = Cur::new(&rest[ty_end..]);
    while c.peek().is_some() {
        if c.eat("default") {
            let start = c.i;
            while c.peek().is_some_and(|t| !COLUMN_STOP.iter().any(|w| t.is(w))) {
                c.skip_parens();
                if c.peek().is_some_and(|t| !COLUMN_STOP.iter().any(|w| t.is(w))) {
                    c.i += 1;
                }
            }
            spec.default = Some(text_of(&c.t[start..c.i]));
        } else if c.eat_all(&["not", "null"]) {
            spec.not_null = true;
        } else if c.eat_all(&["primary", "key"]) {
            spec.primary_key = true;
            spec.not_null = true;
        } else if c.eat("unique") {
            spec.unique = true;
        } else if c.eat("references") {
            spec.references = c.name();
        } else if c.eat("generated") {
            if c.contains("identity") {
                spec.identity = true;
                spec.not_null = true;
            } else if !c.contains("virtual") {
                spec.generated_stored = true;
            }
            break;
        } else {
            c.i += 1;
        }
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(sql: &str) -> Vec<Action> {
        classify_tokens(&tokens(sql).unwrap())
    }

    #[test]
    fn reads_what_sqlparser_rejects() {
        assert_eq!(
            actions("DROP INDEX CONCURRENTLY IF EXISTS s.i"),
            vec![Action::DropIndex { names: vec![Name::parse("s.i")], concurrently: true }]
        );
        assert_eq!(actions("REINDEX (VERBOSE) TABLE CONCURRENTLY t").len(), 1);
        assert!(matches!(actions("CLUSTER t USING i")[0], Action::Cluster { .. }));
        assert!(matches!(
            &actions("ALTER TABLE t SET TABLESPACE fast")[0],
            Action::AlterTable { op: AlterOp::SetTablespace, .. }
        ));
        assert!(matches!(
            &actions("ALTER DOMAIN d ADD CONSTRAINT c CHECK (VALUE > 0) NOT VALID")[0],
            Action::AlterDomainAddConstraint { not_valid: true, .. }
        ));
    }

    #[test]
    fn created_names_are_read_even_when_the_body_is_not() {
        assert_eq!(
            actions("CREATE OR REPLACE VIEW s.v AS SELECT 1"),
            vec![Action::CreateView { name: Name::parse("s.v") }]
        );
        let Action::CreateTable { table, .. } =
            &actions("CREATE UNLOGGED TABLE IF NOT EXISTS \"T\" (x int VIRTUAL)")[0]
        else {
            panic!()
        };
        assert_eq!(table.name, "T");
    }

    #[test]
    fn alter_table_ops_split_on_top_level_commas() {
        let a = actions(
            "ALTER TABLE ONLY \"T\" ADD COLUMN a numeric(10, 2) DEFAULT random() NOT NULL, \
             ADD CONSTRAINT n NOT NULL b NOT VALID, SET TABLESPACE x",
        );
        assert_eq!(a.len(), 3);
        let Action::AlterTable { table, op: AlterOp::AddColumn(col) } = &a[0] else { panic!("{a:?}") };
        assert_eq!(table.name, "T");
        assert_eq!(col.ty, "numeric(10,2)");
        assert_eq!(col.default.as_deref(), Some("random ( )"));
        assert!(col.not_null);
        assert!(matches!(
            &a[1],
            Action::AlterTable {
                op: AlterOp::AddConstraint(ConstraintSpec {
                    not_valid: true,
                    kind: ConstraintKind::NotNull { .. },
                    ..
                }),
                ..
            }
        ));
    }
}
