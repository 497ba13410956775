//! A PostgreSQL lexer over one statement, keeping each token's byte range so that
//! expressions, types and bodies can be taken from the original text (sqlparser's `Display`
//! re-spells expressions; a dump must compare equal to the catalog's own spelling).

/// What a token is. Text is always read back from the source through [`Tok::range`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Unquoted identifier or keyword.
    Word,
    /// `"…"`.
    QuotedIdent,
    /// `'…'`, `E'…'`, `B'…'`, `X'…'`, `U&'…'`.
    Str,
    /// `$tag$…$tag$`.
    Dollar,
    Number,
    /// `$1` positional parameter.
    Param,
    /// Operators (`=`, `::`, `->>`, `||`, …).
    Op,
    /// One of `( ) , ; [ ] .`
    Punct,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tok {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
    /// True when whitespace or a comment separates this token from the previous one.
    pub space_before: bool,
}

/// Why a statement could not be tokenised; `at` is a byte offset into the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    pub at: usize,
    pub what: String,
}

const OP_CHARS: &[u8] = b"+-*/<>=~!@#%^&|`?";

pub fn tokenize(src: &str) -> Result<Vec<Tok>, LexError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut space = false;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            space = true;
            i += 1;
            continue;
        }
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            i = src[i..].find('\n').map(|n| i + n).unwrap_or(b.len());
            space = true;
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i = skip_block_comment(b, i)
                .ok_or_else(|| LexError { at: i, what: "unterminated block comment".into() })?;
            space = true;
            continue;
        }
        let start = i;
        let kind;
        match c {
            b'"' => {
                i = skip_quoted(b, i, b'"', false)
                    .ok_or_else(|| LexError { at: start, what: "unterminated quoted identifier".into() })?;
                kind = Kind::QuotedIdent;
            }
            b'\'' => {
                i = skip_quoted(b, i, b'\'', false)
                    .ok_or_else(|| LexError { at: start, what: "unterminated string literal".into() })?;
                kind = Kind::Str;
            }
            b'e' | b'E' | b'b' | b'B' | b'x' | b'X' | b'n' | b'N' if b.get(i + 1) == Some(&b'\'') => {
                let escapes = matches!(c, b'e' | b'E');
                i = skip_quoted(b, i + 1, b'\'', escapes)
                    .ok_or_else(|| LexError { at: start, what: "unterminated string literal".into() })?;
                kind = Kind::Str;
            }
            b'u' | b'U' if b.get(i + 1) == Some(&b'&') && matches!(b.get(i + 2), Some(b'\'' | b'"')) => {
                let q = b[i + 2];
                i = skip_quoted(b, i + 2, q, false)
                    .ok_or_else(|| LexError { at: start, what: "unterminated unicode literal".into() })?;
                kind = if q == b'"' { Kind::QuotedIdent } else { Kind::Str };
            }
            b'$' => {
                if let Some(tag) = crate::parse::dollar_tag(&src[i..]) {
                    match src[i + tag.len()..].find(tag) {
                        Some(rel) => i += tag.len() + rel + tag.len(),
                        None => {
                            return Err(LexError {
                                at: start,
                                what: "unterminated dollar-quoted string".into(),
                            });
                        }
                    }
                    kind = Kind::Dollar;
                } else if b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                    kind = Kind::Param;
                } else {
                    return Err(LexError { at: start, what: "unexpected '$'".into() });
                }
            }
            b'0'..=b'9' => {
                i = number_end(b, i);
                kind = Kind::Number;
            }
            b'.' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i = number_end(b, i);
                kind = Kind::Number;
            }
            b'(' | b')' | b',' | b';' | b'[' | b']' | b'.' => {
                i += 1;
                kind = Kind::Punct;
            }
            b':' => {
                i += if b.get(i + 1) == Some(&b':') { 2 } else { 1 };
                kind = Kind::Op;
            }
            c if is_ident_start(c) => {
                i += 1;
                while i < b.len() && is_ident_cont(b[i]) {
                    i += 1;
                }
                kind = Kind::Word;
            }
            c if OP_CHARS.contains(&c) => {
                while i < b.len() && OP_CHARS.contains(&b[i]) {
                    // A comment start ends the operator.
                    if (b[i] == b'-' && b.get(i + 1) == Some(&b'-'))
                        || (b[i] == b'/' && b.get(i + 1) == Some(&b'*'))
                    {
                        break;
                    }
                    i += 1;
                }
                kind = Kind::Op;
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(LexError { at: start, what: format!("unexpected character {ch:?}") });
            }
        }
        out.push(Tok { kind, start, end: i, space_before: space && !out.is_empty() });
        space = false;
    }
    Ok(out)
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident_cont(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

fn number_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' && b.get(i + 1) != Some(&b'.') {
        i += 1;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
    }
    // Exponent sign: 1e-5.
    if i < b.len() && matches!(b[i], b'+' | b'-') && matches!(b[i - 1], b'e' | b'E') {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    i
}

