//! A step as a change's planner file produces it, before the DAG gives it an id: its
//! artifact fields plus what it needs, makes, removes and releases, from which the
//! cross-change edges are derived.

use crate::model::{Ident, QualifiedName};
use crate::plan::{BackfillSpec, LockMode, Phase};

/// Something a step depends on or affects, by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Res {
    Schema(Ident),
    Extension(Ident),
    Type(QualifiedName),
    Sequence(QualifiedName),
    Table(QualifiedName),
    /// A column under its name (after a swap, the name is bound to the new column).
    Column(QualifiedName, Ident),
    /// The column holds its final values (made by a backfill).
    Data(QualifiedName, Ident),
    /// The column is NOT NULL.
    NotNull(QualifiedName, Ident),
    /// A unique index or constraint over exactly these columns, usable by a foreign key.
    Key(QualifiedName, Vec<Ident>),
    Index(QualifiedName),
    Constraint(QualifiedName, Ident),
    View(QualifiedName),
    /// A function, procedure or aggregate by name, made by its create or replace: only for
    /// order (a view or a trigger on a view that calls it is created after it). seqmig keeps
    /// routines as text, so it is not part of a step's typed effects.
    Routine(QualifiedName),
}

#[derive(Debug, Clone)]
pub struct StepDraft {
    pub phase: Phase,
    /// One line for the runbook: what the step does and why.
    pub purpose: String,
    pub sql: String,
    /// `None` = one-way.
    pub rollback_sql: Option<String>,
    pub transactional: bool,
    pub lock: LockMode,
    /// The relations the lock is taken on (the artifact spells them as `lock_target` too).
    pub lock_on: Vec<QualifiedName>,
    /// Relations of `lock_on` locked in another mode than `lock` (which is the strongest).
    pub lock_modes: Vec<(QualifiedName, LockMode)>,
    pub rewrites_table: bool,
    pub scans_table: bool,
    pub backfill: Option<BackfillSpec>,
    /// A query returning one row with a boolean `ok` once the step took effect.
    pub verify: Option<String>,
    /// The phase is decided by the DAG (views: where the columns they read exist).
    pub floating: bool,
    pub needs: Vec<Res>,
    pub makes: Vec<Res>,
    pub removes: Vec<Res>,
    /// Resources this step stops depending on (so their removal must wait for it).
    pub releases: Vec<Res>,
    /// Resources whose removal must happen before this step.
    pub after_removal: Vec<Res>,
    /// Tables whose column, constraint and index changes must all come after this step (a
    /// new partition attached in its parent's current shape, before the parent changes).
    pub leads: Vec<QualifiedName>,
}

impl StepDraft {
    pub fn new(phase: Phase, purpose: impl Into<String>, sql: String) -> StepDraft {
        StepDraft {
            phase,
            purpose: purpose.into(),
            sql,
            rollback_sql: None,
            transactional: true,
            lock: LockMode::None,
            lock_on: Vec::new(),
            lock_modes: Vec::new(),
            rewrites_table: false,
            scans_table: false,
            backfill: None,
            verify: None,
            floating: false,
            needs: Vec::new(),
            makes: Vec::new(),
            removes: Vec::new(),
            releases: Vec::new(),
            after_removal: Vec::new(),
            leads: Vec::new(),
        }
    }

    pub fn rollback(mut self, sql: String) -> Self {
        self.rollback_sql = Some(sql);
        self
    }

    pub fn lock(mut self, mode: LockMode, target: &QualifiedName) -> Self {
        self.lock = mode;
        self.lock_on = vec![target.clone()];
        self
    }

    /// A step locking relations in different modes (a partition attach or detach): each
    /// relation with the mode PostgreSQL takes on it; the step's `lock` is the strongest.
    pub fn lock_each(mut self, locks: &[(LockMode, &QualifiedName)]) -> Self {
        self.lock = locks.iter().map(|(m, _)| *m).max().unwrap_or(LockMode::None);
        self.lock_on = locks.iter().map(|(_, r)| (*r).clone()).collect();
        self.lock_modes =
            locks.iter().filter(|(m, _)| *m != self.lock).map(|(m, r)| ((*r).clone(), *m)).collect();
        self
    }

    /// `CONCURRENTLY` and `ALTER TYPE … ADD VALUE`: must run outside a transaction block.
    pub fn outside_transaction(mut self) -> Self {
        self.transactional = false;
        self
    }

    pub fn rewrites(mut self, yes: bool) -> Self {
        self.rewrites_table = yes;
        self
    }

    pub fn scans(mut self) -> Self {
        self.scans_table = true;
        self
    }

    pub fn backfill(mut self, spec: BackfillSpec) -> Self {
        self.backfill = Some(spec);
        self
    }

    pub fn verify(mut self, sql: String) -> Self {
        self.verify = Some(sql);
        self
    }

    pub fn floating(mut self) -> Self {
        self.floating = true;
        self
    }

    pub fn needs(mut self, r: impl IntoIterator<Item = Res>) -> Self {
        self.needs.extend(r);
        self
    }

    /// Every column, constraint and index change of these tables comes after this step.
    pub fn leads(mut self, tables: impl IntoIterator<Item = QualifiedName>) -> Self {
        self.leads.extend(tables);
        self
    }

    pub fn makes(mut self, r: impl IntoIterator<Item = Res>) -> Self {
        self.makes.extend(r);
        self
    }

    pub fn removes(mut self, r: impl IntoIterator<Item = Res>) -> Self {
        self.removes.extend(r);
        self
    }

    pub fn releases(mut self, r: impl IntoIterator<Item = Res>) -> Self {
        self.releases.extend(r);
        self
    }

    pub fn after_removal(mut self, r: impl IntoIterator<Item = Res>) -> Self {
        self.after_removal.extend(r);
        self
    }
}
