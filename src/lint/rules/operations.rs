//! Operational hazards of a statement as a whole: identifiers PostgreSQL would truncate, and
//! `UPDATE`/`DELETE` over a whole existing table in one transaction.

use super::{Out, short};
use crate::finding::FindingCode;
use crate::lint::Stmt;
use crate::lint::action::Action;
use crate::lint::context::Ctx;
use crate::lint::fallback::{Tok, tokens};
use crate::model::MAX_IDENT_BYTES;

pub fn check_statement(s: &Stmt, cx: &Ctx<'_>, out: &mut Out<'_>) {
    for a in &s.actions {
        if let Action::Dml { verb, table, filter, limited } = a {
            if cx.existing(table) && !limited && !filter.as_deref().is_some_and(bounded) {
                let why = if filter.is_none() {
                    "no WHERE clause"
                } else {
                    "no key range or LIMIT in its WHERE clause"
                };
                out.push(
                    FindingCode::UnbatchedDml,
                    short(table),
                    format!(
                        "{} with {why} touches every matching row of {} in one transaction: row locks on all of them, a burst of WAL and replica lag",
                        verb.to_ascii_lowercase(),
                        short(table)
                    ),
                );
            }
        }
    }
    identifiers(s, out);
}

/// A WHERE clause that bounds the rows touched: a comparison, a range or a list.
fn bounded(filter: &str) -> bool {
    let f = format!(" {filter} ").replace("<>", " ").replace("!=", " ");
    ["=", "<", ">", " between ", " in ", " any("].iter().any(|op| f.contains(op))
}

fn identifiers(s: &Stmt, out: &mut Out<'_>) {
    let head = s.text.get(..6).unwrap_or("").to_ascii_lowercase();
    if head != "create" && !head.starts_with("alter") {
        return;
    }
    let Some(toks) = tokens(&s.text) else { return };
    let mut seen = std::collections::BTreeSet::new();
    for t in &toks {
        let name = match t {
            Tok::Word(w) | Tok::Quoted(w) => w,
            Tok::Punct(_) => continue,
        };
        if name.len() > MAX_IDENT_BYTES && seen.insert(name.clone()) {
            out.push(
                FindingCode::IdentifierTooLong,
                name.clone(),
                format!(
                    "identifier '{name}' is {} bytes; PostgreSQL truncates it to 63, so it may collide with another name",
                    name.len()
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::rules::testing::codes;

    #[test]
    fn long_identifiers() {
        let long = "a".repeat(64);
        assert_eq!(codes(&format!("CREATE TABLE {long} (id bigint);")), vec!["identifier-too-long"]);
        assert!(codes(&format!("CREATE TABLE {} (id bigint);", "a".repeat(63))).is_empty());
        assert!(codes(&format!("COMMENT ON TABLE t IS '{long}';")).is_empty());
    }

    #[test]
    fn whole_table_dml() {
        assert_eq!(codes("UPDATE users SET plan = 'free';"), vec!["unbatched-dml"]);
        assert_eq!(codes("DELETE FROM users WHERE plan IS NULL;"), vec!["unbatched-dml"]);
        assert!(codes("UPDATE users SET plan = 'free' WHERE id >= 1 AND id < 1000;").is_empty());
        assert!(codes("CREATE TABLE t (id bigint PRIMARY KEY); UPDATE t SET id = 1;").is_empty());
    }
}
