//! Compares a current and a desired [`Schema`] and lists the [`Change`]s between them, with
//! the findings the comparison alone can establish (ambiguous renames, missing transforms,
//! unsupported changes). Renames and data transforms are never guessed: they come from
//! [`Hints`]. Output order is deterministic (the schemas are `BTreeMap`s and changes are
//! emitted object kind by object kind).

pub mod attached;
mod change;
mod hints;
mod partition;

use std::collections::{BTreeMap, BTreeSet};

use crate::model::expr::int_width;
pub use crate::model::expr::{Cast, classify_cast, is_volatile, nextval_sequence};
pub use crate::parse::mentions;
pub use crate::parse::text::selects_star;
pub use change::{Change, TypeChange, TypeDef, ViewReason, column_object};
pub use hints::{
    ColumnRename, Config, FillEntry, GateSection, GovernanceSection, HintError, Hints, OldPathSilent,
    PlanSection, RenameEntry, Transform, TransformEntry, names_match,
};

use crate::finding::{Finding, FindingCode};
use crate::model::{
    Column, ColumnRef, ConstraintKind, Ident, Index, IndexExpr, ObjectRef, OpaqueKind, QualifiedName, Schema,
    Table, View,
};

struct Differ<'a> {
    current: &'a Schema,
    desired: &'a Schema,
    hints: &'a Hints,
    changes: Vec<Change>,
    findings: Vec<Finding>,
    /// Desired table name → current table name, for tables in both (renamed or not).
    table_pairs: BTreeMap<QualifiedName, QualifiedName>,
    created_tables: BTreeSet<QualifiedName>,
    dropped_tables: BTreeSet<QualifiedName>,
    /// (current table, column) whose old column goes away or changes under views.
    affected_columns: BTreeSet<(QualifiedName, Ident)>,
    dropped_columns: BTreeSet<(QualifiedName, Ident)>,
    /// (desired table, desired column) of shadow-column type changes: their indexes are
    /// rebuilt by the change itself.
    shadowed: BTreeSet<(QualifiedName, Ident)>,
    used_transforms: BTreeSet<usize>,
    used_renames: BTreeSet<usize>,
    /// (table, column) of the `[[fill]]` hints a change took.
    used_fills: BTreeSet<(QualifiedName, Ident)>,
    /// (desired table, constraint) recreated by a type change, not diffed again.
    moved_constraints: BTreeSet<(QualifiedName, Ident)>,
    /// The desired schema's indexes per table, in name order: built once, because scanning
    /// every index for each table made a diff quadratic in the size of the schema.
    desired_indexes: BTreeMap<&'a QualifiedName, Vec<&'a Index>>,
    /// Tables renamed by a hint within their schema, (current, desired); set by `tables`.
    renames: Vec<(QualifiedName, QualifiedName)>,
    /// Views in both schemas that are dropped and created again, and of those the ones whose
    /// definition changed (the others are recreated around a column they read); set by
    /// `replaced_views`.
    replaced_views: BTreeSet<QualifiedName>,
    redefined_views: BTreeSet<QualifiedName>,
    /// Every view the plan drops, to recreate it or for good: what hangs on one
    /// ([`attached`]) goes and comes back with the view's own steps, and is not diffed.
    dropped_views: BTreeSet<QualifiedName>,
}

/// Which schema an object is read from.
#[derive(Clone, Copy)]
enum Side {
    Current,
    Desired,
}

/// `(current, desired, hints) → (changes, findings)`.
/// Extensions seqmig itself needs on the database it plans for: never planned away.
pub const SEQMIG_PREREQUISITES: &[&str] = &["pg_stat_statements"];

pub fn diff(current: &Schema, desired: &Schema, hints: &Hints) -> (Vec<Change>, Vec<Finding>) {
    let mut d = Differ {
        current,
        desired,
        hints,
        changes: Vec::new(),
        findings: Vec::new(),
        table_pairs: BTreeMap::new(),
        created_tables: BTreeSet::new(),
        dropped_tables: BTreeSet::new(),
        affected_columns: BTreeSet::new(),
        dropped_columns: BTreeSet::new(),
        shadowed: BTreeSet::new(),
        used_transforms: BTreeSet::new(),
        used_renames: BTreeSet::new(),
        used_fills: BTreeSet::new(),
        moved_constraints: BTreeSet::new(),
        desired_indexes: BTreeMap::new(),
        renames: Vec::new(),
        replaced_views: BTreeSet::new(),
        redefined_views: BTreeSet::new(),
        dropped_views: BTreeSet::new(),
    };
    for i in desired.indexes.values() {
        d.desired_indexes.entry(&i.table).or_default().push(i);
    }
    d.run();
    (d.changes, d.findings)
}

