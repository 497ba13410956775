//! A cursor over one statement's tokens with the small vocabulary the DDL readers share:
//! keywords, identifiers, qualified names, parenthesised groups and expression text.

use super::drop::Notice;
use super::lex::{Kind, Tok, normalized_text, string_value};
use super::normalize::{normalize_expr, normalize_type};
use crate::model::{Ident, QualifiedName};

/// A failure inside one statement: what was expected and where (byte offset in the statement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail {
    pub at: usize,
    pub message: String,
}

pub type PResult<T> = Result<T, Fail>;

pub struct Cursor<'a> {
    pub src: &'a str,
    pub toks: Vec<Tok>,
    pub pos: usize,
    /// The schema unqualified names resolve to (first entry of `search_path`).
    pub default_schema: &'a str,
    /// What removals and `IF EXISTS` guards found missing (see [`super::drop`]).
    pub notices: Vec<Notice>,
}

impl<'a> Cursor<'a> {
    pub fn new(src: &'a str, toks: Vec<Tok>, default_schema: &'a str) -> Self {
        Cursor { src, toks, pos: 0, default_schema, notices: Vec::new() }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }

    pub fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    pub fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n)
    }

    pub fn text(&self, t: &Tok) -> &'a str {
        &self.src[t.start..t.end]
    }

    /// Byte offset of the current token (or the end of the statement).
    pub fn offset(&self) -> usize {
        self.peek().map(|t| t.start).unwrap_or(self.src.len())
    }

    pub fn fail<T>(&self, message: impl Into<String>) -> PResult<T> {
        Err(Fail { at: self.offset(), message: message.into() })
    }

    /// "expected X, found Y".
    pub fn expected<T>(&self, what: &str) -> PResult<T> {
        let found = match self.peek() {
            Some(t) => format!("'{}'", self.text(t)),
            None => "end of statement".to_string(),
        };
        self.fail(format!("expected {what}, found {found}"))
    }

    pub fn is_kw_at(&self, n: usize, kw: &str) -> bool {
        self.peek_at(n).is_some_and(|t| t.kind == Kind::Word && self.text(t).eq_ignore_ascii_case(kw))
    }

    pub fn peek_kw(&self, kw: &str) -> bool {
        self.is_kw_at(0, kw)
    }

    /// True when the next tokens are exactly these keywords.
    pub fn peek_kws(&self, kws: &[&str]) -> bool {
        kws.iter().enumerate().all(|(n, kw)| self.is_kw_at(n, kw))
    }

    pub fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek_kw(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn eat_kws(&mut self, kws: &[&str]) -> bool {
        if self.peek_kws(kws) {
            self.pos += kws.len();
            true
        } else {
            false
        }
    }

    pub fn expect_kw(&mut self, kw: &str) -> PResult<()> {
        if self.eat_kw(kw) { Ok(()) } else { self.expected(&kw.to_ascii_uppercase()) }
    }

    pub fn expect_kws(&mut self, kws: &[&str]) -> PResult<()> {
        for kw in kws {
            self.expect_kw(kw)?;
        }
        Ok(())
    }

    pub fn peek_punct(&self, p: &str) -> bool {
        self.peek().is_some_and(|t| matches!(t.kind, Kind::Punct | Kind::Op) && self.text(t) == p)
    }

    pub fn eat_punct(&mut self, p: &str) -> bool {
        if self.peek_punct(p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn expect_punct(&mut self, p: &str) -> PResult<()> {
        if self.eat_punct(p) { Ok(()) } else { self.expected(&format!("'{p}'")) }
    }

    pub fn expect_end(&mut self) -> PResult<()> {
        if self.at_end() { Ok(()) } else { self.expected("end of statement") }
    }

    /// One identifier (unquoted words fold to lower case).
    pub fn ident(&mut self) -> PResult<Ident> {
        let Some(t) = self.peek().copied() else { return self.expected("a name") };
        let text = self.text(&t);
        let id = match t.kind {
            Kind::Word => Ident::unquoted(text),
            Kind::QuotedIdent if !text.starts_with(['u', 'U']) => Ident::from_sql(text),
            _ => return self.expected("a name"),
        };
        match id {
            Ok(id) => {
                self.pos += 1;
                Ok(id)
            }
            Err(e) => self.fail(e.to_string()),
        }
    }

    /// `a`, `a.b`, `a.b.c` as identifier parts.
    pub fn name_parts(&mut self) -> PResult<Vec<Ident>> {
        let mut parts = vec![self.ident()?];
        while self.peek_punct(".") {
            self.pos += 1;
            parts.push(self.ident()?);
        }
        Ok(parts)
    }

    /// `schema.name` or `name` (resolved to the default schema).
    pub fn qname(&mut self) -> PResult<QualifiedName> {
        let at = self.offset();
        let parts = self.name_parts()?;
        self.qualify(parts, at)
    }

    pub fn qualify(&self, mut parts: Vec<Ident>, at: usize) -> PResult<QualifiedName> {
        match parts.len() {
            1 => Ok(QualifiedName::new(self.default_ident(), parts.remove(0))),
            2 => {
                let name = parts.remove(1);
                Ok(QualifiedName::new(parts.remove(0), name))
            }
            // database.schema.name: the database part is ignored, as PostgreSQL does for the current one.
            3 => {
                let name = parts.remove(2);
                Ok(QualifiedName::new(parts.remove(1), name))
            }
            _ => Err(Fail { at, message: "too many dotted parts in name".into() }),
        }
    }

    pub fn default_ident(&self) -> Ident {
        Ident::exact(self.default_schema).unwrap_or_else(|_| Ident::exact("public").expect("valid"))
    }

    /// `(a, b, c)`: a parenthesised list of identifiers.
    pub fn ident_list(&mut self) -> PResult<Vec<Ident>> {
        self.expect_punct("(")?;
        let mut out = Vec::new();
        if self.eat_punct(")") {
            return Ok(out);
        }
        loop {
            out.push(self.ident()?);
            if self.eat_punct(")") {
                return Ok(out);
            }
            self.expect_punct(",")?;
        }
    }

    /// Index of the token closing the group opened at `open` (which must be `(` or `[`).
    pub fn matching(&self, open: usize) -> PResult<usize> {
        let mut depth = 0i32;
        for (n, t) in self.toks.iter().enumerate().skip(open) {
            if t.kind == Kind::Punct {
                match self.text(t) {
                    "(" | "[" => depth += 1,
                    ")" | "]" => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(n);
                        }
                    }
                    _ => {}
                }
            }
        }
        Err(Fail { at: self.toks[open].start, message: "unbalanced parentheses".into() })
    }

    /// Consumes `( … )` and returns the token range inside the parentheses.
    pub fn paren_group(&mut self) -> PResult<(usize, usize)> {
        if !self.peek_punct("(") {
            return self.expected("'('");
        }
        let close = self.matching(self.pos)?;
        let inner = (self.pos + 1, close);
        self.pos = close + 1;
        Ok(inner)
    }

    /// Normalised text of tokens `from..to` (comments removed, words lower-cased).
    pub fn raw(&self, from: usize, to: usize) -> String {
        normalized_text(self.src, &self.toks[from..to])
    }

    /// Text of tokens `from..to` normalised as an expression.
    pub fn expr_text(&self, from: usize, to: usize) -> String {
        normalize_expr(&self.raw(from, to))
    }

    /// Text of tokens `from..to` normalised as a type name.
    pub fn type_text(&self, from: usize, to: usize) -> String {
        normalize_type(&self.raw(from, to))
    }

    /// Advances over tokens until, at nesting depth 0, `stop` says so (or the end). Returns the
    /// start token index; the cursor is left on the stopping token.
    pub fn until(&mut self, stop: impl Fn(&Self) -> bool) -> PResult<usize> {
        let start = self.pos;
        while let Some(t) = self.peek() {
            if t.kind == Kind::Punct && matches!(self.text(t), "(" | "[") {
                self.pos = self.matching(self.pos)? + 1;
                continue;
            }
            if stop(self) {
                break;
            }
            if t.kind == Kind::Punct && matches!(self.text(t), ")" | "]") {
                break;
            }
            self.pos += 1;
        }
        Ok(start)
    }

    /// Skips to the end of the statement.
    pub fn rest(&mut self) -> (usize, usize) {
        let from = self.pos;
        self.pos = self.toks.len();
        (from, self.toks.len())
    }

    /// A string literal's value.
    pub fn string(&mut self) -> PResult<String> {
        let Some(t) = self.peek().copied() else { return self.expected("a string literal") };
        if t.kind == Kind::Str {
            if let Some(v) = string_value(self.text(&t)) {
                self.pos += 1;
                return Ok(v);
            }
        }
        if t.kind == Kind::Dollar {
            let text = self.text(&t);
            let tag = crate::parse::dollar_tag(text).unwrap_or("$$");
            self.pos += 1;
            return Ok(text[tag.len()..text.len() - tag.len()].to_string());
        }
        self.expected("a string literal")
    }

    /// A (possibly signed) integer.
    pub fn integer(&mut self) -> PResult<i64> {
        let neg = self.eat_punct("-");
        let _ = !neg && self.eat_punct("+");
        let Some(t) = self.peek().copied() else { return self.expected("a number") };
        if t.kind != Kind::Number {
            return self.expected("a number");
        }
        let text = self.text(&t).replace('_', "");
        match text.parse::<i64>() {
            Ok(v) => {
                self.pos += 1;
                Ok(if neg { -v } else { v })
            }
            Err(_) => self.fail(format!("'{text}' is not an integer")),
        }
    }

    /// A word (keyword or unquoted identifier) in lower case.
    pub fn word(&mut self) -> PResult<String> {
        match self.peek() {
            Some(t) if t.kind == Kind::Word => {
                let w = self.text(t).to_ascii_lowercase();
                self.pos += 1;
                Ok(w)
            }
            _ => self.expected("a keyword"),
        }
    }

    /// `(key = value, …)` storage options, normalised `key=value`, sorted.
    pub fn options(&mut self) -> PResult<Vec<String>> {
        let (from, to) = self.paren_group()?;
        let mut out = Vec::new();
        let mut start = from;
        let mut depth = 0;
        for n in from..=to {
            let sep = n == to
                || (depth == 0 && self.toks[n].kind == Kind::Punct && self.text(&self.toks[n]) == ",");
            if n < to && self.toks[n].kind == Kind::Punct {
                match self.text(&self.toks[n]) {
                    "(" => depth += 1,
                    ")" => depth -= 1,
                    _ => {}
                }
            }
            if sep {
                if n > start {
                    out.push(option_text(&self.raw(start, n)));
                }
                start = n + 1;
            }
        }
        out.sort();
        Ok(out)
    }
}

/// `fillfactor = '70'` → `fillfactor=70`.
fn option_text(raw: &str) -> String {
    match raw.split_once('=') {
        Some((k, v)) => {
            let v = v.trim();
            let v = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')).unwrap_or(v);
            format!("{}={}", k.trim(), v)
        }
        None => raw.trim().to_string(),
    }
}
