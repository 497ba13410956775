//! Hints: what the diff cannot guess. Renames and data transforms come from `seqmig.toml`
//! (or `--config FILE`) and from `--rename` / `--transform` flags; `[plan]` acknowledges
//! one-way doors; `[gate]` and `[governance]` feed the plan's gate and the runbook.
//!
//! [`Config`] is what the file says; [`Hints`] is the validated form the diff uses, with
//! every name folded into seqmig's own types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Ident, IdentError, QualifiedName};
use crate::parse::text::split_qualified;

/// `seqmig.toml` as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub rename: Vec<RenameEntry>,
    #[serde(default)]
    pub transform: Vec<TransformEntry>,
    #[serde(default)]
    pub fill: Vec<FillEntry>,
    #[serde(default)]
    pub plan: PlanSection,
    #[serde(default)]
    pub gate: GateSection,
    #[serde(default)]
    pub governance: GovernanceSection,
    /// `[[tier]]`: the soak gate's tiers (`crate::soak::GateConfig` reads them); let through.
    #[serde(default, skip_serializing)]
    pub tier: Vec<PassThrough>,
    /// `[lint]`: the linter's settings (`crate::lint::LintConfig` reads them); let through.
    #[serde(default, skip_serializing)]
    pub lint: Option<PassThrough>,
}

/// A part of `seqmig.toml` another module reads; the planner accepts it without looking.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassThrough;

impl<'de> Deserialize<'de> for PassThrough {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d)?;
        Ok(PassThrough)
    }
}

/// `[[rename]]`: a column rename (`table`, `from`, `to` are column names) or, without
/// `table`, a table rename (`from`, `to` are table names).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RenameEntry {
    pub table: Option<String>,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TransformEntry {
    pub table: String,
    pub column: String,
    pub from: Option<String>,
    pub up: Option<String>,
    pub down: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FillEntry {
    pub table: String,
    pub column: String,
    /// A SQL expression (a literal such as `''`, or over the row's other columns).
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSection {
    /// Acknowledged one-way doors: tables (`public.t`) and columns (`public.t.c`) whose drop
    /// is intended.
    #[serde(default)]
    pub allow_one_way: Vec<String>,
    /// Columns (`public.t.c`, the desired name) whose dual-write may lack a `down`
    /// expression: writes made by the new release are lost on a rollback after switch.
    #[serde(default)]
    pub allow_missing_down: Vec<String>,
    /// Acknowledged blocking steps: objects (`public.t.c`, `public.t.constraint`, the
    /// change's object) whose step rewrites or scans an existing table under a lock that
    /// blocks writes, with no online form.
    #[serde(default)]
    pub allow_blocking: Vec<String>,
    /// Rename a table or column out of the way before dropping it in contract, so a
    /// forgotten reader fails loudly while the data is still there.
    #[serde(default)]
    pub brownout: bool,
    /// Partitioned tables (`public.events`) whose partition set the desired file states in
    /// full: a live partition the file lacks is dropped. Every other parent's partitions are
    /// managed outside the file (pg_partman, a time-based job) and never dropped by a plan.
    #[serde(default)]
    pub authoritative_partitions: Vec<String>,
}

// No deny_unknown_fields: the soak gate reads more keys of this section (`window`,
// `old_path_silent`, … see crate::soak::GateConfig, which rejects unknown ones).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct GateSection {
    /// Text or a number of seconds, as the gate reads it (`crate::duration`).
    #[serde(default = "default_min_soak", deserialize_with = "text_or_number")]
    pub min_soak: String,
    /// Passing external observations (`seqmig soak record`) required before contract.
    #[serde(default)]
    pub observations: u32,
    /// `application_name` pattern of the old release, for the `no_old_clients` criterion.
    #[serde(default)]
    pub old_application_name: Option<String>,
    /// Roles whose approval the gate requires.
    #[serde(default)]
    pub approvals: Vec<String>,
}

/// `"24h"` or `86400`: a duration as TOML lets it be written.
fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Int(i64),
        Float(f64),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::Text(s) => s,
        Raw::Int(i) => i.to_string(),
        Raw::Float(f) => f.to_string(),
    })
}

