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

use super::{AssumedPlan, Phase, Plan, Planned};
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{GateSpec, LockMode, PlannedChange, Step};

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
