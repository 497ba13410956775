//! drop index: `DROP INDEX CONCURRENTLY` in contract (queries of the old release may still
//! use it until then); the rollback rebuilds it concurrently.

use serde_json::json;

use super::{Ctx, Steps};
use crate::model::Index;
use crate::plan::draft::{Res, StepDraft};
use crate::plan::sqltext::index_value;
use crate::plan::{LockMode, Phase};
use crate::render::qn;

pub fn steps(ctx: &Ctx<'_>, index: &Index) -> Steps {
    // PostgreSQL refuses `DROP INDEX CONCURRENTLY` on a partitioned index (SQLSTATE 0A000,
    // *cannot drop partitioned index concurrently*): the plain drop is the only form. It
    // removes the index of every partition with it, catalog only, under a brief
    // `ACCESS EXCLUSIVE` on the parent and its partitions.
    let partitioned = ctx.current.tables.get(&index.table).is_some_and(|t| t.is_partitioned());
    let concurrently = !index.only && !partitioned;
    let releases = super::add_index::columns(index, ctx.current.tables.get(&index.table));
    let mut step = StepDraft::new(
        Phase::Contract,
        format!(
            "drop index {}{}",
            index.name.name.quoted_sql(),
            if concurrently {
                " without blocking writes"
            } else if partitioned {
                " of a partitioned table (and its partitions' indexes): PostgreSQL has no concurrent drop for it; catalog only, a brief ACCESS EXCLUSIVE lock on the table and its partitions"
            } else {
                ""
            }
        ),
        ctx.sql("drop_index", json!({ "index": qn(&index.name), "concurrently": concurrently }))?,
    )
    .rollback(if partitioned && !index.only {
        // Built again partition by partition, as forward creation builds it: a plain
        // CREATE INDEX on the parent would block writes on every partition while all build.
        super::partition::rebuild_script(ctx, index, Phase::Contract)?
    } else {
        ctx.sql("create_index", json!({ "index": index_value(index, &index.name.name, concurrently, None) }))?
    })
    .lock(if concurrently { LockMode::ShareUpdateExclusive } else { LockMode::AccessExclusive }, &index.table)
    .verify(ctx.verify(json!({ "kind": "relation", "rel_text": index.name.quoted(), "present": false }))?)
    .releases(releases)
    .removes([Res::Index(index.name.clone())]);
    // The partitioned drop is one catalog statement, atomic on its own; outside a transaction
    // so that its undo can build each partition's index concurrently.
    if concurrently || partitioned {
        step = step.outside_transaction();
    }
    Ok(vec![step])
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diff::Change;
    use crate::model::{Index, IndexExpr, IndexKey, QualifiedName};
    use crate::plan::Phase;

    #[test]
    fn concurrently_in_contract() {
        let index = Index {
            name: QualifiedName::of("public", "users_name_idx"),
            table: QualifiedName::of("public", "users"),
            unique: false,
            nulls_not_distinct: false,
            method: "gin".into(),
            keys: vec![IndexKey {
                expr: IndexExpr::Expression("lower(name)".into()),
                collation: None,
                opclass: Some("gin_trgm_ops".into()),
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
        let steps = run(&s, &s, &Change::DropIndex { index });
        assert_eq!(phases(&steps), [Phase::Contract]);
        assert_eq!(
            steps[0].rollback_sql.as_deref(),
            Some(
                "CREATE INDEX CONCURRENTLY users_name_idx ON public.users USING gin ((lower(name)) gin_trgm_ops);"
            )
        );
        assert!(
            steps[0]
                .releases
                .iter()
                .any(|r| matches!(r, crate::plan::draft::Res::Column(_, c) if c.as_str() == "name"))
        );
    }
}
