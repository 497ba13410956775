//! add index: `CREATE INDEX CONCURRENTLY` in expand — outside a transaction, writes keep
//! going, the executor drops an INVALID leftover before a retry. On a table created by the
//! same plan the index is built plainly (the table is empty).

use serde_json::json;

use super::{Ctx, Steps};
use crate::model::{Index, IndexExpr, Table};
use crate::plan::draft::{Res, StepDraft};
use crate::plan::sqltext::index_value;
use crate::plan::{LockMode, Phase};
use crate::render::qn;

/// The columns of `table` (the index's table as the schema the step runs against has it) an
/// index is built over: its key and INCLUDE columns, and the columns its expressions and
/// predicate name. The index needs them to exist; PostgreSQL drops the index with any of them
/// (`DROP COLUMN` takes an expression index along), so dropping it comes first.
pub fn columns(index: &Index, table: Option<&Table>) -> Vec<Res> {
    let mut r: Vec<Res> = index
        .keys
        .iter()
        .filter_map(|k| match &k.expr {
            IndexExpr::Column(c) => Some(Res::Column(index.table.clone(), c.clone())),
            _ => None,
        })
        .collect();
    r.extend(index.include.iter().map(|c| Res::Column(index.table.clone(), c.clone())));
    if let Some(t) = table {
        let texts: Vec<&str> = index
            .keys
            .iter()
            .filter_map(|k| match &k.expr {
                IndexExpr::Expression(e) => Some(e.as_str()),
                _ => None,
            })
            .chain(index.predicate.as_deref())
            .collect();
        for col in &t.columns {
            let res = Res::Column(index.table.clone(), col.name.clone());
            if !r.contains(&res) && texts.iter().any(|e| crate::diff::mentions(e, col.name.as_str())) {
                r.push(res);
            }
        }
    }
    r
}

/// What building `index` needs, its table as the desired schema has it.
pub fn needs(ctx: &Ctx<'_>, index: &Index) -> Vec<Res> {
    let mut r = vec![Res::Table(index.table.clone())];
    r.extend(columns(index, ctx.desired.tables.get(&index.table)));
    r
}

pub fn makes(index: &Index) -> Vec<Res> {
    let mut r = vec![Res::Index(index.name.clone())];
    if index.unique && index.predicate.is_none() {
        let cols: Option<Vec<_>> = index
            .keys
            .iter()
            .map(|k| match &k.expr {
                IndexExpr::Column(c) => Some(c.clone()),
                _ => None,
            })
            .collect();
        if let Some(cols) = cols {
            r.push(Res::Key(index.table.clone(), cols));
        }
    }
    r
}

pub fn steps(ctx: &Ctx<'_>, index: &Index, new_table: bool) -> Steps {
    if super::partition::is_partitioned_index(ctx, index, new_table) {
        return super::partition::index_steps(ctx, index);
    }
    let concurrently = !new_table && !index.only;
    let mut step = StepDraft::new(
        Phase::Expand,
        if concurrently {
            format!("build index {} without blocking writes", index.name.name.quoted_sql())
        } else {
            format!("build index {} on the new (empty) table", index.name.name.quoted_sql())
        },
        ctx.sql(
            "create_index",
            json!({ "index": index_value(index, &index.name.name, concurrently, None) }),
        )?,
    )
    .rollback(if new_table {
        // A plain DROP INDEX would lock the table; undoing its creation drops it, index and all.
        "-- nothing to undo on its own: undoing the table's creation drops this index with it".to_string()
    } else {
        ctx.sql(
            "drop_index",
            json!({ "index": qn(&index.name), "concurrently": concurrently, "if_exists": true }),
        )?
    })
    .lock(if concurrently { LockMode::ShareUpdateExclusive } else { LockMode::Share }, &index.table)
    .verify(ctx.verify(json!({ "kind": "index", "index_text": index.name.quoted() }))?)
    .needs(needs(ctx, index))
    .makes(makes(index));
    if concurrently {
        step = step.outside_transaction().scans();
    }
    Ok(vec![step])
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diff::Change;
    use crate::model::{Ident, Index, IndexExpr, IndexKey, QualifiedName};

    pub fn idx(schema: &str, name: &str, col: &str) -> Index {
        Index {
            name: QualifiedName::of(schema, name),
            table: QualifiedName::of(schema, "users"),
            unique: false,
            nulls_not_distinct: false,
            method: "btree".into(),
            keys: vec![IndexKey {
                expr: IndexExpr::Column(Ident::exact(col).unwrap()),
                collation: None,
                opclass: None,
                descending: true,
                nulls_first: Some(false),
            }],
            include: vec![],
            predicate: Some("name IS NOT NULL".into()),
            options: vec![],
            only: false,
            statistics: Default::default(),
        }
    }

    #[test]
    fn concurrently_outside_a_transaction() {
        let s = schema_with(vec![users()]);
        let steps = run(
            &s,
            &s,
            &Change::AddIndex { index: idx("Other Schema", "we\"ird Name", "name"), new_table: false },
        );
        assert_eq!(
            steps[0].sql,
            "CREATE INDEX CONCURRENTLY \"we\"\"ird Name\" ON \"Other Schema\".users (name DESC NULLS LAST) WHERE name IS NOT NULL;"
        );
        assert!(!steps[0].transactional);
    }
}