impl Differ<'_> {
    fn run(&mut self) {
        self.namespaces_and_extensions();
        self.extensions_over_hand_made_objects();
        self.types();
        self.sequences();
        self.tables();
        self.replaced_views();
        self.indexes();
        self.views();
        self.opaque();
        self.comments();
        self.unused_hints();
        self.constraint_warnings();
        self.partition_keys();
        self.default_partition_scans();
        self.attach_with_parent_changes();
        self.detach_referenced_partitions();
        self.widened_sequences();
    }

    /// A sequence widened together with the column it feeds is altered by that column's
    /// type change, in contract; its own `AlterSequence` (expand) goes.
    fn widened_sequences(&mut self) {
        let widened: BTreeSet<QualifiedName> = self
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::ChangeType(tc) => Some(tc.widen_sequences.iter().map(|(_, to)| to.name.clone())),
                _ => None,
            })
            .flatten()
            .collect();
        self.changes.retain(|c| !matches!(c, Change::AlterSequence { to, .. } if widened.contains(&to.name)));
    }

    /// Issue 17.5: sequences feeding a column whose integer type widens, and the findings
    /// about what stays narrow (the sequence itself, foreign keys referencing the column) and
    /// about the old type's limit between switch and contract.
    fn widening(
        &mut self,
        table: &QualifiedName,
        cur: &Table,
        old: &Column,
        new: &Column,
        incoming: &[(QualifiedName, crate::model::Constraint)],
    ) -> Vec<(crate::model::Sequence, crate::model::Sequence)> {
        let (Some(from_w), Some(to_w)) = (int_width(&old.data_type), int_width(&new.data_type)) else {
            return Vec::new();
        };
        if to_w <= from_w {
            return Vec::new();
        }
        let object = column_object(table, &new.name);
        let mut feeding: BTreeSet<QualifiedName> = self
            .current
            .sequences
            .values()
            .filter(|s| s.owned_by.as_ref() == Some(&(cur.name.clone(), old.name.clone())))
            .map(|s| s.name.clone())
            .collect();
        feeding.extend(old.default.as_deref().and_then(nextval_sequence));
        let mut widen = Vec::new();
        for name in feeding {
            let (Some(c), Some(d)) = (self.current.sequences.get(&name), self.desired.sequences.get(&name))
            else {
                continue;
            };
            match int_width(&d.data_type) {
                Some(w) if w >= to_w && int_width(&c.data_type).is_some_and(|cw| cw < w) => {
                    widen.push((c.clone(), d.clone()));
                }
                Some(w) if w < to_w => self.findings.push(
                    Finding::warning(FindingCode::NarrowSequence, name.quoted(), format!(
                        "{} feeds {object}, which becomes {}, but stays {} in the desired schema: the column still stops at the sequence's maximum",
                        name.quoted(), new.data_type, d.data_type))
                    .with_help(format!("write `CREATE SEQUENCE {} AS {}` in the desired schema; seqmig widens it in contract, after the old column is dropped", name.quoted(), new.data_type)),
                ),
                _ => {}
            }
        }
        for (t, k) in incoming {
            let ConstraintKind::ForeignKey { columns, .. } = &k.kind else { continue };
            for col in columns {
                let Some(fc) = self.desired.tables.get(t).and_then(|t| t.column(col)) else { continue };
                if int_width(&fc.data_type).is_some_and(|w| w < to_w) {
                    self.findings.push(
                        Finding::warning(FindingCode::NarrowForeignKey, column_object(t, col), format!(
                            "{} references {object}, which becomes {}, but stays {}: rows referencing a key above the narrower type's maximum cannot be written",
                            column_object(t, col), new.data_type, fc.data_type))
                        .with_help(format!("change {} to {} in the desired schema too (same plan, or the next one)", column_object(t, col), new.data_type)),
                    );
                }
            }
        }
        self.findings.push(
            Finding::warning(FindingCode::OldTypeLimit, object.clone(), format!(
                "between switch and contract the dual-write trigger copies every write of {object} back into the old {} column: a value above its maximum makes the application's insert or update fail with 'integer out of range' until contract",
                old.data_type))
            .with_help("the new release may write only values the old type can hold until contract has run (a rollback past switch can restore only those); after contract, any value of the new type"),
        );
        widen
    }

    /// Warnings about added constraints: foreign keys without an index on the referencing
    /// side, exclusion constraints that cannot be added without a blocking scan.
    fn constraint_warnings(&mut self) {
        let mut found = Vec::new();
        for c in &self.changes {
            let (table, constraint, new_table) = match c {
                Change::AddConstraint { table, constraint, new_table } => (table, constraint, *new_table),
                Change::ChangeConstraint { table, to, .. } => (table, to, false),
                _ => continue,
            };
            match &constraint.kind {
                ConstraintKind::ForeignKey { columns, ref_table, .. }
                    if !self.has_leading_index(table, columns) =>
                {
                    found.push(
                        Finding::warning(FindingCode::FkWithoutIndex, column_object(table, &constraint.name), format!(
                            "foreign key {} has no index on {}({}): every delete or key update on {} scans {}",
                            constraint.name.quoted_sql(), table.quoted(),
                            columns.iter().map(Ident::quoted_sql).collect::<Vec<_>>().join(", "),
                            ref_table.quoted(), table.quoted()))
                        .with_help(format!("add CREATE INDEX ON {} ({}) to the desired schema; seqmig builds it concurrently",
                            table.quoted(), columns.iter().map(Ident::quoted_sql).collect::<Vec<_>>().join(", "))),
                    );
                }
                ConstraintKind::Exclusion { .. } if !new_table => {
                    found.push(
                        Finding::warning(FindingCode::BlockingConstraint, column_object(table, &constraint.name), format!(
                            "exclusion constraint {} cannot be added NOT VALID: it builds its index and checks every row under an ACCESS EXCLUSIVE lock on {}",
                            constraint.name.quoted_sql(), table.quoted()))
                        .with_help("apply in a maintenance window, or enforce the rule in the application until the table is small enough"),
                    );
                }
                _ => {}
            }
        }
        self.findings.extend(found);
    }

    /// [`Schema::indexes_of`] on the desired schema, without the scan of every index.
    fn desired_indexes_of(&self, table: &QualifiedName) -> impl Iterator<Item = &Index> + '_ {
        self.desired_indexes.get(table).into_iter().flatten().copied()
    }

    fn has_leading_index(&self, table: &QualifiedName, columns: &[Ident]) -> bool {
        let want: BTreeSet<&Ident> = columns.iter().collect();
        let leads = |keys: Vec<&Ident>| {
            keys.len() >= want.len() && keys[..want.len()].iter().copied().collect::<BTreeSet<_>>() == want
        };
        let by_index = self.desired_indexes_of(table).any(|i| {
            i.predicate.is_none()
                && leads(
                    i.keys
                        .iter()
                        .map_while(|k| match &k.expr {
                            IndexExpr::Column(c) => Some(c),
                            _ => None,
                        })
                        .collect(),
                )
        });
        let by_constraint = self.desired.tables.get(table).is_some_and(|t| {
            t.constraints.values().any(|c| {
                matches!(c.kind, ConstraintKind::PrimaryKey { .. } | ConstraintKind::Unique { .. })
                    && leads(c.kind.columns().iter().collect())
            })
        });
        by_index || by_constraint
    }

    fn namespaces_and_extensions(&mut self) {
        for ns in self.desired.namespaces.difference(&self.current.namespaces) {
            self.changes.push(Change::CreateSchema { name: ns.clone() });
        }
        for (name, ext) in &self.desired.extensions {
            if !self.current.extensions.contains_key(name) {
                self.changes.push(Change::CreateExtension { ext: ext.clone() });
            }
        }
        for (name, ext) in &self.current.extensions {
            if self.desired.extensions.contains_key(name) {
                continue;
            }
            // seqmig's own prerequisites stay, whatever the desired schema says: the gate's
            // old_path_silent criterion reads pg_stat_statements whenever a plan has a one-way
            // step in contract, and the schema `seqmig` holds the ledger (never introspected).
            if SEQMIG_PREREQUISITES.contains(&name.as_str()) {
                self.findings.push(
                    Finding::warning(FindingCode::SeqmigPrerequisite, format!("extension {}", name.quoted_sql()), format!(
                        "the desired schema does not have extension {}, which seqmig's gate needs (old_path_silent reads it); seqmig does not plan to drop it",
                        name.quoted_sql()))
                    .with_help(format!(
                        "add CREATE EXTENSION IF NOT EXISTS {} to the desired schema to silence this, or drop it by hand once no plan needs the gate",
                        name.quoted_sql())),
                );
                continue;
            }
            // An extension takes its functions, types, operators and every object built on
            // them (columns, indexes) with it, and CREATE EXTENSION does not bring them back.
            if !self.hints.one_way_allowed(&[name]) {
                self.findings.push(
                    Finding::error(FindingCode::ExtensionDrop, format!("extension {}", name.quoted_sql()), format!(
                        "dropping extension {} removes every function, type and operator it installed, and with them whatever uses them; contract cannot be undone",
                        name.quoted_sql()))
                    .with_help(format!(
                        "if the extension should stay, add CREATE EXTENSION {} to the desired schema; if the drop is intended, add \"{}\" to [plan] allow_one_way in seqmig.toml",
                        name.quoted_sql(), name.as_str())),
                );
            }
            self.changes.push(Change::DropExtension { ext: ext.clone() });
        }
    }

    /// Before extensions (PostgreSQL 9.1), contrib modules were installed by running their
    /// script, which created the module's functions, types and operator classes one by one
    /// from `$libdir/NAME`. A desired schema that says `CREATE EXTENSION NAME` instead no
    /// longer lists them (a dump omits extension members), so the diff sees them dropped and
    /// the extension created: but `CREATE EXTENSION` fails on the objects of the same names
    /// (42723), and dropping them first cascades to every index using their operator classes.
    /// `CREATE EXTENSION … FROM unpackaged` is gone since PostgreSQL 13; there is no step to
    /// plan, so this blocks, naming the extension.
    fn extensions_over_hand_made_objects(&mut self) {
        for name in self.desired.extensions.keys() {
            if self.current.extensions.contains_key(name) {
                continue;
            }
            let library = format!("'$libdir/{}'", name.as_str().to_ascii_lowercase());
            let hand_made: Vec<&str> = self
                .current
                .opaque
                .iter()
                .filter(|(id, o)| {
                    !self.desired.opaque.contains_key(*id) && o.text.to_ascii_lowercase().contains(&library)
                })
                .map(|(id, _)| id.identity.as_str())
                .collect();
            let Some(first) = hand_made.first() else { continue };
            self.findings.push(
                Finding::error(
                    FindingCode::UnsupportedChange,
                    name.as_str(),
                    format!(
                        "extension {} would replace {} object(s) its contrib script created by hand (such as {first}); CREATE EXTENSION fails on objects of the same names, and seqmig cannot plan the swap",
                        name.as_str(),
                        hand_made.len()
                    ),
                )
                .with_help("on PostgreSQL 12 or older run CREATE EXTENSION … FROM unpackaged by hand; otherwise drop the hand-made objects and the indexes using them, CREATE EXTENSION, and rebuild the indexes in a maintenance window; then plan from the live database"),
            );
        }
    }

    fn types(&mut self) {
        for (name, e) in &self.desired.enums {
            match self.current.enums.get(name) {
                None => self.changes.push(Change::CreateType { def: TypeDef::Enum(e.clone()) }),
                Some(old) => self.enum_values(name, &old.values, &e.values),
            }
        }
        for (name, dom) in &self.desired.domains {
            match self.current.domains.get(name) {
                None => self.changes.push(Change::CreateType { def: TypeDef::Domain(dom.clone()) }),
                Some(old) if old != dom => self.findings.push(
                    Finding::error(FindingCode::UnsupportedChange, name.quoted(), format!("domain {} changes definition; seqmig does not plan domain changes", name.quoted()))
                        .with_help("create a new domain, move columns to it with a type change (a [[transform]]), then drop the old one; or ALTER DOMAIN … ADD CONSTRAINT … NOT VALID and VALIDATE CONSTRAINT by hand"),
                ),
                Some(_) => {}
            }
        }
        for (name, c) in &self.desired.composites {
            match self.current.composites.get(name) {
                None => self.changes.push(Change::CreateType { def: TypeDef::Composite(c.clone()) }),
                Some(old) if old != c => self.findings.push(
                    Finding::error(FindingCode::UnsupportedChange, name.quoted(), format!("composite type {} changes attributes; seqmig does not plan this", name.quoted()))
                        .with_help("ALTER TYPE … ADD ATTRIBUTE / DROP ATTRIBUTE by hand when no table column uses the type; otherwise create a new type and migrate the columns with a [[transform]]"),
                ),
                Some(_) => {}
            }
        }
        for (name, e) in &self.current.enums {
            if !self.desired.enums.contains_key(name) {
                self.changes.push(Change::DropType { def: TypeDef::Enum(e.clone()) });
            }
        }
        for (name, dom) in &self.current.domains {
            if !self.desired.domains.contains_key(name) {
                self.changes.push(Change::DropType { def: TypeDef::Domain(dom.clone()) });
            }
        }
        for (name, c) in &self.current.composites {
            if !self.desired.composites.contains_key(name) {
                self.changes.push(Change::DropType { def: TypeDef::Composite(c.clone()) });
            }
        }
    }

    fn enum_values(&mut self, name: &QualifiedName, old: &[String], new: &[String]) {
        // Old values must keep their relative order inside the new list.
        let mut it = new.iter();
        let kept_in_order = old.iter().all(|o| it.any(|n| n == o));
        if !kept_in_order {
            let removed: Vec<&String> = old.iter().filter(|o| !new.contains(o)).collect();
            let (what, help) = if removed.is_empty() {
                (
                    "reorders existing values".to_string(),
                    "PostgreSQL cannot reorder enum values; create a new enum type with the desired order, change the columns to it with a [[transform]] (up = \"col::text::new_type\"), then drop the old type",
                )
            } else {
                (
                    format!(
                        "removes value(s) {}",
                        removed.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(", ")
                    ),
                    "PostgreSQL cannot drop an enum value. Recipe: 1) UPDATE rows using the value to another one; 2) CREATE TYPE new_type AS ENUM (…) without it; 3) migrate each column with a [[transform]] (up = \"col::text::new_type\", down = \"col::text::old_type\"); 4) DROP TYPE the old type in contract; 5) ALTER TYPE new_type RENAME TO the old name",
                )
            };
            self.findings.push(
                Finding::error(
                    FindingCode::UnsupportedChange,
                    name.quoted(),
                    format!("enum {} {what}", name.quoted()),
                )
                .with_help(help),
            );
            return;
        }
        for (i, v) in new.iter().enumerate() {
            if old.contains(v) {
                continue;
            }
            let next_old = new[i + 1..].iter().find(|n| old.contains(n)).cloned();
            let (before, after) = match next_old {
                Some(n) => (Some(n), None),
                None => (None, if i > 0 { Some(new[i - 1].clone()) } else { None }),
            };
            self.changes.push(Change::AddEnumValue { name: name.clone(), value: v.clone(), before, after });
        }
    }

    fn sequence_owner_gone(&self, seq: &crate::model::Sequence) -> bool {
        seq.owned_by.as_ref().is_some_and(|(t, c)| {
            !self
                .desired
                .tables
                .values()
                .any(|dt| self.table_pairs.get(&dt.name).unwrap_or(&dt.name) == t && dt.column(c).is_some())
                && self.dropped_tables.contains(t)
                || self.dropped_columns.contains(&(t.clone(), c.clone()))
        })
    }

    fn sequences(&mut self) {
        for (name, seq) in &self.desired.sequences {
            match self.current.sequences.get(name) {
                None => {
                    if !self.is_identity_sequence(self.desired, seq) {
                        self.changes.push(Change::CreateSequence { seq: seq.clone() });
                    }
                }
                Some(old) => {
                    let same = crate::model::Sequence { owned_by: None, ..old.clone() }
                        == crate::model::Sequence { owned_by: None, ..seq.clone() };
                    if !same && !self.is_identity_sequence(self.desired, seq) {
                        self.changes.push(Change::AlterSequence { from: old.clone(), to: seq.clone() });
                    }
                }
            }
        }
    }

    /// Sequences behind identity columns are created and dropped with their column.
    fn is_identity_sequence(&self, schema: &Schema, seq: &crate::model::Sequence) -> bool {
        seq.owned_by.as_ref().is_some_and(|(t, c)| {
            schema.tables.get(t).and_then(|t| t.column(c)).is_some_and(|c| c.identity.is_some())
        })
    }

    fn tables(&mut self) {
        // Pair tables: same name, or renamed by a hint.
        let renamed_from: BTreeMap<QualifiedName, QualifiedName> =
            self.hints.table_renames.iter().map(|(f, t)| (t.clone(), f.clone())).collect();
        for name in self.desired.tables.keys() {
            if let Some(from) = renamed_from.get(name) {
                if self.current.tables.contains_key(from) && !self.current.tables.contains_key(name) {
                    self.table_pairs.insert(name.clone(), from.clone());
                    continue;
                }
            }
            if self.current.tables.contains_key(name) {
                self.table_pairs.insert(name.clone(), name.clone());
            }
        }
        for (from, to) in &self.hints.table_renames {
            if self.table_pairs.get(to) != Some(from) {
                self.findings.push(
                    Finding::warning(FindingCode::UnusedHint, from.quoted(), format!("rename of table {} to {} matches no table pair", from.quoted(), to.quoted()))
                        .with_help(format!("the current schema must have {} and the desired schema {} (and not the other way round); fix or remove the hint", from.quoted(), to.quoted())),
                );
            }
        }
        self.renames = self.renamed_tables();
        let paired_current: BTreeSet<QualifiedName> = self.table_pairs.values().cloned().collect();
        let created: Vec<&Table> =
            self.desired.tables.values().filter(|t| !self.table_pairs.contains_key(&t.name)).collect();
        let dropped: Vec<&Table> =
            self.current.tables.values().filter(|t| !paired_current.contains(&t.name)).collect();
        self.created_tables = created.iter().map(|t| t.name.clone()).collect();
        self.dropped_tables = dropped.iter().map(|t| t.name.clone()).collect();
        // Partitions a partition manager made are left alone (they count as dropped for the
        // objects that would go with them, so nothing of theirs is planned either).
        // A partition of a dropped table goes with it: `DROP TABLE parent` drops its partitions,
        // so a drop of its own would fail (42P01), and the parent's acknowledgement covers it.
        let dropped: Vec<&Table> = dropped
            .into_iter()
            .filter(|t| !self.managed_partition(t))
            .filter(|t| !t.partition_of.as_ref().is_some_and(|p| self.dropped_tables.contains(&p.parent)))
            .collect();

        // A dropped table whose columns reappear in a created one looks like a rename.
        for old in &dropped {
            if self.hints.one_way_allowed(&[&old.name.schema, &old.name.name]) {
                continue;
            }
            for new in &created {
                if looks_like_same_table(old, new) {
                    self.findings.push(
                        Finding::error(FindingCode::AmbiguousRename, old.name.quoted(), format!(
                            "table {} disappears and {} appears with the same columns; planning it as drop + create would lose every row",
                            old.name.quoted(), new.name.quoted()))
                        .with_help(format!(
                            "if it is a rename, add to seqmig.toml:\n[[rename]]\nfrom = {}\nto = {}\nor pass --rename '{}={}'; if it really is a drop, list \"{}\" in [plan] allow_one_way",
                            toml_str(&old.name.quoted()), toml_str(&new.name.quoted()), old.name.quoted(), new.name.name.quoted_sql(), old.name.quoted())),
                    );
                }
            }
        }

        for t in &created {
            let mut table = (*t).clone();
            let fks: Vec<_> = table
                .constraints
                .iter()
                .filter(|(_, c)| matches!(c.kind, ConstraintKind::ForeignKey { .. }))
                .map(|(n, _)| n.clone())
                .collect();
            let fk_constraints: Vec<_> = fks.iter().filter_map(|n| table.constraints.remove(n)).collect();
            self.changes.push(Change::CreateTable { table });
            for c in fk_constraints {
                self.changes.push(Change::AddConstraint {
                    table: t.name.clone(),
                    constraint: c,
                    new_table: true,
                });
            }
        }
        let pairs: Vec<(QualifiedName, QualifiedName)> =
            self.table_pairs.iter().map(|(d, c)| (d.clone(), c.clone())).collect();
        for (dname, cname) in &pairs {
            let (cur, des) = (&self.current.tables[cname], &self.desired.tables[dname]);
            if cname != dname {
                if cname.schema != dname.schema {
                    self.findings.push(
                        Finding::error(FindingCode::UnsupportedChange, cname.quoted(), format!("table {} moves to another schema ({}); seqmig plans renames within a schema", cname.quoted(), dname.quoted()))
                            .with_help("rename within the schema with seqmig, then run ALTER TABLE … SET SCHEMA by hand in a maintenance window (it takes an ACCESS EXCLUSIVE lock briefly)"),
                    );
                } else {
                    self.changes.push(Change::RenameTable { from: cname.clone(), table: des.clone() });
                }
            }
            // A table of its own that the desired schema makes a partition of a partitioned
            // table that exists: attached with its rows (issue 21).
            if cur.partition_of.is_none()
                && let Some(p) = &des.partition_of
                && self
                    .table_pairs
                    .get(&p.parent)
                    .and_then(|c| self.current.tables.get(c))
                    .is_some_and(|t| t.is_partitioned())
            {
                self.changes.push(Change::AttachTable { table: des.clone() });
            }
            // The reverse: a partition the desired schema keeps as a table of its own, while
            // its parent stays partitioned. Detached with its rows.
            if des.partition_of.is_none()
                && let Some(p) = &cur.partition_of
                && self.current.tables.get(&p.parent).is_some_and(|t| t.is_partitioned())
                && self.desired.tables.get(&p.parent).is_some_and(|t| t.is_partitioned())
            {
                self.changes.push(Change::DetachTable { table: cur.clone() });
            }
            match self.partition_own_parts(cur, des) {
                Some((cur, des)) => self.columns(dname, &cur, &des),
                None => self.columns(dname, cur, des),
            }
        }
        // Sequences are dropped after the tables are known, so owned ones go with their table.
        let seq_drops: Vec<_> = self
            .current
            .sequences
            .iter()
            .filter(|(n, s)| {
                !self.desired.sequences.contains_key(*n)
                    && !self.sequence_owner_gone(s)
                    && !self.is_identity_sequence(self.current, s)
            })
            .map(|(_, s)| s.clone())
            .collect();
        for t in &dropped {
            let one_way_ok = self.hints.one_way_allowed(&[&t.name.schema, &t.name.name]);
            if !one_way_ok {
                self.findings.push(
                    Finding::error(
                        FindingCode::OneWayNotAcknowledged,
                        t.name.quoted(),
                        format!(
                            "dropping table {} deletes its rows; contract cannot be undone",
                            t.name.quoted()
                        ),
                    )
                    .with_help(format!(
                        "if the drop is intended, add \"{}\" to [plan] allow_one_way in seqmig.toml",
                        t.name.quoted()
                    )),
                );
            }
            self.changes.push(Change::DropTable { table: (*t).clone() });
        }
        for s in seq_drops {
            self.changes.push(Change::DropSequence { seq: s });
        }
    }

    fn columns(&mut self, dname: &QualifiedName, cur: &Table, des: &Table) {
        // Renames: hints, and transforms whose `from` differs from the column.
        let mut renames: BTreeMap<Ident, (Ident, Option<String>, Option<String>)> = BTreeMap::new();
        for (i, r) in self.hints.column_renames.iter().enumerate() {
            if (&r.table == dname || r.table == cur.name)
                && cur.column(&r.from).is_some()
                && des.column(&r.to).is_some()
                && des.column(&r.from).is_none()
            {
                renames.insert(r.from.clone(), (r.to.clone(), None, None));
                self.used_renames.insert(i);
            }
        }
        for (i, t) in self.hints.transforms.iter().enumerate() {
            if (&t.table == dname || t.table == cur.name)
                && t.from != t.column
                && cur.column(&t.from).is_some()
                && des.column(&t.column).is_some()
            {
                renames.insert(t.from.clone(), (t.column.clone(), t.up.clone(), t.down.clone()));
                self.used_transforms.insert(i);
            }
        }
        let renamed_to: BTreeSet<Ident> = renames.values().map(|(to, _, _)| to.clone()).collect();
        let dropped: Vec<&Column> = cur
            .columns
            .iter()
            .filter(|c| des.column(&c.name).is_none() && !renames.contains_key(&c.name))
            .collect();
        let added: Vec<&Column> = des
            .columns
            .iter()
            .filter(|c| cur.column(&c.name).is_none() && !renamed_to.contains(&c.name))
            .collect();

        for d in &dropped {
            if self.hints.one_way_allowed(&[&cur.name.schema, &cur.name.name, &d.name]) {
                continue;
            }
            let candidates: Vec<&&Column> = added.iter().filter(|a| a.data_type == d.data_type).collect();
            if let Some(first) = candidates.first() {
                let names: Vec<String> = candidates.iter().map(|c| c.name.quoted_sql()).collect();
                self.findings.push(
                    Finding::error(FindingCode::AmbiguousRename, column_object(&cur.name, &d.name), format!(
                        "column {} disappears and {} of the same type appears; planned as drop + add, the column's data would be lost",
                        column_object(&cur.name, &d.name), names.join(", ")))
                    .with_help(format!(
                        "if it is a rename, add to seqmig.toml:\n[[rename]]\ntable = {}\nfrom = {}\nto = {}\nor pass --rename '{}={}'; if it really is a drop and an add, list \"{}\" in [plan] allow_one_way",
                        toml_str(&dname.quoted()), toml_str(&d.name.quoted_sql()), toml_str(&first.name.quoted_sql()),
                        column_object(&cur.name, &d.name), first.name.quoted_sql(), column_object(dname, &d.name))),
                );
            }
        }

        for a in &added {
            self.add_column(dname, a);
        }
        for (from, (to, up, down)) in &renames {
            let (Some(fc), Some(tc)) = (cur.column(from), des.column(to)) else { continue };
            self.affected_columns.insert((cur.name.clone(), from.clone()));
            let mut up = up.clone();
            if up.is_none() && fc.data_type != tc.data_type {
                match classify_cast(&fc.data_type, &tc.data_type) {
                    Cast::None => {
                        self.findings.push(missing_transform(dname, tc, fc));
                    }
                    _ => up = Some(format!("{}::{}", fc.name.quoted_sql(), tc.data_type)),
                }
            }
            let mut down = down.clone();
            if down.is_none() && up.is_some() && fc.data_type != tc.data_type {
                down = self.default_down(dname, fc, tc);
            }
            // The copy gives the old release's NULLs the fill; the way back stays plain.
            if let Some(Some(fill)) = self.null_fill(dname, fc, tc) {
                if up.is_none() {
                    down = down.or_else(|| Some(tc.name.quoted_sql()));
                }
                up = Some(format!("coalesce({}, {fill})", up.unwrap_or_else(|| fc.name.quoted_sql())));
            }
            self.changes.push(Change::RenameColumn {
                table: dname.clone(),
                from: fc.clone(),
                to: tc.clone(),
                up,
                down,
            });
        }
        for c in &des.columns {
            if renamed_to.contains(&c.name) {
                continue;
            }
            if let Some(old) = cur.column(&c.name) {
                self.column_changes(dname, cur, old, c);
            }
        }
        for d in &dropped {
            self.dropped_columns.insert((cur.name.clone(), d.name.clone()));
            self.affected_columns.insert((cur.name.clone(), d.name.clone()));
            if !self.hints.one_way_allowed(&[&cur.name.schema, &cur.name.name, &d.name]) {
                self.findings.push(
                    Finding::error(
                        FindingCode::OneWayNotAcknowledged,
                        column_object(dname, &d.name),
                        format!(
                            "dropping column {} deletes its data; contract cannot be undone",
                            column_object(dname, &d.name)
                        ),
                    )
                    .with_help(format!(
                        "if the drop is intended, add \"{}\" to [plan] allow_one_way in seqmig.toml",
                        column_object(dname, &d.name)
                    )),
                );
            }
            let fill = if d.needs_value() { self.fill(dname, &d.name) } else { None };
            if d.needs_value() && fill.is_none() {
                let obj = column_object(dname, &d.name);
                self.findings.push(
                    Finding::warning(FindingCode::DropWithoutFill, obj.clone(), format!(
                        "column {obj} is NOT NULL without a default: from switch the new release inserts rows without it, so switch drops NOT NULL, and rolling switch back after such an insert fails until those rows are given a value by hand"))
                    .with_help(format!(
                        "give the value those rows get in seqmig.toml (a constant or function call, as in a DEFAULT):\n[[fill]]\ntable = {}\ncolumn = {}\nvalue = \"<SQL expression>\"\nswitch then sets it as the column's default and keeps NOT NULL",
                        toml_str(&dname.quoted()), toml_str(&d.name.quoted_sql()))),
                );
            }
            self.changes.push(Change::DropColumn { table: dname.clone(), column: (*d).clone(), fill });
        }
        self.constraints(dname, cur, des);
    }

    fn default_down(&mut self, table: &QualifiedName, fc: &Column, tc: &Column) -> Option<String> {
        match classify_cast(&tc.data_type, &fc.data_type) {
            Cast::InPlace | Cast::Implicit => Some(format!("{}::{}", tc.name.quoted_sql(), fc.data_type)),
            Cast::None => {
                // Going back to a narrower type: a plain cast, which fails loudly on values the
                // old type cannot hold rather than truncating them.
                let _ = table;
                Some(format!("{}::{}", tc.name.quoted_sql(), fc.data_type))
            }
        }
    }

    fn add_column(&mut self, table: &QualifiedName, a: &Column) {
        // ADD COLUMN cannot give a statistics target: it follows as a change of its own.
        if a.statistics.is_some() {
            self.changes.push(Change::SetStatistics {
                table: table.clone(),
                column: a.name.clone(),
                from: None,
                to: a.statistics,
            });
        }
        let fill = self.fill(table, &a.name);
        let needs_fill = a.needs_value();
        if needs_fill {
            if fill.is_none() && !self.created_tables.contains(table) {
                self.findings.push(missing_fill(
                    table,
                    &a.name,
                    "is NOT NULL without a default; existing rows have no value for it",
                ));
            }
            self.changes.push(Change::AddNotNullColumn { table: table.clone(), column: a.clone(), fill });
            return;
        }
        // A volatile default is planned online (added bare, default set, existing rows filled
        // in batches: plan/steps/add_column.rs). Identity and stored generated columns have no
        // online form: the planner's step rewrites the table, which plan/build.rs blocks.
        let rewrites = a.identity.is_some()
            || a.generated.as_ref().is_some_and(|g| g.kind == crate::model::GeneratedKind::Stored);
        self.changes.push(Change::AddColumn { table: table.clone(), column: a.clone(), rewrites });
    }

    fn column_changes(&mut self, table: &QualifiedName, cur: &Table, old: &Column, new: &Column) {
        let transform_idx = self.hints.transforms.iter().position(|t| {
            (&t.table == table || t.table == cur.name) && t.column == new.name && t.from == new.name
        });
        if old.data_type != new.data_type || (old.collation != new.collation && new.collation.is_some()) {
            if let Some(i) = transform_idx {
                self.used_transforms.insert(i);
            }
            let transform = transform_idx.map(|i| &self.hints.transforms[i]);
            let cast = classify_cast(&old.data_type, &new.data_type);
            let in_place = cast == Cast::InPlace
                && transform.is_none_or(|t| t.up.is_none())
                && old.collation == new.collation;
            let up = match (transform.and_then(|t| t.up.clone()), cast) {
                (Some(up), _) => up,
                (None, Cast::None) => {
                    self.findings.push(missing_transform(table, new, old));
                    format!("{}::{}", old.name.quoted_sql(), new.data_type)
                }
                (None, _) => format!("{}::{}", old.name.quoted_sql(), new.data_type),
            };
            let mut down = transform.and_then(|t| t.down.clone());
            if down.is_none() && !in_place {
                if transform.is_some_and(|t| t.up.is_some()) {
                    if !self.hints.missing_down_allowed(&[&table.schema, &table.name, &new.name]) {
                        self.findings.push(missing_down(table, &new.name));
                    } else {
                        self.findings.push(
                            Finding::warning(FindingCode::MissingDown, column_object(table, &new.name), format!(
                                "writes made through {} after switch are not copied back; a rollback past switch loses them",
                                column_object(table, &new.name)))
                            .with_help("accepted in [plan] allow_missing_down; add a down expression to keep rollback lossless"),
                        );
                    }
                } else {
                    down = self.default_down(table, old, new);
                }
            }
            let indexes: Vec<Index> = if in_place {
                Vec::new()
            } else {
                self.desired_indexes_of(table).filter(|i| index_uses_column(i, &new.name)).cloned().collect()
            };
            if !in_place {
                self.shadowed.insert((table.clone(), new.name.clone()));
            }
            if !in_place && old.identity.is_some() && new.identity.is_some() {
                // The shadow column the online plan swaps in has no identity and the old
                // column's identity sequence goes with it in contract: the plan would end with
                // a plain column. Blocked until seqmig can move the identity across.
                let object = column_object(table, &new.name);
                self.findings.push(
                    Finding::error(FindingCode::IdentityTypeChange, object.clone(), format!(
                        "{object} is an identity column whose type changes from {} to {}: the online plan (shadow column, backfill, swap) would leave it without its identity and its sequence",
                        old.data_type, new.data_type))
                    .with_help(format!(
                        "in a maintenance window run `ALTER TABLE {} ALTER COLUMN {} TYPE {}` (it rewrites the table under ACCESS EXCLUSIVE and widens the identity sequence with the column), then plan from the result",
                        table.quoted(), new.name.quoted_sql(), new.data_type)),
                );
            }
            // A stored generated column computed from this one is bound to its attribute:
            // the swap would leave it computing from the parked column, whose drop at
            // contract then fails (2BP01), and PostgreSQL 15 can re-point it only by dropping
            // and adding it again, which rewrites the table.
            if !in_place {
                for g in cur.columns.iter().filter(|g| g.name != old.name) {
                    let Some(generated) = &g.generated else { continue };
                    if mentions(&generated.expr, old.name.as_str()) {
                        let object = column_object(table, &new.name);
                        self.findings.push(
                            Finding::error(FindingCode::GeneratedColumnDependency, object.clone(), format!(
                                "{object} changes type from {} to {} through a new column, but the generated column {} is computed from it: it would stay on the old column, and contract could not drop that",
                                old.data_type, new.data_type, column_object(table, &g.name)))
                            .with_help(format!(
                                "plan it in two steps: first drop the generated column {} (or make it a plain column filled by the application), apply that plan, then change the type and add it back",
                                g.name.quoted_sql())),
                        );
                    }
                }
            }
            // Constraints over the column move to the new column at switch: on this table
            // (primary key, unique, check, outgoing foreign key) and on tables whose foreign
            // keys reference it.
            let mut constraints = Vec::new();
            let mut incoming = Vec::new();
            if !in_place {
                let des_table = self.desired.tables.get(table);
                for (n, c) in &cur.constraints {
                    let uses = c.kind.columns().contains(&old.name)
                        || matches!(&c.kind, ConstraintKind::Check { expr, .. } if mentions(expr, old.name.as_str()));
                    if let (true, Some(d)) = (uses, des_table.and_then(|t| t.constraints.get(n))) {
                        self.moved_constraints.insert((table.clone(), n.clone()));
                        constraints.push(d.clone());
                    }
                }
                for (tname, t) in &self.desired.tables {
                    for (n, c) in &t.constraints {
                        if let ConstraintKind::ForeignKey { ref_table, ref_columns, .. } = &c.kind {
                            if ref_table == table && ref_columns.contains(&new.name) && tname != table {
                                // Existing foreign keys are recreated by this change; a new
                                // table's is added in expand by its own change and moved too.
                                if !self.created_tables.contains(tname) {
                                    self.moved_constraints.insert((tname.clone(), n.clone()));
                                }
                                incoming.push((tname.clone(), c.clone()));
                            }
                        }
                    }
                }
            }
            let owned_sequences = self
                .current
                .sequences
                .values()
                .filter(|s| s.owned_by.as_ref() == Some(&(cur.name.clone(), old.name.clone())))
                .map(|s| s.name.clone())
                .collect();
            self.affected_columns.insert((cur.name.clone(), old.name.clone()));
            let widen_sequences =
                if in_place { Vec::new() } else { self.widening(table, cur, old, new, &incoming) };
            // Through a shadow column the copy gives the old release's NULLs the fill (in
            // place, the column's NOT NULL is planned below like any other).
            let fill = if in_place { None } else { self.null_fill(table, old, new).flatten() };
            let up = match fill {
                Some(fill) => format!("coalesce({up}, {fill})"),
                None => up,
            };
            self.changes.push(Change::ChangeType(TypeChange {
                table: table.clone(),
                from: old.clone(),
                to: new.clone(),
                up,
                down,
                in_place,
                indexes,
                owned_sequences,
                constraints,
                incoming,
                widen_sequences,
            }));
            if !in_place {
                return;
            }
        }
        if let Some(i) = transform_idx {
            self.used_transforms.insert(i);
            self.findings.push(
                Finding::warning(
                    FindingCode::UnusedHint,
                    column_object(table, &new.name),
                    format!(
                        "a [[transform]] is given for {} but its type does not change",
                        column_object(table, &new.name)
                    ),
                )
                .with_help("remove the hint; to rewrite values, use a separate data migration"),
            );
        }
        if old.default != new.default {
            if new.default.as_deref().is_some_and(is_volatile)
                && !new.default.as_deref().is_some_and(|d| d.contains("nextval("))
            {
                // A volatile default set on an existing column applies to new rows only: no rewrite.
            }
            self.changes.push(Change::ChangeDefault {
                table: table.clone(),
                column: new.name.clone(),
                from: old.default.clone(),
                to: new.default.clone(),
            });
        }
        if let Some(fill) = self.null_fill(table, old, new) {
            self.changes.push(Change::SetNotNull { table: table.clone(), column: new.clone(), fill });
        } else if old.not_null && !new.not_null {
            self.changes.push(Change::DropNotNull { table: table.clone(), column: new.clone() });
        }
        // A swapped column gets the desired statistics target at the swap.
        if old.statistics != new.statistics && !self.shadowed.contains(&(table.clone(), new.name.clone())) {
            self.changes.push(Change::SetStatistics {
                table: table.clone(),
                column: new.name.clone(),
                from: old.statistics,
                to: new.statistics,
            });
        }
        if old.identity != new.identity || old.generated != new.generated {
            self.findings.push(
                Finding::error(FindingCode::UnsupportedChange, column_object(table, &new.name), format!(
                    "identity or generated expression of {} changes; seqmig does not plan this", column_object(table, &new.name)))
                .with_help("ALTER TABLE … ALTER COLUMN … ADD/DROP IDENTITY (brief lock) or, for generated columns, add a new column, backfill it and rename; do it by hand"),
            );
        }
    }

    fn same_constraint(&self, old: &crate::model::Constraint, new: &crate::model::Constraint) -> bool {
        let mut o = old.kind.clone();
        if let (
            ConstraintKind::ForeignKey { ref_table, .. },
            ConstraintKind::ForeignKey { ref_table: b, .. },
        ) = (&mut o, &new.kind)
        {
            if self.table_pairs.get(b) == Some(ref_table) {
                *ref_table = b.clone();
            }
        }
        o == new.kind && old.deferrable == new.deferrable && old.initially_deferred == new.initially_deferred
    }

    fn constraints(&mut self, dname: &QualifiedName, cur: &Table, des: &Table) {
        let mut dropped: Vec<&crate::model::Constraint> = cur
            .constraints
            .iter()
            .filter(|(n, _)| !des.constraints.contains_key(*n))
            .map(|(_, c)| c)
            .collect();
        for (name, c) in &des.constraints {
            if self.moved_constraints.contains(&(dname.clone(), name.clone())) {
                continue;
            }
            match cur.constraints.get(name) {
                None => {
                    if let Some(pos) = dropped.iter().position(|d| self.same_constraint(d, c)) {
                        let d = dropped.remove(pos);
                        self.changes.push(Change::RenameConstraint {
                            table: dname.clone(),
                            from: d.name.clone(),
                            to: c.clone(),
                        });
                        continue;
                    }
                    let unique =
                        matches!(c.kind, ConstraintKind::PrimaryKey { .. } | ConstraintKind::Unique { .. });
                    if unique {
                        self.changes.push(Change::AddUnique {
                            table: dname.clone(),
                            constraint: c.clone(),
                            new_table: false,
                        });
                    } else {
                        self.changes.push(Change::AddConstraint {
                            table: dname.clone(),
                            constraint: c.clone(),
                            new_table: false,
                        });
                    }
                }
                Some(old) => {
                    // A constraint the desired schema has validated that is NOT VALID now
                    // needs its VALIDATE (a change of the same definition; planned as one).
                    if !self.same_constraint(old, c) || (!old.validated && c.validated) {
                        let key = matches!(
                            c.kind,
                            ConstraintKind::PrimaryKey { .. } | ConstraintKind::Unique { .. }
                        );
                        if key && cur.is_partitioned() {
                            // Its new unique index cannot be built concurrently on the parent
                            // (0A000), and the per-leaf way needs the name the old key holds.
                            let obj = format!("{}.{}", dname.quoted(), c.name.quoted_sql());
                            self.findings.push(
                                Finding::error(FindingCode::UnsupportedChange, obj.clone(), format!(
                                    "key {obj} of the partitioned table {} changes its definition; PostgreSQL refuses a concurrent unique index on a partitioned table, and seqmig builds a partitioned key per partition only under a name no key holds",
                                    dname.quoted()))
                                .with_help("change it in two plans: one that drops the key (through contract), then one that adds the new definition (built per partition, attached, then added on the parent)"),
                            );
                        }
                        self.changes.push(Change::ChangeConstraint {
                            table: dname.clone(),
                            from: old.clone(),
                            to: c.clone(),
                        });
                    }
                }
            }
        }
        for c in dropped {
            self.changes.push(Change::DropConstraint { table: dname.clone(), constraint: c.clone() });
        }
    }

    fn indexes(&mut self) {
        let constraint_named = |schema: &Schema, idx: &Index| {
            schema.tables.get(&idx.table).is_some_and(|t| t.constraints.contains_key(&idx.name.name))
        };
        // Current table → desired table, built once: finding the pair by value for every
        // index made the diff quadratic. The first pair in desired-name order wins, as the
        // scan it replaces did.
        let mut desired_of: BTreeMap<&QualifiedName, &QualifiedName> = BTreeMap::new();
        for (d, c) in &self.table_pairs {
            desired_of.entry(c).or_insert(d);
        }
        let map_table = |old: &Index| Index {
            table: desired_of.get(&old.table).map(|d| (*d).clone()).unwrap_or(old.table.clone()),
            ..old.clone()
        };
        let dropped: Vec<&Index> = self
            .current
            .indexes
            .iter()
            .filter(|(n, i)| {
                !self.desired.indexes.contains_key(*n)
                    && !self.current.index_attachments.contains_key(*n)
                    && !constraint_named(self.current, i)
                    && !self.dropped_tables.contains(&i.table)
                    && !self.dropped_views.contains(&i.table)
            })
            .map(|(_, i)| i)
            .collect();
        // A renamed index stays on its (mapped) table: the candidates for each new index are
        // the dropped ones of its table, in the order of `dropped`.
        let mut dropped_by_table: BTreeMap<QualifiedName, Vec<usize>> = BTreeMap::new();
        for (pos, old) in dropped.iter().enumerate() {
            let table = desired_of.get(&old.table).map(|d| (*d).clone()).unwrap_or(old.table.clone());
            dropped_by_table.entry(table).or_default().push(pos);
        }
        let mut renamed = vec![false; dropped.len()];
        for (name, idx) in &self.desired.indexes {
            // A partition's index attached to its parent's comes and goes with the parent's
            // (plan/steps/partition.rs builds it); planned on its own it would be built twice.
            if constraint_named(self.desired, idx)
                || (self.desired.index_attachments.contains_key(name)
                    && self
                        .current
                        .indexes
                        .get(name)
                        .is_none_or(|_| self.current.index_attachments.contains_key(name)))
            {
                continue;
            }
            if !self.current.indexes.contains_key(name) {
                let same = |old: &Index| Index { name: idx.name.clone(), ..map_table(old) } == *idx;
                let candidates = dropped_by_table.get(&idx.table).map(Vec::as_slice).unwrap_or_default();
                if let Some(&pos) = candidates.iter().find(|&&pos| !renamed[pos] && same(dropped[pos])) {
                    renamed[pos] = true;
                    self.changes.push(Change::RenameIndex { from: dropped[pos].clone(), to: idx.clone() });
                    continue;
                }
            }
            // Indexes on a recreated (materialized) view are built again by the recreate.
            if self.replaced_views.contains(&idx.table) {
                continue;
            }
            // Indexes over a column whose type changes are rebuilt by that change.
            if self.shadowed.iter().any(|(t, c)| t == &idx.table && index_uses_column(idx, c)) {
                continue;
            }
            let new_table = self.created_tables.contains(&idx.table);
            match self.current.indexes.get(name) {
                None => self.changes.push(Change::AddIndex { index: idx.clone(), new_table }),
                Some(old) => {
                    if map_table(old) != *idx {
                        self.changes.push(Change::ChangeIndex { from: old.clone(), to: idx.clone() });
                    }
                }
            }
        }
        for (pos, idx) in dropped.into_iter().enumerate() {
            if !renamed[pos] {
                self.changes.push(Change::DropIndex { index: idx.clone() });
            }
        }
    }

    fn view_affected(&self, v: &View, recreated: &BTreeSet<QualifiedName>) -> bool {
        v.reads.iter().any(|r: &ColumnRef| match &r.column {
            Some(c) => self.affected_columns.contains(&(r.table.clone(), c.clone())),
            None => {
                recreated.contains(&r.table)
                    || (selects_star(&v.definition)
                        && self.affected_columns.iter().any(|(t, _)| t == &r.table))
            }
        }) || v.reads.iter().any(|r| recreated.contains(&r.table))
    }

    /// Tables renamed by a hint within their schema: (current name, desired name).
    /// PostgreSQL binds what hangs on a table (views, triggers, policies, rules, statistics,
    /// comments) by OID, so after `ALTER TABLE … RENAME` only their text names it anew.
    fn renamed_tables(&self) -> Vec<(QualifiedName, QualifiedName)> {
        self.table_pairs
            .iter()
            .filter(|(des, cur)| des != cur && des.schema == cur.schema)
            .map(|(des, cur)| (cur.clone(), des.clone()))
            .collect()
    }

    /// `text` as it reads once the renamed tables have their new names.
    fn carry_text(&self, text: &str) -> String {
        self.renames.iter().fold(text.to_string(), |t, (cur, des)| {
            crate::parse::text::rename_relation(
                &t,
                cur.schema.as_str(),
                cur.name.as_str(),
                &des.name.quoted_sql(),
            )
        })
    }

    fn carry_table(&self, q: &QualifiedName) -> QualifiedName {
        self.renames.iter().find(|(cur, _)| cur == q).map_or_else(|| q.clone(), |(_, des)| des.clone())
    }

    /// A current view as it reads after the renames of the tables it reads.
    fn carried_view(&self, v: &View) -> View {
        if !v.reads.iter().any(|r| self.renames.iter().any(|(cur, _)| cur == &r.table)) {
            return v.clone();
        }
        let mut out = v.clone();
        out.definition = self.carry_text(&v.definition);
        out.reads = v
            .reads
            .iter()
            .map(|r| ColumnRef { table: self.carry_table(&r.table), column: r.column.clone() })
            .collect();
        out
    }

    /// The current opaque objects, those on a renamed table under the identity, text and
    /// table they have after the rename.
    fn carried_opaque(&self) -> BTreeMap<crate::model::OpaqueId, crate::model::OpaqueObject> {
        let renames = &self.renames;
        self.current
            .opaque
            .values()
            .map(|o| {
                // A routine's argument and result types that are a renamed table's row type
                // follow it (by OID), its body does not. Its rollback must recreate it so: by
                // the old name, it would bind the compatibility view's row type, and the
                // rename's own rollback could not drop that view.
                if matches!(o.id.kind, OpaqueKind::Function | OpaqueKind::Procedure | OpaqueKind::Aggregate) {
                    let mut c = o.clone();
                    c.text = self.carry_text(&o.text);
                    c.id.identity = renames.iter().fold(o.id.identity.clone(), |id, (cur, des)| {
                        crate::parse::text::rename_row_type(
                            &id,
                            cur.schema.as_str(),
                            cur.name.as_str(),
                            &des.name.quoted_sql(),
                        )
                    });
                    return (c.id.clone(), c);
                }
                let Some((cur, des)) = renames.iter().find(|(cur, _)| o.depends_on.contains(cur)) else {
                    return (o.id.clone(), o.clone());
                };
                let mut c = o.clone();
                c.text = self.carry_text(&o.text);
                c.depends_on = o.depends_on.iter().map(|q| self.carry_table(q)).collect();
                if let Some(head) = o.id.identity.strip_suffix(&format!(" on {}", cur.quoted())) {
                    c.id.identity = format!("{head} on {}", des.quoted());
                }
                (c.id.clone(), c)
            })
            .collect()
    }

    /// The current comments, those on a renamed table or its columns under its new name.
    fn carried_comments(&self) -> BTreeMap<ObjectRef, String> {
        let renames = &self.renames;
        self.current
            .comments
            .iter()
            .map(|(target, text)| {
                for (cur, des) in renames {
                    let (old, new) = (cur.quoted(), des.quoted());
                    let identity = match target.kind.as_str() {
                        "table" if target.identity == old => Some(new.clone()),
                        "column" => {
                            target.identity.strip_prefix(&format!("{old}.")).map(|c| format!("{new}.{c}"))
                        }
                        _ => None,
                    };
                    if let Some(identity) = identity {
                        return (ObjectRef::new(&target.kind, identity), text.clone());
                    }
                }
                (target.clone(), text.clone())
            })
            .collect()
    }

    fn replaced_views(&mut self) {
        let mut recreated: BTreeSet<QualifiedName> = BTreeSet::new();
        // Views whose text changed, then (to a fixpoint) views reading changed columns or
        // recreated views: PostgreSQL refuses to drop or retype what a view depends on.
        for (name, v) in &self.desired.views {
            if let Some(old) = self.current.views.get(name) {
                if self.carried_view(old) != *v {
                    recreated.insert(name.clone());
                }
            }
        }
        self.redefined_views = recreated.clone();
        loop {
            let before = recreated.len();
            for (name, v) in &self.current.views {
                if !recreated.contains(name)
                    && self.desired.views.contains_key(name)
                    && self.view_affected(v, &recreated)
                {
                    recreated.insert(name.clone());
                }
            }
            if recreated.len() == before {
                break;
            }
        }
        self.dropped_views = self
            .current
            .views
            .keys()
            .filter(|q| recreated.contains(*q) || !self.desired.views.contains_key(*q))
            .cloned()
            .collect();
        self.replaced_views = recreated;
    }

    /// Whether an opaque object or comment hangs on a view the plan drops (`current`: to
    /// recreate it or for good) or recreates (`desired`): the view's steps drop it and make it
    /// again (see [`attached`]), so it is not diffed.
    fn on_dropped_view(&self, o: &crate::model::OpaqueObject, side: Side) -> bool {
        self.views_going(side).any(|v| attached::object_on(o, v))
    }

    fn comment_on_dropped_view(&self, target: &ObjectRef, side: Side) -> bool {
        let schema = match side {
            Side::Current => self.current,
            Side::Desired => self.desired,
        };
        self.views_going(side).any(|v| attached::comment_on(schema, target, v))
    }

    fn views_going(&self, side: Side) -> impl Iterator<Item = &QualifiedName> {
        match side {
            Side::Current => self.dropped_views.iter(),
            Side::Desired => self.replaced_views.iter(),
        }
    }

    fn views(&mut self) {
        let (recreated, definition_changed) = (&self.replaced_views, &self.redefined_views);
        for (name, v) in &self.desired.views {
            match self.current.views.get(name) {
                None => self.changes.push(Change::CreateView { view: v.clone() }),
                Some(old) if recreated.contains(name) => self.changes.push(Change::ReplaceView {
                    from: self.carried_view(old),
                    to: v.clone(),
                    reason: if definition_changed.contains(name) {
                        ViewReason::Definition
                    } else {
                        ViewReason::Dependency
                    },
                }),
                Some(_) => {}
            }
        }
        for (name, v) in &self.current.views {
            if !self.desired.views.contains_key(name) {
                self.changes.push(Change::DropView { view: v.clone() });
            }
        }
    }

    fn opaque(&mut self) {
        // Data statements in a dump (Rails' `INSERT INTO schema_migrations …`) are not schema.
        let is_data = |o: &crate::model::OpaqueObject| {
            matches!(o.id.kind, OpaqueKind::Other | OpaqueKind::Unparsed) && {
                let t = o.text.trim_start().to_ascii_lowercase();
                ["insert ", "copy ", "update ", "delete ", "select "].iter().any(|k| t.starts_with(k))
            }
        };
        let current = self.carried_opaque();
        let mut ignored = 0;
        for (id, o) in &self.desired.opaque {
            if is_data(o) {
                if current.get(id).is_none_or(|c| c.text != o.text) {
                    ignored += 1;
                }
                continue;
            }
            if current.get(id).is_none_or(|c| c.text != o.text) {
                self.opaque_changes_modelled(o);
            }
            if self.on_dropped_view(o, Side::Desired) {
                continue;
            }
            match current.get(id) {
                None => self.changes.push(Change::CreateObject { object: o.clone() }),
                Some(old) if old.text != o.text => {
                    self.changes.push(Change::ReplaceObject { from: old.clone(), to: o.clone() })
                }
                Some(_) => {}
            }
        }
        if ignored > 0 {
            self.findings.push(
                Finding::warning(FindingCode::DataStatementIgnored, "desired schema", format!(
                    "{ignored} data statement(s) in the desired schema (INSERT, COPY, …) differ from the current one and are not planned"))
                .with_help("seqmig plans schema changes; move data changes (such as a migrations table's rows) to the application's own migration step"),
            );
        }
        for (id, o) in &current {
            if self.desired.opaque.contains_key(id) || is_data(o) || self.on_dropped_view(o, Side::Current) {
                continue;
            }
            if matches!(id.kind, OpaqueKind::Other | OpaqueKind::Unparsed) {
                self.findings.push(
                    Finding::warning(FindingCode::ManualStep, short_text(&id.identity), "seqmig cannot derive how to remove this statement's effect; the plan has a placeholder step")
                        .with_help("write the inverse statement by hand and run it in contract"),
                );
            }
            let attached_to_dropped =
                matches!(id.kind, OpaqueKind::Trigger | OpaqueKind::Policy | OpaqueKind::Rule)
                    && !o.depends_on.is_empty()
                    && o.depends_on.iter().all(|t| self.dropped_tables.contains(t));
            if !attached_to_dropped {
                self.changes.push(Change::DropObject { object: o.clone() });
            }
        }
    }

    /// A statement kept as text that drops or alters an object seqmig models (`ALTER TABLE`
    /// in a form the loader cannot read, `DROP … ` inside a `DO` block, `TRUNCATE`): the plan
    /// cannot know what it does to that object, so it blocks until acknowledged.
    fn opaque_changes_modelled(&mut self, o: &crate::model::OpaqueObject) {
        if !matches!(o.id.kind, OpaqueKind::Other | OpaqueKind::Unparsed) {
            return;
        }
        let lower = o.text.trim_start().to_ascii_lowercase();
        let head = lower.split_whitespace().next().unwrap_or("");
        if !["alter", "drop", "truncate", "do", "cluster", "reindex", "lock"].contains(&head) {
            return;
        }
        let default = o.search_path.as_ref().map_or("public", |s| s.as_str());
        for q in crate::parse::named_objects(&o.text, default) {
            let modelled = [self.current, self.desired].iter().any(|s| {
                s.tables.contains_key(&q)
                    || s.views.contains_key(&q)
                    || s.sequences.contains_key(&q)
                    || s.indexes.contains_key(&q)
                    || s.enums.contains_key(&q)
                    || s.domains.contains_key(&q)
            });
            if !modelled || self.hints.one_way_allowed(&[&q.schema, &q.name]) {
                continue;
            }
            self.findings.push(
                Finding::error(FindingCode::OpaqueChangesModelled, q.quoted(), format!(
                    "a statement seqmig keeps as text ({}) changes {}, which seqmig models; the plan cannot say what it does to it, what it locks or how to undo it",
                    short_text(&o.text), q.quoted()))
                .with_help(format!(
                    "write the change declaratively in the desired schema so seqmig can plan it; if the statement is intended as written, add \"{}\" to [plan] allow_one_way in seqmig.toml",
                    q.quoted())),
            );
        }
    }

    fn comment_target_exists(&self, target: &ObjectRef) -> bool {
        let parts = target.name_parts();
        match (target.kind.as_str(), parts.as_slice()) {
            ("table", [s, t]) => self.desired.tables.contains_key(&QualifiedName::new(s.clone(), t.clone())),
            ("column", [s, t, c]) => self
                .desired
                .tables
                .get(&QualifiedName::new(s.clone(), t.clone()))
                .is_some_and(|t| t.column(c).is_some()),
            // An extension the schema does not comment on has its control file's comment (the
            // step restores that one); a comment the current schema states is replaced by it.
            ("extension", [e]) => {
                self.desired.extensions.contains_key(e) && self.current.extensions.contains_key(e)
            }
            _ => false,
        }
    }

    fn comments(&mut self) {
        // A column whose type changes through a shadow gets the desired comment at the swap
        // (the old column keeps its own for an undo).
        let swapped: BTreeSet<ObjectRef> =
            self.shadowed.iter().map(|(t, c)| ObjectRef::new("column", column_object(t, c))).collect();
        let current = self.carried_comments();
        for (target, text) in &self.desired.comments {
            if current.get(target) != Some(text)
                && !swapped.contains(target)
                && !self.comment_on_dropped_view(target, Side::Desired)
            {
                self.changes.push(Change::SetComment {
                    target: target.clone(),
                    from: current.get(target).cloned(),
                    to: Some(text.clone()),
                });
            }
        }
        for (target, text) in &current {
            if !self.desired.comments.contains_key(target)
                && self.comment_target_exists(target)
                && !swapped.contains(target)
                && !self.comment_on_dropped_view(target, Side::Current)
            {
                self.changes.push(Change::SetComment {
                    target: target.clone(),
                    from: Some(text.clone()),
                    to: None,
                });
            }
        }
    }

    /// The `[[fill]]` of a column of the desired schema, remembered as used.
    /// For a column that becomes NOT NULL (`old` nullable, `new` not): the value for the rows
    /// that hold NULL, `Some(None)` (and a `missing-fill` finding) when there is none. Existing
    /// rows may hold NULL and the old release may go on writing it: a NOT NULL check alone
    /// would fail their updates from expand on. The fill (the hint, else the column's new
    /// default) replaces both. `None` when the column does not become NOT NULL.
    fn null_fill(&mut self, table: &QualifiedName, old: &Column, new: &Column) -> Option<Option<String>> {
        if old.not_null || !new.not_null {
            return None;
        }
        let fill = self.fill(table, &new.name).or_else(|| new.default.clone());
        if fill.is_none() {
            self.findings.push(missing_fill(
                table,
                &new.name,
                "becomes NOT NULL without a default; its existing NULLs, and the NULLs the old release \
                 goes on writing until switch, have no value (a NOT NULL check would fail every update \
                 of those rows)",
            ));
        }
        Some(fill)
    }

    fn fill(&mut self, table: &QualifiedName, column: &Ident) -> Option<String> {
        let fill = self.hints.fill(table, column).map(str::to_string);
        if fill.is_some() {
            self.used_fills.insert((table.clone(), column.clone()));
        }
        fill
    }

    fn unused_hints(&mut self) {
        for (table, column) in self.hints.fills.keys() {
            if self.used_fills.contains(&(table.clone(), column.clone())) {
                continue;
            }
            let obj = column_object(table, column);
            let help = match self.hints.table_renames.get(table) {
                Some(to) => format!(
                    "{} is renamed to {}: a [[fill]] names the table as the desired schema does (table = {})",
                    table.quoted(),
                    to.quoted(),
                    toml_str(&to.quoted())
                ),
                None => "a [[fill]] applies to a column that is added NOT NULL, made NOT NULL, or dropped while NOT NULL without a default; check table and column against the two schemas, or remove the hint".to_string(),
            };
            self.findings.push(
                Finding::warning(
                    FindingCode::UnusedHint,
                    obj.clone(),
                    format!("[[fill]] for {obj} matches no column added or made NOT NULL"),
                )
                .with_help(help),
            );
        }
        for (i, r) in self.hints.column_renames.iter().enumerate() {
            if !self.used_renames.contains(&i) {
                let obj = column_object(&r.table, &r.from);
                self.findings.push(
                    Finding::warning(FindingCode::UnusedHint, obj.clone(), format!("rename of {obj} to {} matches no column pair", r.to.quoted_sql()))
                        .with_help("the current schema must have the old column and the desired schema the new one, not both; fix or remove the hint"),
                );
            }
        }
        for (i, t) in self.hints.transforms.iter().enumerate() {
            if !self.used_transforms.contains(&i) {
                let obj = column_object(&t.table, &t.column);
                self.findings.push(
                    Finding::warning(
                        FindingCode::UnusedHint,
                        obj.clone(),
                        format!("[[transform]] for {obj} matches no renamed or retyped column"),
                    )
                    .with_help("check table, column and from against the two schemas"),
                );
            }
        }
    }
}

