//! Applies statements in order to a [`Schema`]: decides for each one whether it is session
//! noise (skipped), a change to a modelled object, or an opaque object, and turns failures
//! into `unparsed-statement` warnings or hard errors.

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::cursor::{Cursor, Fail, PResult};
use super::drop::{self, Notice};
use super::lex::{Kind, normalized_text, tokenize};
use super::split::RawStatement;
use super::{LoadReport, ParseError, objects, table};
use crate::finding::{Finding, FindingCode, Span};
use crate::model::{Ident, OpaqueId, OpaqueKind, OpaqueObject, QualifiedName, Schema};

/// What one statement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Modelled,
    Opaque,
    Skipped,
}

/// The state carried from statement to statement.
#[derive(Debug)]
pub struct Loader {
    pub schema: Schema,
    pub report: LoadReport,
    /// The first schema of `search_path`: where unqualified names go.
    search: String,
}

impl Default for Loader {
    fn default() -> Self {
        Loader { schema: Schema::default(), report: LoadReport::default(), search: "public".into() }
    }
}

impl Loader {
    /// The schema with what PostgreSQL adds by itself once every statement ran (partition
    /// indexes and keys), and the account of the statements.
    pub fn finish(mut self) -> super::Loaded {
        super::partition::complete(&mut self.schema);
        super::Loaded { schema: self.schema, report: self.report }
    }

    /// Loads all statements of one file (its text already split).
    pub fn apply_file(&mut self, file: &str, stmts: &[RawStatement]) -> Result<(), ParseError> {
        for st in stmts {
            self.report.statements += 1;
            let effect = if st.meta { Effect::Skipped } else { self.apply(file, st)? };
            match effect {
                Effect::Modelled => self.report.modelled += 1,
                Effect::Opaque => self.report.opaque += 1,
                Effect::Skipped => self.report.skipped += 1,
            }
        }
        Ok(())
    }

    fn apply(&mut self, file: &str, st: &RawStatement) -> Result<Effect, ParseError> {
        let error = |at: usize, message: String| {
            let (line, column) = position_in(st, at);
            ParseError::Statement {
                span: Span { file: file.to_string(), line, column },
                message,
                statement: one_line(&st.text),
            }
        };
        if !st.terminated {
            return Err(error(st.text.len(), "statement is not terminated by ';' (truncated input?)".into()));
        }
        let toks = tokenize(&st.text).map_err(|e| error(e.at, e.what))?;
        if toks.is_empty() {
            return Ok(Effect::Skipped);
        }
        let search = self.search.clone();
        let mut c = Cursor::new(&st.text, toks, &search);
        let head = head_words(&c);
        let h: Vec<&str> = head.iter().map(String::as_str).collect();

        if let Some(effect) = self.session(&mut c, &h) {
            return Ok(effect);
        }
        let result = if drop::skip_guarded_alter(&self.schema, &mut c, &h) {
            Ok(Some(()))
        } else {
            self.modelled(&mut c, &h)
        };
        match result {
            Ok(Some(())) => {
                if !c.at_end() {
                    return Err(error(c.offset(), "unexpected text after the statement".into()));
                }
                self.account(&c, file, st);
                Ok(Effect::Modelled)
            }
            Ok(None) => {
                c.pos = 0;
                self.opaque(&mut c, &h, file, st).map_err(|f| error(f.at, f.message))
            }
            Err(fail) => {
                if self.touches_model(&st.text, &h) {
                    return Err(error(fail.at, fail.message));
                }
                c.pos = 0;
                self.unparsed(&c, file, st, &fail);
                Ok(Effect::Opaque)
            }
        }
    }

