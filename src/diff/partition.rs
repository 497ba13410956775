//! Partitions in the diff (issue 21.2): PostgreSQL propagates column changes (add, drop,
//! rename, type, default, NOT NULL) and CHECK constraints from a partitioned table to its
//! partitions, and refuses most of them on a partition directly (SQLSTATE 42809: "cannot add
//! column to a partition"). So a partition whose parent is paired is compared on what is its
//! own: columns its parent lacks, and constraints not attached to a parent's key.

use super::Differ;
use crate::model::{QualifiedName, Schema, Table};

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
