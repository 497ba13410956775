//! What a step's SQL does, read with seqmig's lexer ([`super::lex`]). Since plan format v2
//! the planner records each step's effects itself (`plan::Effects`) and nothing reads step
//! SQL after planning, with two exceptions that live here, so that no other module
//! tokenizes SQL:
//!
//! - a plan of format v1 (stored in the ledger by an older seqmig, perhaps left halfway) has
//!   no effects: [`derive_v1`] derives them once, when the plan is loaded, exactly as the
//!   v1 executor and gate read them (lock target, statements, the concurrent index build,
//!   the columns, tables and views `contract` drops, following brownout renames);
//! - `pg_stat_statements` query texts are read for the names they spell ([`identifiers`]),
//!   for the gate's `old_path_silent`.
//!
//! The planner also asks [`concurrent_index_build`] which statement of a step builds an
//! index concurrently, and [`concurrent_detach`] which one detaches a partition
//! concurrently (it renders that SQL itself, from the objects it plans).

use std::collections::BTreeSet;

use super::lex::{self, Kind};
use super::text::split_qualified;
use crate::model::{Ident, QualifiedName};
use crate::plan::{Effects, IndexBuild, LockMode, Object, PartitionDetach, Phase, Plan, Step, StepLock};

/// A statement's tokens: kind and source text.
struct Toks<'a> {
    toks: Vec<(Kind, &'a str)>,
    i: usize,
}

