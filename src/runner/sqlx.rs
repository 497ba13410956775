//! sqlx (<https://github.com/launchbadge/sqlx>, `sqlx-cli`): one simple migration
//! `<version>_seqmig_<plan short id>_<unit>.sql` per transactional [`Unit`], in `DIR`, run in
//! version order by `sqlx migrate run --source DIR`. sqlx wraps each migration in a
//! transaction and sends the file as one simple query, so the file has no `BEGIN`/`COMMIT`.
//!
//! A step that cannot run in a transaction (`CONCURRENTLY`, `ADD VALUE`) needs sqlx's opt-out,
//! a first line `-- no-transaction`. sqlx still sends that file as one query string, and
//! PostgreSQL runs a string of several statements as one implicit transaction, so such a
//! file may hold a single statement. The unit becomes three migrations: `<unit>` (the
//! ledger, the plan and, for contract, the gate guard; transactional), `<unit>_run` (the
//! statement alone, `-- no-transaction`; `_run_2`, … when the step has several) and
//! `<unit>_record` (the step recorded in the ledger; transactional).
//!
//! Versions are consecutive integers from `first_version` (`seqmig plan --first-version`,
//! default: the UTC time of planning as `YYYYMMDDHHMMSS`, as `sqlx migrate add` names
//! files). Run a phase with `sqlx migrate run --target-version <its last version>`.

use super::{Direction, Transactions, Unit, end_sql, prologue_statements, record_sql, render_steps, units};
use crate::plan::{Phase, Planned};
use crate::render::{RenderError, Renderer};

/// One sqlx migration: its version, file name and text.
#[derive(Debug, Clone)]
pub struct Migration {
    pub version: i64,
    pub phase: Phase,
    pub file: String,
    pub text: String,
}

fn file_name(planned: &Planned, version: i64, unit: &Unit<'_>, suffix: &str) -> String {
    format!("{version}_seqmig_{}_{}{suffix}.sql", &planned.plan.short_id()[..8], unit.name())
}

/// Every migration of the plan, in version order.
pub fn migrations(
    planned: &Planned,
    r: &Renderer,
    first_version: i64,
) -> Result<Vec<Migration>, RenderError> {
    let plan = &planned.plan;
    let mut out: Vec<Migration> = Vec::new();
    // Consecutive versions; the file name holds the version, the closure the rest.
    let push = |out: &mut Vec<Migration>, u: &Unit<'_>, suffix: &str, text: String| {
        let version = first_version + out.len() as i64;
        out.push(Migration { version, phase: u.phase, file: file_name(planned, version, u, suffix), text });
    };
    for u in units(planned) {
        if u.transactional {
            let text = render_steps(planned, r, &u, Direction::Apply, Transactions::ByRunner)?;
            push(&mut out, &u, "", text);
            continue;
        }
        let step = u.steps[0];
        let header = format!(
            "-- seqmig plan {}: phase {}, step {} of change {}\n",
            plan.id, u.phase, step.id, step.change
        );
        let prologue = prologue_statements(planned, u.phase, Direction::Apply, u.first).join("\n");
        push(
            &mut out,
            &u,
            "",
            format!(
                "{header}-- Before the step, which cannot run in a transaction: the next migration runs it\n\
                 -- with sqlx's opt-out (-- no-transaction), alone, and the one after records it.\n{prologue}\n"
            ),
        );
        let statements: Vec<String> = match crate::parse::split_statements(&step.sql) {
            Ok(parts) => parts.into_iter().filter(|p| !p.meta).map(|p| p.text).collect(),
            Err(_) => vec![step.sql.clone()],
        };
        let n = statements.len();
        for (i, sql) in statements.into_iter().enumerate() {
            let suffix = if i == 0 { "_run".to_string() } else { format!("_run_{}", i + 1) };
            let part = if n > 1 { format!(", statement {} of {n}", i + 1) } else { String::new() };
            push(
                &mut out,
                &u,
                &suffix,
                format!(
                    "-- no-transaction\n{header}-- Outside a transaction, alone{part}: sqlx sends a file as one query string,\n\
                     -- and PostgreSQL runs several statements in one string as one transaction.\n{}\n",
                    sql.trim_end()
                ),
            );
        }
        let mut record = format!("{header}{}\n", record_sql(&plan.id, u.phase, &step.id, Direction::Apply));
        if u.last {
            record.push_str(&end_sql(&plan.id, u.phase, Direction::Apply));
            record.push('\n');
        }
        push(&mut out, &u, "_record", record);
    }
    Ok(out)
}

/// The last version of each phase, in order: what `sqlx migrate run --target-version` names.
pub fn phase_targets(migrations: &[Migration]) -> Vec<(Phase, i64)> {
    let mut out: Vec<(Phase, i64)> = Vec::new();
    for m in migrations {
        match out.last_mut() {
            Some((p, v)) if *p == m.phase => *v = m.version,
            _ => out.push((m.phase, m.version)),
        }
    }
    out
}

/// The files to write (`DIR/<version>_<name>.sql`).
pub fn files(
    planned: &Planned,
    r: &Renderer,
    first_version: i64,
) -> Result<Vec<(String, String)>, RenderError> {
    Ok(migrations(planned, r, first_version)?.into_iter().map(|m| (m.file, m.text)).collect())
}

/// The UTC time now as `YYYYMMDDHHMMSS`: the version `sqlx migrate add` and `rails generate
/// migration` would give a new migration.
pub fn timestamp_version() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    ((y * 100 + m) * 100 + d) * 1_000_000 + (rem / 3600) * 10_000 + (rem % 3600 / 60) * 100 + rem % 60
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamp_version_is_a_plausible_utc_time() {
        let v = super::timestamp_version();
        assert!((20_250_101_000_000..21_000_101_000_000).contains(&v), "{v}");
        let month = v / 100_000_000 % 100;
        let day = v / 1_000_000 % 100;
        assert!((1..=12).contains(&month) && (1..=31).contains(&day), "{v}");
    }
}
