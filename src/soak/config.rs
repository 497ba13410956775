//! The gate's configuration: `[gate]`, `[[tier]]` and `[governance]` in `seqmig.toml`, read
//! raw with serde and turned once into a validated [`GateConfig`] (STYLE habit 2). Other
//! sections of the file belong to other modules and are ignored here.
//!
//! Criteria come from three places and the gate takes the *strictest* of them: the `[gate]`
//! defaults, the tier of every table the plan touches, and the plan's own `gate.criteria`.
//! A plan can therefore tighten its tier but never loosen it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::model::QualifiedName;
use crate::plan::GateCriterion;

use super::SoakError;

/// How `old_path_silent` treats a database where `pg_stat_statements` cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OldPathRule {
    /// Inconclusive passes (the extension is optional for this tier).
    IfAvailable,
    /// Inconclusive blocks: no statistics, no contract. The default.
    Required,
}

/// The blast radius of a plan, which selects the approvals the governance matrix asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlastRadius {
    /// One table, referenced by no other and referencing none.
    Table,
    /// Several tables, tables linked by foreign keys, or a table in a tier marked `shared`.
    Linked,
    /// Objects that are not tables (types, functions, …) or tables in several schemas.
    Everything,
}

impl BlastRadius {
    pub fn as_str(self) -> &'static str {
        match self {
            BlastRadius::Table => "table",
            BlastRadius::Linked => "linked",
            BlastRadius::Everything => "everything",
        }
    }
}

impl fmt::Display for BlastRadius {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `observations` requires: passing counts, overall or per check name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservationRule {
    /// Passing observations of any name (`observations = 3`).
    pub total: u32,
    /// Passing observations per check name (`observations = "error_rate:2, slo_probe:1"`).
    pub per_name: BTreeMap<String, u32>,
}

/// The criteria in force for one plan. `None`/`false` = not required.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Criteria {
    pub min_soak: Option<Duration>,
    /// Window over which sampled evidence (client censuses, observations) is read, ending now
    /// and starting no earlier than switch. Defaults to `min_soak`.
    pub window: Option<Duration>,
    pub backfill_verified: bool,
    pub constraints_validated: bool,
    /// PostgreSQL regular expressions (`~`) matching the old release's `application_name`.
    pub no_old_clients: BTreeSet<String>,
    pub old_path_silent: Option<OldPathRule>,
    pub observations: Option<ObservationRule>,
    /// Ask the governance matrix which roles must approve.
    pub approvals_from_matrix: bool,
    /// Roles required in addition to the matrix (`approvals = "dba, owner"`).
    pub approval_roles: BTreeSet<String>,
}

/// The criterion names, in the order the gate reports them.
pub const CRITERIA: [&str; 7] = [
    "min_soak",
    "backfill_verified",
    "constraints_validated",
    "no_old_clients",
    "old_path_silent",
    "observations",
    "approvals",
];

impl Criteria {
    /// What seqmig requires when nothing is configured: a day of soak, verified data and
    /// constraints, and a silent old path. Fail closed: opting out is explicit.
    pub fn builtin() -> Criteria {
        Criteria {
            min_soak: Some(Duration::from_secs(24 * 3600)),
            backfill_verified: true,
            constraints_validated: true,
            old_path_silent: Some(OldPathRule::Required),
            approvals_from_matrix: true,
            ..Criteria::default()
        }
    }

