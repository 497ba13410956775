//! change an index (same name, new definition): the new one is built concurrently under a
//! temporary name in expand; contract drops the old one concurrently and renames the new.

use serde_json::json;

use super::{Ctx, Steps, concurrent_index_step};
use crate::model::{Index, QualifiedName};
use crate::plan::draft::{Res, StepDraft};
use crate::plan::sqltext::{derived_name, index_value};
use crate::plan::{LockMode, Phase};
use crate::render::qn;

pub fn steps(ctx: &Ctx<'_>, from: &Index, to: &Index) -> Steps {
    let tmp = derived_name(to.name.name.as_str(), "_seqmig_new");
    let tmp_q = QualifiedName::new(to.name.schema.clone(), tmp.clone());
    let build = concurrent_index_step(
        ctx,
        Phase::Expand,
        format!(
            "build the new definition of {} under a temporary name, without blocking writes",
            to.name.name.quoted_sql()
        ),
        ctx.sql("create_index", json!({ "index": index_value(to, &tmp, true, None) }))?,
        &tmp_q,
        &to.table,
    )?
    .verify(ctx.verify(json!({ "kind": "index", "index_text": tmp_q.quoted() }))?)
    .needs(super::add_index::needs(ctx, to))
    .makes(super::add_index::makes(to));
    // An expression over a column the plan drops goes with that column: drop it first.
    let releases = super::add_index::columns(from, ctx.current.tables.get(&from.table));
    let drop_old = StepDraft::new(
        Phase::Contract,
        format!("drop the old definition of {} without blocking writes", from.name.name.quoted_sql()),
        ctx.sql("drop_index", json!({ "index": qn(&from.name), "concurrently": true }))?,
    )
    .rollback(ctx.sql("create_index", json!({ "index": index_value(from, &from.name.name, true, None) }))?)
    .outside_transaction()
    .lock(LockMode::ShareUpdateExclusive, &from.table)
    .releases(releases)
    .removes([Res::Index(from.name.clone())]);
    let rename = StepDraft::new(
        Phase::Contract,
        format!("the new index takes the name {}", to.name.name.quoted_sql()),
        ctx.sql("rename", json!({ "kind": "index", "object": qn(&tmp_q), "to": to.name.name.as_str() }))?,
    )
    .rollback(ctx.sql("rename", json!({ "kind": "index", "object": qn(&to.name), "to": tmp.as_str() }))?)
    .lock(LockMode::ShareUpdateExclusive, &to.table)
    .makes([Res::Index(to.name.clone())]);
    Ok(vec![build, drop_old, rename])
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diff::Change;
    use crate::model::{Ident, Index, IndexExpr, IndexKey, QualifiedName};
    use crate::plan::Phase;

    #[test]
    fn temp_name_then_swap() {
        let mk = |col: &str| Index {
            name: QualifiedName::of("public", "users_name_idx"),
            table: QualifiedName::of("public", "users"),
            unique: false,
            nulls_not_distinct: false,
            method: "btree".into(),
            keys: vec![IndexKey {
                expr: IndexExpr::Column(Ident::exact(col).unwrap()),
                collation: None,
                opclass: None,
                descending: false,
                nulls_first: None,
            }],
            include: vec![],
            predicate: None,
            options: vec![],
            only: false,
            statistics: Default::default(),
        };
        let s = schema_with(vec![users()]);
        let steps = run(&s, &s, &Change::ChangeIndex { from: mk("name"), to: mk("id") });
        assert_eq!(phases(&steps), [Phase::Expand, Phase::Contract, Phase::Contract]);
        assert_eq!(steps[0].sql, "CREATE INDEX CONCURRENTLY users_name_idx_seqmig_new ON public.users (id);");
        assert_eq!(steps[1].sql, "DROP INDEX CONCURRENTLY public.users_name_idx;");
    }
}
