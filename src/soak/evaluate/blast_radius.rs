//! The blast radius of a plan against the catalog, which picks the approvals required.

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::Client;

use super::relation_names;
use crate::plan::Plan;
use crate::soak::SoakError;
use crate::soak::config::{BlastRadius, GateConfig};
use crate::soak::objects::plan_tables;

/// The blast radius of `plan` against the catalog, and why: one table alone; several tables,
/// tables linked by foreign keys or in a tier marked `shared`; or everything (objects that
/// are not relations, or relations in several schemas).
pub async fn blast_radius(
    client: &Client,
    plan: &Plan,
    cfg: &GateConfig,
) -> Result<(BlastRadius, String), SoakError> {
    // Names from changes must resolve; names from lock targets may be indexes or objects
    // created later and are only used when they do.
    let mut from_changes: Vec<(String, String)> = Vec::new();
    for change in &plan.changes {
        match &change.relation {
            Some(q) => from_changes.push((change.object.clone(), q.quoted())),
            None => from_changes.push((change.object.clone(), String::new())),
        }
    }
    let mut names: Vec<String> = relation_names(plan);
    names.extend(from_changes.iter().map(|c| c.1.clone()).filter(|s| !s.is_empty()));
    let resolve = "SELECT x, n.nspname::text, c2.oid::text, c2.relname::text \
                   FROM unnest($1::text[]) x \
                   LEFT JOIN pg_class c ON c.oid = to_regclass(x) \
                   LEFT JOIN pg_index i ON i.indexrelid = c.oid \
                   LEFT JOIN pg_class c2 ON c2.oid = coalesce(i.indrelid, c.oid) \
                   LEFT JOIN pg_namespace n ON n.oid = c2.relnamespace";
    let rows = client.query(resolve, &[&names]).await.map_err(SoakError::db("resolve the plan's tables"))?;
    let mut resolved: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    for r in &rows {
        let x: String = r.get(0);
        if let (Some(schema), Some(oid), Some(rel)) =
            (r.get::<_, Option<String>>(1), r.get::<_, Option<String>>(2), r.get::<_, Option<String>>(3))
        {
            resolved.insert(x, (schema, oid, rel));
        }
    }
    let not_relations: Vec<&str> = from_changes
        .iter()
        .filter(|(_, q)| q.is_empty() || !resolved.contains_key(q))
        .map(|(o, _)| o.as_str())
        .collect();
    if !not_relations.is_empty() {
        return Ok((
            BlastRadius::Everything,
            format!("changes objects that are not tables: {}", not_relations.join(", ")),
        ));
    }
    let oids: BTreeSet<&String> = resolved.values().map(|v| &v.1).collect();
    let schemas: BTreeSet<&String> = resolved.values().map(|v| &v.0).collect();
    if schemas.len() > 1 {
        let s: Vec<&str> = schemas.iter().map(|s| s.as_str()).collect();
        return Ok((BlastRadius::Everything, format!("tables in several schemas: {}", s.join(", "))));
    }
    if oids.len() > 1 {
        let mut t: Vec<String> = resolved.values().map(|v| format!("{}.{}", v.0, v.2)).collect();
        t.dedup();
        t.sort();
        t.dedup();
        return Ok((BlastRadius::Linked, format!("several tables: {}", t.join(", "))));
    }
    let tables = plan_tables(plan);
    if let Some(tier) = cfg.tiers_of(&tables).into_iter().find(|t| t.shared) {
        return Ok((BlastRadius::Linked, format!("tier '{}' is shared", tier.name)));
    }
    let Some(oid) = oids.into_iter().next() else {
        return Ok((BlastRadius::Table, "the plan touches no existing table".into()));
    };
    let links = client
        .query(
            "SELECT conname::text, conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint \
             WHERE contype = 'f' AND conrelid <> confrelid \
               AND (conrelid = $1::text::oid OR confrelid = $1::text::oid) ORDER BY 1 LIMIT 3",
            &[oid],
        )
        .await
        .map_err(SoakError::db("read foreign keys of the plan's table"))?;
    if let Some(l) = links.first() {
        return Ok((
            BlastRadius::Linked,
            format!(
                "linked by foreign key {} ({} → {})",
                l.get::<_, String>(0),
                l.get::<_, String>(1),
                l.get::<_, String>(2)
            ),
        ));
    }
    let (schema, _, rel) = resolved.values().next().cloned().unwrap_or_default();
    Ok((BlastRadius::Table, format!("one table alone: {schema}.{rel}")))
}