    /// Sets one criterion from its name and textual value (plan artifact or `seqmig.toml`),
    /// replacing what was there. `off`/`false` switches it off.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), SoakError> {
        let v = value.trim();
        let off = matches!(v.to_ascii_lowercase().as_str(), "off" | "false" | "no" | "none");
        let bad = |why: &str| SoakError::Config(format!("criterion {name} = '{value}': {why}"));
        match name {
            "min_soak" => {
                self.min_soak = if off { None } else { Some(parse_duration(v).map_err(|e| bad(&e))?) }
            }
            "window" => self.window = if off { None } else { Some(parse_duration(v).map_err(|e| bad(&e))?) },
            // The planner writes the phrases `describe` shows ("0 mismatches", "all"): they
            // mean the criterion is required.
            "backfill_verified" => {
                self.backfill_verified = match v.to_ascii_lowercase().as_str() {
                    "0 mismatches" => true,
                    _ => parse_flag(v).ok_or_else(|| bad("expected true or false"))?,
                }
            }
            "constraints_validated" => {
                self.constraints_validated = match v.to_ascii_lowercase().as_str() {
                    "all" | "no not valid constraint" => true,
                    _ => parse_flag(v).ok_or_else(|| bad("expected true or false"))?,
                }
            }
            "no_old_clients" => {
                if off {
                    self.no_old_clients.clear();
                } else if v.is_empty() || parse_flag(v) == Some(true) {
                    return Err(bad(
                        "expected a regular expression matching the old release's application_name",
                    ));
                } else {
                    self.no_old_clients = BTreeSet::from([v.to_string()]);
                }
            }
            "old_path_silent" => {
                self.old_path_silent = match v.to_ascii_lowercase().as_str() {
                    "required" | "true" | "yes" | "on" | "since switch" => Some(OldPathRule::Required),
                    "if_available" => Some(OldPathRule::IfAvailable),
                    _ if off => None,
                    _ => return Err(bad("expected required, if_available or off")),
                }
            }
            "observations" => {
                self.observations = if off { None } else { Some(parse_observations(v).map_err(|e| bad(&e))?) }
            }
            "approvals" => {
                self.approval_roles.clear();
                match parse_flag(v) {
                    Some(b) => self.approvals_from_matrix = b,
                    None if v.eq_ignore_ascii_case("matrix") => self.approvals_from_matrix = true,
                    None => {
                        self.approvals_from_matrix = true;
                        self.approval_roles = split_list(v);
                    }
                }
            }
            _ => {
                return Err(SoakError::Config(format!(
                    "unknown gate criterion '{name}'; known: {}, window",
                    CRITERIA.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The strictest of `self` and `other`, criterion by criterion.
    pub fn strictest(mut self, other: &Criteria) -> Criteria {
        self.min_soak = self.min_soak.max(other.min_soak);
        self.window = self.window.max(other.window);
        self.backfill_verified |= other.backfill_verified;
        self.constraints_validated |= other.constraints_validated;
        self.no_old_clients.extend(other.no_old_clients.iter().cloned());
        self.old_path_silent = self.old_path_silent.max(other.old_path_silent);
        self.observations = match (self.observations.take(), &other.observations) {
            (None, o) => o.clone(),
            (Some(s), None) => Some(s),
            (Some(mut s), Some(o)) => {
                s.total = s.total.max(o.total);
                for (k, n) in &o.per_name {
                    let e = s.per_name.entry(k.clone()).or_insert(0);
                    *e = (*e).max(*n);
                }
                Some(s)
            }
        };
        self.approvals_from_matrix |= other.approvals_from_matrix;
        self.approval_roles.extend(other.approval_roles.iter().cloned());
        self
    }

    /// The window sampled evidence is read over.
    pub fn effective_window(&self) -> Option<Duration> {
        self.window.or(self.min_soak)
    }

    /// The configured value of a criterion as a short phrase, `None` when not required.
    pub fn describe(&self, name: &str) -> Option<String> {
        match name {
            "min_soak" => self.min_soak.map(format_duration),
            "backfill_verified" => self.backfill_verified.then(|| "0 mismatches".to_string()),
            "constraints_validated" => {
                self.constraints_validated.then(|| "no NOT VALID constraint".to_string())
            }
            "no_old_clients" => (!self.no_old_clients.is_empty()).then(|| {
                let pats: Vec<String> = self.no_old_clients.iter().map(|p| format!("~ '{p}'")).collect();
                format!("no application_name {}", pats.join(" or "))
            }),
            "old_path_silent" => self.old_path_silent.map(|r| match r {
                OldPathRule::Required => "no calls since switch (pg_stat_statements required)".to_string(),
                OldPathRule::IfAvailable => {
                    "no calls since switch, where pg_stat_statements is readable".to_string()
                }
            }),
            "observations" => self.observations.as_ref().map(|o| {
                let mut parts = Vec::new();
                if o.total > 0 || o.per_name.is_empty() {
                    parts.push(format!("{} passing", o.total));
                }
                parts.extend(o.per_name.iter().map(|(k, n)| format!("{n} passing {k}")));
                format!("{}, none failing", parts.join(", "))
            }),
            "approvals" => (self.approvals_from_matrix || !self.approval_roles.is_empty()).then(|| {
                if self.approval_roles.is_empty() {
                    "governance matrix".to_string()
                } else {
                    let roles: Vec<&str> = self.approval_roles.iter().map(String::as_str).collect();
                    format!("governance matrix + {}", roles.join(", "))
                }
            }),
            _ => None,
        }
    }
}

/// Tables or schemas that share default criteria.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub name: String,
    pub tables: BTreeSet<QualifiedName>,
    pub schemas: BTreeSet<String>,
    /// Changes to these tables count as `linked` at least: other systems read them.
    pub shared: bool,
    pub criteria: Criteria,
}

impl Tier {
    pub fn covers(&self, table: &QualifiedName) -> bool {
        self.tables.contains(table) || self.schemas.contains(table.schema.as_str())
    }
}

/// Who may decide: roles pre-authorised to roll back, roles that must approve contract.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Governance {
    /// `None` = every role may roll back without asking (the default: rollback is the safe
    /// direction and must never wait for a meeting).
    pub rollback: Option<BTreeSet<String>>,
    pub contract: BTreeMap<BlastRadius, BTreeSet<String>>,
}

impl Governance {
    /// Roles that must approve contract at `radius`. A wider radius includes the roles of
    /// the narrower ones: what needs the owner for one table needs the owner for many.
    pub fn required_roles(&self, radius: BlastRadius) -> BTreeSet<String> {
        self.contract
            .iter()
            .filter(|(r, _)| **r <= radius)
            .flat_map(|(_, roles)| roles.iter().cloned())
            .collect()
    }

    /// Whether `role` may roll back without approval.
    pub fn may_roll_back(&self, role: &str) -> bool {
        self.rollback.as_ref().is_none_or(|roles| roles.contains(role))
    }
}

/// The validated gate configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateConfig {
    /// Defaults for every plan (`[gate]`, over [`Criteria::builtin`]).
    pub defaults: Criteria,
    pub tiers: Vec<Tier>,
    pub governance: Governance,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig { defaults: Criteria::builtin(), tiers: Vec::new(), governance: Governance::default() }
    }
}

impl GateConfig {
    /// Reads the gate sections of a `seqmig.toml` text; other sections are ignored.
    pub fn from_toml(text: &str) -> Result<GateConfig, SoakError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| SoakError::Config(e.to_string()))?;
        raw.validate()
    }

    /// Reads `path`, or `./seqmig.toml` when `path` is `None` and that file exists, else the
    /// built-in defaults.
    pub fn discover(path: Option<&std::path::Path>) -> Result<GateConfig, SoakError> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => {
                let default = std::path::PathBuf::from("seqmig.toml");
                if !default.exists() {
                    return Ok(GateConfig::default());
                }
                default
            }
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| SoakError::Config(format!("failed to read '{}': {e}", path.display())))?;
        GateConfig::from_toml(&text).map_err(|e| match e {
            SoakError::Config(m) => SoakError::Config(format!("'{}': {m}", path.display())),
            other => other,
        })
    }

    /// The criteria in force for `plan`: the `[gate]` defaults, every tier covering one of
    /// `tables`, and the plan's own criteria, strictest wins.
    pub fn criteria_for(
        &self,
        tables: &[QualifiedName],
        plan: &[GateCriterion],
    ) -> Result<Criteria, SoakError> {
        let mut c = self.defaults.clone();
        for tier in self.tiers.iter().filter(|t| tables.iter().any(|tb| t.covers(tb))) {
            c = c.strictest(&tier.criteria);
        }
        let mut from_plan = Criteria::default();
        for g in plan {
            from_plan.set(&g.name, &g.value)?;
        }
        Ok(c.strictest(&from_plan))
    }

    /// Names of the tiers covering any of `tables`.
    pub fn tiers_of(&self, tables: &[QualifiedName]) -> Vec<&Tier> {
        self.tiers.iter().filter(|t| tables.iter().any(|tb| t.covers(tb))).collect()
    }
}

