//! What a statement does, in the few terms the rules care about. Both readers produce these:
//! the sqlparser-based one (`classify`) and the token-level fallback (`fallback`) for the
//! statements sqlparser 0.64 rejects, so every rule works the same whichever reader saw it.

use std::fmt;

use crate::model::quote_ident;

/// A relation name folded the way PostgreSQL folds it, with `public` assumed when the
/// statement does not name a schema (migration files rarely do; search_path is unknown).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name {
    pub schema: String,
    pub name: String,
}

impl Name {
    /// Folds parts as written (`"Quoted"` kept, bare lower-cased).
    pub fn from_parts(parts: &[String]) -> Name {
        let folded: Vec<String> = parts.iter().map(|p| fold(p)).collect();
        match folded.as_slice() {
            [] => Name { schema: "public".into(), name: String::new() },
            [name] => Name { schema: "public".into(), name: name.clone() },
            [.., schema, name] => Name { schema: schema.clone(), name: name.clone() },
        }
    }

    /// A dotted name as SQL text (`s."T"`).
    pub fn parse(text: &str) -> Name {
        let parts = crate::parse::text::split_qualified(text).unwrap_or_else(|| vec![text.to_string()]);
        Name::from_parts(&parts)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

/// Folds one identifier as written: quoted names are kept exactly, bare ones lower-cased.
pub fn fold(part: &str) -> String {
    let t = part.trim();
    match t.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => t.to_ascii_lowercase(),
    }
}

/// One column as declared by `CREATE TABLE` or `ADD COLUMN`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnSpec {
    pub name: String,
    /// Normalised type (`crate::parse::normalize_type`), e.g. `character varying(20)`.
    pub ty: String,
    /// The type as written, lower-cased (`serial`, `bigserial` survive here only).
    pub written_ty: String,
    /// Default expression text, lower-cased.
    pub default: Option<String>,
    pub not_null: bool,
    pub primary_key: bool,
    pub unique: bool,
    pub identity: bool,
    pub generated_stored: bool,
    pub references: Option<Name>,
}

impl ColumnSpec {
    pub fn is_serial(&self) -> bool {
        matches!(
            self.written_ty.as_str(),
            "serial" | "bigserial" | "smallserial" | "serial4" | "serial8" | "serial2"
        )
    }
}

/// A table constraint as added by `CREATE TABLE` or `ALTER TABLE … ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstraintKind {
    /// `using_index`: the index named by `… USING INDEX i` (then `columns` is empty).
    PrimaryKey {
        columns: Vec<String>,
        using_index: Option<String>,
    },
    Unique {
        columns: Vec<String>,
        using_index: Option<String>,
    },
    ForeignKey {
        columns: Vec<String>,
        references: Name,
    },
    /// The expression, lower-cased.
    Check {
        expr: String,
    },
    /// `NOT NULL col` as a named constraint (PostgreSQL 18).
    NotNull {
        column: String,
    },
    Exclude,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstraintSpec {
    pub name: Option<String>,
    pub kind: ConstraintKind,
    pub not_valid: bool,
}

/// One `ALTER TABLE` sub-command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterOp {
    AddColumn(ColumnSpec),
    DropColumn(String),
    RenameColumn {
        from: String,
        to: String,
    },
    RenameTable {
        to: String,
    },
    SetType {
        column: String,
        ty: String,
    },
    SetNotNull(String),
    DropNotNull(String),
    SetDefault(String),
    DropDefault(String),
    AddIdentity(String),
    AddConstraint(ConstraintSpec),
    ValidateConstraint(String),
    DropConstraint(String),
    SetLogged,
    SetUnlogged,
    SetTablespace,
    AttachPartition {
        child: Name,
    },
    DetachPartition {
        child: Name,
        concurrently: bool,
    },
    /// Anything no rule judges (`OWNER TO`, `ENABLE TRIGGER`, …).
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropKind {
    Table,
    Schema,
    Database,
    Other,
}

/// What one statement does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Begin,
    Commit,
    Rollback,
    /// `SET [LOCAL] name = value`; `name` lower-cased.
    Set {
        name: String,
        value: String,
    },
    CreateTable {
        table: Name,
        columns: Vec<ColumnSpec>,
        constraints: Vec<ConstraintSpec>,
        partition_of: Option<Name>,
        /// `PARTITION BY …`: a partitioned table, which refuses `CREATE INDEX CONCURRENTLY`.
        partitioned: bool,
    },
    CreateIndex {
        name: Option<String>,
        table: Name,
        unique: bool,
        concurrently: bool,
        columns: Vec<String>,
    },
    DropIndex {
        names: Vec<Name>,
        concurrently: bool,
    },
    Reindex {
        target: String,
        concurrently: bool,
    },
    Drop {
        kind: DropKind,
        names: Vec<Name>,
    },
    Truncate {
        tables: Vec<Name>,
        cascade: bool,
    },
    AlterTable {
        table: Name,
        op: AlterOp,
    },
    RenameSchema {
        schema: String,
    },
    RenameEnumValue {
        ty: Name,
    },
    AlterDomainAddConstraint {
        domain: Name,
        not_valid: bool,
    },
    /// `CREATE [OR REPLACE] VIEW`: only the name matters.
    CreateView {
        name: Name,
    },
    VacuumFull {
        table: Option<Name>,
    },
    Cluster {
        table: Option<Name>,
    },
    /// `UPDATE` / `DELETE`; `filter` is the lower-cased WHERE text, if any.
    Dml {
        verb: &'static str,
        table: Name,
        filter: Option<String>,
        limited: bool,
    },
    /// Anything else (functions, grants, comments, queries, …).
    Other,
}
