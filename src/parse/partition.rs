//! What PostgreSQL does on its own once a file's statements are in: an index or a primary /
//! unique key declared on a partitioned table without `ONLY` exists on every partition too,
//! named as PostgreSQL names it and attached to the parent's. So the model of a hand-written
//! file equals the catalog introspection reads after the same file ran (issue 21.1).

use super::names::{choose_name, join_columns};
use super::objects::expression_label;
use super::table::relation_taken;
use crate::model::{Constraint, ConstraintKind, Ident, Index, IndexExpr, QualifiedName, Schema};

/// Adds the partition indexes and keys PostgreSQL would have created, until nothing is missing
/// (a sub-partitioned partition gets its index, then its own partitions do).
pub fn complete(s: &mut Schema) {
    loop {
        let added = indexes(s) + keys(s);
        if added == 0 {
            break;
        }
    }
    // `CREATE INDEX … ON ONLY parent` followed by an `ATTACH PARTITION` for every partition
    // (pg_dump's way) leaves the same valid index as one `CREATE INDEX` on the parent.
    let complete: Vec<QualifiedName> = s
        .indexes
        .values()
        .filter(|i| i.only && s.tables.get(&i.table).is_some_and(|t| t.is_partitioned()))
        .filter(|i| s.partitions_of(&i.table).iter().all(|p| s.attached_index_on(&i.name, &p.name).is_some()))
        .map(|i| i.name.clone())
        .collect();
    for n in complete {
        if let Some(i) = s.indexes.get_mut(&n) {
            i.only = false;
        }
    }
}

fn same_definition(a: &Index, b: &Index) -> bool {
    a.unique == b.unique
        && a.nulls_not_distinct == b.nulls_not_distinct
        && a.method == b.method
        && a.keys == b.keys
        && a.include == b.include
        && a.predicate == b.predicate
}

fn indexes(s: &mut Schema) -> usize {
    let mut todo = Vec::new();
    for i in s.indexes.values().filter(|i| !i.only) {
        if !s.tables.get(&i.table).is_some_and(|t| t.is_partitioned()) {
            continue;
        }
        for p in s.partitions_of(&i.table) {
            if s.attached_index_on(&i.name, &p.name).is_none() {
                todo.push((i.clone(), p.name.clone()));
            }
        }
    }
    let n = todo.len();
    for (parent, table) in todo {
        let existing = s
            .indexes
            .values()
            .find(|j| {
                j.table == table && !s.index_attachments.contains_key(&j.name) && same_definition(j, &parent)
            })
            .map(|j| j.name.clone());
        let child = match existing {
            Some(name) => name,
            None => {
                let cols: Vec<String> = parent
                    .keys
                    .iter()
                    .map(|k| match &k.expr {
                        IndexExpr::Column(c) => c.as_str().to_string(),
                        IndexExpr::Expression(e) => expression_label(e),
                    })
                    .collect();
                // A partition's copy of an index is named like any index that backs no
                // constraint: `_idx`, unique or not (PostgreSQL's ChooseIndexName).
                let name = choose_name(table.name.as_str(), Some(&cols.join("_")), "idx", |n| {
                    relation_taken(s, &table.schema, n)
                });
                let q = QualifiedName::new(table.schema.clone(), name);
                let idx = Index { name: q.clone(), table: table.clone(), only: false, ..parent.clone() };
                s.indexes.insert(q.clone(), idx);
                q
            }
        };
        s.index_attachments.insert(child, parent.name.clone());
    }
    n
}

fn keys(s: &mut Schema) -> usize {
    let mut todo: Vec<(QualifiedName, Constraint, QualifiedName)> = Vec::new();
    for t in s.tables.values().filter(|t| t.is_partitioned()) {
        for c in t.constraints.values() {
            if !matches!(c.kind, ConstraintKind::PrimaryKey { .. } | ConstraintKind::Unique { .. }) {
                continue;
            }
            let parent_index = QualifiedName::new(t.name.schema.clone(), c.name.clone());
            for p in s.partitions_of(&t.name) {
                if s.attached_index_on(&parent_index, &p.name).is_none() {
                    todo.push((parent_index.clone(), c.clone(), p.name.clone()));
                }
            }
        }
    }
    let n = todo.len();
    for (parent_index, c, table) in todo {
        let existing = s.tables[&table]
            .constraints
            .values()
            .find(|k| {
                k.kind == c.kind
                    && !s
                        .index_attachments
                        .contains_key(&QualifiedName::new(table.schema.clone(), k.name.clone()))
            })
            .map(|k| k.name.clone());
        let name = match existing {
            Some(name) => name,
            None => {
                let name: Ident = match &c.kind {
                    ConstraintKind::PrimaryKey { .. } => {
                        choose_name(table.name.as_str(), None, "pkey", |n| {
                            relation_taken(s, &table.schema, n)
                        })
                    }
                    kind => {
                        choose_name(table.name.as_str(), Some(&join_columns(kind.columns())), "key", |n| {
                            relation_taken(s, &table.schema, n)
                        })
                    }
                };
                let k = Constraint { name: name.clone(), ..c.clone() };
                if let Some(t) = s.tables.get_mut(&table) {
                    t.constraints.insert(name.clone(), k);
                }
                name
            }
        };
        s.index_attachments.insert(QualifiedName::new(table.schema.clone(), name), parent_index);
    }
    n
}
