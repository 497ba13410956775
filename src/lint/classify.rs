//! Reads a statement sqlparser understood into [`Action`]s. Only the statement kinds a rule
//! judges are looked at; the rest become [`Action::Other`].

use sqlparser::ast::{
    AlterColumnOperation, AlterSchemaOperation, AlterTableOperation, AlterTypeOperation, CascadeOption,
    ColumnDef, ColumnOption, DetachPartitionMode, Expr, FromTable, GeneratedExpressionMode, IndexColumn,
    ObjectName, ObjectNamePart, ObjectType, RenameTableNameKind, Set, Statement, TableConstraint,
    TableFactor, TableWithJoins,
};

use super::action::{Action, AlterOp, ColumnSpec, ConstraintKind, ConstraintSpec, DropKind, Name};
use crate::parse::normalize_type;

pub fn classify(stmt: &Statement) -> Vec<Action> {
    match stmt {
        Statement::StartTransaction { .. } => vec![Action::Begin],
        Statement::Commit { .. } => vec![Action::Commit],
        Statement::Rollback { savepoint: None, .. } => vec![Action::Rollback],
        Statement::Set(Set::SingleAssignment { variable, values, .. }) => vec![Action::Set {
            name: variable.to_string().to_ascii_lowercase(),
            value: values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", "),
        }],
        Statement::CreateTable(ct) => {
            let mut columns: Vec<ColumnSpec> = ct.columns.iter().map(column_spec).collect();
            let mut constraints: Vec<ConstraintSpec> =
                ct.constraints.iter().filter_map(|c| constraint_spec(c, false)).collect();
            // Inline column constraints are table constraints in disguise.
            for (col, def) in columns.iter_mut().zip(&ct.columns) {
                for opt in &def.options {
                    if let ColumnOption::Check(c) = &opt.option {
                        constraints.push(ConstraintSpec {
                            name: opt.name.as_ref().map(ident),
                            kind: ConstraintKind::Check { expr: c.expr.to_string().to_ascii_lowercase() },
                            not_valid: false,
                        });
                    }
                }
                if let Some(target) = &col.references {
                    constraints.push(ConstraintSpec {
                        name: None,
                        kind: ConstraintKind::ForeignKey {
                            columns: vec![col.name.clone()],
                            references: target.clone(),
                        },
                        not_valid: false,
                    });
                }
            }
            vec![Action::CreateTable {
                table: name(&ct.name),
                columns,
                constraints,
                partition_of: ct.partition_of.as_ref().map(name),
                partitioned: ct.partition_by.is_some(),
            }]
        }
        Statement::CreateIndex(ci) => vec![Action::CreateIndex {
            name: ci.name.as_ref().map(|n| name(n).name),
            table: name(&ci.table_name),
            unique: ci.unique,
            concurrently: ci.concurrently,
            columns: ci.columns.iter().map(index_column).collect(),
        }],
        Statement::Drop { object_type, names, cascade: _, .. } => {
            let names: Vec<Name> = names.iter().map(name).collect();
            match object_type {
                ObjectType::Index => vec![Action::DropIndex { names, concurrently: false }],
                ObjectType::Table => vec![Action::Drop { kind: DropKind::Table, names }],
                ObjectType::Schema => vec![Action::Drop {
                    kind: DropKind::Schema,
                    names: names.into_iter().map(|n| Name { schema: n.name.clone(), name: n.name }).collect(),
                }],
                ObjectType::Database => vec![Action::Drop {
                    kind: DropKind::Database,
                    names: names.into_iter().map(|n| Name { schema: n.name.clone(), name: n.name }).collect(),
                }],
                _ => vec![Action::Drop { kind: DropKind::Other, names }],
            }
        }
        Statement::Truncate(t) => vec![Action::Truncate {
            tables: t.table_names.iter().map(|t| name(&t.name)).collect(),
            cascade: matches!(t.cascade, Some(CascadeOption::Cascade)),
        }],
        Statement::AlterTable(at) => {
            let table = name(&at.name);
            at.operations
                .iter()
                .map(|op| Action::AlterTable { table: table.clone(), op: alter_op(op) })
                .collect()
        }
        Statement::AlterSchema(s) => s
            .operations
            .iter()
            .map(|op| match op {
                AlterSchemaOperation::Rename { .. } => Action::RenameSchema { schema: name(&s.name).name },
                _ => Action::Other,
            })
            .collect(),
        Statement::AlterType(t) => match &t.operation {
            AlterTypeOperation::RenameValue(_) => vec![Action::RenameEnumValue { ty: name(&t.name) }],
            _ => vec![Action::Other],
        },
        Statement::Vacuum(v) if v.full => vec![Action::VacuumFull { table: v.table_name.as_ref().map(name) }],
        Statement::Update(u) => match table_of(&u.table) {
            Some(table) => vec![Action::Dml {
                verb: "UPDATE",
                table,
                filter: u.selection.as_ref().map(lower),
                limited: u.limit.is_some(),
            }],
            None => vec![Action::Other],
        },
        Statement::Delete(d) => {
            let from = match &d.from {
                FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
            };
            match from.first().and_then(table_of) {
                Some(table) => vec![Action::Dml {
                    verb: "DELETE",
                    table,
                    filter: d.selection.as_ref().map(lower),
                    limited: d.limit.is_some(),
                }],
                None => vec![Action::Other],
            }
        }
        _ => vec![Action::Other],
    }
}

