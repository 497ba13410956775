//! `seqmig replay DIR`: a real schema history, replayed. The `.sql` files of a directory,
//! in name order, are the versions a team shipped; every consecutive pair is a change that
//! happened. For each pair the replay plans (which must succeed, or block with findings that
//! each name their object: never fail) and, when the plan is not blocked, rehearses it on a
//! scratch database of the same server ([`super::rehearse`]): every phase applied, rolled
//! back and applied again, no lock stronger than predicted, the final schema equal to the
//! desired one. What the server lacks is stood in ([`super::standin`]) and listed.
//!
//! The library returns a [`Replay`]; the caller sees each pair as it finishes through a
//! callback (the CLI prints progress on stderr) and renders the whole.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::db::ConnectOptions;
use crate::diff::Hints;
use crate::model::Schema;
use crate::render::Renderer;

/// How one pair came out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Planned (exit 0) and, unless plan-only, rehearsed clean.
    Clean,
    /// Planned, not rehearsed (`--plan-only`).
    Planned,
    /// Blocked by findings that name their objects (exit 1): a correct refusal.
    Blocked,
    /// Planned, but the rehearsal found problems.
    Failing,
    /// Loading, planning or rehearsing failed, or a blocking finding names no object.
    Error,
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Clean => "clean",
            Outcome::Planned => "planned",
            Outcome::Blocked => "blocked",
            Outcome::Failing => "FAILING",
            Outcome::Error => "ERROR",
        }
    }
}

/// One consecutive pair.
#[derive(Debug, Clone, Serialize)]
pub struct PairReport {
    /// File stems: `001`, `002`.
    pub from: String,
    pub to: String,
    pub outcome: Outcome,
    pub plan_id: Option<String>,
    pub steps: usize,
    /// `code object` of each blocking finding.
    pub blocking: Vec<String>,
    /// Rehearsal problems, or the error.
    pub problems: Vec<String>,
    /// Objects stood in or left out by the rehearsal (not proven).
    pub stood_in: Vec<String>,
    pub ms: u64,
}

impl PairReport {
    /// `001→002  clean  7 steps  3.1 s` and the reasons, one line.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{}→{}  {:<7}  {:>3} steps  {:>5.1} s",
            self.from,
            self.to,
            self.outcome.label(),
            self.steps,
            self.ms as f64 / 1000.0
        );
        if !self.blocking.is_empty() {
            s.push_str(&format!("  blocked by {}", self.blocking.join(", ")));
        }
        if !self.problems.is_empty() {
            s.push_str(&format!("  {}", self.problems.join("; ")));
        }
        if !self.stood_in.is_empty() {
            s.push_str(&format!("  ({} stood in)", self.stood_in.len()));
        }
        s
    }
}

/// Counts over the pairs replayed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub pairs: usize,
    /// Plans that exit 0 (not blocked).
    pub planned: usize,
    pub blocked: usize,
    pub errors: usize,
    pub clean: usize,
    pub failing: usize,
    pub ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Replay {
    pub directory: String,
    pub plan_only: bool,
    pub pairs: Vec<PairReport>,
    pub summary: Summary,
}

impl Replay {
    /// True when no pair errs or fails.
    pub fn passed(&self) -> bool {
        self.summary.errors == 0 && self.summary.failing == 0
    }

    /// One line per pair, then the summary.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for p in &self.pairs {
            out.push_str(&p.line());
            out.push('\n');
        }
        out.push_str(&self.summary_line());
        out.push('\n');
        out
    }

    /// `156 pairs: 117 planned (111 clean, 6 failing), 39 blocked, 0 errors in 228.0 s`.
    pub fn summary_line(&self) -> String {
        let s = &self.summary;
        let rehearsed = if self.plan_only {
            "not rehearsed".to_string()
        } else {
            format!("{} clean, {} failing", s.clean, s.failing)
        };
        format!(
            "{} pairs: {} planned ({rehearsed}), {} blocked, {} errors in {:.1} s",
            s.pairs,
            s.planned,
            s.blocked,
            s.errors,
            s.ms as f64 / 1000.0
        )
    }
}

/// The versions of a history: the `.sql` files of `dir` in name order.
pub fn versions(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    Ok(files)
}

/// A file's stem, the name of a version.
pub fn stem(p: &Path) -> String {
    p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Which pairs to replay, named by the version they start from: `050..060` (inclusive),
/// `001,086,137`, or both mixed (`001,050..060`). Returns indexes of the first version.
pub fn select_pairs(versions: &[PathBuf], spec: &str) -> Result<Vec<usize>, String> {
    let stems: Vec<String> = versions.iter().map(|p| stem(p)).collect();
    let last = stems.len().saturating_sub(1);
    let find = |s: &str| -> Result<usize, String> {
        match stems.iter().position(|x| x == s) {
            Some(i) if i < last => Ok(i),
            Some(_) => Err(format!("{s} is the last version; no pair starts there")),
            None => Err(format!("no version named {s} (the versions are the .sql file names without .sql)")),
        }
    };
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once("..") {
            let a = if a.is_empty() { 0 } else { find(a)? };
            let b = if b.is_empty() { last.saturating_sub(1) } else { find(b)? };
            if a > b {
                return Err(format!("{part}: the range is empty"));
            }
            out.extend(a..=b);
        } else {
            out.push(find(part)?);
        }
    }
    out.sort_unstable();
    out.dedup();
    if out.is_empty() {
        return Err("no pair selected".into());
    }
    Ok(out)
}

