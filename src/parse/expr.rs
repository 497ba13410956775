//! Hint expressions (`[[fill]] value`, `[[transform]] up`/`down`, `--transform`): each must
//! be exactly one SQL expression, because the planner splices it into statements (issue 18.8).
//! A comment would swallow the rest of the line it lands on (`1 -- default tenant` eats the
//! `WHERE` after it), a second statement or trailing tokens would run as SQL of their own.
//! So a hint is parsed as one expression, its comments are cut out, and it is spliced in
//! parenthesised: `(1)`, never `1 -- default tenant`.

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

/// Checks that `text` is exactly one SQL expression; says what is wrong.
pub fn hint_expression(text: &str) -> Result<(), String> {
    hint_sql(text).map(|_| ())
}

/// `text` as the planner splices it: one SQL expression without its comments, in
/// parentheses, so that nothing around it can change how it binds.
pub fn hint_sql(text: &str) -> Result<String, String> {
    let dialect = PostgreSqlDialect {};
    if text.trim().is_empty() {
        return Err("the expression is empty".into());
    }
    let tokens = Tokenizer::new(&dialect, text)
        .tokenize_with_location()
        .map_err(|e| format!("cannot be read as SQL: {e}"))?;
    // Line starts, in chars, to turn token locations (1-based line and column) into offsets.
    let chars: Vec<char> = text.chars().collect();
    let mut line_starts = vec![0usize];
    line_starts.extend(chars.iter().enumerate().filter(|(_, c)| **c == '\n').map(|(i, _)| i + 1));
    let offset = |line: u64, column: u64| -> Option<usize> {
        let start = *line_starts.get((line as usize).checked_sub(1)?)?;
        Some(start + (column as usize).checked_sub(1)?)
    };
    let mut cut: Vec<(usize, usize)> = Vec::new();
    for t in &tokens {
        match &t.token {
            Token::Whitespace(Whitespace::SingleLineComment { .. })
            | Token::Whitespace(Whitespace::MultiLineComment(_)) => {
                let from = offset(t.span.start.line, t.span.start.column);
                let to = offset(t.span.end.line, t.span.end.column);
                match (from, to) {
                    (Some(f), Some(e)) if f < e && e <= chars.len() => cut.push((f, e)),
                    _ => return Err("contains a comment seqmig cannot locate; remove the comment".into()),
                }
            }
            Token::SemiColon => return Err("contains ';': a hint is one expression, not statements".into()),
            _ => {}
        }
    }
    let tokens: Vec<Token> = tokens.into_iter().map(|t| t.token).collect();
    let mut parser = Parser::new(&dialect).with_tokens(tokens);
    parser.parse_expr().map_err(|e| format!("is not a SQL expression: {e}"))?;
    match parser.peek_token().token {
        Token::EOF => {}
        t => {
            return Err(format!(
                "has text after the expression, starting at '{t}': a hint is exactly one expression"
            ));
        }
    }
    let mut kept = String::new();
    let mut i = 0;
    for (f, e) in cut {
        kept.extend(&chars[i..f]);
        kept.push(' ');
        i = e;
    }
    kept.extend(&chars[i..]);
    Ok(format!("({})", kept.trim()))
}

#[cfg(test)]
mod tests {
    use super::{hint_expression, hint_sql};

    #[test]
    fn one_expression_only() {
        for ok in [
            "''",
            "1",
            "(price * 100)::bigint",
            "coalesce(a, 'x -- y')",
            "now()",
            "CASE WHEN a THEN 1 ELSE 2 END",
            "1 -- default tenant",
            "1 /* x */",
        ] {
            assert!(hint_expression(ok).is_ok(), "{ok}: {:?}", hint_expression(ok));
        }
        assert!(hint_expression("1; DROP TABLE t").unwrap_err().contains(";"));
        assert!(hint_expression("1 2").unwrap_err().contains("after the expression"));
        assert!(hint_expression("").is_err());
        assert!(hint_expression("-- only a comment").is_err());
    }

    #[test]
    fn spliced_parenthesised_without_comments() {
        assert_eq!(hint_sql("1 -- default tenant").unwrap(), "(1)");
        assert_eq!(hint_sql("a /* one */ + /* two */ 1").unwrap(), "(a   +   1)");
        assert_eq!(hint_sql("coalesce(a, 'x -- y')").unwrap(), "(coalesce(a, 'x -- y'))");
        assert_eq!(hint_sql("a +\n -- the rest\n b").unwrap(), "(a +\n  \n b)");
        assert_eq!(hint_sql("price * 100").unwrap(), "(price * 100)");
    }
}
