//! One file per change kind: each turns its [`Change`] into steps by phase, with SQL,
//! rollback, lock, and what the step needs and makes (from which the DAG derives edges).
//! This file holds the context every kind sees and the dispatch; the building blocks
//! several kinds share (dual-write triggers, batched backfills, NOT NULL through a
//! validated CHECK, authority flags) are in [`common`].

mod add_column;
mod add_constraint;
mod add_enum_value;
mod add_index;
mod add_not_null_column;
mod add_unique;
mod attach_partition;
mod change_constraint;
mod change_default;
mod change_index;
mod change_type;
mod common;
mod create_table;
mod drop_column;
mod drop_constraint;
mod drop_index;
mod drop_not_null;
mod drop_table;
mod objects;
mod opaque;
pub(crate) mod partition;
mod rename_column;
mod rename_table;
mod set_not_null;
pub(crate) mod views;

use serde_json::{Value, json};

use super::draft::{Res, StepDraft};
use super::sqltext::{column_value, derived_name, row_ref};
use crate::diff::{Change, Hints};
use crate::model::{Column, Ident, QualifiedName, Schema};
use crate::parse::text::repoint;
use crate::plan::{BackfillSpec, LockMode, Phase};
use crate::render::{RenderError, Renderer, qn};

pub use common::*;

/// What every planner file may look at.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub r: &'a Renderer,
    pub current: &'a Schema,
    pub desired: &'a Schema,
    pub hints: &'a Hints,
    /// The change's object: also the name of its authority flag.
    pub flag: String,
}

pub type Steps = Result<Vec<StepDraft>, RenderError>;

impl Ctx<'_> {
    /// Renders `templates/sql/<name>.sql`.
    pub fn sql(&self, name: &str, v: Value) -> Result<String, RenderError> {
        self.r.render_value(&format!("sql/{name}.sql"), &v)
    }

    pub fn flag_sql(&self, action: &str, authority: &str) -> Result<String, RenderError> {
        self.sql("flag", json!({ "action": action, "flag": self.flag, "authority": authority }))
    }

    pub fn verify(&self, v: Value) -> Result<String, RenderError> {
        self.sql("verify", v)
    }

    pub fn verify_column(
        &self,
        table: &QualifiedName,
        column: &Ident,
        present: bool,
    ) -> Result<String, RenderError> {
        self.verify(json!({ "kind": "column", "table_text": table.quoted(), "column": column.as_str(), "present": present }))
    }

    pub fn verify_flag(&self, authority: &str) -> Result<String, RenderError> {
        self.verify(json!({ "kind": "flag", "flag": self.flag, "authority": authority }))
    }

    /// What a column needs to exist before it can be added: its table, a user type, the
    /// sequence of a `nextval` default.
    pub fn column_needs(&self, table: &QualifiedName, c: &Column) -> Vec<Res> {
        let mut r = vec![Res::Table(table.clone())];
        r.extend(type_needs(self.desired, &c.data_type));
        if let Some(seq) = c.default.as_deref().and_then(crate::diff::nextval_sequence) {
            r.push(Res::Sequence(seq));
        }
        r
    }
}

/// The user type a column type names, when the desired schema defines it.
pub fn type_needs(schema: &Schema, data_type: &str) -> Option<Res> {
    let base = data_type.trim_end_matches("[]");
    let base = base.split('(').next().unwrap_or(base).trim();
    let q = QualifiedName::parse_sql(base, "public").ok()?;
    let known = schema.enums.contains_key(&q)
        || schema.domains.contains_key(&q)
        || schema.composites.contains_key(&q);
    known.then_some(Res::Type(q))
}

