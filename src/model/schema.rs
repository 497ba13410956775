//! The objects of a schema. Every map is a `BTreeMap` keyed by seqmig's own name types, so
//! iteration (and therefore JSON, SQL and plans) is deterministic.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::ident::{Ident, QualifiedName};

/// A whole database schema as seqmig understands it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    /// Namespaces created with `CREATE SCHEMA` (`public` is implied and not listed).
    pub namespaces: BTreeSet<Ident>,
    pub extensions: BTreeMap<Ident, Extension>,
    pub tables: BTreeMap<QualifiedName, Table>,
    pub sequences: BTreeMap<QualifiedName, Sequence>,
    /// Indexes live in their table's schema; keyed by that schema and the index name.
    pub indexes: BTreeMap<QualifiedName, Index>,
    pub enums: BTreeMap<QualifiedName, EnumType>,
    pub domains: BTreeMap<QualifiedName, Domain>,
    pub composites: BTreeMap<QualifiedName, CompositeType>,
    pub views: BTreeMap<QualifiedName, View>,
    /// `COMMENT ON …` for every kind of object, modelled objects and opaque ones alike.
    #[serde(with = "entries")]
    pub comments: BTreeMap<ObjectRef, String>,
    /// `ALTER … OWNER TO`: informational; not part of equality between file and catalog
    /// when one side does not say (see [`Schema::without_owners`]).
    #[serde(with = "entries")]
    pub owners: BTreeMap<ObjectRef, Ident>,
    /// Functions, procedures, triggers, policies, casts, aggregates, grants, rules, …
    #[serde(with = "entries")]
    pub opaque: BTreeMap<OpaqueId, OpaqueObject>,
    /// `ALTER INDEX parent ATTACH PARTITION child`: child index → the partitioned index it
    /// belongs to. Either side may be a plain index or a constraint's index (`…_pkey`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub index_attachments: BTreeMap<QualifiedName, QualifiedName>,
    /// Every constraint name the loader gave, in any schema: a superset of the names in use,
    /// so that choosing a default constraint name scans the tables only for a candidate that
    /// was given before (scanning for each one made loading quadratic). Not part of the
    /// schema's value: never serialised, and equal for any two schemas.
    #[serde(skip)]
    pub constraint_names_given: NameLog,
}

/// A set of names that takes no part in equality (see [`Schema::constraint_names_given`]).
#[derive(Debug, Clone, Default)]
pub struct NameLog(std::collections::HashSet<String>);

impl NameLog {
    pub fn insert(&mut self, name: &str) {
        if !self.0.contains(name) {
            self.0.insert(name.to_string());
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains(name)
    }
}

impl PartialEq for NameLog {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for NameLog {}

/// Maps whose keys are structs serialise as a sorted list of `[key, value]` pairs (JSON
/// object keys must be strings).
mod entries {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

impl Schema {
    /// Every table, each after the tables `deps` names for it: depth first, in name order; a
    /// cycle is broken where it closes, and names that are not tables here are ignored.
    pub fn tables_in_dependency_order<'a>(
        &'a self,
        deps: impl Fn(&'a Table) -> Vec<QualifiedName>,
    ) -> Vec<&'a Table> {
        fn visit<'a>(
            s: &'a Schema,
            t: &'a Table,
            deps: &dyn Fn(&'a Table) -> Vec<QualifiedName>,
            seen: &mut BTreeSet<&'a QualifiedName>,
            out: &mut Vec<&'a Table>,
        ) {
            if !seen.insert(&t.name) {
                return;
            }
            for d in deps(t) {
                if let Some(dt) = s.tables.get(&d) {
                    visit(s, dt, deps, seen, out);
                }
            }
            out.push(t);
        }
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for t in self.tables.values() {
            visit(self, t, &deps, &mut seen, &mut out);
        }
        out
    }

    /// The same schema with ownership removed, for comparisons where one side has none.
    pub fn without_owners(&self) -> Schema {
        Schema { owners: BTreeMap::new(), ..self.clone() }
    }

