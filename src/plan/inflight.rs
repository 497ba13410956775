//! Plans in flight (issue 20): what a new plan may assume of the plans still active in the
//! ledger, and which objects it must leave to them.
//!
//! A plan made from a live database while another plan is in flight starts from the schema
//! that database will have once the in-flight plans complete: the live catalog with the
//! steps they have not run yet replayed on top, in plan order ([`completed_schema`]). Their
//! machinery (shadow and parked columns, dual-write triggers, helper checks, standby
//! indexes) is created and removed by their own steps, so it is in neither the live schema
//! after the replay nor the new plan; flags and helper functions live in the `seqmig`
//! schema, which introspection never reads. The plan records the plans it assumes
//! ([`super::AssumedPlan`]).
//!
//! Two plans overlap when they name a common object ([`plan_objects`]); a new plan that
//! overlaps a plan in flight is blocked at `plan` and refused at `apply`.

use std::collections::BTreeSet;

use super::{AssumedPlan, Object, Phase, Plan, Planned, Step};
use crate::finding::{Finding, FindingCode};
use crate::model::Schema;

/// A plan active in the ledger and the ids of its steps that are applied.
#[derive(Debug, Clone)]
pub struct InFlight {
    pub plan: Plan,
    pub applied: BTreeSet<String>,
}

impl InFlight {
    /// The last phase with steps whose steps are all applied, every earlier one too
    /// (`none` before the first).
    pub fn through(&self) -> String {
        let mut through = "none".to_string();
        for p in Phase::ALL {
            let steps = self.plan.steps_of(p);
            if steps.is_empty() {
                continue;
            }
            if !steps.iter().all(|s| self.applied.contains(&s.id)) {
                break;
            }
            through = p.to_string();
        }
        through
    }
}

/// The objects a plan touches, as qualified SQL names: each change's object and, for a
/// name inside a relation (`schema.table.column`, a constraint), the relation too; the
/// relation each step locks and each backfill writes; every object of each step's typed
/// effects (created, removed, altered or read) with its relation. seqmig's own objects (`seqmig.flags`)
/// are left out: every plan uses them, each under its own keys. Relations are included so
/// that two plans on the same table overlap even when they change different columns: their
/// steps take the same table's locks and check its shape before each phase.
pub fn plan_objects(plan: &Plan) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut add = |name: &str| {
        let Some(parts) = crate::parse::text::split_qualified(name) else {
            out.insert(name.to_string());
            return;
        };
        if parts.first().is_some_and(|s| s == "seqmig") || parts.iter().any(String::is_empty) {
            return;
        }
        if parts.len() >= 3 {
            out.insert(parts[..2].join("."));
        }
        out.insert(parts.join("."));
    };
    for c in &plan.changes {
        add(&c.object);
    }
    for s in &plan.steps {
        if !s.lock_target.is_empty() {
            add(&s.lock_target);
        }
        if let Some(b) = &s.backfill {
            add(&b.table.quoted());
        }
        // The typed effects (plan format v2): what each step creates, removes, alters and
        // reads, and the relations it locks. Reads count: a view or a foreign key over a
        // table another plan reshapes depends on that reshaping.
        let e = &s.effects;
        for o in e.creates.iter().chain(&e.removes).chain(&e.alters).chain(&e.reads) {
            if let Some(r) = o.relation() {
                add(&r.quoted());
            }
            add(&o.to_string());
        }
        for r in e.lock.iter().flat_map(|l| &l.relations) {
            add(&r.quoted());
        }
    }
    out
}

/// The objects both plans touch.
pub fn overlap(a: &Plan, b: &Plan) -> BTreeSet<String> {
    plan_objects(a).intersection(&plan_objects(b)).cloned().collect()
}

