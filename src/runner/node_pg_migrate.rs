//! node-pg-migrate (<https://salsita.github.io/node-pg-migrate>): one migration per [`Unit`]
//! in `migrations/` (`0001_seqmig_<id>_expand.js`, …, run in name order), each `pgm.sql`
//! with one statement at a time. node-pg-migrate runs each migration in its own transaction;
//! a unit that cannot run in one calls `pgm.noTransaction()`. A one-way unit has
//! `exports.down = false`, which node-pg-migrate refuses to run down. Migrate phase by phase
//! with `node-pg-migrate up <number of the phase's migrations>` (DATABASE_URL set).

use super::{Direction, Unit, unit_statements, units};
use crate::plan::{Phase, Planned};

/// The migration name of a unit (its file name without `.js`).
pub fn migration_name(planned: &Planned, n: usize, unit: &Unit<'_>) -> String {
    format!("{:04}_seqmig_{}_{}", n, &planned.plan.short_id()[..8], unit.name())
}

/// How many migrations each phase has, in order: `node-pg-migrate up <name>` runs only the
/// named migration, so a phase is run with `node-pg-migrate up <count>`.
pub fn phase_targets(planned: &Planned) -> Vec<(Phase, String)> {
    let all = units(planned);
    Phase::ALL
        .into_iter()
        .filter_map(|p| {
            let n = all.iter().filter(|u| u.phase == p).count();
            (n > 0).then(|| (p, n.to_string()))
        })
        .collect()
}

/// `migrations/*.js`.
pub fn files(planned: &Planned) -> Vec<(String, String)> {
    let plan = &planned.plan;
    let mut out = Vec::new();
    for (i, u) in units(planned).iter().enumerate() {
        let name = migration_name(planned, i + 1, u);
        // A JSON array of strings is a valid JavaScript array literal.
        let up = serde_json::to_string_pretty(&unit_statements(planned, u, Direction::Apply))
            .expect("strings serialise");
        let one_way: Vec<&str> = u.steps.iter().filter(|s| s.one_way).map(|s| s.id.as_str()).collect();
        let down = if one_way.is_empty() {
            let stmts = serde_json::to_string_pretty(&unit_statements(planned, u, Direction::Rollback))
                .expect("strings serialise");
            format!(
                "(pgm) => {{\n{}  for (const sql of {stmts}) pgm.sql(sql);\n}};",
                if u.transactional { "" } else { "  pgm.noTransaction();\n" }
            )
        } else {
            format!("false; // one-way steps ({}): contract cannot be undone", one_way.join(", "))
        };
        let steps: Vec<&str> = u.steps.iter().map(|s| s.id.as_str()).collect();
        let text = format!(
            "// seqmig plan {short}: phase {phase}, steps {steps}.\n\
             // One statement per pgm.sql call; {tx}.\n\
             const UPGRADE = {up};\n\n\
             exports.up = (pgm) => {{\n{no_tx}  for (const sql of UPGRADE) pgm.sql(sql);\n}};\n\n\
             exports.down = {down}\n",
            short = plan.short_id(),
            phase = u.phase,
            steps = steps.join(", "),
            tx = if u.transactional {
                "node-pg-migrate wraps the migration in a transaction"
            } else {
                "no transaction: CONCURRENTLY and ADD VALUE cannot run in one"
            },
            no_tx = if u.transactional { "" } else { "  pgm.noTransaction();\n" },
        );
        out.push((format!("migrations/{name}.js"), text));
    }
    out
}