/// The `missing-fill` finding: a column that becomes NOT NULL with no value for the rows
/// that hold none (`what` says why, after the column's name).
fn missing_fill(table: &QualifiedName, column: &Ident, what: &str) -> Finding {
    Finding::error(
        FindingCode::MissingFill,
        column_object(table, column),
        format!("column {} {what}", column_object(table, column)),
    )
    .with_help(format!(
        "give the value for existing rows in seqmig.toml:\n[[fill]]\ntable = {}\ncolumn = {}\nvalue = \"<SQL expression>\"\nor give the column a DEFAULT",
        toml_str(&table.quoted()),
        toml_str(&column.quoted_sql())
    ))
}

/// `s` as a TOML basic string, quotes included: help text a user pastes into seqmig.toml
/// must parse when a name is quoted (`public."Order Items"`).
fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn missing_transform(table: &QualifiedName, new: &Column, old: &Column) -> Finding {
    let obj = column_object(table, &new.name);
    Finding::error(FindingCode::MissingTransform, obj.clone(), format!(
        "{obj} changes from {} to {}, which has no safe implicit cast; the backfill would not know how to convert existing rows",
        old.data_type, new.data_type))
    .with_help(format!(
        "say how, in seqmig.toml:\n[[transform]]\ntable = {}\ncolumn = {}\nfrom = {}\nup = \"<expression over the old columns>\"\ndown = \"<expression over the new column>\"",
        toml_str(&table.quoted()), toml_str(&new.name.quoted_sql()), toml_str(&old.name.quoted_sql())))
}

