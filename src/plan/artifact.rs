//! The plan as an artifact: the versioned JSON contract (`seqmig.plan/v3`, DESIGN.md §4) that
//! CI tools, the executor and the runbook read. Keys may be added; the existing ones keep
//! their meaning. The id is a SHA-256 of the canonical body, so a tampered file is detected.
//!
//! v2 adds each step's typed [`Effects`] (what it creates, removes, alters and reads, its
//! lock, its statements, the index it builds) and each change's relation, so that nothing
//! downstream reads step SQL to recover what the planner knew. A v1 plan (stored in the
//! ledger by an older seqmig, perhaps left halfway) still loads: its id is checked over its
//! v1 body, and its effects are derived once, here, by [`crate::parse::effects`]. A plan of a newer
//! format is refused, naming both versions.
//!
//! v3 adds the lock per relation ([`StepLock::per_relation`]) where a step takes different
//! modes on different relations (an attach: SHARE UPDATE EXCLUSIVE on the parent, ACCESS
//! EXCLUSIVE on the partition and the default partition). A new key changes the id an older
//! seqmig would compute, so it is a new format, which an older seqmig refuses by name; a v2
//! plan still loads as written (its id over its v2 body, one mode for every relation).

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::expect::Expect;
use crate::finding::Finding;
use crate::model::{Ident, QualifiedName};

pub const PLAN_FORMAT: &str = "seqmig.plan/v3";
/// The previous format, still read as written: one lock mode for every relation of a step.
pub const PLAN_FORMAT_V2: &str = "seqmig.plan/v2";
/// The first format, still read (see the module documentation).
pub const PLAN_FORMAT_V1: &str = "seqmig.plan/v1";
const FORMAT_PREFIX: &str = "seqmig.plan/v";
const FORMAT_VERSION: u32 = 3;

/// The five releases, always in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Expand,
    DualWrite,
    Backfill,
    Switch,
    Contract,
}

impl Phase {
    pub const ALL: [Phase; 5] =
        [Phase::Expand, Phase::DualWrite, Phase::Backfill, Phase::Switch, Phase::Contract];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Expand => "expand",
            Phase::DualWrite => "dual_write",
            Phase::Backfill => "backfill",
            Phase::Switch => "switch",
            Phase::Contract => "contract",
        }
    }

    /// 1-based position, used for file names (`1-expand.sql`).
    pub fn number(self) -> usize {
        Phase::ALL.iter().position(|p| *p == self).unwrap_or(0) + 1
    }

    pub fn parse(name: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// PostgreSQL table lock modes, weakest first, so `Ord` compares strength.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LockMode {
    #[serde(rename = "NONE")]
    None,
    #[serde(rename = "ACCESS SHARE")]
    AccessShare,
    #[serde(rename = "ROW SHARE")]
    RowShare,
    #[serde(rename = "ROW EXCLUSIVE")]
    RowExclusive,
    #[serde(rename = "SHARE UPDATE EXCLUSIVE")]
    ShareUpdateExclusive,
    #[serde(rename = "SHARE")]
    Share,
    #[serde(rename = "SHARE ROW EXCLUSIVE")]
    ShareRowExclusive,
    #[serde(rename = "EXCLUSIVE")]
    Exclusive,
    #[serde(rename = "ACCESS EXCLUSIVE")]
    AccessExclusive,
}

