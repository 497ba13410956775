//! One enum, one variant per change kind (DESIGN.md §3). Each variant carries what its
//! planner file in `plan/steps/` needs, taken from the current and desired schemas, so the
//! planner never looks names up again.

use crate::model::{
    Column, CompositeType, Constraint, Domain, EnumType, Extension, Ident, Index, ObjectRef, OpaqueObject,
    QualifiedName, Sequence, Table, View,
};

/// A user-defined type seqmig models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeDef {
    Enum(EnumType),
    Domain(Domain),
    Composite(CompositeType),
}

impl TypeDef {
    pub fn name(&self) -> &QualifiedName {
        match self {
            TypeDef::Enum(e) => &e.name,
            TypeDef::Domain(d) => &d.name,
            TypeDef::Composite(c) => &c.name,
        }
    }
}

/// Where a dependent view is dropped and recreated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewReason {
    /// The definition changed.
    Definition,
    /// The definition is the same but a column it reads is changed underneath it.
    Dependency,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    CreateSchema {
        name: Ident,
    },
    CreateExtension {
        ext: Extension,
    },
    DropExtension {
        ext: Extension,
    },
    CreateType {
        def: TypeDef,
    },
    DropType {
        def: TypeDef,
    },
    AddEnumValue {
        name: QualifiedName,
        value: String,
        before: Option<String>,
        after: Option<String>,
    },
    CreateSequence {
        seq: Sequence,
    },
    DropSequence {
        seq: Sequence,
    },
    AlterSequence {
        from: Sequence,
        to: Sequence,
    },
    /// Without its foreign keys (each is an [`Change::AddConstraint`]) and indexes (each an
    /// [`Change::AddIndex`]), so new tables referencing each other do not form a cycle.
    CreateTable {
        table: Table,
    },
    DropTable {
        table: Table,
    },
    /// A table that exists on its own becomes a partition of a partitioned table (issue 21):
    /// `table` as desired, with its bound.
    AttachTable {
        table: Table,
    },
    /// A partition that the desired schema keeps as a table of its own (issue 21): `table`
    /// as it is now, with the parent it leaves.
    DetachTable {
        table: Table,
    },
    RenameTable {
        from: QualifiedName,
        table: Table,
    },
    /// Nullable, or NOT NULL with a default PostgreSQL can add without rewriting.
    AddColumn {
        table: QualifiedName,
        column: Column,
        rewrites: bool,
    },
    AddNotNullColumn {
        table: QualifiedName,
        column: Column,
        fill: Option<String>,
    },
    /// `fill`: for a NOT NULL column without default, the `[[fill]]` value the rows the new
    /// release inserts get from switch on (it omits the column), so switch can keep NOT NULL
    /// and be rolled back.
    DropColumn {
        table: QualifiedName,
        column: Column,
        fill: Option<String>,
    },
    /// `up`/`down` are `None` for a plain rename (the values are copied as they are).
    RenameColumn {
        table: QualifiedName,
        from: Column,
        to: Column,
        up: Option<String>,
        down: Option<String>,
    },
    ChangeType(TypeChange),
    SetNotNull {
        table: QualifiedName,
        column: Column,
        fill: Option<String>,
    },
    DropNotNull {
        table: QualifiedName,
        column: Column,
    },
    ChangeDefault {
        table: QualifiedName,
        column: Ident,
        from: Option<String>,
        to: Option<String>,
    },
    SetStatistics {
        table: QualifiedName,
        column: Ident,
        from: Option<i32>,
        to: Option<i32>,
    },
    /// CHECK, FOREIGN KEY or EXCLUDE. On a table created in the same plan it is added
    /// directly (the table is empty).
    AddConstraint {
        table: QualifiedName,
        constraint: Constraint,
        new_table: bool,
    },
    /// PRIMARY KEY or UNIQUE: built as a unique index concurrently, attached in contract.
    AddUnique {
        table: QualifiedName,
        constraint: Constraint,
        new_table: bool,
    },
    /// Same name, different definition: added under a temporary name, swapped in contract.
    ChangeConstraint {
        table: QualifiedName,
        from: Constraint,
        to: Constraint,
    },
    DropConstraint {
        table: QualifiedName,
        constraint: Constraint,
    },
    /// Same definition, new name (a renamed table's `…_pkey`, for example): catalog only.
    RenameConstraint {
        table: QualifiedName,
        from: Ident,
        to: Constraint,
    },
    AddIndex {
        index: Index,
        new_table: bool,
    },
    ChangeIndex {
        from: Index,
        to: Index,
    },
    DropIndex {
        index: Index,
    },
    /// Same definition, new name: catalog only.
    RenameIndex {
        from: Index,
        to: Index,
    },
    CreateView {
        view: View,
    },
    ReplaceView {
        from: View,
        to: View,
        reason: ViewReason,
    },
    DropView {
        view: View,
    },
    CreateObject {
        object: OpaqueObject,
    },
    ReplaceObject {
        from: OpaqueObject,
        to: OpaqueObject,
    },
    DropObject {
        object: OpaqueObject,
    },
    SetComment {
        target: ObjectRef,
        from: Option<String>,
        to: Option<String>,
    },
}

