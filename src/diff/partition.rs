//! Partitions in the diff (issue 21.2): PostgreSQL propagates column changes (add, drop,
//! rename, type, default, NOT NULL) and CHECK constraints from a partitioned table to its
//! partitions, and refuses most of them on a partition directly (SQLSTATE 42809: "cannot add
//! column to a partition"). So a partition whose parent is paired is compared on what is its
//! own: columns its parent lacks, and constraints not attached to a parent's key.

use super::Differ;
use crate::finding::{Finding, FindingCode};
use crate::model::{ConstraintKind, IndexExpr, QualifiedName, Schema, Table};

impl Differ<'_> {
    /// `cur` and `des` without what their parents give them, when both are partitions of the
    /// same (paired) parent; `None` when the table is compared whole.
    pub(super) fn partition_own_parts(&self, cur: &Table, des: &Table) -> Option<(Table, Table)> {
        let (pc, pd) = (cur.partition_of.as_ref()?, des.partition_of.as_ref()?);
        if self.table_pairs.get(&pd.parent) != Some(&pc.parent) {
            return None;
        }
        Some((own_parts(self.current, cur, &pc.parent), own_parts(self.desired, des, &pd.parent)))
    }
}

fn own_parts(schema: &Schema, t: &Table, parent: &QualifiedName) -> Table {
    let mut own = t.clone();
    if let Some(p) = schema.tables.get(parent) {
        own.columns.retain(|c| p.column(&c.name).is_none());
    }
    own.constraints.retain(|name, _| {
        !schema.index_attachments.contains_key(&QualifiedName::new(t.name.schema.clone(), name.clone()))
    });
    own
}

impl Differ<'_> {
    /// A live partition the desired file lacks, of a parent the file keeps: created by a
    /// partition manager (pg_partman, a time-based job) after the file was written, unless
    /// `[plan] authoritative_partitions` names the parent. Planning its drop would delete a
    /// month of rows because a dump is a month old.
    pub(super) fn managed_partition(&self, t: &Table) -> bool {
        let Some(p) = &t.partition_of else { return false };
        let parent_kept = self.table_pairs.values().any(|c| c == &p.parent);
        let root = self.current.partition_root(&t.name);
        let authoritative = self.hints.authoritative_partitions.iter().any(|pat| {
            super::hints::names_match(pat, &[&root.schema, &root.name])
                || super::hints::names_match(pat, &[&p.parent.schema, &p.parent.name])
        });
        parent_kept && !authoritative
    }

    /// A primary key or unique index on a partitioned table must contain every partition key
    /// column: PostgreSQL refuses it otherwise (SQLSTATE 0A000, "unique constraint on
    /// partitioned table must include all partitioning columns"), at whatever phase it runs.
    pub(super) fn partition_keys(&mut self) {
        let mut found = Vec::new();
        for t in self.desired.tables.values() {
            let Some(key) = t.partition_columns() else { continue };
            let uniques = t
                .constraints
                .values()
                .filter(|c| {
                    matches!(c.kind, ConstraintKind::PrimaryKey { .. } | ConstraintKind::Unique { .. })
                })
                .map(|c| (c.name.as_str().to_string(), c.kind.columns().to_vec()));
            let indexes = self.desired.indexes.values().filter(|i| i.table == t.name && i.unique).map(|i| {
                let cols = i
                    .keys
                    .iter()
                    .filter_map(|k| match &k.expr {
                        IndexExpr::Column(c) => Some(c.clone()),
                        IndexExpr::Expression(_) => None,
                    })
                    .collect::<Vec<_>>();
                (i.name.name.as_str().to_string(), cols)
            });
            for (name, cols) in uniques.chain(indexes) {
                let missing: Vec<String> =
                    key.iter().filter(|k| !cols.contains(k)).map(|k| k.quoted_sql()).collect();
                if !missing.is_empty() {
                    found.push(
                        Finding::error(
                            FindingCode::PartitionKeyNotInUnique,
                            format!("{}.{}", t.name.quoted(), name),
                            format!(
                                "unique key {name} on the partitioned table {} lacks the partition key column(s) {}: PostgreSQL refuses it (each partition can only check uniqueness within itself)",
                                t.name.quoted(),
                                missing.join(", ")
                            ),
                        )
                        .with_help(format!(
                            "add {} to the key, or enforce the uniqueness another way (a separate unpartitioned table of keys)",
                            missing.join(", ")
                        )),
                    );
                }
            }
        }
        self.findings.extend(found);
    }
}