/// The gate as the runbook shows it (Markdown): the criteria in force for a plan touching
/// `tables` with `plan_criteria`, the tiers that apply, and the governance matrix — who may
/// roll back and who must approve contract at each blast radius.
pub fn runbook_section(
    cfg: &GateConfig,
    tables: &[QualifiedName],
    plan_criteria: &[GateCriterion],
) -> Result<String, SoakError> {
    let c = cfg.criteria_for(tables, plan_criteria)?;
    let mut out = String::from("## The soak gate before contract\n\n");
    let tiers: Vec<&str> = cfg.tiers_of(tables).iter().map(|t| t.name.as_str()).collect();
    if !tiers.is_empty() {
        out.push_str(&format!("Tiers: {} (the strictest criterion wins).\n\n", tiers.join(", ")));
    }
    out.push_str("| criterion | required |\n|---|---|\n");
    for name in CRITERIA {
        if let Some(req) = c.describe(name) {
            out.push_str(&format!("| `{name}` | {} |\n", req.replace('|', "\\|")));
        }
    }
    if let Some(w) = c.effective_window() {
        out.push_str(&format!(
            "\nSampled evidence counts over the last {} since switch.\n",
            format_duration(w)
        ));
    }
    out.push_str("\nCheck it with `seqmig gate`; record evidence with `seqmig soak record`, `seqmig soak sample` (cron) and `seqmig approve`.\n");
    out.push_str("\n### Who decides\n\n| decision | roles |\n|---|---|\n");
    let rollback = match &cfg.governance.rollback {
        None => "any role (pre-authorised)".to_string(),
        Some(r) => r.iter().cloned().collect::<Vec<_>>().join(", "),
    };
    out.push_str(&format!("| roll back any phase before contract | {rollback} |\n"));
    for radius in [BlastRadius::Table, BlastRadius::Linked, BlastRadius::Everything] {
        let roles = cfg.governance.required_roles(radius);
        let roles = if roles.is_empty() {
            "no approval".to_string()
        } else {
            roles.into_iter().collect::<Vec<_>>().join(", ")
        };
        out.push_str(&format!("| approve contract, blast radius `{radius}` | {roles} |\n"));
    }
    out.push_str(
        "\nA break-glass (`seqmig apply --phase contract --break-glass --reason \"…\"`) bypasses a closed \
         gate and is recorded in `seqmig.audit_log` with the actor, the reason and the failing criteria.\n",
    );
    Ok(out)
}