/// Returns the index just past a (nested) `/* … */` comment opening at `open`; `None` when
/// it is not closed. Shared with the statement splitter.
pub(super) fn skip_block_comment(b: &[u8], open: usize) -> Option<usize> {
    let mut i = open;
    let mut depth = 0usize;
    while i + 1 < b.len() {
        if b[i] == b'/' && b[i + 1] == b'*' {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b[i + 1] == b'/' {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return Some(i);
            }
        } else {
            i += 1;
        }
    }
    None
}

/// Returns the index just past the closing quote. Shared with the statement splitter.
pub(super) fn skip_quoted(b: &[u8], open: usize, quote: u8, backslash: bool) -> Option<usize> {
    let mut j = open + 1;
    while j < b.len() {
        if backslash && b[j] == b'\\' {
            j += 2;
            continue;
        }
        if b[j] == quote {
            if b.get(j + 1) == Some(&quote) {
                j += 2;
                continue;
            }
            return Some(j + 1);
        }
        j += 1;
    }
    None
}

/// The value of a string literal token: `'it''s'` → `it's`; `E'a\nb'` → `a⏎b`.
pub fn string_value(text: &str) -> Option<String> {
    let (escapes, body) = match text.as_bytes().first()? {
        b'\'' => (false, text),
        b'e' | b'E' => (true, &text[1..]),
        _ => return None,
    };
    let inner = body.strip_prefix('\'')?.strip_suffix('\'')?;
    if !escapes {
        return Some(inner.replace("''", "'"));
    }
    let mut out = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' if chars.peek() == Some(&'\'') => {
                chars.next();
                out.push('\'');
            }
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('b') => out.push('\u{8}'),
                Some('f') => out.push('\u{c}'),
                Some(other) => out.push(other),
                None => {}
            },
            c => out.push(c),
        }
    }
    Some(out)
}

/// Token texts joined with one space wherever the source had whitespace or a comment, words
/// lower-cased: a spelling of the statement that is stable under re-lexing.
pub fn normalized_text(src: &str, toks: &[Tok]) -> String {
    let mut out = String::with_capacity(src.len());
    for (n, t) in toks.iter().enumerate() {
        if n > 0 && t.space_before {
            out.push(' ');
        }
        let text = &src[t.start..t.end];
        if t.kind == Kind::Word {
            out.push_str(&text.to_ascii_lowercase());
        } else {
            out.push_str(text);
        }
    }
    out
}

/// True when `expr` names the identifier `name` as a whole word, bare (case as written) or
/// quoted. Words inside string literals, dollar quotes, comments and longer quoted names do
/// not count. When the lexer cannot read `expr`, any occurrence of `name` counts: a
/// dependency is never missed.
pub fn mentions(expr: &str, name: &str) -> bool {
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    match tokenize(expr) {
        Ok(toks) => toks.iter().any(|t| {
            let raw = &expr[t.start..t.end];
            match t.kind {
                Kind::Word => raw == name,
                Kind::QuotedIdent => raw == quoted,
                _ => false,
            }
        }),
        Err(_) => expr.contains(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<(Kind, String)> {
        tokenize(sql).unwrap().into_iter().map(|t| (t.kind, sql[t.start..t.end].to_string())).collect()
    }

    #[test]
    fn lexes_the_forms_dumps_use() {
        let k =
            kinds("ALTER TABLE ONLY \"Users\" ADD x::text[] DEFAULT E'a\\'b' -- c\n $f$ ; $f$ 1.5e-3 ->> $1");
        let texts: Vec<_> = k.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            texts,
            [
                "ALTER",
                "TABLE",
                "ONLY",
                "\"Users\"",
                "ADD",
                "x",
                "::",
                "text",
                "[",
                "]",
                "DEFAULT",
                "E'a\\'b'",
                "$f$ ; $f$",
                "1.5e-3",
                "->>",
                "$1"
            ]
        );
        assert_eq!(k[3].0, Kind::QuotedIdent);
        assert_eq!(k[12].0, Kind::Dollar);
    }

    #[test]
    fn normalized_text_is_stable() {
        let sql = "CREATE  FUNCTION F( a INT ) -- x\n RETURNS int AS $$ Keep  It $$";
        let once = normalized_text(sql, &tokenize(sql).unwrap());
        assert_eq!(once, "create function f( a int ) returns int as $$ Keep  It $$");
        assert_eq!(normalized_text(&once, &tokenize(&once).unwrap()), once);
    }

    #[test]
    fn string_values_unescape() {
        assert_eq!(string_value("'it''s'").unwrap(), "it's");
        assert_eq!(string_value("E'a\\nb\\''").unwrap(), "a\nb'");
    }

    #[test]
    fn mentions_counts_whole_names_outside_literals() {
        assert!(mentions("lower(email)", "email"));
        assert!(mentions("(\"Email\" IS NOT NULL)", "Email"));
        assert!(!mentions("lower(email_address)", "email"));
        assert!(!mentions("status = 'email'", "email"));
        assert!(!mentions("\"full name\" <> ''", "name"));
        assert!(mentions("t.email", "email"));
    }
}