impl LockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::None => "NONE",
            LockMode::AccessShare => "ACCESS SHARE",
            LockMode::RowShare => "ROW SHARE",
            LockMode::RowExclusive => "ROW EXCLUSIVE",
            LockMode::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            LockMode::Share => "SHARE",
            LockMode::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            LockMode::Exclusive => "EXCLUSIVE",
            LockMode::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// The mode as `pg_locks.mode` names it (`AccessExclusiveLock`).
    pub fn pg_locks_name(self) -> &'static str {
        match self {
            LockMode::None => "",
            LockMode::AccessShare => "AccessShareLock",
            LockMode::RowShare => "RowShareLock",
            LockMode::RowExclusive => "RowExclusiveLock",
            LockMode::ShareUpdateExclusive => "ShareUpdateExclusiveLock",
            LockMode::Share => "ShareLock",
            LockMode::ShareRowExclusive => "ShareRowExclusiveLock",
            LockMode::Exclusive => "ExclusiveLock",
            LockMode::AccessExclusive => "AccessExclusiveLock",
        }
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One change found by the diff, as the plan reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedChange {
    pub id: String,
    /// snake_case change kind (`rename_column`).
    pub kind: String,
    /// The object, in SQL spelling (`public.users.name`).
    pub object: String,
    pub one_way: bool,
    pub summary: String,
    /// The table, view or other relation the change is about (for a column or constraint,
    /// its table); absent when the object is not a relation or a member of one (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<QualifiedName>,
}

/// An object a step affects, by kind and qualified name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Object {
    Schema { name: Ident },
    Extension { name: Ident },
    Type { name: QualifiedName },
    Sequence { name: QualifiedName },
    Table { name: QualifiedName },
    View { name: QualifiedName },
    Index { name: QualifiedName },
    Column { table: QualifiedName, name: Ident },
    Constraint { table: QualifiedName, name: Ident },
}

impl Object {
    /// The relation the object is or belongs to (a column's table), if any.
    pub fn relation(&self) -> Option<&QualifiedName> {
        match self {
            Object::Schema { .. } | Object::Extension { .. } | Object::Type { .. } => None,
            Object::Sequence { name }
            | Object::Table { name }
            | Object::View { name }
            | Object::Index { name } => Some(name),
            Object::Column { table, .. } | Object::Constraint { table, .. } => Some(table),
        }
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::Schema { name } | Object::Extension { name } => write!(f, "{}", name.quoted_sql()),
            Object::Type { name }
            | Object::Sequence { name }
            | Object::Table { name }
            | Object::View { name }
            | Object::Index { name } => write!(f, "{name}"),
            Object::Column { table, name } | Object::Constraint { table, name } => {
                write!(f, "{table}.{}", name.quoted_sql())
            }
        }
    }
}

/// The lock a step takes: its strongest mode, the relations it locks, and (v3), when the
/// modes differ by relation, each relation's own mode, as PostgreSQL 15 takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepLock {
    pub mode: LockMode,
    pub relations: Vec<QualifiedName>,
    /// Every relation of `relations` with its mode; empty when all take `mode`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_relation: Vec<RelationLock>,
}

/// One relation's lock mode within a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelationLock {
    pub relation: QualifiedName,
    pub mode: LockMode,
}

impl StepLock {
    /// The mode taken on `relation` (`mode` for one the list does not name).
    pub fn mode_on(&self, relation: &QualifiedName) -> LockMode {
        self.per_relation.iter().find(|r| &r.relation == relation).map_or(self.mode, |r| r.mode)
    }

    /// Each relation with its mode, in `relations` order.
    pub fn each(&self) -> Vec<(&QualifiedName, LockMode)> {
        self.relations.iter().map(|r| (r, self.mode_on(r))).collect()
    }
}

/// A `CREATE INDEX CONCURRENTLY` among a step's statements: which one, and what it builds.
/// A failed build leaves an INVALID index, which the executor drops before trying again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexBuild {
    /// Position in the statement list it belongs to.
    pub statement: usize,
    /// The index, in its table's schema.
    pub index: QualifiedName,
    pub table: QualifiedName,
}

/// A `DETACH PARTITION … CONCURRENTLY` among a step's statements. It runs in two
/// transactions; interrupted between them, it leaves the partition "pending detach", where
/// running it again fails (55000) and only `DETACH PARTITION … FINALIZE` goes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionDetach {
    /// Position in the statement list it belongs to.
    pub statement: usize,
    pub parent: QualifiedName,
    pub partition: QualifiedName,
}

/// What a step does, typed (v2): recorded by the planner, read by exec, soak and rehearse.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effects {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub creates: Vec<Object>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removes: Vec<Object>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alters: Vec<Object>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reads: Vec<Object>,
    /// Absent when the step takes no table lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<StepLock>,
    /// `sql` as the statements it is made of (empty for a backfill, whose batches are in
    /// `backfill`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statements: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollback_statements: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builds_index: Option<IndexBuild>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_builds_index: Option<IndexBuild>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detaches: Option<PartitionDetach>,
}