    /// Indexes of one table, in name order.
    pub fn indexes_of<'a>(&'a self, table: &'a QualifiedName) -> impl Iterator<Item = &'a Index> + 'a {
        self.indexes.values().filter(move |i| &i.table == table)
    }
}

/// A `schema.object` or `schema.table.column` style reference used for comments and owners.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Lower-case object kind as SQL spells it: `table`, `column`, `index`, `function`,
    /// `constraint`, `schema`, `type`, `view`, `materialized view`, `sequence`, `trigger`, …
    pub kind: String,
    /// The object's identity in normalised SQL: `public.users`, `public.users.email`,
    /// `public.f(integer)`, `users_pkey on public.users`.
    pub identity: String,
}

impl ObjectRef {
    pub fn new(kind: &str, identity: impl Into<String>) -> Self {
        ObjectRef { kind: kind.to_string(), identity: identity.into() }
    }

    /// The dotted parts of the identity that read as identifiers: `public.users.email` gives
    /// three; an identity with unbalanced quotes gives none.
    pub fn name_parts(&self) -> Vec<Ident> {
        crate::parse::text::split_qualified(&self.identity)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| Ident::from_sql(p).ok())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    pub name: Ident,
    pub schema: Option<Ident>,
    pub version: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Persistence {
    #[default]
    Permanent,
    Unlogged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub name: QualifiedName,
    /// In declaration order (PostgreSQL's attnum order).
    pub columns: Vec<Column>,
    /// Keyed by constraint name (unique per table); unnamed constraints get the name
    /// PostgreSQL would give them (`users_pkey`, `users_email_key`, `orders_user_id_fkey`).
    pub constraints: BTreeMap<Ident, Constraint>,
    pub persistence: Persistence,
    /// `PARTITION BY RANGE (created_at)` → `range (created_at)` when partitioned.
    pub partition_key: Option<String>,
    /// Set when this table is a partition of another.
    pub partition_of: Option<PartitionOf>,
    /// `INHERITS (…)` parents, in order.
    pub inherits: Vec<QualifiedName>,
    /// Storage parameters `WITH (fillfactor=70)`, normalised `key=value`, sorted.
    pub options: Vec<String>,
    /// `REPLICA IDENTITY FULL | NOTHING | USING INDEX i`, normalised; `None` = `DEFAULT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_identity: Option<String>,
    /// `ALTER TABLE … CLUSTER ON index`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_on: Option<Ident>,
    /// `ALTER TABLE … ENABLE ROW LEVEL SECURITY`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub row_security: bool,
    /// `ALTER TABLE … FORCE ROW LEVEL SECURITY`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_row_security: bool,
}

impl Table {
    pub fn new(name: QualifiedName) -> Self {
        Table {
            name,
            columns: Vec::new(),
            constraints: BTreeMap::new(),
            persistence: Persistence::Permanent,
            partition_key: None,
            partition_of: None,
            inherits: Vec::new(),
            options: Vec::new(),
            replica_identity: None,
            cluster_on: None,
            row_security: false,
            force_row_security: false,
        }
    }

    pub fn column(&self, name: &Ident) -> Option<&Column> {
        self.columns.iter().find(|c| &c.name == name)
    }

    pub fn column_mut(&mut self, name: &Ident) -> Option<&mut Column> {
        self.columns.iter_mut().find(|c| &c.name == name)
    }