impl Differ<'_> {
    /// A new partition attached to a parent with a DEFAULT partition: PostgreSQL must prove no
    /// row of the default partition falls in the new bound. Without help it scans the default
    /// partition under an ACCESS EXCLUSIVE lock, and fails (SQLSTATE 23514, "updated partition
    /// constraint for default partition would be violated by some row") when one does. The
    /// plan validates a `CHECK (NOT bound)` on the default first, without blocking writes
    /// (plan/steps/attach_partition.rs), but rows in the new bound still have to move.
    pub(super) fn default_partition_scans(&mut self) {
        let mut found = Vec::new();
        for name in &self.created_tables {
            let Some(t) = self.desired.tables.get(name) else { continue };
            let Some(p) = &t.partition_of else { continue };
            if !self.current.tables.get(&p.parent).is_some_and(Table::is_partitioned) {
                continue;
            }
            let Some(default) = self
                .current
                .partitions_of(&p.parent)
                .into_iter()
                .find(|d| d.bound() == Some(crate::model::Bound::Default))
            else {
                continue;
            };
            let provable = !default.is_partitioned()
                && self.desired.tables.get(&p.parent).is_some_and(|pt| {
                    pt.strategy() == Some(crate::model::Strategy::Hash)
                        || pt.partition_columns().is_some_and(|c| c.len() == 1)
                });
            let (message, help) = if provable {
                (
                    format!(
                        "attaching {} makes PostgreSQL prove that the default partition {} holds no row of its bound; rows there that belong to {} make the attach fail (SQLSTATE 23514)",
                        t.name.quoted(),
                        default.name.quoted(),
                        t.name.quoted()
                    ),
                    format!(
                        "the plan validates CHECK (NOT <bound>) on {} before the attach, which scans it without blocking writes and stops expand there if such rows exist; move them out of the default partition first (DELETE … RETURNING into a holding table, then insert them again after the attach)",
                        default.name.quoted()
                    ),
                )
            } else {
                (
                    format!(
                        "attaching {} scans the default partition {} under an ACCESS EXCLUSIVE lock (no CHECK can prove this bound), and fails if a row of the new bound is there",
                        t.name.quoted(), default.name.quoted()
                    ),
                    "run the expand phase when the default partition is small or empty, and move rows of the new bound out of it first".to_string(),
                )
            };
            found.push(
                Finding::warning(FindingCode::DefaultPartitionScan, default.name.quoted(), message)
                    .with_help(help),
            );
        }
        self.findings.extend(found);
    }
}