/// Dispatches a change to its planner file.
pub fn steps(ctx: &Ctx<'_>, change: &Change) -> Steps {
    match change {
        Change::CreateSchema { .. }
        | Change::CreateExtension { .. }
        | Change::DropExtension { .. }
        | Change::CreateType { .. }
        | Change::DropType { .. }
        | Change::CreateSequence { .. }
        | Change::DropSequence { .. }
        | Change::AlterSequence { .. }
        | Change::SetStatistics { .. }
        | Change::RenameConstraint { .. }
        | Change::RenameIndex { .. }
        | Change::SetComment { .. } => objects::steps(ctx, change),
        Change::AddEnumValue { name, value, before, after } => {
            add_enum_value::steps(ctx, name, value, before.as_deref(), after.as_deref())
        }
        Change::CreateTable { table } => create_table::steps(ctx, table),
        Change::DropTable { table } => drop_table::steps(ctx, table),
        Change::AttachTable { table } => attach_partition::steps_existing(ctx, table),
        Change::DetachTable { table } => drop_table::steps_detach_and_keep(ctx, table),
        Change::RenameTable { from, table } => rename_table::steps(ctx, from, table),
        Change::AddColumn { table, column, rewrites } => add_column::steps(ctx, table, column, *rewrites),
        Change::AddNotNullColumn { table, column, fill } => {
            add_not_null_column::steps(ctx, table, column, fill.as_deref())
        }
        Change::DropColumn { table, column, fill } => drop_column::steps(ctx, table, column, fill.as_deref()),
        Change::RenameColumn { table, from, to, up, down } => {
            rename_column::steps(ctx, table, from, to, up.as_deref(), down.as_deref())
        }
        Change::ChangeType(tc) => change_type::steps(ctx, tc),
        Change::SetNotNull { table, column, fill } => {
            set_not_null::steps(ctx, table, column, fill.as_deref())
        }
        Change::DropNotNull { table, column } => drop_not_null::steps(ctx, table, column),
        Change::ChangeDefault { table, column, from, to } => {
            change_default::steps(ctx, table, column, from.as_deref(), to.as_deref())
        }
        Change::AddConstraint { table, constraint, new_table } => {
            add_constraint::steps(ctx, table, constraint, *new_table)
        }
        Change::AddUnique { table, constraint, new_table } => {
            add_unique::steps(ctx, table, constraint, *new_table)
        }
        Change::ChangeConstraint { table, from, to } => change_constraint::steps(ctx, table, from, to),
        Change::DropConstraint { table, constraint } => drop_constraint::steps(ctx, table, constraint),
        Change::AddIndex { index, new_table } => add_index::steps(ctx, index, *new_table),
        Change::ChangeIndex { from, to } => change_index::steps(ctx, from, to),
        Change::DropIndex { index } => drop_index::steps(ctx, index),
        Change::CreateView { view } => views::create(ctx, view),
        Change::ReplaceView { from, to, .. } => views::replace(ctx, from, to),
        Change::DropView { view } => views::drop(ctx, view),
        Change::CreateObject { object } => opaque::create(ctx, object),
        Change::ReplaceObject { from, to } => opaque::replace(ctx, from, to),
        Change::DropObject { object } => opaque::drop(ctx, object),
    }
}

#[cfg(test)]
pub(crate) mod testkit {
    //! Builders for planner unit tests: schemas made in code, rendered with the embedded
    //! templates, every statement re-parsed.
    use super::*;
    use crate::model::{Constraint, ConstraintKind, Schema, Table};

    pub fn users() -> Table {
        let mut t = Table::new(QualifiedName::of("public", "users"));
        let mut id = Column::new(Ident::exact("id").unwrap(), "bigint");
        id.not_null = true;
        t.columns.push(id);
        t.columns.push(Column::new(Ident::exact("name").unwrap(), "text"));
        let pkey = constraint(
            "users_pkey",
            ConstraintKind::PrimaryKey { columns: vec![Ident::exact("id").unwrap()], include: vec![] },
        );
        t.constraints.insert(pkey.name.clone(), pkey);
        t
    }

    /// A validated, not deferrable constraint.
    pub fn constraint(name: &str, kind: ConstraintKind) -> Constraint {
        Constraint {
            name: Ident::exact(name).unwrap(),
            kind,
            deferrable: false,
            initially_deferred: false,
            validated: true,
        }
    }

    /// `FOREIGN KEY (column) REFERENCES public.users (id) ON DELETE on_delete`.
    pub fn fk_to_users(name: &str, column: &str, on_delete: crate::model::FkAction) -> Constraint {
        constraint(
            name,
            ConstraintKind::ForeignKey {
                columns: vec![Ident::exact(column).unwrap()],
                ref_table: QualifiedName::of("public", "users"),
                ref_columns: vec![Ident::exact("id").unwrap()],
                on_delete,
                on_update: Default::default(),
                match_full: false,
            },
        )
    }

    pub fn schema_with(tables: Vec<Table>) -> Schema {
        let mut s = Schema::default();
        for t in tables {
            s.tables.insert(t.name.clone(), t);
        }
        s
    }

    pub fn run(current: &Schema, desired: &Schema, change: &Change) -> Vec<StepDraft> {
        let r = Renderer::embedded();
        let hints = Hints::default();
        let ctx = Ctx { r: &r, current, desired, hints: &hints, flag: change.object() };
        let steps = steps(&ctx, change).unwrap();
        for s in &steps {
            crate::parse::parses(&s.sql).unwrap_or_else(|e| panic!("{e}\n{}", s.sql));
            if let Some(rb) = &s.rollback_sql {
                crate::parse::parses(rb).unwrap_or_else(|e| panic!("{e}\n{rb}"));
            }
            if let Some(v) = &s.verify {
                crate::parse::parses(v).unwrap_or_else(|e| panic!("{e}\n{v}"));
            }
        }
        steps
    }

    pub fn phases(steps: &[StepDraft]) -> Vec<Phase> {
        steps.iter().map(|s| s.phase).collect()
    }
}
