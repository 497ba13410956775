//! Splits SQL text into top-level statements the way psql does: semicolons inside string
//! literals (`'…'`, `E'…'` with backslash escapes), quoted identifiers, dollar quotes
//! (`$$…$$`, `$tag$…$tag$`), comments (`--`, nested `/* */`) and SQL-standard function bodies
//! (`BEGIN ATOMIC … END`) do not end a statement. psql meta-lines (`\restrict …`) are
//! returned separately so the loader can count them as skipped.

use super::lex::{skip_block_comment, skip_quoted};
use crate::finding::Span;

/// One top-level piece of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawStatement {
    /// The statement text without the terminating semicolon and without leading comments.
    pub text: String,
    /// Byte offset of `text` in the input.
    pub offset: usize,
    /// 1-based line and column of the statement's first character.
    pub line: usize,
    pub column: usize,
    /// True for a psql meta-command line (`\connect`, `\restrict`, …).
    pub meta: bool,
    /// False when the input ended before a terminating semicolon.
    pub terminated: bool,
}

impl RawStatement {
    pub fn span(&self, file: &str) -> Span {
        Span { file: file.to_string(), line: self.line, column: self.column }
    }
}

/// Why the input cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SplitError {
    #[error("unterminated {what} starting at line {line}, column {column}")]
    Unterminated { what: &'static str, line: usize, column: usize },
}

/// Splits `sql` into statements. Empty statements (`;;`) and comment-only tails are dropped.
pub fn split_statements(sql: &str) -> Result<Vec<RawStatement>, SplitError> {
    let bytes = sql.as_bytes();
    let lines = LineIndex::new(sql);
    let mut out = Vec::new();
    let mut i = 0;
    // Start of the current statement's first significant byte, if any seen yet.
    let mut start: Option<usize> = None;
    let mut atomic_depth = 0usize;
    let mut prev_word = String::new();
    let mut at_line_start = true;

    while i < bytes.len() {
        let c = bytes[i];
        // psql meta-command: a backslash at the start of a line, outside any statement.
        if c == b'\\' && at_line_start && start.is_none() {
            let end = sql[i..].find('\n').map(|n| i + n).unwrap_or(sql.len());
            let (line, column) = lines.position(i);
            out.push(RawStatement {
                text: sql[i..end].trim_end().to_string(),
                offset: i,
                line,
                column,
                meta: true,
                terminated: true,
            });
            i = end;
            continue;
        }
        at_line_start = c == b'\n' || (at_line_start && (c == b' ' || c == b'\t' || c == b'\r'));
        match c {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map(|n| i + n).unwrap_or(sql.len());
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = skip_block_comment(bytes, i).ok_or_else(|| unterminated("block comment", &lines, i))?;
                continue;
            }
            _ => {}
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let stmt_start = *start.get_or_insert(i);
        match c {
            b';' if atomic_depth == 0 => {
                push(&mut out, sql, &lines, stmt_start, i, true);
                start = None;
                prev_word.clear();
                i += 1;
            }
            b'\'' => {
                let escapes = i > 0
                    && matches!(bytes[i - 1], b'e' | b'E')
                    && !is_ident_byte(bytes.get(i.wrapping_sub(2)).copied());
                i = skip_quoted(bytes, i, b'\'', escapes)
                    .ok_or_else(|| unterminated("string literal", &lines, i))?;
            }
            b'"' => {
                i = skip_quoted(bytes, i, b'"', false)
                    .ok_or_else(|| unterminated("quoted identifier", &lines, i))?;
            }
            b'$' if crate::parse::dollar_tag(&sql[i..]).is_some() && !is_ident_byte(prev_byte(bytes, i)) => {
                let tag = crate::parse::dollar_tag(&sql[i..]).unwrap_or("$$");
                match sql[i + tag.len()..].find(tag) {
                    Some(rel) => i += tag.len() + rel + tag.len(),
                    None => return Err(unterminated("dollar-quoted string", &lines, i)),
                }
            }
            c if is_ident_byte(Some(c)) => {
                let end = (i..bytes.len()).find(|&j| !is_ident_byte(Some(bytes[j]))).unwrap_or(bytes.len());
                let word = sql[i..end].to_ascii_lowercase();
                let opens_block =
                    (word == "atomic" && prev_word == "begin") || (atomic_depth > 0 && word == "case");
                if opens_block {
                    atomic_depth += 1;
                } else if atomic_depth > 0 && word == "end" {
                    atomic_depth -= 1;
                }
                prev_word = word;
                i = end;
            }
            _ => i += 1,
        }
    }
    if let Some(s) = start {
        push(&mut out, sql, &lines, s, sql.len(), false);
    }
    Ok(out)
}

