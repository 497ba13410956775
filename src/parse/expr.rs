//! Hint expressions (`[[fill]] value`, `[[transform]] up`/`down`, `--transform`): each must
//! be exactly one SQL expression, because the planner splices it into statements (issue 18.8).
//! A comment would swallow the rest of the line it lands on (`1 -- default tenant` eats the
//! `WHERE` after it), a second statement or trailing tokens would run as SQL of their own.

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

/// Checks that `text` is exactly one SQL expression with no comment; says what is wrong.
pub fn hint_expression(text: &str) -> Result<(), String> {
    let dialect = PostgreSqlDialect {};
    if text.trim().is_empty() {
        return Err("the expression is empty".into());
    }
    let tokens =
        Tokenizer::new(&dialect, text).tokenize().map_err(|e| format!("cannot be read as SQL: {e}"))?;
    for t in &tokens {
        match t {
            Token::Whitespace(Whitespace::SingleLineComment { .. })
            | Token::Whitespace(Whitespace::MultiLineComment(_)) => {
                return Err(
                    "contains a comment, which would swallow the SQL after it; remove the comment".into()
                );
            }
            Token::SemiColon => return Err("contains ';': a hint is one expression, not statements".into()),
            _ => {}
        }
    }
    let mut parser = Parser::new(&dialect).with_tokens(tokens);
    parser.parse_expr().map_err(|e| format!("is not a SQL expression: {e}"))?;
    match parser.peek_token().token {
        Token::EOF => Ok(()),
        t => {
            Err(format!("has text after the expression, starting at '{t}': a hint is exactly one expression"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::hint_expression;

    #[test]
    fn one_expression_only() {
        for ok in [
            "''",
            "1",
            "(price * 100)::bigint",
            "coalesce(a, 'x -- y')",
            "now()",
            "CASE WHEN a THEN 1 ELSE 2 END",
        ] {
            assert!(hint_expression(ok).is_ok(), "{ok}: {:?}", hint_expression(ok));
        }
        assert!(hint_expression("1 -- default tenant").unwrap_err().contains("comment"));
        assert!(hint_expression("1 /* x */").unwrap_err().contains("comment"));
        assert!(hint_expression("1; DROP TABLE t").unwrap_err().contains(";"));
        assert!(hint_expression("1 2").unwrap_err().contains("after the expression"));
        assert!(hint_expression("").is_err());
    }
}