fn default_min_soak() -> String {
    "24h".into()
}

impl Default for GateSection {
    fn default() -> Self {
        GateSection {
            min_soak: default_min_soak(),
            observations: 0,
            old_application_name: None,
            approvals: Vec::new(),
        }
    }
}

/// Who may decide what, written into the runbook.
// No deny_unknown_fields: the soak gate reads `rollback` and `[governance.contract]` here
// (crate::soak::GateConfig, which rejects unknown keys).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct GovernanceSection {
    /// The team owning the schema; the runbook names none unless this is set.
    #[serde(default)]
    pub owner: Option<String>,
    /// Who may run expand … switch. Empty: the runbook names no role.
    #[serde(default)]
    pub operators: Vec<String>,
    /// Who must approve contract (the one-way door). Empty by default, as in the soak gate,
    /// which enforces this list: the runbook must not promise approvals the gate does not ask.
    #[serde(default)]
    pub contract_approvers: Vec<String>,
    /// Who may use `--break-glass`. Empty: the runbook names no role.
    #[serde(default)]
    pub break_glass: Vec<String>,
    #[serde(default)]
    pub escalation: Option<String>,
}

/// Why hints could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HintError {
    #[error("failed to read '{path}': {source}")]
    Io { path: String, source: std::io::Error },
    #[error("'{path}' is not a valid seqmig.toml: {detail}")]
    Toml { path: String, detail: String },
    #[error("bad name '{text}' in {what}: {source}")]
    Name { text: String, what: String, source: IdentError },
    #[error("{path}: {key} = '{text}' {problem}")]
    Expression { path: String, key: String, text: String, problem: String },
    #[error("{path}: {detail}")]
    Section { path: String, detail: String },
    #[error("bad {flag} value '{text}': {expected}")]
    Flag { flag: &'static str, text: String, expected: &'static str },
}

/// A column rename: the same table (desired name), old column → new column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnRename {
    pub table: QualifiedName,
    pub from: Ident,
    pub to: Ident,
}

/// How to derive a desired column from a current one, and back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    pub table: QualifiedName,
    pub column: Ident,
    pub from: Ident,
    pub up: Option<String>,
    pub down: Option<String>,
}

/// Validated hints.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    /// Current table name → desired table name.
    pub table_renames: BTreeMap<QualifiedName, QualifiedName>,
    pub column_renames: Vec<ColumnRename>,
    pub transforms: Vec<Transform>,
    /// (table, column) → fill expression.
    pub fills: BTreeMap<(QualifiedName, Ident), String>,
    pub allow_one_way: Vec<Vec<Ident>>,
    pub allow_missing_down: Vec<Vec<Ident>>,
    pub allow_blocking: Vec<Vec<Ident>>,
    pub brownout: bool,
    /// See [`PlanSection::authoritative_partitions`].
    pub authoritative_partitions: Vec<Vec<Ident>>,
    pub gate: GateSection,
    pub governance: GovernanceSection,
    /// `[gate] old_path_silent` as the gate reads it, so the plan asks what the file says.
    pub old_path_silent: OldPathSilent,
}

/// What the plan's gate asks of `old_path_silent` (issue 18.7): the `[gate]` setting, read
/// by the gate's own parser ([`crate::soak::GateConfig`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OldPathSilent {
    /// Statistics are required: unreadable `pg_stat_statements` blocks. The default.
    #[default]
    Required,
    /// Checked where `pg_stat_statements` is readable.
    IfAvailable,
    /// `old_path_silent = false` / `"off"`: not a criterion.
    Off,
}

/// Every hint expression of the file is exactly one SQL expression (issue 18.8): the planner
/// splices them into statements, where a comment or a second statement would change the SQL.
fn check_expressions(config: &Config, origin: &str) -> Result<(), HintError> {
    let mut exprs: Vec<(String, &str)> = Vec::new();
    for f in &config.fill {
        exprs.push((format!("[[fill]] {}.{} value", f.table, f.column), &f.value));
    }
    for t in &config.transform {
        for (k, v) in [("up", &t.up), ("down", &t.down)] {
            if let Some(v) = v {
                exprs.push((format!("[[transform]] {}.{} {k}", t.table, t.column), v));
            }
        }
    }
    for (key, text) in exprs {
        crate::parse::hint_expression(text).map_err(|problem| HintError::Expression {
            path: origin.into(),
            key,
            text: text.into(),
            problem,
        })?;
    }
    Ok(())
}

