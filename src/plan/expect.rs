//! What the objects a step touches must look like before its phase runs (issue 18.3): the
//! plan's "before", recorded per step so that `apply` can refuse a database that drifted
//! from the schema the plan was made from, before it changes anything.
//!
//! Expectations are derived from the change and the plan's current schema. Only objects of
//! that schema are expected to exist (an object the plan itself creates or renames has no
//! "before" there), and objects a change creates are expected to be absent, or already as the
//! change creates them (a resumed `CREATE INDEX CONCURRENTLY`). They sit on the first step of
//! the change's first phase: before that phase nothing of the change has run, so the current
//! schema is exactly what the database must hold; in later phases the change's own steps have
//! already changed those objects.

use serde::{Deserialize, Serialize};

use crate::diff::Change;
use crate::model::ddl::{constraint_definition_sql, create_index_sql};
use crate::model::{Constraint, Ident, Index, QualifiedName, Schema};

/// One object as the step needs it before its phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "object")]
pub enum Expect {
    /// The table exists (`exists`) or does not.
    Table { table: QualifiedName, exists: bool },
    /// The column exists, with this type when one is given; with `or_absent`, it may also
    /// not exist yet (the step creates it).
    Column {
        table: QualifiedName,
        column: Ident,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data_type: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        or_absent: bool,
    },
    /// The index exists with this definition (table, method, keys or expressions, INCLUDE,
    /// predicate: [`index_definition`]); with `or_absent`, it may also not exist yet.
    Index {
        index: QualifiedName,
        definition: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        or_absent: bool,
    },
    /// The constraint exists on the table with this definition ([`constraint_definition`]).
    Constraint { table: QualifiedName, constraint: Ident, definition: String },
}

/// `CREATE [UNIQUE] INDEX ON t USING m (…) …`: an index's definition without its name.
pub fn index_definition(i: &Index) -> String {
    let unnamed = Index { statistics: Default::default(), ..i.clone() };
    let sql = create_index_sql(&unnamed);
    let sql = sql.trim_end_matches(';');
    sql.replacen(&format!("INDEX {} ON ", i.name.name.quoted_sql()), "INDEX ON ", 1)
}

/// `PRIMARY KEY (id)`, `CHECK (…) NOT VALID`: a constraint's definition without its name.
pub fn constraint_definition(k: &Constraint) -> String {
    let sql = constraint_definition_sql(k);
    sql.strip_prefix(&format!("CONSTRAINT {} ", k.name.quoted_sql())).unwrap_or(&sql).to_string()
}

/// The expectations of `change` against the plan's current schema.
pub fn expectations(change: &Change, current: &Schema) -> Vec<Expect> {
    let mut out = Vec::new();
    let table = |out: &mut Vec<Expect>, t: &QualifiedName| {
        if current.tables.contains_key(t) {
            out.push(Expect::Table { table: t.clone(), exists: true });
        }
    };
    // A column of the current schema, with its type when `typed`.
    let column = |out: &mut Vec<Expect>, t: &QualifiedName, c: &Ident, typed: bool| {
        if let Some(col) = current.tables.get(t).and_then(|tb| tb.column(c)) {
            out.push(Expect::Column {
                table: t.clone(),
                column: c.clone(),
                data_type: typed.then(|| col.data_type.clone()),
                or_absent: false,
            });
        }
    };
    // A column the change adds to a table of the current schema.
    let new_column = |out: &mut Vec<Expect>, t: &QualifiedName, c: &crate::model::Column| {
        if current.tables.get(t).is_some_and(|tb| tb.column(&c.name).is_none()) {
            out.push(Expect::Column {
                table: t.clone(),
                column: c.name.clone(),
                data_type: Some(c.data_type.clone()),
                or_absent: true,
            });
        }
    };
    let index = |out: &mut Vec<Expect>, i: &Index| {
        if let Some(live) = current.indexes.get(&i.name) {
            out.push(Expect::Index {
                index: i.name.clone(),
                definition: index_definition(live),
                or_absent: false,
            });
        }
    };
    let constraint = |out: &mut Vec<Expect>, t: &QualifiedName, name: &Ident| {
        if let Some(k) = current.tables.get(t).and_then(|tb| tb.constraints.get(name)) {
            out.push(Expect::Constraint {
                table: t.clone(),
                constraint: name.clone(),
                definition: constraint_definition(k),
            });
        }
    };
    match change {
        Change::CreateTable { table: t } if !current.tables.contains_key(&t.name) => {
            out.push(Expect::Table { table: t.name.clone(), exists: false });
        }
        Change::DropTable { table: t } => table(&mut out, &t.name),
        Change::RenameTable { from, table: t } => {
            table(&mut out, from);
            if current.tables.contains_key(from) && !current.tables.contains_key(&t.name) {
                out.push(Expect::Table { table: t.name.clone(), exists: false });
            }
        }
        Change::AddColumn { table: t, column: c, .. }
        | Change::AddNotNullColumn { table: t, column: c, .. } => {
            table(&mut out, t);
            new_column(&mut out, t, c);
        }
        Change::DropColumn { table: t, column: c, .. } => {
            table(&mut out, t);
            column(&mut out, t, &c.name, true);
        }
        Change::RenameColumn { table: t, from, to, .. } => {
            table(&mut out, t);
            column(&mut out, t, &from.name, true);
            new_column(&mut out, t, to);
        }
        Change::ChangeType(tc) => {
            table(&mut out, &tc.table);
            column(&mut out, &tc.table, &tc.from.name, true);
        }
        Change::SetNotNull { table: t, column: c, .. } | Change::DropNotNull { table: t, column: c } => {
            table(&mut out, t);
            column(&mut out, t, &c.name, false);
        }
        Change::ChangeDefault { table: t, column: c, .. }
        | Change::SetStatistics { table: t, column: c, .. } => {
            table(&mut out, t);
            column(&mut out, t, c, false);
        }
        Change::AddConstraint { table: t, constraint: k, new_table: false }
        | Change::AddUnique { table: t, constraint: k, new_table: false } => {
            table(&mut out, t);
            for c in k.kind.columns() {
                column(&mut out, t, c, false);
            }
        }
        Change::ChangeConstraint { table: t, from: k, .. }
        | Change::DropConstraint { table: t, constraint: k } => {
            table(&mut out, t);
            constraint(&mut out, t, &k.name);
        }
        Change::RenameConstraint { table: t, from, .. } => {
            table(&mut out, t);
            constraint(&mut out, t, from);
        }
        Change::AddIndex { index: i, new_table: false } => {
            table(&mut out, &i.table);
            for k in &i.keys {
                if let crate::model::IndexExpr::Column(c) = &k.expr {
                    column(&mut out, &i.table, c, false);
                }
            }
            if current.tables.contains_key(&i.table) && !current.indexes.contains_key(&i.name) {
                out.push(Expect::Index {
                    index: i.name.clone(),
                    definition: index_definition(i),
                    or_absent: true,
                });
            }
        }
        Change::ChangeIndex { from, .. }
        | Change::DropIndex { index: from }
        | Change::RenameIndex { from, .. } => index(&mut out, from),
        _ => {}
    }
    out
}