// ---- raw TOML ----

#[derive(Debug, Deserialize)]
struct RawFile {
    #[serde(default)]
    gate: Option<RawCriteria>,
    #[serde(default)]
    tier: Vec<RawTier>,
    #[serde(default)]
    governance: Option<RawGovernance>,
}

/// A criterion value as TOML allows it: `true`, `3`, `"24h"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawValue {
    Bool(bool),
    Int(i64),
    /// `min_soak = 1.5` (seconds).
    Float(f64),
    Text(String),
    /// `approvals = ["dba", "owner"]`.
    List(Vec<String>),
}

impl RawValue {
    fn text(&self) -> String {
        match self {
            RawValue::Bool(b) => b.to_string(),
            RawValue::Int(i) => i.to_string(),
            RawValue::Float(f) => f.to_string(),
            RawValue::Text(s) => s.clone(),
            RawValue::List(l) => l.join(", "),
        }
    }
}

/// The planner's name for a `[gate]` key (`seqmig plan` reads the same section), as the
/// criterion it sets.
fn criterion_name(key: &str) -> &str {
    match key {
        "old_application_name" => "no_old_clients",
        other => other,
    }
}

// No deny_unknown_fields: serde cannot combine it with flatten; Criteria::set rejects
// unknown names instead.
#[derive(Debug, Deserialize)]
struct RawCriteria {
    #[serde(default)]
    builtin_defaults: Option<bool>,
    #[serde(flatten)]
    values: BTreeMap<String, RawValue>,
}

