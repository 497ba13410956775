//! `min_soak`: time since `switch` succeeded, by the database clock.

use std::time::Duration;

use super::{Context, CriterionReport, fail, pass};
use crate::soak::config::format_duration;

pub(super) fn min_soak(ctx: &Context<'_>, required: &str) -> CriterionReport {
    let need = ctx.criteria.min_soak.unwrap_or_default();
    match &ctx.switch_at {
        None => fail(
            "min_soak",
            required,
            "switch has not succeeded for this plan: the soak has not started".into(),
            "seqmig apply --phase switch",
        ),
        Some((at, text)) => {
            let age = (ctx.now - at).max(0.0);
            let shown = format_duration(Duration::from_secs(age as u64));
            if age >= need.as_secs_f64() {
                pass("min_soak", required, format!("switch succeeded at {text}, {shown} ago"))
            } else {
                // Whole seconds, rounded up: `59m59s to go`, never `0s` while still closed.
                let left = Duration::from_secs((need.as_secs_f64() - age).max(1.0).ceil() as u64);
                fail(
                    "min_soak",
                    required,
                    format!("switch succeeded at {text}, only {shown} ago; {} to go", format_duration(left)),
                    format!("wait {} and run 'seqmig gate' again", format_duration(left)),
                )
            }
        }
    }
}