impl<'a> Toks<'a> {
    /// Tokenizes `sql`; text after a lexing error is ignored (a truncated query text still
    /// yields the names before the cut).
    fn new(sql: &'a str) -> Toks<'a> {
        let toks = match lex::tokenize(sql) {
            Ok(t) => t,
            Err(e) => lex::tokenize(&sql[..e.at]).unwrap_or_default(),
        };
        Toks { toks: toks.into_iter().map(|t| (t.kind, &sql[t.start..t.end])).collect(), i: 0 }
    }

    fn keyword(&mut self, kw: &str) -> bool {
        match self.toks.get(self.i) {
            Some((Kind::Word, w)) if w.eq_ignore_ascii_case(kw) => {
                self.i += 1;
                true
            }
            _ => false,
        }
    }

    fn keywords(&mut self, kws: &[&str]) -> bool {
        let save = self.i;
        if kws.iter().all(|k| self.keyword(k)) {
            true
        } else {
            self.i = save;
            false
        }
    }

    fn punct(&mut self, p: &str) -> bool {
        if matches!(self.toks.get(self.i), Some((Kind::Punct, x)) if *x == p) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> Option<Ident> {
        let id = match self.toks.get(self.i) {
            Some((Kind::Word | Kind::QuotedIdent, text)) => Ident::from_sql(text).ok()?,
            _ => return None,
        };
        self.i += 1;
        Some(id)
    }

    fn qualified(&mut self) -> Option<QualifiedName> {
        let first = self.ident()?;
        if self.punct(".") {
            Some(QualifiedName::new(first, self.ident()?))
        } else {
            Some(QualifiedName::new(Ident::exact("public").ok()?, first))
        }
    }

    fn done(&self) -> bool {
        self.i >= self.toks.len()
    }
}

/// Every identifier a statement text spells (words folded, quoted names exact), outside
/// literals and comments: how `pg_stat_statements` texts are matched against an old path.
pub fn identifiers(sql: &str) -> Vec<Ident> {
    let mut t = Toks::new(sql);
    let mut out = Vec::new();
    while !t.done() {
        match t.ident() {
            Some(id) => out.push(id),
            None => t.i += 1,
        }
    }
    out
}

/// `CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name ON [ONLY] table …` → the index
/// (in the table's schema) and the table.
pub fn concurrent_index_build(stmt: &str) -> Option<(QualifiedName, QualifiedName)> {
    let mut t = Toks::new(stmt);
    if !t.keyword("CREATE") {
        return None;
    }
    t.keyword("UNIQUE");
    if !t.keywords(&["INDEX", "CONCURRENTLY"]) {
        return None;
    }
    t.keywords(&["IF", "NOT", "EXISTS"]);
    let name = t.ident()?;
    if !t.keyword("ON") {
        return None;
    }
    t.keyword("ONLY");
    let table = t.qualified()?;
    Some((QualifiedName::new(table.schema.clone(), name), table))
}

/// `ALTER TABLE [ONLY] parent DETACH PARTITION partition CONCURRENTLY`: (parent, partition).
pub fn concurrent_detach(stmt: &str) -> Option<(QualifiedName, QualifiedName)> {
    let mut t = Toks::new(stmt);
    if !t.keywords(&["ALTER", "TABLE"]) {
        return None;
    }
    t.keywords(&["IF", "EXISTS"]);
    t.keyword("ONLY");
    let parent = t.qualified()?;
    if !t.keywords(&["DETACH", "PARTITION"]) {
        return None;
    }
    let partition = t.qualified()?;
    t.keyword("CONCURRENTLY").then_some((parent, partition))
}

/// The first of `statements` that detaches a partition concurrently.
pub fn partition_detach(statements: &[String]) -> Option<PartitionDetach> {
    statements.iter().enumerate().find_map(|(i, s)| {
        concurrent_detach(s).map(|(parent, partition)| PartitionDetach { statement: i, parent, partition })
    })
}

/// The non-meta statements of `sql`, as the executor runs them one by one.
pub fn statements(sql: &str) -> Vec<String> {
    super::split_statements(sql).unwrap_or_default().into_iter().filter(|s| !s.meta).map(|s| s.text).collect()
}

/// The first of `statements` that builds an index concurrently.
pub fn index_build(statements: &[String]) -> Option<IndexBuild> {
    statements.iter().enumerate().find_map(|(i, s)| {
        concurrent_index_build(s).map(|(index, table)| IndexBuild { statement: i, index, table })
    })
}

/// Gives a v1 plan (or a plan built by hand without effects) the effects v1 read from its
/// SQL, and each change the relation its object names.
pub fn derive_v1(plan: &mut Plan) {
    let mut renames: Vec<(Object, Object)> = Vec::new();
    for step in plan.steps.iter_mut().filter(|s| s.effects.is_empty()) {
        step.effects = derive_step(step, &mut renames);
    }
    // Follow brownout renames back to the name the old release used.
    for step in plan.steps.iter_mut().filter(|s| s.phase == Phase::Contract) {
        loop {
            let before = step.effects.removes.len();
            for (from, to) in &renames {
                if step.effects.removes.contains(to) && !step.effects.removes.contains(from) {
                    step.effects.removes.push(from.clone());
                }
            }
            if step.effects.removes.len() == before {
                break;
            }
        }
    }
    for change in plan.changes.iter_mut().filter(|c| c.relation.is_none()) {
        change.relation = object_relation(&change.object);
    }
}

/// The relation a change's object names: `a.b` or the first two parts of `a.b.c`.
fn object_relation(object: &str) -> Option<QualifiedName> {
    let parts = split_qualified(object)?;
    let (schema, name) = match parts.as_slice() {
        [s, n] | [s, n, _] => (s, n),
        _ => return None,
    };
    Some(QualifiedName::new(Ident::from_sql(schema).ok()?, Ident::from_sql(name).ok()?))
}

fn derive_step(step: &Step, renames: &mut Vec<(Object, Object)>) -> Effects {
    let relations: Vec<QualifiedName> = split_list(&step.lock_target)
        .iter()
        .filter_map(|t| QualifiedName::parse_sql(t, "public").ok())
        .collect();
    let lock = (step.lock != LockMode::None && !relations.is_empty()).then(|| StepLock {
        mode: step.lock,
        relations: relations.clone(),
        per_relation: Vec::new(),
    });
    let (statements, rollback_statements) = if step.backfill.is_some() {
        (Vec::new(), Vec::new())
    } else {
        (statements(&step.sql), step.rollback_sql.as_deref().map(statements).unwrap_or_default())
    };
    let (builds_index, rollback_builds_index, detaches) = if step.transactional {
        (None, None, None)
    } else {
        (index_build(&statements), index_build(&rollback_statements), partition_detach(&statements))
    };
    let mut removes = BTreeSet::new();
    if step.phase == Phase::Contract {
        for s in &statements {
            contract_drops(s, &mut removes, renames);
        }
    }
    let mut alters: Vec<Object> = relations
        .iter()
        .filter(|q| !removes.iter().any(|r: &Object| r.relation() == Some(*q)))
        .map(|q| Object::Table { name: q.clone() })
        .collect();
    if let Some(b) = &step.backfill {
        let column = Object::Column { table: b.table.clone(), name: b.target_column.clone() };
        if !alters.contains(&column) {
            alters.push(column);
        }
    }
    Effects {
        creates: Vec::new(),
        removes: removes.into_iter().collect(),
        alters,
        reads: Vec::new(),
        lock,
        statements,
        rollback_statements,
        builds_index,
        rollback_builds_index,
        detaches,
    }
}

/// `a, "b, c".d` → `["a", "\"b, c\".d"]`: a v1 lock target listing several relations.
fn split_list(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

/// What a v1 contract statement drops: `ALTER TABLE t DROP COLUMN a[, …]`, `DROP TABLE|VIEW
/// a[, b]`; renames (`RENAME [COLUMN] a TO b`, `RENAME TO u`) are collected to follow
/// brownouts back to the old name.
fn contract_drops(stmt: &str, out: &mut BTreeSet<Object>, renames: &mut Vec<(Object, Object)>) {
    let mut p = Toks::new(stmt);
    if p.keywords(&["ALTER", "TABLE"]) {
        p.keywords(&["IF", "EXISTS"]);
        p.keyword("ONLY");
        let Some(table) = p.qualified() else { return };
        while !p.done() {
            if p.keywords(&["DROP", "COLUMN"]) {
                p.keywords(&["IF", "EXISTS"]);
                if let Some(c) = p.ident() {
                    out.insert(Object::Column { table: table.clone(), name: c });
                }
            } else if p.keyword("RENAME") {
                if p.keyword("TO") {
                    if let Some(new) = p.ident() {
                        let to = QualifiedName::new(table.schema.clone(), new);
                        renames.push((Object::Table { name: table.clone() }, Object::Table { name: to }));
                    }
                } else {
                    p.keyword("COLUMN");
                    if let (Some(a), true, Some(b)) = (p.ident(), p.keyword("TO"), p.ident()) {
                        renames.push((
                            Object::Column { table: table.clone(), name: a },
                            Object::Column { table: table.clone(), name: b },
                        ));
                    }
                }
            } else {
                p.i += 1;
            }
        }
    } else if p.keyword("DROP") {
        let view = if p.keyword("TABLE") {
            false
        } else if p.keyword("VIEW") || p.keywords(&["MATERIALIZED", "VIEW"]) {
            true
        } else {
            return;
        };
        p.keywords(&["IF", "EXISTS"]);
        while let Some(name) = p.qualified() {
            out.insert(if view { Object::View { name } } else { Object::Table { name } });
            if !p.punct(",") {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_index_a_concurrent_build_creates() {
        assert_eq!(
            concurrent_index_build(
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"Big Idx\" ON ONLY public.t (a)"
            ),
            Some((QualifiedName::of("public", "Big Idx"), QualifiedName::of("public", "t")))
        );
        assert_eq!(
            concurrent_index_build("create index concurrently t_a on s.t(a)"),
            Some((QualifiedName::of("s", "t_a"), QualifiedName::of("s", "t")))
        );
        assert_eq!(concurrent_index_build("CREATE INDEX t_a ON t (a)"), None);
        assert_eq!(concurrent_index_build("ALTER TABLE t ADD COLUMN a int"), None);
    }

    #[test]
    fn statement_texts_match_by_identifier_not_substring() {
        let has = |sql: &str, name: &str| identifiers(sql).iter().any(|i| i.as_str() == name);
        assert!(has("SELECT name FROM users WHERE id = $1", "name"));
        assert!(has(r#"select "name" from public."users""#, "users"));
        assert!(!has("SELECT full_name FROM users WHERE id = $1", "name"));
        assert!(!has("SELECT full_name FROM users -- name", "name"));
        assert!(!has("SELECT 'name' FROM users", "name"));
        assert!(!has(r#"SELECT "Name" FROM users"#, "name"));
        assert!(has("SELECT NAME FROM USERS", "name"));
        assert!(has("SELECT a FROM t WHERE x = 'unterminated", "t"));
    }

    #[test]
    fn v1_contract_drops_follow_brownout_renames() {
        let mut out = BTreeSet::new();
        let mut renames = Vec::new();
        for s in [
            "ALTER TABLE public.users DROP COLUMN IF EXISTS name",
            r#"DROP TABLE IF EXISTS "Legacy"."Events ""x""", public.t2"#,
            "ALTER TABLE public.orders RENAME COLUMN price TO price__brownout",
            "ALTER TABLE ONLY public.orders DROP COLUMN price__brownout",
            "DROP VIEW public.people",
            "ALTER TABLE public.users DROP CONSTRAINT users_chk",
        ] {
            contract_drops(s, &mut out, &mut renames);
        }
        let got: Vec<String> = out.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                r#""Legacy"."Events ""x""""#,
                "public.t2",
                "public.people",
                "public.orders.price__brownout",
                "public.users.name",
            ]
        );
        assert_eq!(renames.len(), 1);
        assert_eq!(split_list(r#"public.a, "x, y".b"#), ["public.a", r#""x, y".b"#]);
    }
}
