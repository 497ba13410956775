//! Partitioned tables (issue 21): the strategy and key of a parent, the bound of a partition,
//! and the tree a parent heads. Read-only views over [`Schema`]; the loader and introspection
//! fill the fields these read (`Table::partition_key`, `Table::partition_of`,
//! `Schema::index_attachments`), the planner asks these questions of them.

use super::ident::{Ident, QualifiedName};
use super::schema::{Schema, Table};
use crate::parse::text::{paren_group, sole_identifier, split_top_level};

/// `PARTITION BY RANGE | LIST | HASH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Range,
    List,
    Hash,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Range => "range",
            Strategy::List => "list",
            Strategy::Hash => "hash",
        }
    }
}

/// A partition's bound, split into its parts (the texts are the normalised SQL literals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    Default,
    /// `FROM (a, …) TO (b, …)`; `MINVALUE` / `MAXVALUE` kept as words.
    Range {
        from: Vec<String>,
        to: Vec<String>,
    },
    /// `IN (a, b, …)`.
    List(Vec<String>),
    /// `WITH (MODULUS m, REMAINDER r)`.
    Hash {
        modulus: u32,
        remainder: u32,
    },
}

impl Table {
    /// The strategy of a partitioned table (`None` for any other table).
    pub fn strategy(&self) -> Option<Strategy> {
        let key = self.partition_key.as_deref()?.trim_start().to_ascii_lowercase();
        [Strategy::Range, Strategy::List, Strategy::Hash].into_iter().find(|s| key.starts_with(s.as_str()))
    }

    /// The columns of the partition key, in order; `None` when a key part is an expression.
    pub fn partition_columns(&self) -> Option<Vec<Ident>> {
        let key = self.partition_key.as_deref()?;
        let inner = key.split_once('(')?.1.rsplit_once(')')?.0;
        split_top_level(inner)
            .iter()
            .map(|part| sole_identifier(part).and_then(|w| Ident::from_sql(w).ok()))
            .collect()
    }

    pub fn is_partitioned(&self) -> bool {
        self.partition_key.is_some()
    }

    /// This partition's bound, parsed (`None` when it is not a partition or the bound text is
    /// not understood).
    pub fn bound(&self) -> Option<Bound> {
        parse_bound(&self.partition_of.as_ref()?.bound)
    }
}

impl Table {
    /// Whether a partitioned table's columns (name, type, NOT NULL) differ between `self` (as it
    /// is) and `then` (as desired), or a CHECK of `self` is gone in `then`: PostgreSQL refuses
    /// to attach a table shaped like one of them to the other (SQLSTATE 42804, *table contains
    /// column not found in parent*, *child table is missing column / constraint*). A new
    /// partition of such a parent is created in the current shape and attached first
    /// (plan/steps/attach_partition.rs), so the parent's changes reach it through PostgreSQL.
    pub fn partition_shape_changes(&self, then: &Table) -> bool {
        let shape = |t: &Table| {
            let mut cols: Vec<(String, String, bool)> = t
                .columns
                .iter()
                .map(|c| (c.name.as_str().to_string(), c.data_type.clone(), c.not_null))
                .collect();
            cols.sort();
            cols
        };
        let checks = |t: &Table| {
            t.constraints
                .values()
                .filter(|c| matches!(c.kind, super::ConstraintKind::Check { .. }))
                .map(|c| c.name.clone())
                .collect::<Vec<_>>()
        };
        let kept = checks(then);
        shape(self) != shape(then) || checks(self).iter().any(|c| !kept.contains(c))
    }
}

impl Schema {
    /// The direct partitions of `parent`, in name order.
    pub fn partitions_of(&self, parent: &QualifiedName) -> Vec<&Table> {
        self.tables
            .values()
            .filter(|t| t.partition_of.as_ref().is_some_and(|p| &p.parent == parent))
            .collect()
    }

    /// Every partition below `parent` that holds rows (leaves), depth first in name order.
    pub fn leaf_partitions(&self, parent: &QualifiedName) -> Vec<&Table> {
        let mut out = Vec::new();
        for p in self.partitions_of(parent) {
            if p.is_partitioned() {
                out.extend(self.leaf_partitions(&p.name));
            } else {
                out.push(p);
            }
        }
        out
    }