fn lower(e: &Expr) -> String {
    e.to_string().to_ascii_lowercase()
}

fn table_of(t: &TableWithJoins) -> Option<Name> {
    match &t.relation {
        TableFactor::Table { name: n, .. } => Some(name(n)),
        _ => None,
    }
}

fn ident(i: &sqlparser::ast::Ident) -> String {
    if i.quote_style.is_some() { i.value.clone() } else { i.value.to_ascii_lowercase() }
}

pub fn name(o: &ObjectName) -> Name {
    let parts: Vec<String> =
        o.0.iter()
            .map(|p| match p {
                ObjectNamePart::Identifier(i) => ident(i),
                other => other.to_string().to_ascii_lowercase(),
            })
            .collect();
    match parts.as_slice() {
        [] => Name { schema: "public".into(), name: String::new() },
        [n] => Name { schema: "public".into(), name: n.clone() },
        [.., s, n] => Name { schema: s.clone(), name: n.clone() },
    }
}

fn index_column(c: &IndexColumn) -> String {
    match &c.column.expr {
        Expr::Identifier(i) => ident(i),
        other => other.to_string().to_ascii_lowercase(),
    }
}

fn column_spec(def: &ColumnDef) -> ColumnSpec {
    let written = def.data_type.to_string().to_ascii_lowercase();
    let mut spec = ColumnSpec {
        name: ident(&def.name),
        ty: normalize_type(&written),
        written_ty: written,
        ..ColumnSpec::default()
    };
    for opt in &def.options {
        match &opt.option {
            ColumnOption::NotNull => spec.not_null = true,
            ColumnOption::Default(e) => spec.default = Some(lower(e)),
            ColumnOption::PrimaryKey(_) => {
                spec.primary_key = true;
                spec.not_null = true;
            }
            ColumnOption::Unique(_) => spec.unique = true,
            ColumnOption::ForeignKey(fk) => spec.references = Some(name(&fk.foreign_table)),
            ColumnOption::Generated { generation_expr: None, .. } | ColumnOption::Identity(_) => {
                spec.identity = true;
                spec.not_null = true;
            }
            ColumnOption::Generated { generation_expr: Some(_), generation_expr_mode, .. } => {
                spec.generated_stored =
                    !matches!(generation_expr_mode, Some(GeneratedExpressionMode::Virtual));
            }
            _ => {}
        }
    }
    spec
}

fn columns_of(cols: &[IndexColumn]) -> Vec<String> {
    cols.iter().map(index_column).collect()
}