/// `public.users.email`.
pub fn column_object(table: &QualifiedName, column: &Ident) -> String {
    format!("{}.{}", table.quoted(), column.quoted_sql())
}

fn short(q: &QualifiedName) -> String {
    if q.schema.as_str() == "public" { q.name.quoted_sql() } else { q.quoted() }
}

impl Change {
    /// The snake_case kind used in plans, file names and the book.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::CreateSchema { .. } => "create_schema",
            Change::CreateExtension { .. } => "create_extension",
            Change::DropExtension { .. } => "drop_extension",
            Change::CreateType { .. } => "create_type",
            Change::DropType { .. } => "drop_type",
            Change::AddEnumValue { .. } => "add_enum_value",
            Change::CreateSequence { .. } => "create_sequence",
            Change::DropSequence { .. } => "drop_sequence",
            Change::AlterSequence { .. } => "alter_sequence",
            Change::CreateTable { .. } => "create_table",
            Change::DropTable { .. } => "drop_table",
            Change::AttachTable { .. } => "attach_partition",
            Change::DetachTable { .. } => "detach_partition",
            Change::RenameTable { .. } => "rename_table",
            Change::AddColumn { .. } => "add_column",
            Change::AddNotNullColumn { .. } => "add_not_null_column",
            Change::DropColumn { .. } => "drop_column",
            Change::RenameColumn { .. } => "rename_column",
            Change::ChangeType(_) => "change_type",
            Change::SetNotNull { .. } => "set_not_null",
            Change::DropNotNull { .. } => "drop_not_null",
            Change::ChangeDefault { .. } => "change_default",
            Change::SetStatistics { .. } => "set_statistics",
            Change::AddConstraint { .. } => "add_constraint",
            Change::AddUnique { .. } => "add_unique",
            Change::ChangeConstraint { .. } => "change_constraint",
            Change::DropConstraint { .. } => "drop_constraint",
            Change::RenameConstraint { .. } => "rename_constraint",
            Change::RenameIndex { .. } => "rename_index",
            Change::AddIndex { .. } => "add_index",
            Change::ChangeIndex { .. } => "change_index",
            Change::DropIndex { .. } => "drop_index",
            Change::CreateView { .. } => "create_view",
            Change::ReplaceView { .. } => "replace_view",
            Change::DropView { .. } => "drop_view",
            Change::CreateObject { .. } => "create_object",
            Change::ReplaceObject { .. } => "replace_object",
            Change::DropObject { .. } => "drop_object",
            Change::SetComment { .. } => "set_comment",
        }
    }

    /// The object changed, in SQL spelling; also the name of the change's authority flag.
    pub fn object(&self) -> String {
        match self {
            Change::CreateSchema { name } => name.quoted_sql(),
            Change::CreateExtension { ext } | Change::DropExtension { ext } => ext.name.quoted_sql(),
            Change::CreateType { def } | Change::DropType { def } => def.name().quoted(),
            Change::AddEnumValue { name, .. } => name.quoted(),
            Change::CreateSequence { seq } | Change::DropSequence { seq } => seq.name.quoted(),
            Change::AlterSequence { to, .. } => to.name.quoted(),
            Change::CreateTable { table }
            | Change::DropTable { table }
            | Change::AttachTable { table }
            | Change::DetachTable { table } => table.name.quoted(),
            Change::RenameTable { from, .. } => from.quoted(),
            Change::AddColumn { table, column, .. }
            | Change::AddNotNullColumn { table, column, .. }
            | Change::DropColumn { table, column, .. }
            | Change::SetNotNull { table, column, .. }
            | Change::DropNotNull { table, column } => column_object(table, &column.name),
            Change::RenameColumn { table, from, .. } => column_object(table, &from.name),
            Change::ChangeType(TypeChange { table, to, .. }) => column_object(table, &to.name),
            Change::ChangeDefault { table, column, .. } | Change::SetStatistics { table, column, .. } => {
                column_object(table, column)
            }
            Change::AddConstraint { table, constraint, .. }
            | Change::AddUnique { table, constraint, .. }
            | Change::DropConstraint { table, constraint } => column_object(table, &constraint.name),
            Change::ChangeConstraint { table, to, .. } => column_object(table, &to.name),
            Change::RenameConstraint { table, from, .. } => column_object(table, from),
            Change::RenameIndex { from, .. } => from.name.quoted(),
            Change::AddIndex { index, .. } | Change::DropIndex { index } => index.name.quoted(),
            Change::ChangeIndex { to, .. } => to.name.quoted(),
            Change::CreateView { view } | Change::DropView { view } => view.name.quoted(),
            Change::ReplaceView { to, .. } => to.name.quoted(),
            Change::CreateObject { object } | Change::DropObject { object } => object.id.identity.clone(),
            Change::ReplaceObject { to, .. } => to.id.identity.clone(),
            Change::SetComment { target, .. } => format!("{} {}", target.kind, target.identity),
        }
    }

    /// True when the change ends in a step that loses data (a dropped table or column).
    pub fn one_way(&self) -> bool {
        matches!(
            self,
            Change::DropTable { .. }
                | Change::DropColumn { .. }
                | Change::RenameColumn { .. }
                | Change::ChangeType(TypeChange { in_place: false, .. })
        )
    }

    /// One line for humans.
    pub fn summary(&self) -> String {
        match self {
            Change::CreateSchema { name } => format!("create schema {}", name.quoted_sql()),
            Change::CreateExtension { ext } => format!("create extension {}", ext.name.quoted_sql()),
            Change::DropExtension { ext } => format!("drop extension {}", ext.name.quoted_sql()),
            Change::CreateType { def } => format!("create type {}", short(def.name())),
            Change::DropType { def } => format!("drop type {}", short(def.name())),
            Change::AddEnumValue { name, value, .. } => {
                format!("add value '{value}' to enum {}", short(name))
            }
            Change::CreateSequence { seq } => format!("create sequence {}", short(&seq.name)),
            Change::DropSequence { seq } => format!("drop sequence {}", short(&seq.name)),
            Change::AlterSequence { to, .. } => format!("alter sequence {}", short(&to.name)),
            Change::CreateTable { table } => format!("create table {}", short(&table.name)),
            Change::DropTable { table } => format!("drop table {}", short(&table.name)),
            Change::AttachTable { table } => format!(
                "attach table {} as a partition of {}",
                short(&table.name),
                table.partition_of.as_ref().map(|p| short(&p.parent)).unwrap_or_default()
            ),
            Change::DetachTable { table } => format!(
                "detach {} from {}, keeping it as a table of its own",
                short(&table.name),
                table.partition_of.as_ref().map(|p| short(&p.parent)).unwrap_or_default()
            ),
            Change::RenameTable { from, table } => {
                format!("rename table {} to {}", short(from), table.name.name.quoted_sql())
            }
            Change::AddColumn { table, column, .. } => {
                format!("add column {}.{} {}", short(table), column.name.quoted_sql(), column.data_type)
            }
            Change::AddNotNullColumn { table, column, .. } => format!(
                "add NOT NULL column {}.{} {}",
                short(table),
                column.name.quoted_sql(),
                column.data_type
            ),
            Change::DropColumn { table, column, .. } => {
                format!("drop column {}.{}", short(table), column.name.quoted_sql())
            }
            Change::RenameColumn { table, from, to, up, .. } => format!(
                "rename {}.{} to {}{}",
                short(table),
                from.name.quoted_sql(),
                to.name.quoted_sql(),
                if up.is_some() { " (with transform)" } else { "" }
            ),
            Change::ChangeType(TypeChange { table, from, to, .. }) => format!(
                "change type of {}.{} from {} to {}",
                short(table),
                to.name.quoted_sql(),
                from.data_type,
                to.data_type
            ),
            Change::SetNotNull { table, column, .. } => {
                format!("set {}.{} NOT NULL", short(table), column.name.quoted_sql())
            }
            Change::DropNotNull { table, column } => {
                format!("drop NOT NULL on {}.{}", short(table), column.name.quoted_sql())
            }
            Change::ChangeDefault { table, column, to, .. } => match to {
                Some(d) => format!("set default of {}.{} to {d}", short(table), column.quoted_sql()),
                None => format!("drop default of {}.{}", short(table), column.quoted_sql()),
            },
            Change::SetStatistics { table, column, .. } => {
                format!("set statistics target of {}.{}", short(table), column.quoted_sql())
            }
            Change::AddConstraint { table, constraint, .. } | Change::AddUnique { table, constraint, .. } => {
                format!(
                    "add {} {} on {}",
                    constraint_word(constraint),
                    constraint.name.quoted_sql(),
                    short(table)
                )
            }
            Change::ChangeConstraint { table, to, .. } => {
                format!("change {} {} on {}", constraint_word(to), to.name.quoted_sql(), short(table))
            }
            Change::DropConstraint { table, constraint } => {
                format!(
                    "drop {} {} on {}",
                    constraint_word(constraint),
                    constraint.name.quoted_sql(),
                    short(table)
                )
            }
            Change::AddIndex { index, .. } => {
                format!("create index {} on {}", index.name.name.quoted_sql(), short(&index.table))
            }
            Change::ChangeIndex { to, .. } => {
                format!("rebuild index {} on {}", to.name.name.quoted_sql(), short(&to.table))
            }
            Change::DropIndex { index } => format!("drop index {}", short(&index.name)),
            Change::RenameConstraint { table, from, to } => format!(
                "rename {} {} on {} to {}",
                constraint_word(to),
                from.quoted_sql(),
                short(table),
                to.name.quoted_sql()
            ),
            Change::RenameIndex { from, to } => {
                format!("rename index {} to {}", short(&from.name), to.name.name.quoted_sql())
            }
            Change::CreateView { view } => format!("create {} {}", view_word(view), short(&view.name)),
            Change::ReplaceView { to, reason, .. } => match reason {
                ViewReason::Definition => format!("replace {} {}", view_word(to), short(&to.name)),
                ViewReason::Dependency => {
                    format!(
                        "recreate {} {} around a change to a column it reads",
                        view_word(to),
                        short(&to.name)
                    )
                }
            },
            Change::DropView { view } => format!("drop {} {}", view_word(view), short(&view.name)),
            Change::CreateObject { object } => format!("create {}", opaque_word(object)),
            Change::ReplaceObject { to, .. } => format!("replace {}", opaque_word(to)),
            Change::DropObject { object } => format!("drop {}", opaque_word(object)),
            Change::SetComment { target, to, .. } => match to {
                Some(_) => format!("comment on {} {}", target.kind, target.identity),
                None if target.kind == "extension" => {
                    format!("restore the control file's comment on extension {}", target.identity)
                }
                None => format!("remove comment on {} {}", target.kind, target.identity),
            },
        }
    }
}