    /// The topmost partitioned table above `name` (itself when it is not a partition).
    pub fn partition_root<'a>(&'a self, name: &'a QualifiedName) -> &'a QualifiedName {
        match self.tables.get(name).and_then(|t| t.partition_of.as_ref()) {
            Some(p) if self.tables.contains_key(&p.parent) => self.partition_root(&p.parent),
            _ => name,
        }
    }

    /// The index attached to the partitioned index `parent` on table `table`, if any.
    pub fn attached_index_on(&self, parent: &QualifiedName, table: &QualifiedName) -> Option<&QualifiedName> {
        self.index_attachments.iter().find_map(|(child, p)| {
            let on = self.indexes.get(child).map(|i| &i.table).or_else(|| {
                // A constraint's index is not in `indexes`: it lives on the table with its name.
                self.tables
                    .values()
                    .find(|t| t.name.schema == child.schema && t.constraints.contains_key(&child.name))
                    .map(|t| &t.name)
            });
            (p == parent && on == Some(table)).then_some(child)
        })
    }
}

/// `for values from ('a') to ('b')` / `for values in (…)` / `for values with (modulus 4,
/// remainder 1)` / `default`, as the loader and introspection spell a bound.
pub fn parse_bound(text: &str) -> Option<Bound> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    if lower == "default" {
        return Some(Bound::Default);
    }
    let rest = lower.strip_prefix("for values")?.trim_start();
    let body = &t[t.len() - rest.len()..];
    if rest.starts_with("from") {
        let after_from = body[4..].trim_start();
        let (from, tail) = paren_group(after_from)?;
        let tail = tail.trim_start();
        if !tail.to_ascii_lowercase().starts_with("to") {
            return None;
        }
        let (to, _) = paren_group(tail[2..].trim_start())?;
        return Some(Bound::Range { from: owned(split_top_level(from)), to: owned(split_top_level(to)) });
    }
    if rest.starts_with("in") {
        let (items, _) = paren_group(body[2..].trim_start())?;
        return Some(Bound::List(owned(split_top_level(items))));
    }
    if rest.starts_with("with") {
        let (items, _) = paren_group(body[4..].trim_start())?;
        let mut modulus = None;
        let mut remainder = None;
        for part in split_top_level(items) {
            let mut w = part.split_whitespace();
            match (w.next().map(str::to_ascii_lowercase).as_deref(), w.next().and_then(|n| n.parse().ok())) {
                (Some("modulus"), Some(n)) => modulus = Some(n),
                (Some("remainder"), Some(n)) => remainder = Some(n),
                _ => return None,
            }
        }
        return Some(Bound::Hash { modulus: modulus?, remainder: remainder? });
    }
    None
}

fn owned(parts: Vec<&str>) -> Vec<String> {
    parts.into_iter().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_of_every_strategy() {
        assert_eq!(parse_bound("DEFAULT"), Some(Bound::Default));
        assert_eq!(
            parse_bound("FOR VALUES FROM ('2024-01-01', MINVALUE) TO ('2025-01-01', 3)"),
            Some(Bound::Range {
                from: vec!["'2024-01-01'".into(), "MINVALUE".into()],
                to: vec!["'2025-01-01'".into(), "3".into()]
            })
        );
        assert_eq!(
            parse_bound("for values in ('a, b', 'c')"),
            Some(Bound::List(vec!["'a, b'".into(), "'c'".into()]))
        );
        assert_eq!(
            parse_bound("FOR VALUES WITH (modulus 4, remainder 3)"),
            Some(Bound::Hash { modulus: 4, remainder: 3 })
        );
    }

    #[test]
    fn strategy_and_key_columns() {
        let mut t = Table::new(QualifiedName::of("public", "e"));
        t.partition_key = Some("RANGE (created_at, \"Tenant\")".into());
        assert_eq!(t.strategy(), Some(Strategy::Range));
        assert_eq!(
            t.partition_columns().unwrap(),
            vec![Ident::exact("created_at").unwrap(), Ident::exact("Tenant").unwrap()]
        );
        t.partition_key = Some("list (lower(region))".into());
        assert_eq!(t.strategy(), Some(Strategy::List));
        assert_eq!(t.partition_columns(), None);
    }
}