impl Effects {
    pub fn is_empty(&self) -> bool {
        *self == Effects::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseSteps {
    pub name: Phase,
    pub steps: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub id: String,
    pub change: String,
    pub phase: Phase,
    /// The SQL to run; for a backfill step, the SQL of one batch is in `backfill` instead and
    /// this holds a comment describing it.
    pub sql: String,
    /// `None` = one-way.
    pub rollback_sql: Option<String>,
    pub one_way: bool,
    /// False for `CONCURRENTLY` and `ALTER TYPE … ADD VALUE` on old servers: run outside a
    /// transaction.
    pub transactional: bool,
    pub lock: LockMode,
    /// The relation the lock is taken on (SQL spelling), empty when none.
    pub lock_target: String,
    pub rewrites_table: bool,
    /// Whether the step reads every row (VALIDATE, CREATE INDEX, SET NOT NULL without a check).
    #[serde(default)]
    pub scans_table: bool,
    pub depends_on: Vec<String>,
    /// Present on batched row copies; the executor's backfill engine runs these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill: Option<BackfillSpec>,
    /// What the objects this step touches must look like before its phase; `apply` checks
    /// them against the catalog before changing anything and refuses on drift. Absent in
    /// plans made before the check existed (they load, and are not checked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expects: Vec<Expect>,
    /// What the step does, typed (v2). Derived on load for a v1 plan.
    #[serde(default, skip_serializing_if = "Effects::is_empty")]
    pub effects: Effects,
}

/// What the backfill engine needs to copy existing rows into the new shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillSpec {
    pub table: QualifiedName,
    /// The column written; nothing else is.
    pub target_column: Ident,
    /// SQL expression over the row's current columns giving the new value (`up`), or a fill
    /// value for a column becoming NOT NULL.
    pub expr: String,
    /// Only rows matching this still need work, e.g. `price_cents IS DISTINCT FROM (…)`.
    pub pending_predicate: String,
}

impl BackfillSpec {
    /// The pending predicate of a backfill that only gives NULLs a value (a fill, a volatile
    /// default): `column IS NULL`.
    pub fn nulls_of(column: &Ident) -> String {
        format!("{} IS NULL", column.quoted_sql())
    }

    /// Whether it only gives the target column's NULLs a value, keeping every other value.
    pub fn fills_nulls(&self) -> bool {
        self.pending_predicate == Self::nulls_of(&self.target_column)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateCriterion {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateSpec {
    pub criteria: Vec<GateCriterion>,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub format: String,
    /// `sha256:<hex>` of the canonical body (this struct serialised with `id` empty).
    pub id: String,
    pub changes: Vec<PlannedChange>,
    pub phases: Vec<PhaseSteps>,
    pub steps: Vec<Step>,
    pub findings: Vec<Finding>,
    pub gate: GateSpec,
    /// The plans in flight that this plan was made on top of (planned from a live database
    /// while they were active): its starting schema is the one they leave when they complete.
    /// Absent when there were none, so such plans keep their bytes and id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assumes: Vec<AssumedPlan>,
    /// The plan this one is stacked on (`seqmig plan --after <plan-id>`, issue 20): the full
    /// id. It may touch that plan's objects, and each of its phases runs only once that plan
    /// has completed the same phase (book: several-plans.md). Absent for unstacked plans,
    /// which keep their bytes and id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// `hmac-sha256:<hex>` over [`Plan::canonical_bytes`], written by `seqmig plan
    /// --sign-key-file` (issue 18.6; see `super::signature`). Outside the id, so signing
    /// does not change it; absent from unsigned plans, whose JSON is as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// A plan in flight that a plan assumes completes first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssumedPlan {
    /// The full id (`sha256:…`).
    pub id: String,
    /// The last phase it had completed when the new plan was made (`none` before expand).
    pub through: String,
}

/// Why a stored or given plan cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanFileError {
    #[error("plan is not valid JSON of format {PLAN_FORMAT}: {0}")]
    Json(#[from] serde_json::Error),
    #[error("plan has format '{0}', expected '{PLAN_FORMAT}'")]
    Format(String),
    #[error(
        "plan has format '{0}', newer than '{PLAN_FORMAT}', the newest this seqmig {version} reads: upgrade seqmig to use it; nothing was changed",
        version = env!("CARGO_PKG_VERSION")
    )]
    Newer(String),
    #[error("plan id {stated} does not match its content ({actual}): the file was edited after planning")]
    Tampered { stated: String, actual: String },
}

impl Step {
    /// A transactional step with no rollback (so one-way), no dependency and no backfill,
    /// rewriting and scanning nothing: how a step is built by hand; set what differs after.
    pub fn new(id: &str, change: &str, phase: Phase, sql: &str, lock: LockMode, lock_target: &str) -> Step {
        Step {
            id: id.into(),
            change: change.into(),
            phase,
            sql: sql.into(),
            rollback_sql: None,
            one_way: true,
            transactional: true,
            lock,
            lock_target: lock_target.into(),
            rewrites_table: false,
            scans_table: false,
            depends_on: vec![],
            backfill: None,
            expects: vec![],
            effects: Effects::default(),
        }
    }