fn push(
    out: &mut Vec<RawStatement>,
    sql: &str,
    lines: &LineIndex,
    start: usize,
    end: usize,
    terminated: bool,
) {
    let text = sql[start..end].trim_end();
    if text.is_empty() {
        return;
    }
    let (line, column) = lines.position(start);
    out.push(RawStatement { text: text.to_string(), offset: start, line, column, meta: false, terminated });
}

fn unterminated(what: &'static str, lines: &LineIndex, at: usize) -> SplitError {
    let (line, column) = lines.position(at);
    SplitError::Unterminated { what, line, column }
}

fn prev_byte(bytes: &[u8], i: usize) -> Option<u8> {
    i.checked_sub(1).map(|p| bytes[p])
}

fn is_ident_byte(b: Option<u8>) -> bool {
    b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80)
}

/// Maps byte offsets to 1-based line and column (columns count characters).
#[derive(Debug)]
pub struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    pub fn position(&self, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&s| s <= offset);
        let line_start = self.starts[line - 1];
        let column = self.text.get(line_start..offset).map(|s| s.chars().count()).unwrap_or(0) + 1;
        (line, column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<String> {
        split_statements(sql).unwrap().into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn splits_on_top_level_semicolons_only() {
        let sql = "CREATE TABLE a (x text DEFAULT 'a;b');\n-- c;\nSELECT $$;$$, $f$ $$ ; $f$; /* ; /* ; */ */ SELECT E'\\';';";
        assert_eq!(
            texts(sql),
            vec!["CREATE TABLE a (x text DEFAULT 'a;b')", "SELECT $$;$$, $f$ $$ ; $f$", "SELECT E'\\';'"]
        );
    }

    #[test]
    fn positions_are_one_based() {
        let stmts = split_statements("\n\n  SELECT 1;\nSELECT 2").unwrap();
        assert_eq!((stmts[0].line, stmts[0].column), (3, 3));
        assert_eq!((stmts[1].line, stmts[1].column, stmts[1].terminated), (4, 1, false));
    }

    #[test]
    fn meta_lines_are_separate() {
        let stmts = split_statements("\\restrict abc\nSELECT 1;\n\\unrestrict abc\n").unwrap();
        assert_eq!(stmts.iter().filter(|s| s.meta).count(), 2);
        assert_eq!(stmts[1].text, "SELECT 1");
    }

    #[test]
    fn begin_atomic_bodies_keep_their_semicolons() {
        let sql = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END; SELECT 3;";
        let t = texts(sql);
        assert_eq!(t.len(), 2, "{t:?}");
        assert_eq!(t[1], "SELECT 3");
    }

    #[test]
    fn unterminated_quotes_are_errors_with_positions() {
        assert_eq!(
            split_statements("SELECT 1;\nCREATE FUNCTION f() AS $body$ begin").unwrap_err(),
            SplitError::Unterminated { what: "dollar-quoted string", line: 2, column: 24 }
        );
        assert!(split_statements("SELECT 'abc").is_err());
        assert!(split_statements("/* open").is_err());
    }

    #[test]
    fn identifiers_with_dollars_are_not_dollar_quotes() {
        assert_eq!(texts("SELECT a$b$c FROM t; SELECT 2;").len(), 2);
    }
}
