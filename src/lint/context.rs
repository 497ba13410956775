//! What the linter knows about the file so far: whether a transaction is open, which tables
//! the file itself created (new and empty, so most lock and rewrite rules do not apply), which
//! constraints were added `NOT VALID` in the open transaction, which columns are known to be
//! NOT NULL, which timeouts are set, and which statement took an ACCESS EXCLUSIVE lock.

use std::collections::{BTreeMap, BTreeSet};

use super::LintConfig;
use super::action::{Action, AlterOp, ConstraintKind, Name};
use crate::finding::Span;

/// PostgreSQL's table lock modes, weakest first (only the ones DDL takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lock {
    ShareUpdateExclusive,
    Share,
    ShareRowExclusive,
    AccessExclusive,
}

impl Lock {
    pub fn describe(self) -> &'static str {
        match self {
            Lock::ShareUpdateExclusive => "a SHARE UPDATE EXCLUSIVE lock (blocks other DDL and VACUUM)",
            Lock::Share => "a SHARE lock (blocks INSERT, UPDATE and DELETE)",
            Lock::ShareRowExclusive => "a SHARE ROW EXCLUSIVE lock (blocks INSERT, UPDATE and DELETE)",
            Lock::AccessExclusive => "an ACCESS EXCLUSIVE lock (blocks every read and write)",
        }
    }
}

/// What a file leaves behind for the files linted after it in the same run: once a migration
/// ran, its constraints (validated or not), NOT NULL columns and indexes exist. Being "new and
/// empty" and transaction state do not carry over: the next file may run months later.
#[derive(Debug, Clone, Default)]
pub struct Carry {
    not_null: BTreeSet<(Name, String)>,
    nullable: BTreeSet<(Name, String)>,
    checks: BTreeMap<String, (Name, String)>,
    validated: BTreeSet<String>,
    foreign_keys: BTreeSet<String>,
    indexes: Vec<(Option<String>, Name, Vec<String>)>,
    partitioned: BTreeSet<Name>,
}

impl Carry {
    /// What an existing schema tells the rules before the first file (`seqmig lint
    /// --schema`): which tables are partitioned, and which columns are NOT NULL or nullable.
    pub fn from_schema(schema: &crate::model::Schema) -> Carry {
        let name = |q: &crate::model::QualifiedName| Name {
            schema: q.schema.as_str().to_string(),
            name: q.name.as_str().to_string(),
        };
        let mut carry = Carry::default();
        for t in schema.tables.values() {
            if t.is_partitioned() {
                carry.partitioned.insert(name(&t.name));
            }
            for c in t.columns.iter() {
                let column = (name(&t.name), c.name.as_str().to_string());
                if c.not_null {
                    carry.not_null.insert(column);
                } else {
                    carry.nullable.insert(column);
                }
            }
        }
        carry
    }
}

#[derive(Debug)]
pub struct Ctx<'a> {
    pub config: &'a LintConfig,
    /// An explicit `BEGIN` is open (or the runner wraps the file in one).
    pub in_tx: bool,
    /// Where the open explicit transaction began.
    pub tx_span: Option<Span>,
    /// Tables created by this file: new and empty.
    pub created: BTreeSet<Name>,
    /// Columns added by this file, per table.
    pub added_columns: BTreeSet<(Name, String)>,
    /// Columns known to be NOT NULL (declared, or set by this file).
    pub not_null: BTreeSet<(Name, String)>,
    /// Columns known to allow NULL (added nullable, or NOT NULL dropped, by this run). Other
    /// columns of existing tables are unknown: rules about nullability do not guess.
    pub nullable: BTreeSet<(Name, String)>,
    /// CHECK constraints this file added, by name: table and expression.
    pub checks: BTreeMap<String, (Name, String)>,
    /// Constraints whose validation this file established (added valid, or validated).
    pub validated: BTreeSet<String>,
    /// Constraints added NOT VALID inside the open transaction.
    pub not_valid_in_tx: BTreeSet<String>,
    /// Foreign-key constraint names this file added.
    pub foreign_keys: BTreeSet<String>,
    /// Views this file created (a view under a renamed table's old name keeps old readers working).
    pub views: BTreeSet<Name>,
    /// Indexes this file created: name, table, columns.
    pub indexes: Vec<(Option<String>, Name, Vec<String>)>,
    /// Partitioned tables this run created (`PARTITION BY`): a migration that creates one
    /// tells the files after it what the table is.
    pub partitioned: BTreeSet<Name>,
    pub lock_timeout: bool,
    pub statement_timeout: bool,
    /// The timeout rules fire once per file.
    pub timeout_reported: bool,
    /// The statement of the open transaction that took an ACCESS EXCLUSIVE lock on an
    /// existing table, and whether the rule already fired for this transaction.
    pub exclusive_holder: Option<(Name, Span)>,
    pub exclusive_reported: bool,
}

