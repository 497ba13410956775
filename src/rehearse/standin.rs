//! Stand-ins for what the rehearsal server lacks (DESIGN.md §rehearse). A real schema often
//! needs a shared library or an extension that a CI server does not have: a `LANGUAGE c`
//! function from `libpgosm.so`, `CREATE EXTENSION postgis`. Without help the rehearsal would
//! stop before its first phase and prove nothing. Instead, every statement the rehearsal runs
//! (both schema files and every step of the plan) is passed through [`StandIns::rewrite`]:
//!
//! - a `LANGUAGE c` function whose library the server cannot load becomes a PL/pgSQL stub with
//!   the same name, arguments, return type and attributes, whose body raises: everything that
//!   depends on the function's signature (defaults, indexes, views, triggers) is still proven,
//!   and calling it during the rehearsal fails loudly instead of returning made-up values;
//! - an extension the server does not offer is left out (its `CREATE`, `ALTER`, `COMMENT ON`
//!   and `DROP`): what depends on it would fail and be reported as such.
//!
//! The report lists every object stood in or left out: those are the parts not proven.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use tokio_postgres::Client;

use crate::parse::stand_in::{CFunction, extension_named};

/// One object the rehearsal could not run as written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StoodIn {
    /// A C function replaced by a stub with the same signature.
    Function { signature: String, library: String },
    /// An extension the server does not offer, left out.
    Extension { name: String },
}

impl std::fmt::Display for StoodIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoodIn::Function { signature, library } => write!(
                f,
                "function {signature}: its library {library} is missing on the server; a stub with the same signature stood in (its body is not proven)"
            ),
            StoodIn::Extension { name } => {
                write!(f, "extension {name}: not available on the server; left out (unproven)")
            }
        }
    }
}

/// What the server lacks, found once per rehearsal.
#[derive(Debug, Clone, Default)]
pub struct StandIns {
    /// Library path → loadable.
    libraries: BTreeMap<String, bool>,
    /// Extensions the server offers (`pg_available_extensions`).
    available: BTreeSet<String>,
    /// What was stood in, filled as statements are rewritten.
    pub used: BTreeSet<StoodIn>,
}

impl StandIns {
    /// Probes the server behind `client` for every library and extension `texts` name.
    pub async fn probe(client: &Client, texts: &[&str]) -> Result<StandIns, tokio_postgres::Error> {
        let available: BTreeSet<String> = client
            .query("SELECT name::text FROM pg_available_extensions", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut libraries = BTreeMap::new();
        for text in texts {
            for s in crate::parse::split_statements(text).unwrap_or_default() {
                let Some(f) = CFunction::parse(&s.text) else { continue };
                if libraries.contains_key(&f.library) {
                    continue;
                }
                // LOAD needs no function and changes nothing but this session; only a missing
                // file counts as missing (a server that refuses LOAD to this role is trusted).
                let ok = match client.batch_execute(&format!("LOAD {}", literal(&f.library))).await {
                    Ok(()) => true,
                    Err(e) => e.code() != Some(&tokio_postgres::error::SqlState::UNDEFINED_FILE),
                };
                libraries.insert(f.library, ok);
            }
        }
        Ok(StandIns { libraries, available, used: BTreeSet::new() })
    }

    /// The statement as the rehearsal runs it: unchanged, a stub, or `None` when left out.
    pub fn rewrite_statement(&mut self, statement: &str) -> Option<String> {
        if let Some(f) = CFunction::parse(statement)
            && self.libraries.get(&f.library) == Some(&false)
        {
            self.used
                .insert(StoodIn::Function { signature: f.signature.clone(), library: f.library.clone() });
            return Some(f.stub(statement));
        }
        if let Some(name) = extension_named(statement)
            && !self.available.is_empty()
            && !self.available.contains(&name)
        {
            self.used.insert(StoodIn::Extension { name });
            return None;
        }
        Some(statement.to_string())
    }

    /// A step's statements (recorded by the planner) as the rehearsal runs them; `None`
    /// when nothing was changed.
    pub fn rewrite(&mut self, statements: &[String]) -> Option<Vec<String>> {
        let mut changed = false;
        let mut out = Vec::new();
        for s in statements {
            match self.rewrite_statement(s) {
                Some(t) if t == *s => out.push(t),
                Some(t) => {
                    changed = true;
                    out.push(t);
                }
                None => {
                    changed = true;
                    out.push(format!("SELECT NULL -- left out by the rehearsal: {}\n", first_line(s)));
                }
            }
        }
        changed.then_some(out)
    }

    /// The plan with every step's statements (and SQL) rewritten, sealed again as its
    /// content changed.
    pub fn rewrite_plan(&mut self, plan: &crate::plan::Plan) -> crate::plan::Plan {
        let script = |statements: &[String]| statements.iter().map(|s| format!("{s};\n")).collect::<String>();
        let mut plan = plan.clone();
        let mut changed = false;
        for step in &mut plan.steps {
            if let Some(new) = self.rewrite(&step.effects.statements) {
                step.sql = script(&new);
                step.effects.statements = new;
                changed = true;
            }
            if let Some(new) = self.rewrite(&step.effects.rollback_statements) {
                step.rollback_sql = Some(script(&new));
                step.effects.rollback_statements = new;
                changed = true;
            }
        }
        if changed { plan.seal() } else { plan }
    }
}

/// A string literal: `'it''s'`.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(120).collect()
}