    /// The relations the step locks (typed), empty when none.
    pub fn lock_relations(&self) -> &[QualifiedName] {
        self.effects.lock.as_ref().map(|l| l.relations.as_slice()).unwrap_or(&[])
    }
}

impl Plan {
    /// A sealed plan of `steps`, in their order; every phase is listed, with the ids of its
    /// steps. How a plan is built by hand: a step given without effects gets them read from
    /// its SQL and lock target (as a v1 plan's are), a change without a relation gets the one
    /// its object names.
    pub fn assemble(
        changes: Vec<PlannedChange>,
        steps: Vec<Step>,
        findings: Vec<Finding>,
        gate: GateSpec,
    ) -> Plan {
        let mut plan = Plan {
            format: PLAN_FORMAT.into(),
            id: String::new(),
            changes,
            phases: vec![],
            steps,
            findings,
            gate,
            assumes: vec![],
            after: None,
            signature: None,
        };
        crate::parse::effects::derive_v1(&mut plan);
        Plan::assemble_typed(plan.changes, plan.steps, plan.findings, plan.gate)
    }

    /// [`Plan::assemble`] for the planner, whose steps carry their effects already.
    pub(crate) fn assemble_typed(
        changes: Vec<PlannedChange>,
        steps: Vec<Step>,
        findings: Vec<Finding>,
        gate: GateSpec,
    ) -> Plan {
        let phases = Phase::ALL
            .iter()
            .map(|&p| PhaseSteps {
                name: p,
                steps: steps.iter().filter(|s| s.phase == p).map(|s| s.id.clone()).collect(),
            })
            .collect();
        Plan {
            format: PLAN_FORMAT.into(),
            id: String::new(),
            changes,
            phases,
            steps,
            findings,
            gate,
            assumes: vec![],
            after: None,
            signature: None,
        }
        .seal()
    }

    /// The id of the current content: `sha256:` + hex of the canonical JSON with `id` empty.
    /// A v1 plan's id covers its v1 body only: the effects derived on load are not part of it.
    pub fn compute_id(&self) -> String {
        let digest = Sha256::digest(self.canonical_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }

    /// The canonical body: this plan as compact JSON with `id` empty and no signature. The
    /// id hashes it and a signature authenticates it.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut body = Plan { id: String::new(), signature: None, ..self.clone() };
        if body.format == PLAN_FORMAT_V1 {
            for s in &mut body.steps {
                s.effects = Effects::default();
            }
            for c in &mut body.changes {
                c.relation = None;
            }
        }
        serde_json::to_vec(&body).expect("a plan always serialises")
    }

    /// Sets `id` from the content; call last, after every other field is final.
    pub fn seal(mut self) -> Plan {
        self.id = self.compute_id();
        self
    }