/// A type as a schema file spells it against the catalog's: a file read with `public` on its
/// search path names an extension type `citext`, the catalog `public.citext` (the same type;
/// Sourcegraph's dump does this, and every rename or drop on such a column was refused as drift).
fn same_type(want: &str, live: &str) -> bool {
    fn bare(t: &str) -> &str {
        t.strip_prefix("public.").unwrap_or(t)
    }
    want == live || bare(want) == bare(live)
}

/// What differs between one expectation and the live schema, `None` when it holds. The
/// first part names the object, the second says what is wrong.
pub fn check(expect: &Expect, live: &Schema) -> Option<(String, String)> {
    match expect {
        Expect::Table { table, exists } => {
            let found = live.tables.contains_key(table);
            (found != *exists).then(|| {
                let what = if *exists { "does not exist" } else { "exists already" };
                (format!("table {}", table.quoted()), what.to_string())
            })
        }
        Expect::Column { table, column, data_type, or_absent } => {
            let name = format!("column {}.{}", table.quoted(), column.quoted_sql());
            match live.tables.get(table).and_then(|t| t.column(column)) {
                None if *or_absent => None,
                None => Some((name, "does not exist".into())),
                Some(c) => match data_type {
                    Some(want) if !same_type(want, &c.data_type) => {
                        Some((name, format!("has type {}, the plan expects {want}", c.data_type)))
                    }
                    _ => None,
                },
            }
        }
        Expect::Index { index, definition, or_absent } => {
            let name = format!("index {}", index.quoted());
            match live.indexes.get(index) {
                None if *or_absent => None,
                None => Some((name, "does not exist".into())),
                Some(i) => {
                    let found = index_definition(i);
                    (found != *definition)
                        .then(|| (name, format!("is '{found}', the plan expects '{definition}'")))
                }
            }
        }
        Expect::Constraint { table, constraint, definition } => {
            let name = format!("constraint {} on {}", constraint.quoted_sql(), table.quoted());
            match live.tables.get(table).and_then(|t| t.constraints.get(constraint)) {
                None => Some((name, "does not exist".into())),
                Some(k) => {
                    let found = constraint_definition(k);
                    (comparable_constraint(&found) != comparable_constraint(definition))
                        .then(|| (name, format!("is '{found}', the plan expects '{definition}'")))
                }
            }
        }
    }
}

/// What of a constraint's definition the drift check compares. Validation state is left out:
/// the plan itself validates a NOT VALID constraint in an earlier phase than a later step's
/// expectation was recorded for. A CHECK counts by existence only: the catalog spells its
/// expression with the casts PostgreSQL added (`c >= (0)::numeric` for `c >= 0`), which the
/// model of a file does not.
fn comparable_constraint(definition: &str) -> &str {
    if definition.starts_with("CHECK") {
        return "CHECK";
    }
    definition.strip_suffix(" NOT VALID").unwrap_or(definition)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IndexExpr, IndexKey};

    fn index(column: &str) -> Index {
        Index {
            name: QualifiedName::of("public", "orders_note_idx"),
            table: QualifiedName::of("public", "orders"),
            unique: false,
            nulls_not_distinct: false,
            method: "btree".into(),
            keys: vec![IndexKey {
                expr: IndexExpr::Column(Ident::exact(column).unwrap()),
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
        }
    }

    #[test]
    fn an_index_is_compared_by_definition_not_name() {
        assert_eq!(index_definition(&index("note")), "CREATE INDEX ON public.orders USING btree (note)");
        let mut live = Schema::default();
        live.indexes.insert(index("note").name.clone(), index("customer"));
        let want = Expect::Index {
            index: index("note").name,
            definition: index_definition(&index("note")),
            or_absent: true,
        };
        let (object, problem) = check(&want, &live).expect("drift");
        assert_eq!(object, "index public.orders_note_idx");
        assert!(problem.contains("(customer)"), "{problem}");
        live.indexes.insert(index("note").name.clone(), index("note"));
        assert_eq!(check(&want, &live), None);
        assert_eq!(check(&want, &Schema::default()), None);
    }
}
