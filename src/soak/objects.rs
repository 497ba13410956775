//! What a plan touches, read from the plan artifact's typed step effects (plan format v2):
//! the tables (for tiers and blast radius) and the *old path* — the columns, tables and
//! views that `contract` removes, which the old release reads and the new one must not.
//! `pg_stat_statements` query texts are matched against the old path by the identifiers
//! they spell, read with the parser's lexer ([`crate::parse::effects::identifiers`]), so
//! `"Weird ""name"""` and `full_name` vs `name` are told apart.

use std::collections::BTreeSet;
use std::fmt;

use crate::model::{Ident, QualifiedName};
use crate::plan::{Object, Phase, Plan};

/// Something the old release reads and `contract` removes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum OldObject {
    Column {
        table: QualifiedName,
        column: Ident,
    },
    /// A table or view dropped whole.
    Relation(QualifiedName),
}

impl fmt::Display for OldObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OldObject::Column { table, column } => write!(f, "{table}.{}", column.quoted_sql()),
            OldObject::Relation(t) => write!(f, "{t}"),
        }
    }
}

impl OldObject {
    /// Whether a statement text, as its identifiers ([`tokenize`]), names this object: the
    /// relation's name and, for a column, the column's name appear as identifiers.
    pub fn named_in(&self, identifiers: &[Ident]) -> bool {
        let has = |id: &Ident| identifiers.contains(id);
        match self {
            OldObject::Column { table, column } => has(&table.name) && has(column),
            OldObject::Relation(t) => has(&t.name),
        }
    }
}

/// The identifiers a `pg_stat_statements` query text spells: the one tokenizer outside the
/// planner, which is the parser's lexer.
pub fn tokenize(query: &str) -> Vec<Ident> {
    crate::parse::effects::identifiers(query)
}

/// The tables a plan touches, from its steps' lock relations, its backfills and its changes'
/// relations. May include index names; the gate resolves them against the catalog where
/// that matters.
pub fn plan_tables(plan: &Plan) -> Vec<QualifiedName> {
    let mut out = BTreeSet::new();
    for step in &plan.steps {
        out.extend(step.lock_relations().iter().cloned());
        if let Some(b) = &step.backfill {
            out.insert(b.table.clone());
        }
    }
    out.extend(plan.changes.iter().filter_map(|c| c.relation.clone()));
    // The ledger's own tables (the authority flags) are locked by plan steps but are not
    // application tables: they must not widen the blast radius.
    out.into_iter().filter(|q| q.schema.as_str() != "seqmig").collect()
}

/// The old path of a plan: the columns, tables and views its `contract` steps remove, under
/// the names the old release used (a brownout's parked name is not one). A column of a
/// table removed whole is covered by the table.
pub fn dropped_objects(plan: &Plan) -> Vec<OldObject> {
    let removed: Vec<&Object> =
        plan.steps_of(Phase::Contract).into_iter().flat_map(|s| s.effects.removes.iter()).collect();
    let mut out = BTreeSet::new();
    for o in &removed {
        match o {
            Object::Table { name } | Object::View { name } => {
                out.insert(OldObject::Relation(name.clone()));
            }
            Object::Column { table, name } => {
                let whole = removed.iter().any(|r| matches!(r, Object::Table { name } if name == table));
                if !whole {
                    out.insert(OldObject::Column { table: table.clone(), column: name.clone() });
                }
            }
            _ => {}
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{GateSpec, LockMode, PlannedChange, Step};

    pub(crate) fn step(id: &str, phase: Phase, sql: &str, target: &str) -> Step {
        Step {
            one_way: phase == Phase::Contract,
            ..Step::new(id, "c1", phase, sql, LockMode::AccessExclusive, target)
        }
    }

    fn plan(steps: Vec<Step>) -> Plan {
        let change = PlannedChange {
            relation: None,
            id: "c1".into(),
            kind: "rename_column".into(),
            object: "public.users.name".into(),
            one_way: true,
            summary: String::new(),
        };
        Plan::assemble(vec![change], steps, vec![], GateSpec::default())
    }

    #[test]
    fn ledger_flags_do_not_widen_the_blast_radius() {
        let p = plan(vec![
            step("s1", Phase::Switch, "UPDATE seqmig.flags SET authority = 'new'", "seqmig.flags"),
            step("s2", Phase::Contract, "ALTER TABLE public.users DROP COLUMN name", "public.users"),
        ]);
        assert_eq!(plan_tables(&p), vec![QualifiedName::of("public", "users")]);
    }

    #[test]
    fn contract_drops_are_the_old_path() {
        let p = plan(vec![
            step(
                "s1",
                Phase::Contract,
                "ALTER TABLE public.users DROP COLUMN IF EXISTS name;",
                "public.users",
            ),
            step("s2", Phase::Contract, r#"DROP TABLE IF EXISTS "Legacy"."Events ""x""", public.t2"#, ""),
            step(
                "s3",
                Phase::Contract,
                "ALTER TABLE public.orders RENAME COLUMN price TO price__brownout; \
                 ALTER TABLE ONLY public.orders DROP COLUMN price__brownout",
                "public.orders",
            ),
            step("s4", Phase::Contract, "DROP VIEW public.people", "public.people"),
            step("s5", Phase::Contract, "ALTER TABLE public.users DROP CONSTRAINT users_chk", "public.users"),
        ]);
        let got: Vec<String> = dropped_objects(&p).iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "public.orders.price",
                "public.orders.price__brownout",
                "public.users.name",
                r#""Legacy"."Events ""x""""#,
                "public.people",
                "public.t2",
            ]
        );
        let tables: Vec<String> = plan_tables(&p).iter().map(ToString::to_string).collect();
        assert_eq!(tables, ["public.orders", "public.people", "public.users"]);
    }

    #[test]
    fn statement_texts_match_by_identifier_not_substring() {
        let old = OldObject::Column {
            table: QualifiedName::of("public", "users"),
            column: Ident::exact("name").unwrap(),
        };
        assert!(old.named_in(&tokenize("SELECT name FROM users WHERE id = $1")));
        assert!(old.named_in(&tokenize(r#"select "name" from public."users""#)));
        assert!(!old.named_in(&tokenize("SELECT full_name FROM users WHERE id = $1")));
        assert!(!old.named_in(&tokenize("SELECT name FROM customers")));
        assert!(!old.named_in(&tokenize("SELECT full_name FROM users -- name")));
        assert!(!old.named_in(&tokenize("SELECT 'name' FROM users")));
        assert!(!old.named_in(&tokenize(r#"SELECT "Name" FROM users"#)));
        assert!(old.named_in(&tokenize("SELECT NAME FROM USERS")));
    }
}