fn missing_down(table: &QualifiedName, column: &Ident) -> Finding {
    let obj = column_object(table, column);
    Finding::error(FindingCode::MissingDown, obj.clone(), format!(
        "the dual-write trigger for {obj} has no down expression: writes made by the new release after switch could not be copied to the old column, and a rollback would lose them"))
    .with_help(format!(
        "add `down = \"…\"` to the [[transform]] of {obj}, or accept the loss with [plan] allow_missing_down = [\"{obj}\"]"))
}

fn index_uses_column(i: &Index, column: &Ident) -> bool {
    i.keys.iter().any(|k| match &k.expr {
        IndexExpr::Column(c) => c == column,
        IndexExpr::Expression(e) => mentions(e, column.as_str()),
    }) || i.include.contains(column)
        || i.predicate.as_deref().is_some_and(|p| mentions(p, column.as_str()))
}

/// At most 80 characters of an object's text, for messages.
pub fn short_text(s: &str) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

/// Same columns (names and types), in any order: what a renamed table looks like. Looser
/// matches flag every pair of job-queue tables that share a worker's standard columns.
fn looks_like_same_table(old: &Table, new: &Table) -> bool {
    if old.columns.is_empty() {
        return false;
    }
    let old_cols: BTreeSet<(&Ident, &str)> =
        old.columns.iter().map(|c| (&c.name, c.data_type.as_str())).collect();
    let new_cols: BTreeSet<(&Ident, &str)> =
        new.columns.iter().map(|c| (&c.name, c.data_type.as_str())).collect();
    old_cols == new_cols
}

#[cfg(test)]
pub(crate) mod tests;