    /// What the statement's removals and `IF EXISTS` guards found missing: a skip is
    /// counted, a missing object without `IF EXISTS` is a `drop-of-missing-object` warning.
    fn account(&mut self, c: &Cursor, file: &str, st: &RawStatement) {
        if c.notices.iter().any(|n| matches!(n, Notice::Skipped(_))) {
            self.report.if_exists_skips += 1;
        }
        for n in &c.notices {
            let Notice::Missing(what) = n else { continue };
            let (line, column) = position_in(st, 0);
            let finding = Finding::warning(
                FindingCode::DropOfMissingObject,
                what.clone(),
                format!(
                    "this statement removes {what}, which does not exist at this point of the file; \
                     PostgreSQL would reject it, seqmig leaves the model as it is"
                ),
            )
            .with_help("add IF EXISTS if the object may be absent, or remove the statement")
            .with_span(Span { file: file.to_string(), line, column });
            self.report.findings.push(finding);
        }
    }

    /// `SET …`, `SELECT pg_catalog.set_config(…)`, transaction control: skipped, but
    /// `search_path` is followed because it decides where unqualified names go.
    fn session(&mut self, c: &mut Cursor, h: &[&str]) -> Option<Effect> {
        match h {
            ["set", ..] => {
                c.pos = 1;
                c.eat_kw("session");
                c.eat_kw("local");
                if c.eat_kw("search_path") {
                    let _ = c.eat_kw("to") || c.eat_punct("=");
                    self.search = first_schema(c).unwrap_or_else(|| "public".into());
                }
                Some(Effect::Skipped)
            }
            ["reset", ..]
            | ["begin", ..]
            | ["commit", ..]
            | ["end", ..]
            | ["rollback", ..]
            | ["abort", ..]
            | ["start", "transaction", ..]
            | ["analyze", ..]
            | ["vacuum", ..]
            | ["checkpoint", ..] => Some(Effect::Skipped),
            ["select", "pg_catalog", ..] | ["select", "set_config", ..] | ["select", "setval", ..] => {
                let text = c.raw(0, c.toks.len());
                let setter = ["set_config(", "setval("].iter().any(|f| text.contains(f));
                let simple = !text.contains(" from ");
                if setter && simple {
                    if text.contains("set_config('search_path'") {
                        let value = c
                            .toks
                            .iter()
                            .filter(|t| t.kind == Kind::Str)
                            .nth(1)
                            .and_then(|t| super::lex::string_value(c.text(t)));
                        if let Some(v) = value {
                            self.search = v
                                .split(',')
                                .map(|p| p.trim().trim_matches('"').to_string())
                                .find(|p| !p.is_empty() && p != "pg_catalog")
                                .unwrap_or_else(|| "public".into());
                        }
                    }
                    Some(Effect::Skipped)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// Statements on modelled objects. `Ok(None)`: not a modelled form (opaque).
    fn modelled(&mut self, c: &mut Cursor, h: &[&str]) -> PResult<Option<()>> {
        let s = &mut self.schema;
        let replace = h.get(1..3) == Some(&["or", "replace"]);
        match h {
            ["create", "table", ..] | ["create", "unlogged", "table", ..] => {
                c.pos = 1;
                table::create_table(s, c)?;
            }
            ["create", "index", ..] | ["create", "unique", "index", ..] => {
                c.pos = 1;
                objects::create_index(s, c)?;
            }
            ["create", "sequence", ..] | ["create", "unlogged", "sequence", ..] => {
                c.pos = 1;
                objects::create_sequence(s, c)?;
            }
            ["create", "type", ..] => {
                c.pos = 1;
                if !objects::create_type(s, c)? {
                    return Ok(None);
                }
            }
            ["create", "domain", ..] => {
                c.pos = 1;
                objects::create_domain(s, c)?;
            }
            ["create", "view", ..] | ["create", "materialized", "view", ..] => {
                c.pos = 1;
                objects::create_view(s, c, false)?;
            }
            ["create", "or", "replace", "view", ..] | ["create", "or", "replace", "materialized", ..]
                if replace =>
            {
                c.pos = 3;
                objects::create_view(s, c, true)?;
            }
            ["create", "extension", ..] => {
                c.pos = 1;
                objects::create_extension(s, c)?;
            }
            ["create", "schema", ..] => {
                c.pos = 1;
                objects::create_schema(s, c)?;
            }
            ["alter", "table", ..] => {
                c.pos = 2;
                table::alter_table(s, c)?;
            }
            ["alter", "index", ..] => {
                c.pos = 2;
                objects::alter_index(s, c)?;
            }
            ["alter", "sequence", ..] => {
                c.pos = 2;
                objects::alter_sequence(s, c)?;
            }
            ["alter", "type", ..] => {
                c.pos = 2;
                objects::alter_type(s, c)?;
            }
            ["alter", "domain", ..] => {
                c.pos = 2;
                objects::alter_domain(s, c)?;
            }
            ["alter", "view", ..] | ["alter", "materialized", "view", ..] => {
                c.pos = if h[1] == "view" { 2 } else { 3 };
                c.eat_kws(&["if", "exists"]);
                let name = c.qname()?;
                let Some(v) = s.views.get(&name) else {
                    return c.fail(format!("view {name} does not exist"));
                };
                let kind = if v.materialized { "materialized view" } else { "view" };
                if c.eat_kws(&["owner", "to"]) {
                    let role = c.ident()?;
                    s.owners.insert(crate::model::ObjectRef::new(kind, name.quoted()), role);
                } else if c.eat_kw("alter") {
                    c.eat_kw("column");
                    let col = c.ident()?;
                    let v = s.views.get_mut(&name).expect("checked");
                    if c.eat_kws(&["set", "default"]) {
                        let (from, to) = c.rest();
                        v.column_defaults.insert(col, c.expr_text(from, to));
                    } else {
                        c.expect_kws(&["drop", "default"])?;
                        v.column_defaults.remove(&col);
                    }
                } else {
                    return c.expected("OWNER TO or ALTER COLUMN");
                }
            }
            ["alter", "schema", ..] if c.is_kw_at(3, "owner") => {
                c.pos = 2;
                let n = c.ident()?;
                c.expect_kws(&["owner", "to"])?;
                let role = c.ident()?;
                s.owners.insert(crate::model::ObjectRef::new("schema", n.quoted_sql()), role);
            }
            ["alter", kind, ..] if is_owner_change(c) && OWNABLE.contains(kind) => {
                c.pos = 1;
                let obj = objects::object_ref(c)?;
                c.expect_kws(&["owner", "to"])?;
                let role = c.ident()?;
                s.owners.insert(obj, role);
            }
            ["comment", "on", ..] => {
                objects::comment_on(s, c)?;
            }
            ["drop", kind, next, ..] if !NOT_DROPS.contains(kind) || *next == "mapping" => {
                drop::drop(s, c)?;
            }
            _ => return Ok(None),
        }
        Ok(Some(()))
    }

    /// True when a failed statement changes an object seqmig models, so that it must not be
    /// kept as an opaque object (the model would silently be wrong).
    fn touches_model(&self, text: &str, h: &[&str]) -> bool {
        let Ok(toks) = tokenize(text) else { return false };
        let mut c = Cursor::new(text, toks, &self.search);
        let s = &self.schema;
        match h {
            ["alter", "table" | "index" | "sequence" | "view" | "type" | "domain", ..] => {
                c.pos = 2;
                c.eat_kws(&["if", "exists"]);
                c.eat_kw("only");
                let Ok(q) = c.qname() else { return false };
                s.tables.contains_key(&q)
                    || s.indexes.contains_key(&q)
                    || s.sequences.contains_key(&q)
                    || s.views.contains_key(&q)
                    || s.enums.contains_key(&q)
                    || s.domains.contains_key(&q)
            }
            ["create", "index" | "unique", ..] => {
                while !c.at_end() && !c.peek_kw("on") {
                    c.pos += 1;
                }
                c.eat_kw("on");
                c.eat_kw("only");
                c.qname().is_ok_and(|q| s.tables.contains_key(&q))
            }
            _ => false,
        }
    }

    /// A statement seqmig does not model in depth: kept by identity and normalised text.
    fn opaque(&mut self, c: &mut Cursor, h: &[&str], file: &str, st: &RawStatement) -> PResult<Effect> {
        let text = normalized_text(c.src, &c.toks);
        let (kind, identity, depends_on) = match classify(c, h) {
            // DO blocks are PL/pgSQL, which sqlparser does not read; they are a known form.
            Ok(Some(k)) if k.0 != OpaqueKind::Other || k.1 != text || h.first() == Some(&"do") => k,
            Ok(_) => {
                // Not a form we know: let sqlparser decide whether it is SQL at all.
                if Parser::parse_sql(&PostgreSqlDialect {}, &st.text).is_err() {
                    let fail = Fail { at: 0, message: "statement not recognised".into() };
                    self.unparsed(c, file, st, &fail);
                    return Ok(Effect::Opaque);
                }
                (OpaqueKind::Other, text.clone(), vec![])
            }
            Err(fail) => {
                self.unparsed(c, file, st, &fail);
                return Ok(Effect::Opaque);
            }
        };
        let search_path = (self.search != "public").then(|| c.default_ident());
        let id = OpaqueId { kind, identity };
        self.schema.opaque.insert(id.clone(), OpaqueObject { id, text, depends_on, search_path });
        Ok(Effect::Opaque)
    }

    fn unparsed(&mut self, c: &Cursor, file: &str, st: &RawStatement, fail: &Fail) {
        let text = normalized_text(c.src, &c.toks);
        let (line, column) = position_in(st, fail.at);
        let finding = Finding::warning(
            FindingCode::UnparsedStatement,
            first_words(&text),
            format!(
                "seqmig could not read this statement ({}); it is kept as opaque text and diffed as a whole",
                fail.message
            ),
        )
        .with_help("check the statement; if it is valid PostgreSQL, report it so seqmig can model it")
        .with_span(Span { file: file.to_string(), line, column });
        self.report.findings.push(finding);
        self.report.unparsed += 1;
        let search_path = (self.search != "public").then(|| c.default_ident());
        let id = OpaqueId { kind: OpaqueKind::Unparsed, identity: text.clone() };
        self.schema.opaque.insert(id.clone(), OpaqueObject { id, text, depends_on: vec![], search_path });
    }
}

const OWNABLE: &[&str] = &[
    "function",
    "procedure",
    "aggregate",
    "routine",
    "schema",
    "collation",
    "conversion",
    "language",
    "operator",
    "publication",
    "subscription",
    "server",
    "statistics",
    "text",
    "foreign",
    "event",
    "tablespace",
];

/// `DROP …` statements that remove no object of the schema: they stay opaque statements.
const NOT_DROPS: &[&str] = &["owned", "role", "user", "group", "database", "tablespace"];

fn is_owner_change(c: &Cursor) -> bool {
    let n = c.toks.len();
    n >= 3 && c.is_kw_at(n - 3, "owner") && c.is_kw_at(n - 2, "to")
}

/// Kind, identity and dependencies of an opaque statement; `Ok(None)` for unknown forms.
type Classified = Option<(OpaqueKind, String, Vec<QualifiedName>)>;

fn classify(c: &mut Cursor, h: &[&str]) -> PResult<Classified> {
    let text = normalized_text(c.src, &c.toks);
    // Skip CREATE [OR REPLACE] [CONSTRAINT] [TRUSTED] ….
    let mut n = 0;
    if h.first() == Some(&"create") {
        n = 1;
        if h.get(1..3) == Some(&["or", "replace"]) {
            n = 3;
        }
    }
    let word = h.get(n).copied().unwrap_or("");
    let is_create = h.first() == Some(&"create");
    c.pos = n + 1;
    let out = match (is_create, word) {
        (true, "function" | "procedure" | "aggregate") => {
            let kind = match word {
                "function" => OpaqueKind::Function,
                "procedure" => OpaqueKind::Procedure,
                _ => OpaqueKind::Aggregate,
            };
            (kind, objects::routine_identity(c)?, vec![])
        }
        (true, "trigger" | "constraint") => {
            if word == "constraint" {
                c.expect_kw("trigger")?;
            }
            let name = c.ident()?;
            while !c.at_end() && !c.peek_kw("on") {
                c.pos += 1;
            }
            c.expect_kw("on")?;
            let t = c.qname()?;
            (OpaqueKind::Trigger, format!("{} on {}", name.quoted_sql(), t.quoted()), vec![t])
        }
        (true, "event") => {
            c.expect_kw("trigger")?;
            (OpaqueKind::Trigger, format!("event trigger {}", c.ident()?.quoted_sql()), vec![])
        }
        (true, "policy") => {
            let name = c.ident()?;
            c.expect_kw("on")?;
            let t = c.qname()?;
            (OpaqueKind::Policy, format!("{} on {}", name.quoted_sql(), t.quoted()), vec![t])
        }
        (true, "rule") => {
            let name = c.ident()?;
            c.expect_kws(&["as", "on"])?;
            c.word()?;
            c.expect_kw("to")?;
            let t = c.qname()?;
            (OpaqueKind::Rule, format!("{} on {}", name.quoted_sql(), t.quoted()), vec![t])
        }
        (true, "cast") => {
            let (a, b) = c.paren_group()?;
            (OpaqueKind::Cast, objects::cast_identity(c, a, b), vec![])
        }
        (true, "operator") => (OpaqueKind::Operator, text.clone(), vec![]),
        (true, "publication") => (OpaqueKind::Publication, c.ident()?.quoted_sql(), vec![]),
        (true, "statistics") => {
            c.eat_kws(&["if", "not", "exists"]);
            let name = c.qname()?;
            // `… ON columns FROM table`: the table whose columns it is bound to.
            c.until(|c| c.peek_kw("from"))?;
            let table = if c.eat_kw("from") { vec![c.qname()?] } else { vec![] };
            (OpaqueKind::Statistics, name.quoted(), table)
        }
        (true, "type") => {
            let q = c.qname()?;
            (OpaqueKind::Other, format!("type {}", q.quoted()), vec![])
        }
        (false, "grant" | "revoke") if n == 0 => (OpaqueKind::Grant, text.clone(), vec![]),
        (true, _) => (OpaqueKind::Other, text.clone(), vec![]),
        (false, "alter" | "do" | "insert" | "select" | "update" | "delete" | "security") => {
            (OpaqueKind::Other, text.clone(), vec![])
        }
        _ => return Ok(None),
    };
    Ok(Some(out))
}

/// The first few lower-cased words (up to 4) of the statement, for dispatch.
fn head_words(c: &Cursor) -> Vec<String> {
    c.toks
        .iter()
        .take(4)
        .map(|t| if t.kind == Kind::Word { c.text(t).to_ascii_lowercase() } else { String::new() })
        .collect()
}

/// `search_path` value list: the first schema that is not `pg_catalog`.
fn first_schema(c: &mut Cursor) -> Option<String> {
    while !c.at_end() {
        if let Some(t) = c.peek().copied() {
            let v = match t.kind {
                Kind::Word | Kind::QuotedIdent => c.ident().ok().map(|i| i.as_str().to_string()),
                Kind::Str => c.string().ok(),
                _ => {
                    c.pos += 1;
                    None
                }
            };
            if let Some(v) = v.filter(|v| v != "pg_catalog" && !v.is_empty() && v != "$user") {
                return Ident::exact(&v).ok().map(|i| i.as_str().to_string());
            }
        }
    }
    None
}

/// Line and column in the file of byte `at` of a statement.
fn position_in(st: &RawStatement, at: usize) -> (usize, usize) {
    let at = at.min(st.text.len());
    let before = &st.text[..at];
    let newlines = before.matches('\n').count();
    if newlines == 0 {
        (st.line, st.column + before.chars().count())
    } else {
        let last = before.rfind('\n').map(|p| p + 1).unwrap_or(0);
        (st.line + newlines, before[last..].chars().count() + 1)
    }
}

/// The statement on one line, shortened for an error message.
fn one_line(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 200 {
        format!("{}…", flat.chars().take(200).collect::<String>())
    } else {
        flat
    }
}

fn first_words(text: &str) -> String {
    text.split_whitespace().take(4).collect::<Vec<_>>().join(" ")
}