fn constraint_spec(c: &TableConstraint, not_valid: bool) -> Option<ConstraintSpec> {
    let (name, kind) = match c {
        TableConstraint::PrimaryKey(pk) => (
            pk.name.as_ref(),
            ConstraintKind::PrimaryKey { columns: columns_of(&pk.columns), using_index: None },
        ),
        TableConstraint::Unique(u) => {
            (u.name.as_ref(), ConstraintKind::Unique { columns: columns_of(&u.columns), using_index: None })
        }
        TableConstraint::PrimaryKeyUsingIndex(u) => (
            u.name.as_ref(),
            ConstraintKind::PrimaryKey { columns: Vec::new(), using_index: Some(ident(&u.index_name)) },
        ),
        TableConstraint::UniqueUsingIndex(u) => (
            u.name.as_ref(),
            ConstraintKind::Unique { columns: Vec::new(), using_index: Some(ident(&u.index_name)) },
        ),
        TableConstraint::ForeignKey(fk) => (
            fk.name.as_ref(),
            ConstraintKind::ForeignKey {
                columns: fk.columns.iter().map(ident).collect(),
                references: name(&fk.foreign_table),
            },
        ),
        TableConstraint::Check(ck) => (ck.name.as_ref(), ConstraintKind::Check { expr: lower(&ck.expr) }),
        TableConstraint::Exclude(ex) => (ex.name.as_ref(), ConstraintKind::Exclude),
        _ => return None,
    };
    Some(ConstraintSpec { name: name.map(ident), kind, not_valid })
}

fn alter_op(op: &AlterTableOperation) -> AlterOp {
    match op {
        AlterTableOperation::AddColumn { column_def, .. } => AlterOp::AddColumn(column_spec(column_def)),
        AlterTableOperation::DropColumn { column_names, .. } => {
            AlterOp::DropColumn(column_names.iter().map(ident).collect::<Vec<_>>().join(", "))
        }
        AlterTableOperation::RenameColumn { old_column_name, new_column_name } => {
            AlterOp::RenameColumn { from: ident(old_column_name), to: ident(new_column_name) }
        }
        AlterTableOperation::RenameTable { table_name } => {
            let (RenameTableNameKind::As(n) | RenameTableNameKind::To(n)) = table_name;
            AlterOp::RenameTable { to: name(n).name }
        }
        AlterTableOperation::AlterColumn { column_name, op } => {
            let column = ident(column_name);
            match op {
                AlterColumnOperation::SetNotNull => AlterOp::SetNotNull(column),
                AlterColumnOperation::DropNotNull => AlterOp::DropNotNull(column),
                AlterColumnOperation::SetDefault { .. } => AlterOp::SetDefault(column),
                AlterColumnOperation::DropDefault => AlterOp::DropDefault(column),
                AlterColumnOperation::SetDataType { data_type, .. } => {
                    AlterOp::SetType { column, ty: normalize_type(&data_type.to_string()) }
                }
                AlterColumnOperation::AddGenerated { .. } => AlterOp::AddIdentity(column),
                _ => AlterOp::Other,
            }
        }
        AlterTableOperation::AddConstraint { constraint, not_valid } => {
            constraint_spec(constraint, *not_valid).map(AlterOp::AddConstraint).unwrap_or(AlterOp::Other)
        }
        AlterTableOperation::ValidateConstraint { name } => AlterOp::ValidateConstraint(ident(name)),
        AlterTableOperation::DropConstraint { name, .. }
        | AlterTableOperation::DropForeignKey { name, .. } => AlterOp::DropConstraint(ident(name)),
        AlterTableOperation::SetLogged => AlterOp::SetLogged,
        AlterTableOperation::SetUnlogged => AlterOp::SetUnlogged,
        AlterTableOperation::AttachPartitionOf { partition, .. } => {
            AlterOp::AttachPartition { child: name(partition) }
        }
        AlterTableOperation::DetachPartitionOf { partition, mode } => AlterOp::DetachPartition {
            child: name(partition),
            concurrently: matches!(
                mode,
                Some(DetachPartitionMode::Concurrently | DetachPartitionMode::Finalize)
            ),
        },
        _ => AlterOp::Other,
    }
}