#[derive(Debug, Deserialize)]
struct RawTier {
    name: String,
    #[serde(default)]
    tables: Vec<String>,
    #[serde(default)]
    schemas: Vec<String>,
    #[serde(default)]
    shared: bool,
    #[serde(flatten)]
    values: BTreeMap<String, RawValue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGovernance {
    #[serde(default)]
    rollback: Option<Vec<String>>,
    #[serde(default)]
    contract: BTreeMap<String, Vec<String>>,
    /// The planner's key (shown in the runbook): roles that must approve contract at any
    /// blast radius.
    #[serde(default)]
    contract_approvers: Option<Vec<String>>,
    // Read by the planner for the runbook only.
    #[serde(default)]
    #[allow(dead_code)]
    owner: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    operators: Option<Vec<String>>,
    #[serde(default)]
    #[allow(dead_code)]
    break_glass: Option<Vec<String>>,
    #[serde(default)]
    #[allow(dead_code)]
    escalation: Option<String>,
}

impl RawFile {
    fn validate(self) -> Result<GateConfig, SoakError> {
        let mut defaults = Criteria::builtin();
        if let Some(g) = self.gate {
            if g.builtin_defaults == Some(false) {
                defaults = Criteria::default();
            }
            for (k, v) in &g.values {
                defaults
                    .set(criterion_name(k), &v.text())
                    .map_err(|e| SoakError::Config(format!("[gate]: {}", inner(e))))?;
            }
        }
        let mut tiers = Vec::new();
        for t in self.tier {
            if t.tables.is_empty() && t.schemas.is_empty() {
                return Err(SoakError::Config(format!("tier '{}' names no tables and no schemas", t.name)));
            }
            let mut criteria = Criteria::default();
            for (k, v) in &t.values {
                criteria
                    .set(k, &v.text())
                    .map_err(|e| SoakError::Config(format!("[[tier]] '{}': {}", t.name, inner(e))))?;
            }
            let tables = t
                .tables
                .iter()
                .map(|s| {
                    QualifiedName::parse_sql(s, "public")
                        .map_err(|e| SoakError::Config(format!("tier '{}': table '{s}': {e}", t.name)))
                })
                .collect::<Result<_, _>>()?;
            let schemas = t
                .schemas
                .iter()
                .map(|s| {
                    crate::model::Ident::from_sql(s)
                        .map(|i| i.as_str().to_string())
                        .map_err(|e| SoakError::Config(format!("tier '{}': schema '{s}': {e}", t.name)))
                })
                .collect::<Result<_, _>>()?;
            tiers.push(Tier { name: t.name, tables, schemas, shared: t.shared, criteria });
        }
        let mut governance = Governance::default();
        if let Some(g) = self.governance {
            governance.rollback = g.rollback.map(|r| r.into_iter().collect());
            if let Some(roles) = g.contract_approvers {
                governance.contract.entry(BlastRadius::Table).or_default().extend(roles);
            }
            for (radius, roles) in g.contract {
                let r = match radius.as_str() {
                    "table" => BlastRadius::Table,
                    "linked" => BlastRadius::Linked,
                    "everything" => BlastRadius::Everything,
                    other => {
                        return Err(SoakError::Config(format!(
                            "[governance.contract]: unknown blast radius '{other}'; expected table, linked or everything"
                        )));
                    }
                };
                governance.contract.insert(r, roles.into_iter().collect());
            }
        }
        Ok(GateConfig { defaults, tiers, governance })
    }
}

/// The message of a configuration error without its "invalid gate configuration" prefix,
/// for wrapping it in the place it came from.
fn inner(e: SoakError) -> String {
    match e {
        SoakError::Config(m) => m,
        other => other.to_string(),
    }
}

// ---- value parsers ----

fn parse_flag(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "required" => Some(true),
        "false" | "no" | "off" | "none" => Some(false),
        _ => None,
    }
}

fn split_list(v: &str) -> BTreeSet<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

fn parse_observations(v: &str) -> Result<ObservationRule, String> {
    if let Ok(n) = v.parse::<u32>() {
        return Ok(ObservationRule { total: n, per_name: BTreeMap::new() });
    }
    let mut rule = ObservationRule::default();
    for part in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, n) = part.split_once(':').ok_or("expected N or 'name:N, name:N'")?;
        let n: u32 = n.trim().parse().map_err(|_| format!("'{n}' is not a count"))?;
        rule.per_name.insert(name.trim().to_string(), n);
    }
    Ok(rule)
}

