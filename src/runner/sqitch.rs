//! sqitch (<https://sqitch.org>): one change per [`Unit`], `deploy/NAME.sql` and
//! `revert/NAME.sql`, listed in `sqitch.plan`, each requiring the one before. sqitch runs
//! scripts with psql and `ON_ERROR_STOP`, and leaves transactions to the script: a
//! transactional unit is wrapped in `BEGIN` / `COMMIT`, a `CONCURRENTLY` or `ADD VALUE`
//! step is a change of its own without them. Deploy phase by phase with
//! `sqitch deploy --to <the phase's last change>`.

use super::{Direction, Transactions, Unit, render_steps, units};
use crate::plan::{Phase, Planned};
use crate::render::{RenderError, Renderer};

/// A file to write: path relative to the output directory, and its text.
pub type File = (String, String);

/// The sqitch change name of a unit: `seqmig_<plan short id>_<unit>`.
pub fn change_name(planned: &Planned, unit: &Unit<'_>) -> String {
    format!("seqmig_{}_{}", &planned.plan.short_id()[..8], unit.name())
}

/// The last change of each phase, in order: what `sqitch deploy --to` names.
pub fn phase_targets(planned: &Planned) -> Vec<(Phase, String)> {
    units(planned).iter().filter(|u| u.last).map(|u| (u.phase, change_name(planned, u))).collect()
}

/// `sqitch.conf`, `sqitch.plan`, `deploy/*.sql`, `revert/*.sql`.
pub fn files(planned: &Planned, r: &Renderer) -> Result<Vec<File>, RenderError> {
    let plan = &planned.plan;
    let mut out = vec![("sqitch.conf".to_string(), "[core]\n\tengine = pg\n".to_string())];
    let mut sqitch_plan = format!("%syntax-version=1.0.0\n%project=seqmig_{}\n\n", &plan.short_id()[..8]);
    let mut prev: Option<String> = None;
    for u in units(planned) {
        let name = change_name(planned, &u);
        let deploy = render_steps(planned, r, &u, Direction::Apply, Transactions::InFile)?;
        let mut revert = String::new();
        for s in u.steps.iter().filter(|s| s.one_way) {
            // sqitch would mark the change reverted although nothing was undone.
            revert.push_str(&format!(
                "DO $seqmig$ BEGIN RAISE EXCEPTION 'step {} of plan {} is one-way: change {} cannot be reverted'; END $seqmig$;\n",
                s.id,
                plan.short_id(),
                name
            ));
        }
        if revert.is_empty() {
            revert = render_steps(planned, r, &u, Direction::Rollback, Transactions::InFile)?;
        }
        let requires = prev.as_ref().map(|p| format!(" [{p}]")).unwrap_or_default();
        let steps: Vec<&str> = u.steps.iter().map(|s| s.id.as_str()).collect();
        sqitch_plan.push_str(&format!(
            "{name}{requires} 2000-01-01T00:00:00Z seqmig <seqmig@localhost> # phase {} of seqmig plan {}: steps {}{}\n",
            u.phase,
            plan.short_id(),
            steps.join(", "),
            if u.transactional { "" } else { " (outside a transaction)" }
        ));
        out.push((format!("deploy/{name}.sql"), deploy));
        out.push((format!("revert/{name}.sql"), revert));
        prev = Some(name);
    }
    out.insert(1, ("sqitch.plan".to_string(), sqitch_plan));
    Ok(out)
}