    pub fn primary_key(&self) -> Option<(&Ident, &[Ident])> {
        self.constraints.iter().find_map(|(n, c)| match &c.kind {
            ConstraintKind::PrimaryKey { columns, .. } => Some((n, columns.as_slice())),
            _ => None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionOf {
    pub parent: QualifiedName,
    /// `FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')` / `DEFAULT`, normalised.
    pub bound: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: Ident,
    /// Normalised with [`crate::parse::normalize_type`]; `serial` columns are expanded by the
    /// parser into `integer` + sequence + `nextval` default, as PostgreSQL does.
    pub data_type: String,
    pub not_null: bool,
    /// Normalised expression text.
    pub default: Option<String>,
    pub identity: Option<Identity>,
    pub generated: Option<Generated>,
    pub collation: Option<String>,
    /// `ALTER TABLE … ALTER COLUMN … SET STATISTICS n`.
    pub statistics: Option<i32>,
}

impl Column {
    pub fn new(name: Ident, data_type: &str) -> Self {
        Column {
            name,
            data_type: crate::parse::normalize_type(data_type),
            not_null: false,
            default: None,
            identity: None,
            generated: None,
            collation: None,
            statistics: None,
        }
    }

    /// NOT NULL, and nothing gives a row a value when an INSERT leaves the column out (no
    /// default, identity or generation): a row without it needs one from elsewhere.
    pub fn needs_value(&self) -> bool {
        self.not_null && self.default.is_none() && self.identity.is_none() && self.generated.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Identity {
    Always,
    ByDefault,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generated {
    /// Normalised expression text.
    pub expr: String,
    pub kind: GeneratedKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GeneratedKind {
    Stored,
    Virtual,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraint {
    pub name: Ident,
    pub kind: ConstraintKind,
    pub deferrable: bool,
    pub initially_deferred: bool,
    /// False for `NOT VALID` constraints not yet validated.
    pub validated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ConstraintKind {
    PrimaryKey {
        columns: Vec<Ident>,
        include: Vec<Ident>,
    },
    Unique {
        columns: Vec<Ident>,
        include: Vec<Ident>,
        nulls_not_distinct: bool,
    },
    ForeignKey {
        columns: Vec<Ident>,
        ref_table: QualifiedName,
        ref_columns: Vec<Ident>,
        on_delete: FkAction,
        on_update: FkAction,
        match_full: bool,
    },
    Check {
        /// Normalised expression text, without the `CHECK (…)` wrapper.
        expr: String,
        no_inherit: bool,
    },
    Exclusion {
        /// Index method, `gist` by default.
        method: String,
        /// `(room WITH =, during WITH &&)`, normalised.
        elements: String,
        predicate: Option<String>,
    },
}

impl ConstraintKind {
    /// The columns the constraint is declared over (empty for CHECK and EXCLUDE).
    pub fn columns(&self) -> &[Ident] {
        match self {
            ConstraintKind::PrimaryKey { columns, .. }
            | ConstraintKind::Unique { columns, .. }
            | ConstraintKind::ForeignKey { columns, .. } => columns,
            _ => &[],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FkAction {
    #[default]
    NoAction,
    Restrict,
    Cascade,
    SetNull,
    SetDefault,
}

impl FkAction {
    pub fn sql(self) -> &'static str {
        match self {
            FkAction::NoAction => "NO ACTION",
            FkAction::Restrict => "RESTRICT",
            FkAction::Cascade => "CASCADE",
            FkAction::SetNull => "SET NULL",
            FkAction::SetDefault => "SET DEFAULT",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub name: QualifiedName,
    /// The table or materialized view indexed.
    pub table: QualifiedName,
    pub unique: bool,
    pub nulls_not_distinct: bool,
    /// `btree`, `gin`, `gist`, `hash`, `brin`, `spgist`, …
    pub method: String,
    pub keys: Vec<IndexKey>,
    pub include: Vec<Ident>,
    /// Normalised `WHERE` expression of a partial index.
    pub predicate: Option<String>,
    /// Storage parameters `WITH (…)`, normalised `key=value`, sorted.
    pub options: Vec<String>,
    /// `ON ONLY` (an index on a partitioned table's parent alone).
    pub only: bool,
    /// `ALTER INDEX … ALTER COLUMN n SET STATISTICS m`: key position (1-based) → target.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub statistics: BTreeMap<u32, i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexKey {
    pub expr: IndexExpr,
    pub collation: Option<String>,
    /// Normalised operator class, such as `gin_trgm_ops`; `None` for the default.
    pub opclass: Option<String>,
    pub descending: bool,
    /// `Some(true)` for NULLS FIRST, `Some(false)` for NULLS LAST, `None` for the default.
    pub nulls_first: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexExpr {
    Column(Ident),
    /// Normalised expression text.
    Expression(String),
}

/// Options equal to PostgreSQL's defaults (increment 1, min 1 / max of the type for
/// ascending sequences, start = min, cache 1) are `None`, so a bare `CREATE SEQUENCE` and
/// pg_dump's spelled-out form compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    pub name: QualifiedName,
    /// `bigint` unless `AS …` says otherwise.
    pub data_type: String,
    pub start: Option<i64>,
    pub increment: Option<i64>,
    pub min_value: Option<i64>,
    pub max_value: Option<i64>,
    pub cache: Option<i64>,
    pub cycle: bool,
    /// `ALTER SEQUENCE … OWNED BY table.column`.
    pub owned_by: Option<(QualifiedName, Ident)>,
    /// `CREATE UNLOGGED SEQUENCE` (PostgreSQL 15+).
    #[serde(default)]
    pub persistence: Persistence,
}

impl Sequence {
    pub fn new(name: QualifiedName) -> Self {
        Sequence {
            name,
            data_type: "bigint".into(),
            start: None,
            increment: None,
            min_value: None,
            max_value: None,
            cache: None,
            cycle: false,
            owned_by: None,
            persistence: Persistence::Permanent,
        }
    }

    /// The same sequence with every option that equals PostgreSQL's default for its type and
    /// direction set to `None`, so `CREATE SEQUENCE s` (a file) and the catalog's explicit
    /// values (introspection, or pg_dump's `START WITH 1 … CACHE 1`) compare equal. Both
    /// producers call this on every sequence they emit.
    pub fn without_default_options(mut self) -> Self {
        let (type_min, type_max) = match self.data_type.as_str() {
            "smallint" => (i16::MIN as i64, i16::MAX as i64),
            "integer" => (i32::MIN as i64, i32::MAX as i64),
            _ => (i64::MIN, i64::MAX),
        };
        let increment = self.increment.unwrap_or(1);
        let ascending = increment > 0;
        let min = self.min_value.unwrap_or(if ascending { 1 } else { type_min });
        let max = self.max_value.unwrap_or(if ascending { type_max } else { -1 });
        let start = self.start.unwrap_or(if ascending { min } else { max });
        self.increment = Some(increment).filter(|&i| i != 1);
        self.min_value = Some(min).filter(|&m| m != if ascending { 1 } else { type_min });
        self.max_value = Some(max).filter(|&m| m != if ascending { type_max } else { -1 });
        self.start = Some(start).filter(|&s| s != if ascending { min } else { max });
        self.cache = self.cache.filter(|&c| c != 1);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnumType {
    pub name: QualifiedName,
    /// In sort order.
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    pub name: QualifiedName,
    pub data_type: String,
    pub not_null: bool,
    pub default: Option<String>,
    pub collation: Option<String>,
    /// Named CHECK constraints: name → normalised expression.
    pub checks: BTreeMap<Ident, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompositeType {
    pub name: QualifiedName,
    /// Attribute name and normalised type, in order.
    pub attributes: Vec<(Ident, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub name: QualifiedName,
    pub materialized: bool,
    /// Explicit column names `CREATE VIEW v (a, b)`; empty when not given.
    pub columns: Vec<Ident>,
    /// The normalised `SELECT …` text.
    pub definition: String,
    /// The tables (and views) the definition reads, and the columns it names on each, as far
    /// as they can be resolved (`None` column = the whole relation, e.g. `SELECT *`).
    pub reads: BTreeSet<ColumnRef>,
    /// `WITH (security_barrier=true)` etc., normalised and sorted.
    pub options: Vec<String>,
    /// `WITH [CASCADED|LOCAL] CHECK OPTION`, normalised; `WITH NO DATA` for matviews is not modelled.
    pub check_option: Option<String>,
    /// The schema unqualified names in `definition` resolve to, when it is not `public`
    /// (the file said `SET search_path = test, …` before the view).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_path: Option<Ident>,
    /// `ALTER VIEW … ALTER COLUMN c SET DEFAULT e` (defaults for inserts through the view).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub column_defaults: BTreeMap<Ident, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ColumnRef {
    pub table: QualifiedName,
    pub column: Option<Ident>,
}

/// The kind of an object seqmig keeps only by identity and text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpaqueKind {
    Function,
    Procedure,
    Aggregate,
    Trigger,
    Policy,
    Rule,
    Cast,
    Operator,
    Grant,
    Publication,
    Statistics,
    /// A statement sqlparser could not parse and that touches nothing modelled.
    Unparsed,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpaqueId {
    pub kind: OpaqueKind,
    /// `public.f(integer, text)`, `trg on public.users`, `policy p on public.t`, …
    pub identity: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpaqueObject {
    pub id: OpaqueId,
    /// The statement that creates it, normalised (whitespace outside literals collapsed).
    pub text: String,
    /// Tables the object is attached to or reads, when known (triggers, policies, rules).
    pub depends_on: Vec<QualifiedName>,
    /// The schema unqualified names in `text` resolve to, when it is not `public`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_path: Option<Ident>,
}
