//! `evidence_intact`: the evidence the other criteria read was not tampered with (issue 18.5).
//! Always in force: it cannot be configured off, because every other verdict rests on it.
//!
//! The ledger's guard (`ledger/sql/v5_evidence_guard.sql`) makes evidence append-only and stamps it
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

use super::{CriterionReport, fail, ledger_failure, pass};
use crate::ledger::evidence::{ORDERED_EVIDENCE, guard_triggers, impossible_phase_runs, out_of_order};
use crate::soak::{EVIDENCE_TABLES, SoakError};

pub(super) const NAME: &str = "evidence_intact";
pub(super) const REQUIRED: &str = "append-only, server-timed evidence";

pub(super) async fn evidence_intact(client: &Client) -> Result<CriterionReport, SoakError> {
    let mut problems: Vec<String> = Vec::new();

    // 1. The guard is in place on every table.
    let rows = match guard_triggers(client).await {
        Ok(rows) => rows,
        Err(e) => return ledger_failure(NAME, REQUIRED, "reading the evidence guard's triggers", e),
    };
    let mut missing = Vec::new();
    let mut disabled = Vec::new();
    for (table, trigger, enabled) in &rows {
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
    for (table, column) in ORDERED_EVIDENCE {
        let (future, backwards) = match out_of_order(client, table, column).await {
            Ok(r) => r,
            Err(e) => return ledger_failure(NAME, REQUIRED, &format!("reading seqmig.{table}"), e),
        };
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
    let bad_runs = match impossible_phase_runs(client).await {
        Ok(n) => n,
        Err(e) => return ledger_failure(NAME, REQUIRED, "reading seqmig.phase_runs", e),
    };
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
