//! A [`Report`] as text for a terminal or CI log, and as Markdown for a pull-request comment.
//! JSON is the report serialised as it is.

use std::fmt::Write as _;

use super::{Report, RollbackResult, StepReport};

fn observed(s: &StepReport) -> String {
    match (s.observed_lock, &s.observed_on) {
        (Some(m), Some(on)) => format!("{m} on {on} ({})", s.lock_source.as_str()),
        _ => format!("none seen ({})", s.lock_source.as_str()),
    }
}

fn predicted(s: &StepReport) -> String {
    if s.lock_target.is_empty() {
        s.predicted_lock.to_string()
    } else {
        format!("{} on {}", s.predicted_lock, s.lock_target)
    }
}

fn rewrite(s: &StepReport) -> String {
    match (s.rewrote.is_empty(), s.predicted_rewrite) {
        (true, false) => "no".into(),
        (true, true) => "no (predicted)".into(),
        (false, _) => format!("yes: {}", s.rewrote.join(", ")),
    }
}

fn rollback_cell(s: &StepReport, phase: &RollbackResult) -> String {
    match (phase, s.rollback_ms) {
        (RollbackResult::NotApplicable(_), _) => "n/a".into(),
        (r, Some(ms)) => format!("{} ({ms} ms)", r.label()),
        (r, None) => r.label().to_string(),
    }
}

fn verdict(report: &Report) -> String {
    let seconds = report.elapsed_ms as f64 / 1000.0;
    if report.passed() {
        format!("rehearsal of plan {} passed in {seconds:.1} s", short(&report.plan_id))
    } else {
        format!(
            "rehearsal of plan {} found {} problem(s) in {seconds:.1} s",
            short(&report.plan_id),
            report.problems.len()
        )
    }
}

fn short(id: &str) -> &str {
    crate::exec::short_id(id)
}

fn seeded(report: &Report) -> String {
    let rows: usize = report.seed.rows.values().sum();
    let mut s = format!("seeded {rows} rows into {} tables", report.seed.rows.len());
    if !report.seed.refused.is_empty() {
        let names: Vec<&str> = report.seed.refused.keys().map(String::as_str).collect();
        write!(s, "; some rows refused in {}", names.join(", ")).ok();
    }
    s
}

/// Aligned columns for a terminal.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    writeln!(out, "{}", seeded(report)).ok();
    for phase in &report.phases {
        let rollback = match &phase.rollback {
            RollbackResult::Restored => "rolled back and restored".to_string(),
            RollbackResult::NotRestored(d) => format!("rollback did NOT restore: {}", d.join("; ")),
            RollbackResult::Failed(m) => format!("rollback FAILED: {m}"),
            RollbackResult::NotApplicable(why) => format!("no rollback: {why}"),
        };
        writeln!(out, "\nphase {} — {rollback}", phase.phase).ok();
        let header = ["step", "predicted lock", "observed lock", "rewrite", "ms", "rollback ok"];
        let rows: Vec<[String; 6]> = phase
            .steps
            .iter()
            .map(|s| {
                let mark = if s.lock_exceeds { "!" } else { "" };
                [
                    format!("{}{mark}", s.id),
                    predicted(s),
                    observed(s),
                    rewrite(s),
                    s.ms.to_string(),
                    rollback_cell(s, &phase.rollback),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: Vec<&str>| -> String {
            let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
            format!("  {}", padded.join("  ").trim_end())
        };
        writeln!(out, "{}", line(header.to_vec())).ok();
        for r in &rows {
            writeln!(out, "{}", line(r.iter().map(String::as_str).collect())).ok();
        }
        if let Some(e) = &phase.apply_error {
            writeln!(out, "  apply failed: {e}").ok();
        }
    }
    match report.final_schema_matches {
        Some(true) => writeln!(out, "\nfinal schema equals the desired one").ok(),
        Some(false) => writeln!(out, "\nfinal schema DIFFERS from the desired one").ok(),
        None => writeln!(out, "\nfinal schema not checked: the rehearsal stopped early").ok(),
    };
    for p in &report.problems {
        writeln!(out, "error: {p}").ok();
    }
    for s in &report.stood_in {
        writeln!(out, "not proven: {s}").ok();
    }
    writeln!(out, "{}", verdict(report)).ok();
    out
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// A pull-request comment.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let icon = if report.passed() { "✅" } else { "❌" };
    writeln!(out, "### {icon} {}\n", verdict(report)).ok();
    writeln!(out, "{}.\n", seeded(report)).ok();
    for phase in &report.phases {
        let rollback = match &phase.rollback {
            RollbackResult::Restored => "rolled back and restored".to_string(),
            RollbackResult::NotRestored(d) => {
                format!("**rollback did not restore**: {}", md_cell(&d.join("; ")))
            }
            RollbackResult::Failed(m) => format!("**rollback failed**: {}", md_cell(m)),
            RollbackResult::NotApplicable(why) => format!("no rollback: {why}"),
        };
        writeln!(out, "#### `{}` — {rollback}\n", phase.phase).ok();
        writeln!(out, "| step | predicted lock | observed lock | rewrite | ms | rollback ok |").ok();
        writeln!(out, "|---|---|---|---|---:|---|").ok();
        for s in &phase.steps {
            let id = if s.lock_exceeds { format!("**{}** ⚠️", s.id) } else { format!("`{}`", s.id) };
            writeln!(
                out,
                "| {id} | {} | {} | {} | {} | {} |",
                md_cell(&predicted(s)),
                md_cell(&observed(s)),
                md_cell(&rewrite(s)),
                s.ms,
                rollback_cell(s, &phase.rollback)
            )
            .ok();
        }
        if let Some(e) = &phase.apply_error {
            writeln!(out, "\nApply failed: {}", md_cell(e)).ok();
        }
        out.push('\n');
    }
    match report.final_schema_matches {
        Some(true) => writeln!(out, "Final schema equals the desired one.").ok(),
        Some(false) => writeln!(out, "**Final schema differs from the desired one.**").ok(),
        None => writeln!(out, "Final schema not checked: the rehearsal stopped early.").ok(),
    };
    if !report.problems.is_empty() {
        writeln!(out, "\n**Problems**\n").ok();
        for p in &report.problems {
            writeln!(out, "- {}", md_cell(&p.to_string())).ok();
        }
    }
    if !report.stood_in.is_empty() {
        writeln!(out, "\n**Not proven** (the server lacks it)\n").ok();
        for s in &report.stood_in {
            writeln!(out, "- {}", md_cell(&s.to_string())).ok();
        }
    }
    out
}