/// The full id of the plan in flight `given` names (id or unambiguous prefix, as
/// [`crate::ledger::resolve_plan_id`] reads it), for `seqmig plan --after`.
pub fn stack_target(flights: &[InFlight], given: &str) -> Result<String, String> {
    let hex = given.strip_prefix("sha256:").unwrap_or(given);
    let matches: Vec<&InFlight> = flights
        .iter()
        .filter(|f| {
            !hex.is_empty() && f.plan.id.strip_prefix("sha256:").unwrap_or(&f.plan.id).starts_with(hex)
        })
        .collect();
    let list = || {
        flights.iter().map(|f| format!("{} (through {})", f.plan.short_id(), f.through())).collect::<Vec<_>>()
    };
    match matches.as_slice() {
        [one] => Ok(one.plan.id.clone()),
        [] if flights.is_empty() => Err(format!("--after {given}: no plan is in flight in this database")),
        [] => {
            Err(format!("--after {given}: no plan in flight has this id; in flight: {}", list().join(", ")))
        }
        _ => Err(format!(
            "--after {given}: the prefix matches several plans in flight: {}",
            matches.iter().map(|f| f.plan.short_id().to_string()).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// The schema `live` will have once every plan of `flights` has completed: their steps not
/// applied yet, replayed in plan order (oldest plan first). An error says which statement
/// could not be read soundly; the caller blocks the new plan rather than guess.
pub fn completed_schema(live: &Schema, flights: &[InFlight]) -> Result<Schema, String> {
    let mut schema = live.clone();
    for f in flights {
        let mut sql = String::new();
        for p in Phase::ALL {
            for s in f.plan.steps_of(p) {
                if f.applied.contains(&s.id) || s.backfill.is_some() {
                    continue;
                }
                sql.push_str(s.sql.trim_end());
                if !sql.ends_with(';') {
                    sql.push(';');
                }
                sql.push('\n');
            }
        }
        if sql.trim().is_empty() {
            continue;
        }
        let file = format!("plan {}", f.plan.short_id());
        let loaded = crate::parse::replay_onto(schema, &file, &sql).map_err(|e| e.to_string())?;
        if let Some(bad) = loaded.report.findings.first() {
            return Err(format!("{}: {}", bad.object, bad.message));
        }
        schema = loaded.schema;
    }
    Ok(schema)
}

/// Records on the new plan the plans it assumes and blocks it where it overlaps one of
/// them, or where their completed schema could not be derived (`derived`); re-seals it.
pub fn assume(planned: &mut Planned, flights: &[InFlight], derived: &Result<Schema, String>) {
    if flights.is_empty() {
        return;
    }
    let plan = &mut planned.plan;
    if let Err(why) = derived {
        plan.findings.push(
            Finding::error(
                FindingCode::InflightSchemaUnknown,
                "seqmig.plans",
                format!(
                    "the schema the plans in flight leave when they complete could not be derived ({why}); \
                     this plan was made from the live schema and may undo them"
                ),
            )
            .with_help("complete or roll back the plans in flight, then plan again"),
        );
    }
    for f in flights {
        // Stacked on it (`--after`): touching its objects is the point.
        let stacked = plan.after.as_deref() == Some(f.plan.id.as_str());
        for object in overlap(plan, &f.plan).into_iter().filter(|_| !stacked) {
            plan.findings.push(
                Finding::error(
                    FindingCode::InflightOverlap,
                    object.clone(),
                    format!(
                        "{object} is also changed by plan {}, which is in flight (through {}); \
                         `seqmig apply` refuses this plan until that one completes or is rolled back",
                        f.plan.short_id(),
                        f.through()
                    ),
                )
                .with_help(format!(
                    "finish plan {} (or roll it back) first, then plan this change again",
                    f.plan.short_id()
                )),
            );
        }
        plan.assumes.push(AssumedPlan { id: f.plan.id.clone(), through: f.through() });
    }
    *plan = plan.clone().seal();
}

/// Why a plan stacked on another may not contract before it ([`stacked_contract_conflict`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContractConflict {
    /// The stacked plan's contract removes `object`, which the plan below still reads,
    /// creates, alters or removes in one of its steps: its rollback restores or undoes them
    /// and its own contract still runs on them.
    Removes { object: String },
    /// The stacked plan uses `object`, which the plan below created or changed and its
    /// rollback would remove or restore under it.
    Uses { object: String },
    /// A plan of format v1: its effects were derived from the SQL of its contract alone, too
    /// little to rule anything out.
    Untyped { plan: String },
}

impl std::fmt::Display for ContractConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContractConflict::Removes { object } => {
                write!(
                    f,
                    "its contract removes {object}, which the rollback or the contract of that plan still needs"
                )
            }
            ContractConflict::Uses { object } => {
                write!(f, "it uses {object}, which the rollback of that plan would remove or restore")
            }
            ContractConflict::Untyped { plan } => {
                write!(f, "plan {plan} has no typed effects (plan format v1) to rule that out")
            }
        }
    }
}