/// What to replay.
#[derive(Debug, Clone)]
pub struct Options {
    /// The versions, in order.
    pub versions: Vec<PathBuf>,
    /// Index of the first version of each pair to replay.
    pub pairs: Vec<usize>,
    /// Plan every pair, rehearse none.
    pub plan_only: bool,
    /// Generated rows per table in each rehearsal.
    pub rows: usize,
}

/// A version read: its SQL and model, or why it could not be loaded.
type Version = Result<(String, Schema), String>;

fn read_version(path: &Path) -> Version {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("failed to read {}: {e}", path.display()))?;
    let schema =
        crate::parse::load_str(&path.display().to_string(), &text).map_err(|e| e.to_string())?.schema;
    Ok((text, schema))
}

/// Replays the selected pairs; `admin` is a server to create scratch databases on (not
/// needed with `plan_only`); `each` sees every pair as it finishes.
pub async fn replay(
    admin: Option<&ConnectOptions>,
    options: &Options,
    directory: &str,
    each: &mut dyn FnMut(&PairReport),
) -> Replay {
    let t0 = Instant::now();
    let renderer = Renderer::embedded();
    let hints = Hints::default();
    let mut cache: Option<(usize, Version)> = None;
    let mut pairs = Vec::new();
    let mut summary = Summary::default();
    for &i in &options.pairs {
        let started = Instant::now();
        let current = match cache.take() {
            Some((k, v)) if k == i => v,
            _ => read_version(&options.versions[i]),
        };
        let desired = read_version(&options.versions[i + 1]);
        let mut report = PairReport {
            from: stem(&options.versions[i]),
            to: stem(&options.versions[i + 1]),
            outcome: Outcome::Error,
            plan_id: None,
            steps: 0,
            blocking: Vec::new(),
            problems: Vec::new(),
            stood_in: Vec::new(),
            ms: 0,
        };
        match (&current, &desired) {
            (Err(e), _) | (_, Err(e)) => report.problems.push(e.clone()),
            (Ok((current_sql, current)), Ok((desired_sql, desired))) => {
                pair(
                    admin,
                    options,
                    &renderer,
                    &hints,
                    (current_sql, current),
                    (desired_sql, desired),
                    &mut report,
                )
                .await
            }
        }
        report.ms = started.elapsed().as_millis() as u64;
        summary.pairs += 1;
        match report.outcome {
            Outcome::Clean => {
                summary.planned += 1;
                summary.clean += 1;
            }
            Outcome::Planned => summary.planned += 1,
            Outcome::Failing => {
                summary.planned += 1;
                summary.failing += 1;
            }
            Outcome::Blocked => summary.blocked += 1,
            Outcome::Error => summary.errors += 1,
        }
        each(&report);
        pairs.push(report);
        cache = Some((i + 1, desired));
    }
    summary.ms = t0.elapsed().as_millis() as u64;
    Replay { directory: directory.to_string(), plan_only: options.plan_only, pairs, summary }
}

async fn pair(
    admin: Option<&ConnectOptions>,
    options: &Options,
    renderer: &Renderer,
    hints: &Hints,
    current: (&String, &Schema),
    desired: (&String, &Schema),
    report: &mut PairReport,
) {
    let plan = match crate::plan::plan(current.1, desired.1, hints, renderer) {
        Ok(p) => p.plan,
        Err(e) => {
            report.problems.push(format!("plan failed: {e}"));
            return;
        }
    };
    report.plan_id = Some(plan.id.clone());
    report.steps = plan.steps.len();
    if plan.is_blocked() {
        let errors: Vec<_> = plan.findings.iter().filter(|f| f.is_error()).collect();
        report.blocking = errors.iter().map(|f| format!("{} {}", f.code, f.object)).collect();
        let unnamed: Vec<&str> =
            errors.iter().filter(|f| f.object.trim().is_empty()).map(|f| f.code.as_str()).collect();
        if unnamed.is_empty() {
            report.outcome = Outcome::Blocked;
        } else {
            report.problems.push(format!("blocking findings name no object: {}", unnamed.join(", ")));
        }
        return;
    }
    let Some(admin) = admin.filter(|_| !options.plan_only) else {
        report.outcome = Outcome::Planned;
        return;
    };
    let input = super::Rehearsal {
        plan,
        current: current.1.clone(),
        current_sql: current.0.clone(),
        desired_sql: desired.0.clone(),
        rows: options.rows,
    };
    match super::rehearse(admin, &input, std::future::pending::<()>()).await {
        Err(e) => report.problems.push(format!("rehearsal failed: {e}")),
        Ok(r) => {
            report.stood_in = r.stood_in.iter().map(|s| s.to_string()).collect();
            report.problems = r.problems.iter().map(|p| p.to_string()).collect();
            report.outcome = if r.passed() { Outcome::Clean } else { Outcome::Failing };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_selected_by_the_version_they_start_from() {
        let v: Vec<PathBuf> =
            ["001.sql", "002.sql", "003.sql", "004.sql"].iter().map(PathBuf::from).collect();
        assert_eq!(select_pairs(&v, "001..002").unwrap(), vec![0, 1]);
        assert_eq!(select_pairs(&v, "003,001").unwrap(), vec![0, 2]);
        assert_eq!(select_pairs(&v, "002..").unwrap(), vec![1, 2]);
        assert!(select_pairs(&v, "004").unwrap_err().contains("last version"));
        assert!(select_pairs(&v, "009").unwrap_err().contains("no version named 009"));
    }
}
