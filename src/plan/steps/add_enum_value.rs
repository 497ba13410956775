//! add enum value: `ALTER TYPE … ADD VALUE` in expand, outside a transaction (a value added
//! inside one cannot be used until it commits). PostgreSQL cannot remove an enum value, so
//! the rollback leaves it in place, unused.

use serde_json::json;

use super::{Ctx, Steps};
use crate::model::QualifiedName;
use crate::plan::draft::{Res, StepDraft};
use crate::plan::{LockMode, Phase};
use crate::render::qn;

pub fn steps(
    ctx: &Ctx<'_>,
    name: &QualifiedName,
    value: &str,
    before: Option<&str>,
    after: Option<&str>,
) -> Steps {
    Ok(vec![
        StepDraft::new(
            Phase::Expand,
            format!("add value '{value}' to enum {name}"),
            ctx.sql(
                "add_enum_value",
                json!({ "name": qn(name), "value": value, "before": before, "after": after }),
            )?,
        )
        .rollback("-- an enum value cannot be removed; it stays, unused, and harms nothing".into())
        .outside_transaction()
        .lock(LockMode::None, name)
        .makes([Res::Type(name.clone())]),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diff::Change;
    use crate::model::QualifiedName;

    #[test]
    fn before_an_existing_value() {
        let s = schema_with(vec![]);
        let steps = run(
            &s,
            &s,
            &Change::AddEnumValue {
                name: QualifiedName::of("public", "mood"),
                value: "it's ok".into(),
                before: Some("happy".into()),
                after: None,
            },
        );
        assert_eq!(steps[0].sql, "ALTER TYPE public.mood ADD VALUE IF NOT EXISTS 'it''s ok' BEFORE 'happy';");
        assert!(!steps[0].transactional);
    }
}