/// The objects of `steps`' typed effects (created, removed, altered or read). A table or
/// view that is only altered is left out: every `ALTER TABLE` step lists its table so, as
/// the relation it locks, which says nothing about which of its columns it needs.
fn effect_objects<'a>(steps: impl Iterator<Item = &'a Step>, undone_only: bool) -> Vec<&'a Object> {
    let mut out = Vec::new();
    for s in steps {
        let e = &s.effects;
        let altered = e.alters.iter().filter(|o| !matches!(o, Object::Table { .. } | Object::View { .. }));
        if undone_only {
            out.extend(e.creates.iter().chain(&e.removes).chain(altered));
        } else {
            out.extend(e.creates.iter().chain(&e.removes).chain(altered).chain(&e.reads));
        }
    }
    out.retain(|o| o.relation().is_none_or(|r| r.schema.as_str() != "seqmig"));
    out
}

/// Whether one object is the other or lies inside it (a column of a table).
fn touches(x: &Object, y: &Object) -> bool {
    let inside = |a: &Object, b: &Object| match b {
        Object::Table { name } | Object::View { name } => a.relation() == Some(name),
        _ => false,
    };
    x == y || inside(x, y) || inside(y, x)
}

/// The object's own name (a column's, not its table's).
fn own_name(o: &Object) -> &crate::model::Ident {
    match o {
        Object::Schema { name } | Object::Extension { name } => name,
        Object::Type { name }
        | Object::Sequence { name }
        | Object::Table { name }
        | Object::View { name }
        | Object::Index { name } => &name.name,
        Object::Column { name, .. } | Object::Constraint { name, .. } => name,
    }
}

/// Whether a statement or rollback statement of a step on `o`'s relation spells `o`'s name:
/// a net under the typed effects for names they do not list (a column an index or a check
/// of the other plan names). Spelling it is enough: it only makes a stacked plan wait.
fn spelled<'a>(steps: impl Iterator<Item = &'a Step>, o: &Object) -> bool {
    let name = own_name(o);
    steps
        .filter(|s| o.relation().is_none_or(|r| s.lock_relations().contains(r)))
        .flat_map(|s| s.effects.statements.iter().chain(&s.effects.rollback_statements))
        .any(|sql| crate::parse::effects::identifiers(sql).contains(name))
}