/// A hint expression as the planner splices it: one expression, comments cut, parenthesised.
fn spliced(text: &str, path: &str, key: String) -> Result<String, HintError> {
    crate::parse::hint_sql(text).map_err(|problem| HintError::Expression {
        path: path.into(),
        key,
        text: text.into(),
        problem,
    })
}

fn qname(text: &str, what: &str) -> Result<QualifiedName, HintError> {
    QualifiedName::parse_sql(text, "public").map_err(|source| HintError::Name {
        text: text.into(),
        what: what.into(),
        source,
    })
}

fn ident(text: &str, what: &str) -> Result<Ident, HintError> {
    Ident::from_sql(text).map_err(|source| HintError::Name { text: text.into(), what: what.into(), source })
}

/// `public.users.email` / `users` → folded parts.
fn name_parts(text: &str, what: &str) -> Result<Vec<Ident>, HintError> {
    let parts = split_qualified(text).ok_or_else(|| HintError::Name {
        text: text.into(),
        what: what.into(),
        source: IdentError::Malformed(text.into()),
    })?;
    parts.iter().map(|p| ident(p, what)).collect()
}

/// True when `pattern` (parts of an `allow_*` entry) names `object` (schema, table[, column]).
/// An entry without a schema matches `public`.
pub fn names_match(pattern: &[Ident], object: &[&Ident]) -> bool {
    let public = Ident::exact("public").expect("valid");
    if pattern.len() == object.len() {
        return pattern.iter().zip(object).all(|(a, b)| a == *b);
    }
    if pattern.len() + 1 == object.len() && object[0] == &public {
        return pattern.iter().zip(&object[1..]).all(|(a, b)| a == *b);
    }
    false
}