impl<'a> Ctx<'a> {
    pub fn new(config: &'a LintConfig, carry: Carry) -> Self {
        Ctx {
            config,
            in_tx: config.assume_in_transaction,
            tx_span: None,
            created: BTreeSet::new(),
            added_columns: BTreeSet::new(),
            not_null: carry.not_null,
            nullable: carry.nullable,
            checks: carry.checks,
            validated: carry.validated,
            not_valid_in_tx: BTreeSet::new(),
            foreign_keys: carry.foreign_keys,
            views: BTreeSet::new(),
            indexes: carry.indexes,
            partitioned: carry.partitioned,
            lock_timeout: false,
            statement_timeout: false,
            timeout_reported: false,
            exclusive_holder: None,
            exclusive_reported: false,
        }
    }

    /// What the next file of the run inherits.
    pub fn carry(self) -> Carry {
        Carry {
            not_null: self.not_null,
            nullable: self.nullable,
            checks: self.checks,
            validated: self.validated,
            foreign_keys: self.foreign_keys,
            indexes: self.indexes,
            partitioned: self.partitioned,
        }
    }

    /// True when the table existed before this file: the rules about locks and rewrites
    /// only matter there.
    pub fn existing(&self, t: &Name) -> bool {
        !self.created.contains(t)
    }

    pub fn is_not_null(&self, t: &Name, column: &str) -> bool {
        self.not_null.contains(&(t.clone(), column.to_string()))
    }

    pub fn is_known_nullable(&self, t: &Name, column: &str) -> bool {
        self.nullable.contains(&(t.clone(), column.to_string()))
    }

    /// A validated `CHECK (col IS NOT NULL)` on the table exists, so `SET NOT NULL` can skip
    /// its scan (PostgreSQL 12+).
    pub fn has_validated_not_null_check(&self, t: &Name, column: &str) -> bool {
        self.checks.iter().any(|(name, (table, expr))| {
            table == t && self.validated.contains(name) && is_not_null_check(expr, column)
        })
    }

    /// The strongest lock the action takes on a table that existed before this file.
    pub fn lock_of(&self, a: &Action) -> Option<(Lock, Name)> {
        let (lock, table) = match a {
            Action::CreateIndex { table, concurrently: false, .. } => (Lock::Share, table),
            Action::CreateIndex { table, concurrently: true, .. } => (Lock::ShareUpdateExclusive, table),
            Action::Drop { kind: super::action::DropKind::Table, names } => {
                (Lock::AccessExclusive, names.first()?)
            }
            Action::Truncate { tables, .. } => (Lock::AccessExclusive, tables.first()?),
            // The index's table is not named; the index stands in for it.
            Action::DropIndex { names, concurrently: false } => (Lock::AccessExclusive, names.first()?),
            Action::VacuumFull { table: Some(t) } | Action::Cluster { table: Some(t) } => {
                (Lock::AccessExclusive, t)
            }
            Action::AlterTable { table, op } => {
                let lock = match op {
                    AlterOp::ValidateConstraint(_)
                    | AlterOp::AttachPartition { .. }
                    | AlterOp::DetachPartition { concurrently: true, .. } => Lock::ShareUpdateExclusive,
                    AlterOp::AddConstraint(c) if matches!(c.kind, ConstraintKind::ForeignKey { .. }) => {
                        Lock::ShareRowExclusive
                    }
                    AlterOp::Other => return None,
                    _ => Lock::AccessExclusive,
                };
                (lock, table)
            }
            _ => return None,
        };
        self.existing(table).then(|| (lock, table.clone()))
    }