/// Whether `stacked`'s contract must wait for `below`'s contract, which is stacked on (the
/// rule of book/src/several-plans.md, "Stacking a plan on another"). Once `below` is past
/// `switch`, the stacked plan's contract may run before `below`'s unless:
///
/// - it removes an object that a step of `below` creates, removes, alters or reads (or one
///   whose name such a step's SQL or rollback SQL spells on the same table): `below`'s
///   rollback restores or undoes those steps and its contract still runs on them;
/// - a step of `stacked` creates, removes, alters or reads an object that a non-contract step
///   of `below` created, removed or altered (or spells its name): `below`'s rollback would
///   remove or restore it under the stacked plan, which by then is complete and cannot be
///   rolled back first;
/// - either plan has no typed effects (format v1).
///
/// The same answer lets `below` roll back while `stacked` is complete.
pub fn stacked_contract_conflict(stacked: &Plan, below: &Plan) -> Option<ContractConflict> {
    for p in [stacked, below] {
        if p.is_v1() {
            return Some(ContractConflict::Untyped { plan: p.short_id().to_string() });
        }
    }
    let contract = || stacked.steps.iter().filter(|s| s.phase == Phase::Contract);
    for removed in contract().flat_map(|s| &s.effects.removes) {
        let needed = effect_objects(below.steps.iter(), false).into_iter().any(|y| touches(removed, y));
        if needed || spelled(below.steps.iter(), removed) {
            return Some(ContractConflict::Removes { object: removed.to_string() });
        }
    }
    let undone = || below.steps.iter().filter(|s| s.phase != Phase::Contract);
    let used = effect_objects(stacked.steps.iter(), false);
    for y in effect_objects(undone(), true) {
        if used.iter().any(|x| touches(x, y)) || spelled(stacked.steps.iter(), y) {
            return Some(ContractConflict::Uses { object: y.to_string() });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Ident, QualifiedName};
    use crate::plan::{Effects, GateSpec, LockMode, PlannedChange, Step};

    fn plan(object: &str, lock_target: &str) -> Plan {
        let change = PlannedChange {
            id: "c1".into(),
            kind: "rename_column".into(),
            object: object.into(),
            one_way: true,
            summary: String::new(),
            relation: None,
        };
        let steps = vec![
            Step::new("s1", "c1", Phase::Expand, "SELECT 1", LockMode::AccessExclusive, lock_target),
            Step::new("s2", "c1", Phase::Expand, "SELECT 1", LockMode::RowExclusive, "seqmig.flags"),
        ];
        Plan::assemble(vec![change], steps, vec![], GateSpec::default())
    }

    #[test]
    fn objects_are_names_and_their_tables_without_seqmig_own() {
        let a = plan("public.users.name", "public.users");
        let names: Vec<String> = plan_objects(&a).into_iter().collect();
        assert_eq!(names, vec!["public.users".to_string(), "public.users.name".to_string()]);
        let b = plan("public.orders.note", "public.orders");
        assert!(overlap(&a, &b).is_empty(), "seqmig.flags is every plan's and is no overlap");
        let c = plan("public.users.email", "public.users");
        assert_eq!(overlap(&a, &c).into_iter().collect::<Vec<_>>(), vec!["public.users".to_string()]);
        let quoted = plan("public.\"a.b\".c", "public.\"a.b\"");
        assert!(plan_objects(&quoted).contains("public.\"a.b\""));
    }

    /// A plan on `public.users` whose one step per phase has these typed effects.
    fn typed(steps: Vec<(Phase, &str, Effects)>) -> Plan {
        let steps = steps
            .into_iter()
            .enumerate()
            .map(|(i, (phase, sql, effects))| Step {
                effects,
                ..Step::new(&format!("s{i}"), "c1", phase, sql, LockMode::AccessExclusive, "public.users")
            })
            .collect();
        let change = PlannedChange {
            id: "c1".into(),
            kind: "rename_column".into(),
            object: "public.users.x".into(),
            one_way: true,
            summary: String::new(),
            relation: None,
        };
        Plan::assemble(vec![change], steps, vec![], GateSpec::default())
    }

    fn column(name: &str) -> Object {
        Object::Column { table: QualifiedName::of("public", "users"), name: Ident::exact(name).unwrap() }
    }

    fn table() -> Object {
        Object::Table { name: QualifiedName::of("public", "users") }
    }

    #[test]
    fn a_stacked_contract_waits_only_for_what_lies_between_the_plans() {
        let lock = |o: Vec<Object>, kind: &str| {
            let mut e = Effects { alters: vec![table()], ..Effects::default() };
            match kind {
                "creates" => e.creates = o,
                "removes" => e.removes = o,
                _ => e.reads = o,
            }
            e
        };
        // A creates full_name (expand) and reads name and full_name (dual-write).
        let a = typed(vec![
            (
                Phase::Expand,
                "ALTER TABLE public.users ADD COLUMN full_name text",
                lock(vec![column("full_name")], "creates"),
            ),
            (Phase::DualWrite, "SELECT 1", lock(vec![column("name"), column("full_name")], "reads")),
        ]);
        // D drops email: only the table in common, which both merely lock.
        let d = typed(vec![(
            Phase::Contract,
            "ALTER TABLE public.users DROP COLUMN email",
            lock(vec![column("email")], "removes"),
        )]);
        assert_eq!(stacked_contract_conflict(&d, &a), None);
        // E drops full_name, which A created.
        let e = typed(vec![(
            Phase::Contract,
            "ALTER TABLE public.users DROP COLUMN full_name",
            lock(vec![column("full_name")], "removes"),
        )]);
        assert_eq!(
            stacked_contract_conflict(&e, &a),
            Some(ContractConflict::Removes { object: "public.users.full_name".into() })
        );
        // F drops the whole table A works in.
        let f = typed(vec![(Phase::Contract, "DROP TABLE public.users", lock(vec![table()], "removes"))]);
        assert!(matches!(stacked_contract_conflict(&f, &a), Some(ContractConflict::Removes { .. })));
        // G reads full_name, which A's rollback of expand drops.
        let g = typed(vec![(Phase::Expand, "SELECT 1", lock(vec![column("full_name")], "reads"))]);
        assert_eq!(
            stacked_contract_conflict(&g, &a),
            Some(ContractConflict::Uses { object: "public.users.full_name".into() })
        );
        // A v1 plan has no typed effects to rule anything out.
        let mut old = d.clone();
        old.format = crate::plan::PLAN_FORMAT_V1.into();
        assert!(matches!(stacked_contract_conflict(&old, &a), Some(ContractConflict::Untyped { .. })));
    }

    #[test]
    fn through_is_the_last_complete_phase_with_steps() {
        let a = plan("public.users.name", "public.users");
        let mut f = InFlight { plan: a, applied: BTreeSet::new() };
        assert_eq!(f.through(), "none");
        f.applied.insert("s1".into());
        assert_eq!(f.through(), "none");
        f.applied.insert("s2".into());
        assert_eq!(f.through(), "expand");
    }
}
