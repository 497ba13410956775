//! `evidence_intact`: the evidence the other criteria read was not tampered with (issue 18.5).
//! Always in force: it cannot be configured off, because every other verdict rests on it.
//!
//! The ledger's guard (`soak/evidence_guard.sql`) makes evidence append-only and stamps it
//! with the server clock. What this criterion can still see is what a role with DDL rights on
//! the ledger (its owner, a superuser) leaves behind when it goes around the guard:
//!
//! - the guard's triggers are missing or disabled on an evidence table;
//! - a time lies in the future of the database clock;
//! - times run backwards against the order of the rows' ids (a row written later claims to be
//!   older than one written before it: back-dating), by more than a second;
//! - a phase run finished before it started.
//!
//! A consistent rewrite of every row by a superuser is not detectable from inside the
//! database; book/src/trust-model.md says so.

use tokio_postgres::Client;

use super::{CriterionReport, db_failure, fail, pass};
use crate::soak::{EVIDENCE_TABLES, SoakError};

pub(super) const NAME: &str = "evidence_intact";
pub(super) const REQUIRED: &str = "append-only, server-timed evidence";

/// The guard's triggers every evidence table must have, enabled.
const TRIGGERS: [&str; 4] =
    ["evidence_stamp", "evidence_update", "evidence_no_delete", "evidence_no_truncate"];

/// (table, time column) whose times must follow the ids.
const ORDERED: [(&str, &str); 5] = [
    ("phase_runs", "started_at"),
    ("soak_observations", "observed_at"),
    ("audit_log", "at"),
    ("soak_samples", "taken_at"),
    ("approvals", "approved_at"),
];

pub(super) async fn evidence_intact(client: &Client) -> Result<CriterionReport, SoakError> {
    let mut problems: Vec<String> = Vec::new();

    // 1. The guard is in place on every table.
    let tables: Vec<String> = EVIDENCE_TABLES.iter().map(|t| t.to_string()).collect();
    let triggers: Vec<String> = TRIGGERS.iter().map(|t| t.to_string()).collect();
    let rows = match client
        .query(
            "SELECT t.name, g.name, tr.tgenabled::text \
             FROM unnest($1::text[]) t (name) CROSS JOIN unnest($2::text[]) g (name) \
             LEFT JOIN pg_trigger tr ON tr.tgrelid = to_regclass('seqmig.' || quote_ident(t.name)) \
                                    AND tr.tgname = g.name \
             ORDER BY t.name, g.name",
            &[&tables, &triggers],
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) => return db_failure(NAME, REQUIRED, "reading the evidence guard's triggers", e),
    };
    let mut missing = Vec::new();
    let mut disabled = Vec::new();
    for r in &rows {
        let (table, trigger, enabled): (String, String, Option<String>) = (r.get(0), r.get(1), r.get(2));
        match enabled.as_deref() {
            None => missing.push(format!("seqmig.{table}.{trigger}")),
            Some("D") | Some("R") => disabled.push(format!("seqmig.{table}.{trigger}")),
            Some(_) => {}
        }
    }
    if !missing.is_empty() {
        problems.push(format!("guard triggers missing: {}", shorten(&missing)));
    }
    if !disabled.is_empty() {
        problems.push(format!("guard triggers disabled: {}", shorten(&disabled)));
    }

    // 2. Times from the future, times running backwards, runs finishing before they start.
    for (table, column) in ORDERED {
        let sql = format!(
            "SELECT count(*) FILTER (WHERE t > clock_timestamp()), \
                    count(*) FILTER (WHERE t < before - interval '1 second') \
             FROM (SELECT {column} AS t, \
                          max({column}) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before \
                   FROM seqmig.{table}) x"
        );
        let row = match client.query_one(&sql, &[]).await {
            Ok(r) => r,
            Err(e) => return db_failure(NAME, REQUIRED, &format!("reading seqmig.{table}"), e),
        };
        let (future, backwards): (i64, i64) = (row.get(0), row.get(1));
        if future > 0 {
            problems.push(format!("{future} row(s) of seqmig.{table} dated in the future"));
        }
        // A repeated approval refreshes approved_at, which is later, never earlier: the order
        // check holds for it too.
        if backwards > 0 {
            problems.push(format!(
                "{backwards} row(s) of seqmig.{table} older than rows written before them (back-dated)"
            ));
        }
    }
    let row = match client
        .query_one(
            "SELECT count(*) FILTER (WHERE finished_at < started_at OR finished_at > clock_timestamp()) \
             FROM seqmig.phase_runs",
            &[],
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return db_failure(NAME, REQUIRED, "reading seqmig.phase_runs", e),
    };
    let bad_runs: i64 = row.get(0);
    if bad_runs > 0 {
        problems.push(format!(
            "{bad_runs} phase run(s) in seqmig.phase_runs finished before they started or in the future"
        ));
    }

    if problems.is_empty() {
        Ok(pass(
            NAME,
            REQUIRED,
            format!(
                "guard triggers present and enabled on {} evidence tables; every time in order and not in the future",
                EVIDENCE_TABLES.len()
            ),
        ))
    } else {
        Ok(fail(
            NAME,
            REQUIRED,
            format!("the gate's evidence was tampered with: {}", problems.join("; ")),
            "find out who changed seqmig's ledger (it needs DDL rights or superuser); the gate cannot trust \
             this evidence: re-run the soak from a new switch, or break the glass with a reason",
        ))
    }
}

fn shorten(items: &[String]) -> String {
    if items.len() <= 4 {
        items.join(", ")
    } else {
        format!("{} and {} more", items[..4].join(", "), items.len() - 4)
    }
}