fn constraint_word(c: &Constraint) -> &'static str {
    use crate::model::ConstraintKind as K;
    match c.kind {
        K::PrimaryKey { .. } => "primary key",
        K::Unique { .. } => "unique constraint",
        K::ForeignKey { .. } => "foreign key",
        K::Check { .. } => "check constraint",
        K::Exclusion { .. } => "exclusion constraint",
    }
}

fn view_word(v: &View) -> &'static str {
    if v.materialized { "materialized view" } else { "view" }
}

fn opaque_word(o: &OpaqueObject) -> String {
    let kind = serde_json::to_value(o.id.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
        .replace('_', " ");
    format!("{kind} {}", super::short_text(&o.id.identity))
}

/// A column's type changed: the fields of [`Change::ChangeType`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeChange {
    pub table: QualifiedName,
    pub from: Column,
    pub to: Column,
    pub up: String,
    pub down: Option<String>,
    /// Binary-coercible (`varchar(20)` → `varchar(50)`, `varchar` → `text`): a catalog
    /// change with no rewrite, done in place.
    pub in_place: bool,
    /// Desired indexes over the column, rebuilt on the shadow column.
    pub indexes: Vec<Index>,
    /// Sequences owned by the column (serial), moved to the new column at switch.
    pub owned_sequences: Vec<QualifiedName>,
    /// Desired constraints of the table over the column, moved to the new column at switch.
    pub constraints: Vec<Constraint>,
    /// Foreign keys of other tables referencing the column, re-pointed at switch.
    pub incoming: Vec<(QualifiedName, Constraint)>,
    /// Sequences feeding the column (serial, `nextval` default) that the desired schema
    /// widens with it, as (current, desired): altered in contract, once the old column that
    /// could not hold the wider values is gone (issue 17.5).
    pub widen_sequences: Vec<(Sequence, Sequence)>,
}