    /// Reads a plan file and refuses one whose content does not match its id. A v1 plan is
    /// read as v1 (id over its v1 body) and gets its effects derived; a newer format is
    /// refused before anything else is read, naming both versions.
    pub fn from_json(text: &str) -> Result<Plan, PlanFileError> {
        #[derive(Deserialize)]
        struct Head {
            format: String,
        }
        let head: Head = serde_json::from_str(text)?;
        let newer = head
            .format
            .strip_prefix(FORMAT_PREFIX)
            .and_then(|v| v.parse::<u32>().ok())
            .is_some_and(|v| v > FORMAT_VERSION);
        if newer {
            return Err(PlanFileError::Newer(head.format));
        }
        if head.format != PLAN_FORMAT && head.format != PLAN_FORMAT_V2 && head.format != PLAN_FORMAT_V1 {
            return Err(PlanFileError::Format(head.format));
        }
        let mut plan: Plan = serde_json::from_str(text)?;
        let actual = plan.compute_id();
        if actual != plan.id {
            return Err(PlanFileError::Tampered { stated: plan.id, actual });
        }
        if plan.format == PLAN_FORMAT_V1 {
            crate::parse::effects::derive_v1(&mut plan);
        }
        Ok(plan)
    }

    /// True for a plan read from the v1 format (its effects were derived on load).
    pub fn is_v1(&self) -> bool {
        self.format == PLAN_FORMAT_V1
    }

    pub fn to_json_pretty(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a plan always serialises");
        s.push('\n');
        s
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// Steps of one phase in plan order.
    pub fn steps_of(&self, phase: Phase) -> Vec<&Step> {
        self.phases
            .iter()
            .filter(|p| p.name == phase)
            .flat_map(|p| p.steps.iter())
            .filter_map(|id| self.step(id))
            .collect()
    }

    /// True when any finding blocks (exit 1).
    pub fn is_blocked(&self) -> bool {
        self.findings.iter().any(Finding::is_error)
    }

    /// The short form of the id shown to humans (`3f2a9c1b`).
    pub fn short_id(&self) -> &str {
        let hex = self.id.strip_prefix("sha256:").unwrap_or(&self.id);
        &hex[..hex.len().min(12)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Plan {
        Plan {
            format: PLAN_FORMAT.into(),
            id: String::new(),
            changes: vec![],
            phases: vec![PhaseSteps { name: Phase::Expand, steps: vec!["s1".into()] }],
            steps: vec![Step {
                id: "s1".into(),
                change: "c1".into(),
                phase: Phase::Expand,
                sql: "ALTER TABLE public.t ADD COLUMN x integer".into(),
                rollback_sql: Some("ALTER TABLE public.t DROP COLUMN x".into()),
                one_way: false,
                transactional: true,
                lock: LockMode::AccessExclusive,
                lock_target: "public.t".into(),
                rewrites_table: false,
                scans_table: false,
                depends_on: vec![],
                backfill: None,
                expects: vec![],
                effects: Effects::default(),
            }],
            findings: vec![],
            gate: GateSpec::default(),
            assumes: vec![],
            after: None,
            signature: None,
        }
        .seal()
    }

    #[test]
    fn tampered_plan_is_refused() {
        let plan = sample();
        let json = plan.to_json_pretty();
        assert_eq!(Plan::from_json(&json).unwrap(), plan);
        let edited = json.replace("ADD COLUMN x integer", "ADD COLUMN x bigint");
        assert!(matches!(Plan::from_json(&edited), Err(PlanFileError::Tampered { .. })));
    }

    #[test]
    fn phases_and_locks_serialise_as_documented() {
        let json = serde_json::to_value(sample()).unwrap();
        assert_eq!(json["phases"][0]["name"], "expand");
        assert_eq!(json["steps"][0]["lock"], "ACCESS EXCLUSIVE");
        assert!(LockMode::AccessExclusive > LockMode::ShareUpdateExclusive);
        assert_eq!(Phase::parse("dual_write"), Some(Phase::DualWrite));
    }
}