impl CFunction {
    /// The statement with a PL/pgSQL body that raises instead of the C symbol.
    fn stub(&self, statement: &str) -> String {
        let body = format!(
            "$seqmig_stand_in$BEGIN RAISE EXCEPTION 'seqmig rehearse: % is a stand-in (library % is missing on this server)', {}, {}; END$seqmig_stand_in$",
            literal(&self.signature),
            literal(&self.library)
        );
        let mut spans = [(self.language, "plpgsql".to_string()), (self.definition, body)];
        spans.sort_by_key(|((start, _), _)| std::cmp::Reverse(*start));
        let mut out = statement.to_string();
        for ((start, end), with) in spans {
            out.replace_range(start..end, &with);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OSM: &str = "CREATE FUNCTION maptile_for_point(bigint, bigint, integer) RETURNS integer\n    LANGUAGE c STRICT\n    AS '/srv/www/db/functions/libpgosm.so', 'maptile_for_point'";

    #[test]
    fn a_c_function_is_read_and_stubbed_with_its_signature() {
        let f = CFunction::parse(OSM).unwrap();
        assert_eq!(f.signature, "maptile_for_point(bigint, bigint, integer)");
        assert_eq!(f.library, "/srv/www/db/functions/libpgosm.so");
        let stub = f.stub(OSM);
        assert!(stub.starts_with("CREATE FUNCTION maptile_for_point(bigint, bigint, integer) RETURNS integer\n    LANGUAGE plpgsql STRICT\n    AS $seqmig_stand_in$BEGIN RAISE EXCEPTION"), "{stub}");
        assert!(!stub.contains("'maptile_for_point'"), "{stub}");
    }

    #[test]
    fn unavailable_extensions_are_left_out_and_listed() {
        let mut s =
            StandIns { available: ["plpgsql".to_string()].into_iter().collect(), ..StandIns::default() };
        assert_eq!(s.rewrite_statement("CREATE EXTENSION postgis"), None);
        assert_eq!(
            s.rewrite_statement("CREATE EXTENSION plpgsql").as_deref(),
            Some("CREATE EXTENSION plpgsql")
        );
        assert_eq!(
            s.used.iter().map(|u| u.to_string()).collect::<Vec<_>>(),
            vec!["extension postgis: not available on the server; left out (unproven)".to_string()]
        );
    }
}