    /// Records what the action did, after the rules judged it.
    pub fn apply(&mut self, a: &Action, span: &Span) {
        match a {
            Action::Begin => {
                self.in_tx = true;
                self.tx_span = Some(span.clone());
            }
            Action::Commit | Action::Rollback => {
                self.in_tx = false;
                self.tx_span = None;
                self.not_valid_in_tx.clear();
                self.exclusive_holder = None;
                self.exclusive_reported = false;
            }
            Action::Set { name, value } => {
                let set = !matches!(value.trim_matches('\'').trim(), "0" | "default");
                match name.as_str() {
                    "lock_timeout" => self.lock_timeout = set,
                    "statement_timeout" => self.statement_timeout = set,
                    _ => {}
                }
            }
            Action::CreateTable { table, columns, constraints, partitioned, .. } => {
                self.created.insert(table.clone());
                if *partitioned {
                    self.partitioned.insert(table.clone());
                }
                for c in columns {
                    if c.not_null {
                        self.not_null.insert((table.clone(), c.name.clone()));
                    }
                    if c.primary_key || c.unique {
                        self.indexes.push((None, table.clone(), vec![c.name.clone()]));
                    }
                }
                for c in constraints {
                    self.record_constraint(table, c);
                }
            }
            Action::CreateView { name } => {
                self.views.insert(name.clone());
            }
            Action::CreateIndex { name, table, columns, .. } => {
                self.indexes.push((name.clone(), table.clone(), columns.clone()));
            }
            Action::AlterTable { table, op } => match op {
                AlterOp::AddColumn(c) => {
                    let key = (table.clone(), c.name.clone());
                    self.added_columns.insert(key.clone());
                    if c.not_null {
                        self.not_null.insert(key);
                    } else {
                        self.nullable.insert(key);
                    }
                }
                AlterOp::SetNotNull(c) => {
                    self.nullable.remove(&(table.clone(), c.clone()));
                    self.not_null.insert((table.clone(), c.clone()));
                }
                AlterOp::DropNotNull(c) => {
                    self.not_null.remove(&(table.clone(), c.clone()));
                    self.nullable.insert((table.clone(), c.clone()));
                }
                AlterOp::RenameColumn { from, to } => self.rename_column(table, from, to),
                AlterOp::AddConstraint(c) => {
                    self.record_constraint(table, c);
                    if c.not_valid {
                        if let Some(n) = &c.name {
                            self.not_valid_in_tx.insert(n.clone());
                        }
                    }
                }
                AlterOp::ValidateConstraint(n) => {
                    self.validated.insert(n.clone());
                }
                AlterOp::RenameTable { to } => {
                    let renamed = Name { schema: table.schema.clone(), name: to.clone() };
                    if self.created.remove(table) {
                        self.created.insert(renamed);
                    }
                }
                _ => {}
            },
            _ => {}
        }
        if self.in_tx && self.exclusive_holder.is_none() {
            if let Some((Lock::AccessExclusive, table)) = self.lock_of(a) {
                self.exclusive_holder = Some((table, span.clone()));
            }
        }
    }

    /// Everything known about a column follows it to its new name (the switch phase of a
    /// type change renames the shadow column that carries the validated NOT NULL check).
    fn rename_column(&mut self, table: &Name, from: &str, to: &str) {
        let key = (table.clone(), from.to_string());
        let new_key = (table.clone(), to.to_string());
        for set in [&mut self.not_null, &mut self.nullable, &mut self.added_columns] {
            if set.remove(&key) {
                set.insert(new_key.clone());
            }
        }
        for (t, expr) in self.checks.values_mut() {
            if t == table && is_not_null_check(expr, from) {
                *expr = format!("{} is not null", crate::model::quote_ident(to));
            }
        }
        for (_, t, cols) in &mut self.indexes {
            if t == table {
                for c in cols.iter_mut().filter(|c| c.as_str() == from) {
                    *c = to.to_string();
                }
            }
        }
    }

    fn record_constraint(&mut self, table: &Name, c: &super::action::ConstraintSpec) {
        match &c.kind {
            ConstraintKind::Check { expr } => {
                if let Some(n) = &c.name {
                    self.checks.insert(n.clone(), (table.clone(), expr.clone()));
                }
            }
            ConstraintKind::ForeignKey { .. } => {
                if let Some(n) = &c.name {
                    self.foreign_keys.insert(n.clone());
                }
            }
            ConstraintKind::PrimaryKey { columns, .. } => {
                for col in columns {
                    self.not_null.insert((table.clone(), col.clone()));
                }
                self.indexes.push((c.name.clone(), table.clone(), columns.clone()));
            }
            ConstraintKind::Unique { columns, .. } => {
                self.indexes.push((c.name.clone(), table.clone(), columns.clone()));
            }
            ConstraintKind::NotNull { column } if !c.not_valid => {
                self.not_null.insert((table.clone(), column.clone()));
            }
            _ => {}
        }
        if !c.not_valid {
            if let Some(n) = &c.name {
                self.validated.insert(n.clone());
            }
        }
    }
}

/// `expr` is `col IS NOT NULL` (possibly parenthesised, possibly quoted).
pub fn is_not_null_check(expr: &str, column: &str) -> bool {
    let squeezed: String =
        expr.to_ascii_lowercase().chars().filter(|c| !c.is_whitespace() && *c != '(' && *c != ')').collect();
    let col: String = column.to_ascii_lowercase();
    squeezed == format!("{col}isnotnull") || squeezed == format!("\"{col}\"isnotnull")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_null_checks_are_recognised_in_any_spelling() {
        assert!(is_not_null_check("(email IS NOT NULL)", "email"));
        assert!(is_not_null_check("\"email\" is not null", "email"));
        assert!(!is_not_null_check("email <> ''", "email"));
    }
}