impl Hints {
    /// Reads `path`.
    pub fn from_file(path: &std::path::Path) -> Result<Hints, HintError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| HintError::Io { path: path.display().to_string(), source })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses `seqmig.toml` text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Hints, HintError> {
        let config: Config = toml::from_str(text)
            .map_err(|e| HintError::Toml { path: origin.into(), detail: e.to_string().trim().to_string() })?;
        check_expressions(&config, origin)?;
        // The sections other modules read are validated here too, so that `plan` refuses
        // what the gate or the linter would refuse later (issue 18.7): unknown keys, values
        // in no accepted form. The file is read once, by the same parsers.
        let gate = crate::soak::GateConfig::from_toml(text)
            .map_err(|e| HintError::Section { path: origin.into(), detail: e.to_string() })?;
        crate::lint::LintConfig::from_toml(text)
            .map_err(|e| HintError::Section { path: origin.into(), detail: format!("[lint]: {e}") })?;
        let mut hints = Self::from_config(config)?;
        // `builtin_defaults = false` without a min_soak: no soak, as the gate reads it.
        if gate.defaults.min_soak.is_none() {
            hints.gate.min_soak = "off".into();
        }
        hints.old_path_silent = match gate.defaults.old_path_silent {
            Some(crate::soak::OldPathRule::Required) => OldPathSilent::Required,
            Some(crate::soak::OldPathRule::IfAvailable) => OldPathSilent::IfAvailable,
            None => OldPathSilent::Off,
        };
        Ok(hints)
    }

    pub fn from_config(config: Config) -> Result<Hints, HintError> {
        let mut hints = Hints {
            brownout: config.plan.brownout,
            gate: config.gate,
            governance: config.governance,
            ..Hints::default()
        };
        for r in &config.rename {
            match &r.table {
                Some(t) => hints.column_renames.push(ColumnRename {
                    table: qname(t, "[[rename]] table")?,
                    from: ident(&r.from, "[[rename]] from")?,
                    to: ident(&r.to, "[[rename]] to")?,
                }),
                None => {
                    let from = qname(&r.from, "[[rename]] from")?;
                    let mut to = qname(&r.to, "[[rename]] to")?;
                    // `to = "users"` keeps the schema of `from`.
                    if split_qualified(&r.to).is_some_and(|p| p.len() == 1) {
                        to.schema = from.schema.clone();
                    }
                    hints.table_renames.insert(from, to);
                }
            }
        }
        for t in &config.transform {
            let column = ident(&t.column, "[[transform]] column")?;
            let from = match &t.from {
                Some(f) => ident(f, "[[transform]] from")?,
                None => column.clone(),
            };
            let table = qname(&t.table, "[[transform]] table")?;
            let key = |k: &str| format!("[[transform]] {}.{} {k}", t.table, t.column);
            hints.transforms.push(Transform {
                table,
                column,
                from,
                up: t.up.as_deref().map(|v| spliced(v, "seqmig.toml", key("up"))).transpose()?,
                down: t.down.as_deref().map(|v| spliced(v, "seqmig.toml", key("down"))).transpose()?,
            });
        }
        for f in &config.fill {
            hints.fills.insert(
                (qname(&f.table, "[[fill]] table")?, ident(&f.column, "[[fill]] column")?),
                spliced(&f.value, "seqmig.toml", format!("[[fill]] {}.{} value", f.table, f.column))?,
            );
        }
        for a in &config.plan.allow_one_way {
            hints.allow_one_way.push(name_parts(a, "allow_one_way")?);
        }
        for a in &config.plan.allow_missing_down {
            hints.allow_missing_down.push(name_parts(a, "allow_missing_down")?);
        }
        for a in &config.plan.authoritative_partitions {
            hints.authoritative_partitions.push(name_parts(a, "authoritative_partitions")?);
        }
        for a in &config.plan.allow_blocking {
            hints.allow_blocking.push(name_parts(a, "allow_blocking")?);
        }
        Ok(hints)
    }

    /// Adds a `--rename` flag: `SCHEMA.TABLE.OLD=NEW` renames a column,
    /// `SCHEMA.TABLE=NEW_TABLE` a table (an unqualified `TABLE.OLD=NEW` is read as a column
    /// of a `public` table only when it has three parts; write the schema to be explicit).
    pub fn add_rename_flag(&mut self, text: &str) -> Result<(), HintError> {
        const EXPECTED: &str = "expected SCHEMA.TABLE.COLUMN=NEW_COLUMN or SCHEMA.TABLE=NEW_TABLE";
        let (lhs, rhs) = text.split_once('=').ok_or(HintError::Flag {
            flag: "--rename",
            text: text.into(),
            expected: EXPECTED,
        })?;
        let parts = name_parts(lhs, "--rename")?;
        match parts.as_slice() {
            [schema, table, column] => self.column_renames.push(ColumnRename {
                table: QualifiedName::new(schema.clone(), table.clone()),
                from: column.clone(),
                to: ident(rhs, "--rename")?,
            }),
            [schema, table] => {
                let from = QualifiedName::new(schema.clone(), table.clone());
                let mut to = qname(rhs, "--rename")?;
                if split_qualified(rhs).is_some_and(|p| p.len() == 1) {
                    to.schema = from.schema.clone();
                }
                self.table_renames.insert(from, to);
            }
            _ => return Err(HintError::Flag { flag: "--rename", text: text.into(), expected: EXPECTED }),
        }
        Ok(())
    }

    /// Adds a `--transform` flag: `SCHEMA.TABLE.COLUMN:KEY=EXPR` with KEY one of `from`,
    /// `up`, `down`; repeated flags for the same column add to one transform.
    pub fn add_transform_flag(&mut self, text: &str) -> Result<(), HintError> {
        const EXPECTED: &str = "expected SCHEMA.TABLE.COLUMN:up=EXPR (or :down=EXPR, :from=OLD_COLUMN)";
        let bad = || HintError::Flag { flag: "--transform", text: text.into(), expected: EXPECTED };
        let (target, rest) = text.split_once(':').ok_or_else(bad)?;
        let (key, value) = rest.split_once('=').ok_or_else(bad)?;
        let parts = name_parts(target, "--transform")?;
        let [schema, table, column] = parts.as_slice() else { return Err(bad()) };
        let table = QualifiedName::new(schema.clone(), table.clone());
        let idx = match self.transforms.iter().position(|t| t.table == table && &t.column == column) {
            Some(i) => i,
            None => {
                self.transforms.push(Transform {
                    table,
                    column: column.clone(),
                    from: column.clone(),
                    up: None,
                    down: None,
                });
                self.transforms.len() - 1
            }
        };
        let t = &mut self.transforms[idx];
        match key.trim() {
            "up" | "down" => {
                let sql = spliced(value, "--transform", format!("{target}:{}", key.trim()))?;
                if key.trim() == "up" { t.up = Some(sql) } else { t.down = Some(sql) }
            }
            "from" => t.from = ident(value, "--transform from")?,
            _ => return Err(bad()),
        }
        Ok(())
    }

    pub fn one_way_allowed(&self, object: &[&Ident]) -> bool {
        self.allow_one_way.iter().any(|p| names_match(p, object))
    }

    pub fn missing_down_allowed(&self, object: &[&Ident]) -> bool {
        self.allow_missing_down.iter().any(|p| names_match(p, object))
    }

    /// True when `object` (a change's object in SQL spelling, `public.t.c`) is listed in
    /// `[plan] allow_blocking`.
    pub fn blocking_allowed(&self, object: &str) -> bool {
        let Ok(parts) = name_parts(object, "object") else { return false };
        let parts: Vec<&Ident> = parts.iter().collect();
        self.allow_blocking.iter().any(|p| names_match(p, &parts))
    }

    /// The transform for a desired column, if any.
    pub fn transform(&self, table: &QualifiedName, column: &Ident) -> Option<&Transform> {
        self.transforms.iter().find(|t| &t.table == table && &t.column == column)
    }

    pub fn fill(&self, table: &QualifiedName, column: &Ident) -> Option<&str> {
        self.fills.get(&(table.clone(), column.clone())).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_format() {
        let h = Hints::from_toml(
            r#"
[[rename]]
table = "public.users"
from = "name"
to = "full_name"

[[rename]]
from = "public.people"
to = "persons"

[[transform]]
table = "public.orders"
column = "price_cents"
from = "price"
up = "(price * 100)::bigint"
down = "(price_cents / 100.0)::numeric(12,2)"

[[fill]]
table = "public.users"
column = "email"
value = "''"

[plan]
allow_one_way = ["public.legacy_events", "users.Legacy"]
"#,
            "seqmig.toml",
        )
        .unwrap();
        assert_eq!(h.column_renames[0].to.as_str(), "full_name");
        assert_eq!(
            h.table_renames[&QualifiedName::of("public", "people")],
            QualifiedName::of("public", "persons")
        );
        assert_eq!(h.transforms[0].from.as_str(), "price");
        assert_eq!(
            h.fill(&QualifiedName::of("public", "users"), &Ident::exact("email").unwrap()),
            Some("('')"),
            "spliced parenthesised (issue 18.8)"
        );
        let (p, u, l) = (
            Ident::exact("public").unwrap(),
            Ident::exact("users").unwrap(),
            Ident::exact("legacy").unwrap(),
        );
        assert!(h.one_way_allowed(&[&p, &u, &l]));
        assert!(!h.one_way_allowed(&[&p, &u]));
        assert_eq!(h.gate.min_soak, "24h");
    }

    #[test]
    fn flags_add_hints() {
        let mut h = Hints::default();
        h.add_rename_flag("public.users.name=full_name").unwrap();
        h.add_rename_flag("public.people=users").unwrap();
        h.add_transform_flag("public.orders.price_cents:up=(price * 100)::bigint").unwrap();
        h.add_transform_flag("public.orders.price_cents:from=price").unwrap();
        assert_eq!(h.column_renames.len(), 1);
        assert_eq!(h.table_renames.len(), 1);
        assert_eq!(h.transforms.len(), 1);
        assert_eq!(h.transforms[0].from.as_str(), "price");
        assert!(h.add_rename_flag("nonsense").is_err());
        assert!(h.add_transform_flag("public.t.c:sideways=1").is_err());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(Hints::from_toml("[plan]\nallow_one_wya = []\n", "x").is_err());
    }
}
