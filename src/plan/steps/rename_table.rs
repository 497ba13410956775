//! rename table: in expand, one transaction renames the table and leaves an updatable view
//! under the old name, so both releases work; switch flips the flag; contract drops the
//! view. Nothing is lost at any point, so every step can be undone.

use serde_json::json;

use super::{Ctx, Steps, flag_steps};
use crate::model::{QualifiedName, Table};
use crate::plan::draft::{Res, StepDraft};
use crate::plan::{LockMode, Phase};
use crate::render::qn;

pub fn steps(ctx: &Ctx<'_>, from: &QualifiedName, table: &Table) -> Steps {
    let to = &table.name;
    let sql = ctx.sql("rename_table", json!({ "from": qn(from), "to": qn(to) }))?;
    let back = format!(
        "{}\n{}",
        ctx.sql("drop_view", json!({ "view": qn(from), "if_exists": true }))?,
        ctx.sql("rename", json!({ "kind": "table", "object": qn(to), "to": from.name.as_str() }))?
    );
    let mut makes = vec![Res::Table(to.clone())];
    makes.extend(table.columns.iter().map(|c| Res::Column(to.clone(), c.name.clone())));
    let (flag_insert, flag_switch, flag_delete) = flag_steps(ctx)?;
    let rename = StepDraft::new(
        Phase::Expand,
        format!(
            "rename {from} to {} and keep the old name as a view for the old release",
            to.name.quoted_sql()
        ),
        sql,
    )
    .rollback(back)
    .lock(LockMode::AccessExclusive, from)
    .verify(ctx.verify(json!({ "kind": "relation", "rel_text": to.quoted(), "present": true }))?)
    .removes([Res::Table(from.clone())])
    .makes(makes);
    let drop_view = StepDraft::new(
        Phase::Contract,
        format!("drop the compatibility view {from}"),
        ctx.sql("drop_view", json!({ "view": qn(from) }))?,
    )
    .rollback(ctx.sql(
        "create_view",
        json!({ "view": qn(from), "definition": format!("SELECT * FROM {}", to.quoted()) }),
    )?)
    .lock(LockMode::AccessExclusive, from)
    .removes([Res::View(from.clone())]);
    Ok(vec![rename, flag_insert, flag_switch, drop_view, flag_delete])
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diff::Change;
    use crate::model::QualifiedName;
    use crate::plan::Phase;

    #[test]
    fn rename_keeps_a_view_until_contract() {
        let mut t = users();
        t.name = QualifiedName::of("public", "accounts");
        let steps = run(
            &schema_with(vec![users()]),
            &schema_with(vec![t.clone()]),
            &Change::RenameTable { from: QualifiedName::of("public", "users"), table: t },
        );
        assert_eq!(
            phases(&steps),
            [Phase::Expand, Phase::Expand, Phase::Switch, Phase::Contract, Phase::Contract]
        );
        assert!(steps[0].sql.contains("CREATE VIEW public.users AS SELECT * FROM public.accounts;"));
        assert!(steps.iter().all(|s| s.rollback_sql.is_some()));
    }
}