impl Differ<'_> {
    /// A new partition of a parent whose columns or CHECK constraints change in the same
    /// plan. The plan creates it in the parent's current shape and attaches it in `expand`
    /// before the parent's own steps, so PostgreSQL carries each of them to it
    /// (plan/steps/attach_partition.rs). What that cannot cover is reported: a parent that is
    /// renamed too (the attach would name a table that does not exist yet), a partition with
    /// CHECK constraints of its own (they may read columns the parent gets later), and a
    /// primary key or unique constraint of the parent that changes (its partition copies are
    /// built per existing partition). Found by the reliability generator: attached in its
    /// final shape, PostgreSQL refused the attach (SQLSTATE 42804).
    pub(super) fn attach_with_parent_changes(&mut self) {
        let mut found = Vec::new();
        for name in &self.created_tables {
            let Some(t) = self.desired.tables.get(name) else { continue };
            let Some(p) = &t.partition_of else { continue };
            let current_name = self.table_pairs.get(&p.parent).unwrap_or(&p.parent);
            let Some(now) = self.current.tables.get(current_name).filter(|c| c.is_partitioned()) else {
                continue;
            };
            let Some(then) = self.desired.tables.get(&p.parent) else { continue };
            if !now.partition_shape_changes(then) {
                continue;
            }
            let keys = |t: &Table| {
                t.constraints
                    .values()
                    .filter(|c| {
                        matches!(c.kind, ConstraintKind::PrimaryKey { .. } | ConstraintKind::Unique { .. })
                    })
                    .cloned()
                    .collect::<Vec<_>>()
            };
            let why = if current_name != &p.parent {
                format!("{} is renamed in the same plan", p.parent.quoted())
            } else if t.constraints.values().any(|c| matches!(c.kind, ConstraintKind::Check { .. })) {
                format!(
                    "{} has CHECK constraints of its own, which may read columns {} gets later",
                    t.name.quoted(),
                    p.parent.quoted()
                )
            } else if keys(now) != keys(then) {
                format!("{}'s primary key or unique constraints change too", p.parent.quoted())
            } else {
                continue;
            };
            found.push(
                Finding::error(
                    FindingCode::PartitionAttachWithParentChanges,
                    t.name.quoted(),
                    format!(
                        "{} is a new partition of {}, whose columns or CHECK constraints change in the same plan, and {why}: seqmig cannot attach it in a shape PostgreSQL accepts (SQLSTATE 42804) at any point of the plan",
                        t.name.quoted(),
                        p.parent.quoted(),
                    ),
                )
                .with_help(format!(
                    "split the change in two plans: first the changes to {}, then the new partition (or the other way round)",
                    p.parent.quoted()
                )),
            );
        }
        self.findings.extend(found);
    }
}

impl Differ<'_> {
    /// A partition detached (it leaves an authoritative parent that stays) while a foreign
    /// key references the parent or one of its ancestors. PostgreSQL checks every referencing
    /// row when it detaches and refuses (SQLSTATE 23503, *removing partition … violates
    /// foreign key constraint*) while one points into the partition, whatever the key's ON
    /// DELETE action. Whether such rows exist is data, so this warns: the switch step fails
    /// and can be run again once they are gone.
    pub(super) fn detach_referenced_partitions(&mut self) {
        let mut found = Vec::new();
        for name in &self.dropped_tables {
            let Some(t) = self.current.tables.get(name) else { continue };
            let Some(p) = &t.partition_of else { continue };
            if !self.desired.tables.contains_key(&p.parent) {
                continue;
            }
            // The parent and its own parents: a key references the top of a tree.
            let mut ancestors = vec![p.parent.clone()];
            while let Some(up) =
                self.current.tables.get(ancestors.last().unwrap()).and_then(|a| a.partition_of.as_ref())
            {
                ancestors.push(up.parent.clone());
            }
            let keys: Vec<String> = self
                .current
                .tables
                .values()
                .filter(|r| r.partition_of.is_none())
                .flat_map(|r| r.constraints.values().map(move |c| (r, c)))
                .filter_map(|(r, c)| match &c.kind {
                    ConstraintKind::ForeignKey { ref_table, .. } if ancestors.contains(ref_table) => {
                        Some(format!("{} ({})", c.name.quoted_sql(), r.name.quoted()))
                    }
                    _ => None,
                })
                .collect();
            if keys.is_empty() {
                continue;
            }
            found.push(
                Finding::warning(
                    FindingCode::DetachReferencedPartition,
                    t.name.quoted(),
                    format!(
                        "detaching {} from {} fails (SQLSTATE 23503) while a row points into it through the foreign key(s) {}: PostgreSQL checks the referencing rows at the detach",
                        t.name.quoted(),
                        p.parent.quoted(),
                        keys.join(", ")
                    ),
                )
                .with_help(format!(
                    "before switch, delete or re-point the rows that reference {}'s rows; if switch stopped at the detach, do that and run it again",
                    t.name.quoted()
                )),
            );
        }
        self.findings.extend(found);
    }
}