// The one duration grammar, shared with every flag (issue 18.7, issue 19).
pub use crate::duration::{format_duration, parse_duration};

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `seqmig rehearse` (issue 9): contract of every plan with a backfill failed with
    /// "criterion backfill_verified = '0 mismatches': expected true or false".
    #[test]
    fn criteria_as_the_planner_writes_them_are_read() {
        let mut c = Criteria::builtin();
        c.set("backfill_verified", "0 mismatches").unwrap();
        c.set("constraints_validated", "all").unwrap();
        c.set("old_path_silent", "since switch").unwrap();
        assert!(c.backfill_verified && c.constraints_validated);
        assert_eq!(c.old_path_silent, Some(OldPathRule::Required));
    }

    #[test]
    fn durations_round_trip() {
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3x").is_err());
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn strictest_wins_across_gate_tier_and_plan() {
        let cfg = GateConfig::from_toml(
            r#"
            [plan]
            allow_one_way = ["public.x"]   # another module's section: ignored

            [gate]
            min_soak = "1h"
            old_path_silent = "if_available"
            observations = 1

            [[tier]]
            name = "critical"
            schemas = ["billing"]
            min_soak = "72h"
            observations = "error_rate:3"
            old_path_silent = "required"

            [governance]
            rollback = ["dba", "on-call"]
            [governance.contract]
            table = ["owner"]
            linked = ["dba"]
            "#,
        )
        .unwrap();
        let billing = QualifiedName::of("billing", "invoices");
        let plan = [GateCriterion { name: "min_soak".into(), value: "10s".into() }];
        let c = cfg.criteria_for(std::slice::from_ref(&billing), &plan).unwrap();
        assert_eq!(c.min_soak, Some(Duration::from_secs(72 * 3600)), "a plan cannot loosen its tier");
        assert_eq!(c.old_path_silent, Some(OldPathRule::Required));
        let o = c.observations.unwrap();
        assert_eq!((o.total, o.per_name["error_rate"]), (1, 3));

        let public = QualifiedName::of("public", "users");
        let plan = [GateCriterion { name: "min_soak".into(), value: "48h".into() }];
        let c = cfg.criteria_for(&[public], &plan).unwrap();
        assert_eq!(c.min_soak, Some(Duration::from_secs(48 * 3600)), "a plan can tighten");
        assert_eq!(c.old_path_silent, Some(OldPathRule::IfAvailable));

        assert!(cfg.governance.may_roll_back("dba"));
        assert!(!cfg.governance.may_roll_back("intern"));
        assert_eq!(
            cfg.governance.required_roles(BlastRadius::Linked),
            BTreeSet::from(["owner".to_string(), "dba".to_string()])
        );
        assert_eq!(cfg.governance.required_roles(BlastRadius::Table), BTreeSet::from(["owner".to_string()]));
    }

    #[test]
    fn runbook_section_shows_criteria_and_matrix() {
        let cfg = GateConfig::from_toml(
            "[gate]\nmin_soak = \"2h\"\nno_old_clients = '^app/1\\.'\n[governance.contract]\nlinked = [\"dba\"]\n",
        )
        .unwrap();
        let md = runbook_section(&cfg, &[QualifiedName::of("public", "users")], &[]).unwrap();
        assert!(md.contains("| `min_soak` | 2h |"), "{md}");
        assert!(md.contains("| `no_old_clients` | no application_name ~ '^app/1\\.' |"), "{md}");
        assert!(md.contains("| roll back any phase before contract | any role (pre-authorised) |"), "{md}");
        assert!(md.contains("| approve contract, blast radius `table` | no approval |"), "{md}");
        assert!(md.contains("| approve contract, blast radius `everything` | dba |"), "{md}");
    }

    #[test]
    fn defaults_fail_closed_and_rollback_is_preauthorised() {
        let cfg = GateConfig::from_toml("").unwrap();
        assert_eq!(cfg.defaults.min_soak, Some(Duration::from_secs(86400)));
        assert_eq!(cfg.defaults.old_path_silent, Some(OldPathRule::Required));
        assert!(cfg.governance.may_roll_back("anyone"));
    }

    #[test]
    fn criterion_values_read_as_documented() {
        let mut c = Criteria::default();
        c.set("approvals", "dba, release-manager").unwrap();
        assert!(c.approvals_from_matrix);
        assert_eq!(c.approval_roles, BTreeSet::from(["dba".to_string(), "release-manager".to_string()]));
        c.set("approvals", "false").unwrap();
        assert!(!c.approvals_from_matrix && c.approval_roles.is_empty());
        c.set("observations", "error_rate:2, slo_probe:1").unwrap();
        assert_eq!(c.observations.as_ref().unwrap().per_name["slo_probe"], 1);
        assert!(c.set("observations", "lots").is_err());
        c.set("no_old_clients", "^api/1\\.").unwrap();
        assert!(c.set("no_old_clients", "true").is_err(), "a pattern is needed, not a flag");
        c.set("old_path_silent", "if_available").unwrap();
        assert_eq!(c.old_path_silent, Some(OldPathRule::IfAvailable));
        c.set("min_soak", "off").unwrap();
        assert_eq!(c.min_soak, None);
        assert_eq!(c.describe("min_soak"), None);
    }

    #[test]
    fn the_planners_gate_and_governance_keys_are_understood() {
        // migrations-examples/18-several-dependent-changes/seqmig.toml, as the planner reads it.
        let cfg = GateConfig::from_toml(
            r##"
            [gate]
            min_soak = "48h"
            observations = 3
            approvals = ["dba"]
            old_application_name = '^shop/1\.'

            [governance]
            owner = "identity team"
            contract_approvers = ["DBA", "identity team lead"]
            escalation = "#db-oncall"
            "##,
        )
        .unwrap();
        let c = &cfg.defaults;
        assert_eq!(c.min_soak, Some(Duration::from_secs(48 * 3600)));
        assert_eq!(c.approval_roles, BTreeSet::from(["dba".to_string()]));
        assert_eq!(c.no_old_clients, BTreeSet::from(["^shop/1\\.".to_string()]));
        assert_eq!(
            cfg.governance.required_roles(BlastRadius::Linked),
            BTreeSet::from(["DBA".to_string(), "identity team lead".to_string()])
        );
        // The phrases the planner writes into a plan's gate criteria.
        let mut p = Criteria::default();
        for (n, v) in [
            ("min_soak", "24h"),
            ("backfill_verified", "0 mismatches"),
            ("constraints_validated", "all"),
            ("no_old_clients", "^shop/1\\."),
            ("old_path_silent", "since switch"),
            ("observations", "3"),
            ("approvals", "dba, owner"),
        ] {
            p.set(n, v).unwrap();
        }
        assert!(p.backfill_verified && p.constraints_validated);
        assert_eq!(p.old_path_silent, Some(OldPathRule::Required));
    }

    /// The example of the book's gate page: one file, read by both the gate and the planner.
    #[test]
    fn the_book_example_serves_gate_and_planner() {
        let md = include_str!("../../book/src/gate.md");
        let start = md.find("```toml\n").unwrap() + "```toml\n".len();
        let text = &md[start..start + md[start..].find("```").unwrap()];
        let cfg = GateConfig::from_toml(text).unwrap();
        assert_eq!(cfg.tiers.len(), 1);
        assert_eq!(cfg.defaults.no_old_clients, BTreeSet::from(["^shop-api/1\\.".to_string()]));
        assert_eq!(
            cfg.governance.required_roles(BlastRadius::Everything),
            BTreeSet::from(["owner".to_string(), "dba".to_string(), "release-manager".to_string()])
        );
        crate::diff::Hints::from_toml(text, "seqmig.toml").unwrap();
    }

    #[test]
    fn bad_config_names_the_place() {
        let e = GateConfig::from_toml("[gate]\nmin_soak = \"soon\"").unwrap_err().to_string();
        assert!(e.contains("min_soak") && e.contains("soon"), "{e}");
        let e = GateConfig::from_toml("[gate]\nmin_sok = \"1h\"").unwrap_err().to_string();
        assert!(e.contains("unknown gate criterion 'min_sok'"), "{e}");
        let e = GateConfig::from_toml("[[tier]]\nname = \"x\"\nmin_soak = \"1h\"").unwrap_err().to_string();
        assert!(e.contains("tier 'x' names no tables"), "{e}");
        let e = GateConfig::from_toml("[governance.contract]\nschema = [\"x\"]").unwrap_err().to_string();
        assert!(e.contains("unknown blast radius 'schema'"), "{e}");
    }
}
