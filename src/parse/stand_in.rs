//! What the rehearsal's stand-ins (`rehearse::standin`) read from a statement: the head of a
//! `LANGUAGE c` function (its signature, library and the spans a stub replaces) and the
//! extension a `CREATE`/`ALTER`/`DROP`/`COMMENT ON EXTENSION` statement names. Read on the
//! parser's lexer ([`super::lex`]); moved here from `rehearse` so that SQL is read only in
//! `parse` (issue 19).

/// A token of a statement with its byte span: its text unquoted (a string literal's value, a
/// quoted identifier's name), read by the parser's lexer ([`crate::parse::lex`]).
#[derive(Debug, Clone)]
pub struct Token {
    pub text: String,
    pub start: usize,
    pub end: usize,
    pub literal: bool,
}

/// The statement's tokens; none when the lexer cannot read it (then it is run unchanged).
pub fn tokens(s: &str) -> Vec<Token> {
    use super::lex::{Kind, string_value, tokenize};
    let Ok(toks) = tokenize(s) else { return Vec::new() };
    toks.iter()
        .map(|t| {
            let raw = &s[t.start..t.end];
            let text = match t.kind {
                Kind::Str => string_value(raw).unwrap_or_else(|| raw.to_string()),
                Kind::QuotedIdent => raw[1..raw.len() - 1].replace("\"\"", "\""),
                _ => raw.to_string(),
            };
            Token { text, start: t.start, end: t.end, literal: t.kind == Kind::Str }
        })
        .collect()
}

pub fn is_word(t: &Token, w: &str) -> bool {
    !t.literal && t.text.eq_ignore_ascii_case(w)
}

/// `CREATE [OR REPLACE] FUNCTION … LANGUAGE c … AS 'library', 'symbol'`.
#[derive(Debug, Clone)]
pub struct CFunction {
    /// `name(argument types)` as written.
    pub signature: String,
    pub library: String,
    /// Byte span of the `c` after LANGUAGE.
    pub language: (usize, usize),
    /// Byte span of `'library', 'symbol'`.
    pub definition: (usize, usize),
}

impl CFunction {
    pub fn parse(statement: &str) -> Option<CFunction> {
        let t = tokens(statement);
        let mut i = 0;
        if !is_word(t.first()?, "create") {
            return None;
        }
        i += 1;
        if is_word(t.get(i)?, "or") && is_word(t.get(i + 1)?, "replace") {
            i += 2;
        }
        if !is_word(t.get(i)?, "function") {
            return None;
        }
        let name_at = i + 1;
        // The signature ends at the parenthesis closing the argument list.
        let open = (name_at..t.len()).find(|&k| t[k].text == "(" && !t[k].literal)?;
        let mut depth = 0;
        let mut close = None;
        for (k, tok) in t.iter().enumerate().skip(open) {
            if tok.literal {
                continue;
            }
            match tok.text.as_str() {
                "(" => depth += 1,
                ")" => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(k);
                        break;
                    }
                }
                _ => {}
            }
        }
        let close = close?;
        let signature = statement[t[name_at].start..t[close].end].to_string();
        let mut language = None;
        let mut definition = None;
        let mut library = None;
        let mut k = close + 1;
        while k < t.len() {
            if is_word(&t[k], "language")
                && let Some(l) = t.get(k + 1)
            {
                if !l.text.eq_ignore_ascii_case("c") {
                    return None;
                }
                language = Some((l.start, l.end));
                k += 2;
                continue;
            }
            if is_word(&t[k], "as")
                && let Some(lib) = t.get(k + 1)
                && lib.literal
            {
                let mut end = lib.end;
                if t.get(k + 2).is_some_and(|c| c.text == ",")
                    && let Some(sym) = t.get(k + 3)
                    && sym.literal
                {
                    end = sym.end;
                }
                library = Some(lib.text.clone());
                definition = Some((lib.start, end));
                k += 2;
                continue;
            }
            k += 1;
        }
        Some(CFunction { signature, library: library?, language: language?, definition: definition? })
    }
}

/// The extension a `CREATE`/`ALTER`/`DROP EXTENSION` or `COMMENT ON EXTENSION` statement names.
pub fn extension_named(statement: &str) -> Option<String> {
    let t = tokens(statement);
    let words: Vec<&Token> = t.iter().take(8).collect();
    let after = match words.first().map(|w| w.text.to_ascii_lowercase()).as_deref() {
        Some("create" | "alter" | "drop") if words.get(1).is_some_and(|w| is_word(w, "extension")) => 2,
        Some("comment")
            if words.get(1).is_some_and(|w| is_word(w, "on"))
                && words.get(2).is_some_and(|w| is_word(w, "extension")) =>
        {
            3
        }
        _ => return None,
    };
    let mut i = after;
    while words.get(i).is_some_and(|w| is_word(w, "if") || is_word(w, "not") || is_word(w, "exists")) {
        i += 1;
    }
    let name = words.get(i)?;
    // A quoted identifier keeps its case; a bare one folds to lower case.
    if statement[name.start..].starts_with('"') {
        Some(name.text.clone())
    } else {
        Some(name.text.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_functions_and_statements_are_not_c_functions() {
        assert!(CFunction::parse("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1'").is_none());
        assert!(CFunction::parse("CREATE TABLE c (a int)").is_none());
        assert_eq!(
            extension_named("CREATE EXTENSION IF NOT EXISTS postgis WITH SCHEMA public").as_deref(),
            Some("postgis")
        );
        assert_eq!(extension_named("COMMENT ON EXTENSION postgis IS 'x'").as_deref(), Some("postgis"));
        assert_eq!(extension_named("DROP EXTENSION IF EXISTS \"PostGIS\"").as_deref(), Some("PostGIS"));
        assert_eq!(extension_named("CREATE TABLE extension (a int)"), None);
        // Read by the parser's lexer: a dollar-quoted body is one token, so a LANGUAGE after
        // it is still seen; a schema-qualified name keeps its qualification.
        assert!(CFunction::parse("CREATE FUNCTION f() RETURNS int AS $$ select 1 $$ LANGUAGE sql").is_none());
        let q = CFunction::parse(
            "CREATE OR REPLACE FUNCTION public.\"Tile\"(a bigint) RETURNS int LANGUAGE c AS '$libdir/x', 'tile'",
        )
        .unwrap();
        assert_eq!((q.signature.as_str(), q.library.as_str()), ("public.\"Tile\"(a bigint)", "$libdir/x"));
    }
}
