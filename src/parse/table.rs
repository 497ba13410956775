//! `CREATE TABLE` and `ALTER TABLE`: columns, constraints (with PostgreSQL's default names),
//! serial expansion, identity, generated columns, partitioning, inheritance and the
//! `ALTER TABLE ONLY …` forms pg_dump writes after the tables.

use super::cursor::{Cursor, Fail, PResult};
use super::lex::Kind;
use super::names::{choose_name, join_columns};
use crate::model::{
    Column, Constraint, ConstraintKind, FkAction, Generated, GeneratedKind, Ident, Identity, IndexExpr,
    ObjectRef, PartitionOf, Persistence, QualifiedName, Schema, Sequence, Table,
};

/// A constraint as written, before it has its (possibly default) name.
#[derive(Debug, Clone)]
pub struct Pending {
    pub name: Option<Ident>,
    pub kind: ConstraintKind,
    pub deferrable: bool,
    pub initially_deferred: bool,
    pub validated: bool,
    /// Exclusion-constraint element columns, for the default name.
    pub name_columns: Vec<Ident>,
    /// `ADD CONSTRAINT … USING INDEX idx`.
    pub using_index: Option<Ident>,
}

/// `CREATE [UNLOGGED] TABLE …`; the cursor is just after `CREATE`.
pub fn create_table(s: &mut Schema, c: &mut Cursor) -> PResult<()> {
    let mut persistence = Persistence::Permanent;
    if c.eat_kw("unlogged") {
        persistence = Persistence::Unlogged;
    } else if c.peek_kw("temp") || c.peek_kw("temporary") || c.peek_kw("global") || c.peek_kw("local") {
        return c.fail("temporary tables are not part of a schema");
    }
    c.expect_kw("table")?;
    let if_not_exists = c.eat_kws(&["if", "not", "exists"]);
    let name = c.qname()?;
    if s.tables.contains_key(&name) {
        if if_not_exists {
            c.rest();
            return Ok(());
        }
        return c.fail(format!("table {name} is already defined"));
    }
    let mut table = Table::new(name.clone());
    table.persistence = persistence;
    let mut pending = Vec::new();
    let mut sequences = Vec::new();

    if c.eat_kws(&["partition", "of"]) {
        let parent = c.qname()?;
        if c.peek_punct("(") {
            elements(s, c, &mut table, &mut pending, &mut sequences)?;
        }
        let from = c.pos;
        if !c.eat_kw("default") {
            c.expect_kws(&["for", "values"])?;
            // `FOR VALUES WITH (MODULUS m, REMAINDER r)`: the bound, not storage options.
            if c.eat_kw("with") {
                c.paren_group()?;
            }
        }
        let from_to = c.until(|c| {
            c.peek_kws(&["partition", "by"])
                || c.peek_kw("with")
                || c.peek_kw("using")
                || c.peek_kw("tablespace")
        })?;
        let _ = from_to;
        let bound = c.expr_text(from, c.pos);
        // Partitions inherit the parent's columns; copy them so the model is complete.
        if let Some(p) = s.tables.get(&parent) {
            let own = std::mem::take(&mut table.columns);
            for pc in &p.columns {
                let mut col = pc.clone();
                if let Some(o) = own.iter().find(|o| o.name == pc.name) {
                    col.not_null |= o.not_null;
                    if o.default.is_some() {
                        col.default.clone_from(&o.default);
                    }
                }
                table.columns.push(col);
            }
        }
        table.partition_of = Some(PartitionOf { parent, bound });
    } else if c.peek_kw("as") {
        return c.fail("CREATE TABLE … AS is not modelled (its columns come from a query)");
    } else if c.eat_kw("of") {
        return c.fail("typed tables (CREATE TABLE … OF type) are not supported");
    } else {
        elements(s, c, &mut table, &mut pending, &mut sequences)?;
    }

    loop {
        if c.eat_kw("inherits") {
            let at = c.offset();
            c.expect_punct("(")?;
            loop {
                let parts = c.name_parts()?;
                table.inherits.push(c.qualify(parts, at)?);
                if c.eat_punct(")") {
                    break;
                }
                c.expect_punct(",")?;
            }
        } else if c.eat_kws(&["partition", "by"]) {
            let from = c.pos;
            c.word()?;
            c.paren_group()?;
            table.partition_key = Some(c.expr_text(from, c.pos));
        } else if c.eat_kw("using") {
            let method = c.ident()?;
            if method.as_str() != "heap" {
                table.options.push(format!("using={}", method.as_str()));
            }
        } else if c.eat_kw("with") {
            let mut opts = c.options()?;
            table.options.append(&mut opts);
        } else if c.eat_kws(&["without", "oids"]) {
        } else if c.eat_kw("tablespace") {
            c.ident()?;
        } else {
            break;
        }
    }
    c.expect_end()?;
    table.options.sort();

    s.tables.insert(name.clone(), table);
    for seq in sequences {
        s.sequences.insert(seq.name.clone(), seq);
    }
    // Keys before foreign keys, so that a self-reference without columns finds the primary key.
    let (fks, keys): (Vec<Pending>, Vec<Pending>) =
        pending.into_iter().partition(|p| matches!(p.kind, ConstraintKind::ForeignKey { .. }));
    for p in keys.into_iter().chain(fks) {
        add_constraint(s, &name, p).map_err(|m| Fail { at: 0, message: m })?;
    }
    Ok(())
}

/// `( column | constraint , … )`.
fn elements(
    s: &Schema,
    c: &mut Cursor,
    table: &mut Table,
    pending: &mut Vec<Pending>,
    sequences: &mut Vec<Sequence>,
) -> PResult<()> {
    c.expect_punct("(")?;
    if c.eat_punct(")") {
        return Ok(());
    }
    loop {
        if starts_table_constraint(c) {
            pending.push(table_constraint(c)?);
        } else if c.peek_kw("like") {
            return c.fail("CREATE TABLE … (LIKE …) is not supported");
        } else {
            let col = column_def(s, c, &table.name, pending, sequences)?;
            if table.column(&col.name).is_some() {
                return c.fail(format!("column {} is specified more than once", col.name));
            }
            table.columns.push(col);
        }
        if c.eat_punct(")") {
            return Ok(());
        }
        c.expect_punct(",")?;
    }
}

fn starts_table_constraint(c: &Cursor) -> bool {
    ["constraint", "check", "unique", "primary", "foreign", "exclude"].iter().any(|k| c.peek_kw(k))
        && !c.peek_at(1).is_some_and(|t| {
            // A column named like a keyword: `check text`, `unique boolean`.
            t.kind == Kind::Word
                && !c.peek_kw("constraint")
                && !c.is_kw_at(1, "key")
                && !c.is_kw_at(1, "nulls")
                && !c.is_kw_at(1, "using")
        })
}

/// `name type [COLLATE c] [column constraints…]`.
pub fn column_def(
    s: &Schema,
    c: &mut Cursor,
    table: &QualifiedName,
    pending: &mut Vec<Pending>,
    sequences: &mut Vec<Sequence>,
) -> PResult<Column> {
    let name = c.ident()?;
    let from = c.until(|c| COLUMN_OPTION_WORDS.iter().any(|k| c.peek_kw(k)) || c.peek_punct(","))?;
    if from == c.pos {
        return c.expected("a column type");
    }
    let raw_type = super::objects::resolve_type(s, c, c.type_text(from, c.pos));
    let mut col = Column::new(name.clone(), &raw_type);
    let serial = match col.data_type.as_str() {
        "serial" => Some("integer"),
        "bigserial" => Some("bigint"),
        "smallserial" => Some("smallint"),
        _ => None,
    };
    if let Some(int_type) = serial {
        col.data_type = int_type.to_string();
        col.not_null = true;
        let seq_name = choose_name(table.name.as_str(), Some(name.as_str()), "seq", |n| {
            relation_taken(s, &table.schema, n) || sequences.iter().any(|q| q.name.name.as_str() == n)
        });
        let seq_q = QualifiedName::new(table.schema.clone(), seq_name);
        col.default = Some(nextval_default(&seq_q));
        let mut seq = Sequence::new(seq_q);
        seq.data_type = int_type.to_string();
        seq.owned_by = Some((table.clone(), name.clone()));
        sequences.push(seq);
    }
    loop {
        let cname = if c.eat_kw("constraint") { Some(c.ident()?) } else { None };
        let kind_at = c.pos;
        if c.eat_kws(&["not", "null"]) {
            col.not_null = true;
        } else if c.eat_kw("null") {
            col.not_null = false;
        } else if c.eat_kw("default") {
            let from = c.pos;
            if !c.peek_punct("(") {
                c.pos += 1;
            }
            c.until(|c| default_stop(c))?;
            col.default = Some(crate::parse::normalize_default(
                &canonical_default(c, c.expr_text(from, c.pos)),
                &col.data_type,
            ));
        } else if c.eat_kw("collate") {
            let from = c.pos;
            c.name_parts()?;
            col.collation = Some(super::objects::collation_text(&c.raw(from, c.pos)));
        } else if c.eat_kw("generated") {
            if c.eat_kws(&["always", "as", "identity"]) {
                col.identity = Some(Identity::Always);
                col.not_null = true;
                skip_identity_options(c)?;
            } else if c.eat_kws(&["by", "default", "as", "identity"]) {
                col.identity = Some(Identity::ByDefault);
                col.not_null = true;
                skip_identity_options(c)?;
            } else {
                c.expect_kws(&["always", "as"])?;
                let (a, b) = c.paren_group()?;
                let expr = c.expr_text(a, b);
                let kind = if c.eat_kw("stored") {
                    GeneratedKind::Stored
                } else {
                    c.eat_kw("virtual");
                    GeneratedKind::Virtual
                };
                col.generated = Some(Generated { expr, kind });
            }
        } else if c.peek_kw("check") || c.peek_kw("unique") || c.peek_kw("primary") || c.peek_kw("references")
        {
            let mut p = column_constraint(c, &name)?;
            p.name = cname;
            constraint_attributes(c, &mut p)?;
            if matches!(p.kind, ConstraintKind::PrimaryKey { .. }) {
                col.not_null = true;
            }
            pending.push(p);
            continue;
        } else if c.eat_kw("storage") || c.eat_kw("compression") {
            c.word()?;
        } else if cname.is_some() {
            return c.expected("a column constraint");
        } else {
            break;
        }
        debug_assert!(c.pos > kind_at);
    }
    Ok(col)
}

const COLUMN_OPTION_WORDS: &[&str] = &[
    "constraint",
    "not",
    "null",
    "default",
    "check",
    "unique",
    "primary",
    "references",
    "generated",
    "collate",
    "deferrable",
    "initially",
    "storage",
    "compression",
];

/// Where a `DEFAULT` expression ends: the next column option (the first token always belongs to it).
fn default_stop(c: &Cursor) -> bool {
    if c.peek_punct(",") {
        return true;
    }
    let prev_is = |w: &str| {
        c.pos > 0
            && c.toks[c.pos - 1].kind == Kind::Word
            && c.text(&c.toks[c.pos - 1]).eq_ignore_ascii_case(w)
    };
    let prev_operand = c.pos > 0 && {
        let t = &c.toks[c.pos - 1];
        matches!(t.kind, Kind::Word | Kind::QuotedIdent | Kind::Str | Kind::Number | Kind::Dollar)
            || c.text(t) == ")"
    };
    if ["constraint", "check", "unique", "primary", "references", "generated", "deferrable", "initially"]
        .iter()
        .any(|k| c.peek_kw(k))
    {
        return true;
    }
    if c.peek_kws(&["not", "null"]) {
        return !prev_is("is");
    }
    if c.peek_kw("null") {
        return prev_operand && !prev_is("is") && !prev_is("not");
    }
    false
}

/// `( SEQUENCE NAME … START WITH 1 … )` after an identity clause: not modelled.
fn skip_identity_options(c: &mut Cursor) -> PResult<()> {
    if c.peek_punct("(") {
        c.paren_group()?;
    }
    Ok(())
}

fn column_constraint(c: &mut Cursor, col: &Ident) -> PResult<Pending> {
    let kind = if c.eat_kw("check") {
        let (a, b) = c.paren_group()?;
        let expr = c.expr_text(a, b);
        let no_inherit = c.eat_kws(&["no", "inherit"]);
        ConstraintKind::Check { expr, no_inherit }
    } else if c.eat_kw("unique") {
        let nulls_not_distinct = nulls_distinct(c)?;
        index_params(c)?;
        ConstraintKind::Unique { columns: vec![col.clone()], include: vec![], nulls_not_distinct }
    } else if c.eat_kws(&["primary", "key"]) {
        index_params(c)?;
        ConstraintKind::PrimaryKey { columns: vec![col.clone()], include: vec![] }
    } else {
        c.expect_kw("references")?;
        references(c, vec![col.clone()])?
    };
    Ok(Pending {
        name: None,
        kind,
        deferrable: false,
        initially_deferred: false,
        validated: true,
        name_columns: vec![],
        using_index: None,
    })
}

/// `NULLS [NOT] DISTINCT` → true for NOT DISTINCT.
fn nulls_distinct(c: &mut Cursor) -> PResult<bool> {
    if c.eat_kws(&["nulls", "not", "distinct"]) {
        Ok(true)
    } else {
        c.eat_kws(&["nulls", "distinct"]);
        Ok(false)
    }
}

/// `[WITH (…)] [USING INDEX TABLESPACE x]` after a unique/primary key: not modelled.
fn index_params(c: &mut Cursor) -> PResult<()> {
    loop {
        if c.peek_kw("with") && c.peek_at(1).is_some_and(|t| c.text(t) == "(") {
            c.pos += 1;
            c.paren_group()?;
        } else if c.eat_kws(&["using", "index", "tablespace"]) {
            c.ident()?;
        } else {
            return Ok(());
        }
    }
}

fn include_list(c: &mut Cursor) -> PResult<Vec<Ident>> {
    if c.eat_kw("include") { c.ident_list() } else { Ok(vec![]) }
}

/// `REFERENCES t [(cols)] [MATCH …] [ON DELETE …] [ON UPDATE …]`; the cursor is after REFERENCES.
fn references(c: &mut Cursor, columns: Vec<Ident>) -> PResult<ConstraintKind> {
    let ref_table = c.qname()?;
    let ref_columns = if c.peek_punct("(") { c.ident_list()? } else { vec![] };
    let mut match_full = false;
    let mut on_delete = FkAction::NoAction;
    let mut on_update = FkAction::NoAction;
    loop {
        if c.eat_kw("match") {
            match c.word()?.as_str() {
                "full" => match_full = true,
                "simple" => {}
                _ => return c.fail("MATCH PARTIAL is not implemented by PostgreSQL"),
            }
        } else if c.eat_kws(&["on", "delete"]) {
            on_delete = fk_action(c)?;
        } else if c.eat_kws(&["on", "update"]) {
            on_update = fk_action(c)?;
        } else {
            break;
        }
    }
    Ok(ConstraintKind::ForeignKey { columns, ref_table, ref_columns, on_delete, on_update, match_full })
}

fn fk_action(c: &mut Cursor) -> PResult<FkAction> {
    let action = if c.eat_kws(&["no", "action"]) {
        FkAction::NoAction
    } else if c.eat_kw("restrict") {
        FkAction::Restrict
    } else if c.eat_kw("cascade") {
        FkAction::Cascade
    } else if c.eat_kws(&["set", "null"]) {
        FkAction::SetNull
    } else if c.eat_kws(&["set", "default"]) {
        FkAction::SetDefault
    } else {
        return c.expected("a foreign key action");
    };
    if matches!(action, FkAction::SetNull | FkAction::SetDefault) && c.peek_punct("(") {
        return c.fail("ON DELETE SET NULL (columns) is not supported");
    }
    Ok(action)
}

/// `[CONSTRAINT name] CHECK|UNIQUE|PRIMARY KEY|FOREIGN KEY|EXCLUDE … [attributes]`.
pub fn table_constraint(c: &mut Cursor) -> PResult<Pending> {
    let name = if c.eat_kw("constraint") { Some(c.ident()?) } else { None };
    let mut p = Pending {
        name,
        kind: ConstraintKind::Check { expr: String::new(), no_inherit: false },
        deferrable: false,
        initially_deferred: false,
        validated: true,
        name_columns: vec![],
        using_index: None,
    };
    if c.eat_kw("check") {
        let (a, b) = c.paren_group()?;
        let expr = c.expr_text(a, b);
        let no_inherit = c.eat_kws(&["no", "inherit"]);
        p.kind = ConstraintKind::Check { expr, no_inherit };
    } else if c.eat_kw("unique") {
        let nulls_not_distinct = nulls_distinct(c)?;
        if c.eat_kws(&["using", "index"]) {
            p.using_index = Some(c.ident()?);
            p.kind = ConstraintKind::Unique { columns: vec![], include: vec![], nulls_not_distinct };
        } else {
            let columns = c.ident_list()?;
            let include = include_list(c)?;
            index_params(c)?;
            p.kind = ConstraintKind::Unique { columns, include, nulls_not_distinct };
        }
    } else if c.eat_kws(&["primary", "key"]) {
        if c.eat_kws(&["using", "index"]) {
            p.using_index = Some(c.ident()?);
            p.kind = ConstraintKind::PrimaryKey { columns: vec![], include: vec![] };
        } else {
            let columns = c.ident_list()?;
            let include = include_list(c)?;
            index_params(c)?;
            p.kind = ConstraintKind::PrimaryKey { columns, include };
        }
    } else if c.eat_kws(&["foreign", "key"]) {
        let columns = c.ident_list()?;
        c.expect_kw("references")?;
        p.kind = references(c, columns)?;
    } else if c.eat_kw("exclude") {
        let method = if c.eat_kw("using") { c.word()? } else { "gist".to_string() };
        let (a, b) = c.paren_group()?;
        p.name_columns = exclusion_columns(c, a, b);
        let elements = c.expr_text(a, b);
        let _ = include_list(c)?;
        index_params(c)?;
        let predicate = if c.eat_kw("where") {
            let (a, b) = c.paren_group()?;
            Some(c.expr_text(a, b))
        } else {
            None
        };
        p.kind = ConstraintKind::Exclusion { method, elements, predicate };
    } else {
        return c.expected("CHECK, UNIQUE, PRIMARY KEY, FOREIGN KEY or EXCLUDE");
    }
    constraint_attributes(c, &mut p)?;
    Ok(p)
}

/// The column of each `col WITH op` element (`expr` for expressions), for the default name.
fn exclusion_columns(c: &Cursor, a: usize, b: usize) -> Vec<Ident> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut element_start = a;
    for n in a..=b {
        let end = n == b || (depth == 0 && c.text(&c.toks[n]) == "," && c.toks[n].kind == Kind::Punct);
        if n < b && c.toks[n].kind == Kind::Punct {
            match c.text(&c.toks[n]) {
                "(" => depth += 1,
                ")" => depth -= 1,
                _ => {}
            }
        }
        if end {
            let t = &c.toks[element_start];
            let simple = matches!(t.kind, Kind::Word | Kind::QuotedIdent)
                && c.toks.get(element_start + 1).is_none_or(|n| c.text(n) != "(");
            let name = if simple {
                Ident::from_sql(c.text(t)).unwrap_or_else(|_| Ident::exact("expr").expect("valid"))
            } else {
                Ident::exact("expr").expect("valid")
            };
            out.push(name);
            element_start = n + 1;
        }
    }
    out
}

fn constraint_attributes(c: &mut Cursor, p: &mut Pending) -> PResult<()> {
    loop {
        if c.eat_kw("deferrable") {
            p.deferrable = true;
        } else if c.eat_kws(&["not", "deferrable"]) {
            p.deferrable = false;
        } else if c.eat_kws(&["initially", "deferred"]) {
            p.initially_deferred = true;
            p.deferrable = true;
        } else if c.eat_kws(&["initially", "immediate"]) {
            p.initially_deferred = false;
        } else if c.eat_kws(&["not", "valid"]) {
            p.validated = false;
        } else if c.eat_kws(&["no", "inherit"]) {
            if let ConstraintKind::Check { no_inherit, .. } = &mut p.kind {
                *no_inherit = true;
            }
        } else if c.eat_kw("enforced") {
        } else if c.peek_kws(&["not", "enforced"]) {
            return c.fail("NOT ENFORCED constraints are not supported");
        } else {
            return Ok(());
        }
    }
}

/// True when a relation (table, sequence, view, index) named `name` exists in `schema`.
pub fn relation_taken(s: &Schema, schema: &Ident, name: &str) -> bool {
    let Ok(id) = Ident::exact(name) else { return false };
    let q = QualifiedName::new(schema.clone(), id);
    s.tables.contains_key(&q)
        || s.sequences.contains_key(&q)
        || s.views.contains_key(&q)
        || s.indexes.contains_key(&q)
}

/// `nextval('seq')` / `nextval('seq'::regclass)` with the sequence name qualified, as
/// `pg_get_expr` prints it when the schema is not on the search path (pg_dump's view).
fn canonical_default(c: &Cursor, expr: String) -> String {
    let Some(inner) = expr.strip_prefix("nextval(").and_then(|r| r.strip_suffix(')')) else { return expr };
    let lit = inner.strip_suffix("::regclass").unwrap_or(inner);
    if !(lit.starts_with('\'') && lit.ends_with('\'') && lit.len() >= 2)
        || lit[1..lit.len() - 1].contains('\'')
    {
        return expr;
    }
    match QualifiedName::parse_sql(&lit[1..lit.len() - 1], c.default_schema) {
        Ok(q) => nextval_default(&q),
        Err(_) => expr,
    }
}

/// `nextval('public.t_id_seq'::regclass)`, as `pg_get_expr` prints a serial default.
pub fn nextval_default(seq: &QualifiedName) -> String {
    format!("nextval({}::regclass)", crate::model::ddl::literal(&seq.quoted()))
}

/// Names `p` if needed and adds it to `table`. Errors are plain messages.
pub fn add_constraint(s: &mut Schema, table: &QualifiedName, mut p: Pending) -> Result<(), String> {
    if let Some(idx_name) = p.using_index.take() {
        let idx_q = QualifiedName::new(table.schema.clone(), idx_name.clone());
        let Some(idx) = s.indexes.remove(&idx_q) else {
            return Err(format!("index {idx_q} does not exist"));
        };
        let cols: Vec<Ident> = idx
            .keys
            .iter()
            .filter_map(|k| match &k.expr {
                IndexExpr::Column(c) => Some(c.clone()),
                IndexExpr::Expression(_) => None,
            })
            .collect();
        match &mut p.kind {
            ConstraintKind::PrimaryKey { columns, include }
            | ConstraintKind::Unique { columns, include, .. } => {
                *columns = cols;
                *include = idx.include.clone();
            }
            _ => {}
        }
        // PostgreSQL renames the index to the constraint's name.
        if p.name.is_none() {
            p.name = Some(idx_name);
        }
    }
    // `REFERENCES t` without columns means t's primary key, resolved now as PostgreSQL does.
    if let ConstraintKind::ForeignKey { ref_table, ref_columns, .. } = &mut p.kind {
        if ref_columns.is_empty() {
            let pk = s.tables.get(ref_table).and_then(|rt| rt.primary_key()).map(|(_, cols)| cols.to_vec());
            match pk {
                Some(cols) => *ref_columns = cols,
                None => {
                    return Err(format!(
                        "table {ref_table} has no primary key for REFERENCES without columns"
                    ));
                }
            }
        }
    }
    let t = s.tables.get(table).ok_or_else(|| format!("table {table} does not exist"))?;
    for col in p.kind.columns() {
        if t.column(col).is_none() && t.partition_of.is_none() && t.inherits.is_empty() {
            return Err(format!("column {} of table {table} does not exist", col));
        }
    }
    let name = match p.name.take() {
        Some(n) => n,
        None => default_constraint_name(s, t, &p),
    };
    let t = s.tables.get_mut(table).expect("checked above");
    if t.constraints.contains_key(&name) {
        return Err(format!("constraint {name} of table {table} already exists"));
    }
    if let ConstraintKind::PrimaryKey { columns, .. } = &p.kind {
        for col in columns {
            if let Some(c) = t.column_mut(col) {
                c.not_null = true;
            }
        }
    }
    s.constraint_names_given.insert(name.as_str());
    let t = s.tables.get_mut(table).expect("checked above");
    t.constraints.insert(
        name.clone(),
        Constraint {
            name,
            kind: p.kind,
            deferrable: p.deferrable,
            initially_deferred: p.initially_deferred,
            validated: p.validated,
        },
    );
    Ok(())
}

fn default_constraint_name(s: &Schema, t: &Table, p: &Pending) -> Ident {
    let table = t.name.name.as_str();
    let constraint_taken = |n: &str| {
        s.constraint_names_given.contains(n)
            && s.tables
                .values()
                .filter(|o| o.name.schema == t.name.schema)
                .any(|o| o.constraints.keys().any(|k| k.as_str() == n))
    };
    let relation = |n: &str| relation_taken(s, &t.name.schema, n) || constraint_taken(n);
    match &p.kind {
        ConstraintKind::PrimaryKey { .. } => choose_name(table, None, "pkey", relation),
        ConstraintKind::Unique { columns, .. } => {
            choose_name(table, Some(&join_columns(columns)), "key", relation)
        }
        ConstraintKind::Exclusion { .. } => {
            choose_name(table, Some(&join_columns(&p.name_columns)), "excl", relation)
        }
        ConstraintKind::ForeignKey { columns, .. } => {
            choose_name(table, Some(&join_columns(columns)), "fkey", constraint_taken)
        }
        ConstraintKind::Check { expr, .. } => {
            // PostgreSQL looks at the expression, not at where the CHECK was written: one
            // column referenced gives `t_col_check`, none or several give `t_check`.
            let col = only_column_in(expr, t);
            choose_name(table, col.as_ref().map(Ident::as_str), "check", constraint_taken)
        }
    }
}

/// The column of `t` named in `expr` when it names exactly one (duplicates ignored).
fn only_column_in(expr: &str, t: &Table) -> Option<Ident> {
    let toks = super::lex::tokenize(expr).ok()?;
    let mut found: Vec<Ident> = Vec::new();
    for (n, tok) in toks.iter().enumerate() {
        let text = &expr[tok.start..tok.end];
        let id = match tok.kind {
            Kind::Word => Ident::unquoted(text).ok(),
            Kind::QuotedIdent => Ident::from_sql(text).ok(),
            _ => None,
        };
        // A function name is not a column reference.
        let is_call = toks.get(n + 1).is_some_and(|t| &expr[t.start..t.end] == "(");
        if let Some(col) = id.filter(|_| !is_call).and_then(|id| t.column(&id).map(|c| c.name.clone())) {
            if !found.contains(&col) {
                found.push(col);
            }
        }
    }
    if found.len() == 1 { found.pop() } else { None }
}

/// `ALTER TABLE [IF EXISTS] [ONLY] name action, …`; the cursor is after `ALTER TABLE`.
pub fn alter_table(s: &mut Schema, c: &mut Cursor) -> PResult<()> {
    c.eat_kws(&["if", "exists"]);
    let only = c.eat_kw("only");
    let name = c.qname()?;
    c.eat_punct("*");
    if !s.tables.contains_key(&name) {
        // pg_dump writes `ALTER TABLE … OWNER TO` for sequences and views too.
        if c.eat_kws(&["owner", "to"]) {
            let role = c.ident()?;
            let kind = if s.sequences.contains_key(&name) {
                "sequence"
            } else if let Some(v) = s.views.get(&name) {
                if v.materialized { "materialized view" } else { "view" }
            } else {
                return c.fail(format!("relation {name} does not exist"));
            };
            s.owners.insert(ObjectRef::new(kind, name.quoted()), role);
            return c.expect_end();
        }
        // pg_dump writes a view's column defaults as `ALTER TABLE ONLY v ALTER COLUMN …`.
        if let Some(v) = s.views.get_mut(&name) {
            if c.eat_kw("alter") {
                c.eat_kw("column");
                let col = c.ident()?;
                if c.eat_kws(&["set", "default"]) {
                    let (from, to) = c.rest();
                    v.column_defaults.insert(col, c.expr_text(from, to));
                } else {
                    c.expect_kws(&["drop", "default"])?;
                    v.column_defaults.remove(&col);
                }
                return c.expect_end();
            }
        }
        if let Some(seq) = s.sequences.get_mut(&name) {
            if c.peek_kws(&["alter", "column"]) {
                return c.fail("sequences have no columns");
            }
            let _ = seq;
        }
        return c.fail(format!("table {name} does not exist"));
    }
    loop {
        alter_action(s, c, &name, only)?;
        if !c.eat_punct(",") {
            break;
        }
    }
    c.expect_end()
}

fn alter_action(s: &mut Schema, c: &mut Cursor, name: &QualifiedName, only: bool) -> PResult<()> {
    let at = c.offset();
    let err = |m: String| Fail { at, message: m };
    if c.eat_kw("add") {
        if starts_table_constraint(c) {
            let p = table_constraint(c)?;
            return add_constraint(s, name, p).map_err(err);
        }
        c.eat_kw("column");
        let if_not_exists = c.eat_kws(&["if", "not", "exists"]);
        let mut pending = Vec::new();
        let mut sequences = Vec::new();
        let col = column_def(s, c, name, &mut pending, &mut sequences)?;
        let t = s.tables.get_mut(name).expect("checked by caller");
        if t.column(&col.name).is_some() {
            if if_not_exists {
                return Ok(());
            }
            return Err(err(format!("column {} of table {name} already exists", col.name)));
        }
        t.columns.push(col.clone());
        if !only {
            // Without ONLY, PostgreSQL adds the column to partitions and inheritance children.
            for child in descendants(s, name) {
                if let Some(ct) = s.tables.get_mut(&child) {
                    if ct.column(&col.name).is_none() {
                        ct.columns.push(col.clone());
                    }
                }
            }
        }
        for seq in sequences {
            s.sequences.insert(seq.name.clone(), seq);
        }
        for p in pending {
            add_constraint(s, name, p).map_err(err)?;
        }
        return Ok(());
    }
    if c.eat_kw("drop") {
        if c.eat_kw("constraint") {
            let if_exists = c.eat_kws(&["if", "exists"]);
            let cname = c.ident()?;
            let _ = c.eat_kw("cascade") || c.eat_kw("restrict");
            let t = s.tables.get_mut(name).expect("checked by caller");
            if t.constraints.remove(&cname).is_none() {
                super::drop::not_found(c, if_exists, format!("constraint {cname} of table {name}"));
            }
            return Ok(());
        }
        c.eat_kw("column");
        let if_exists = c.eat_kws(&["if", "exists"]);
        let col = c.ident()?;
        let _ = c.eat_kw("cascade") || c.eat_kw("restrict");
        if !only {
            for child in descendants(s, name) {
                if let Some(ct) = s.tables.get_mut(&child) {
                    ct.columns.retain(|x| x.name != col);
                }
            }
        }
        let t = s.tables.get_mut(name).expect("checked by caller");
        let before = t.columns.len();
        t.columns.retain(|x| x.name != col);
        if t.columns.len() == before {
            super::drop::not_found(c, if_exists, format!("column {col} of table {name}"));
            return Ok(());
        }
        t.constraints.retain(|_, k| !k.kind.columns().contains(&col));
        s.indexes.retain(|_, i| {
            !(i.table == *name && i.keys.iter().any(|k| matches!(&k.expr, IndexExpr::Column(x) if *x == col)))
        });
        return Ok(());
    }
    if c.eat_kw("alter") {
        c.eat_kw("column");
        let col_name = c.ident()?;
        return alter_column(s, c, name, &col_name, only);
    }
    if c.eat_kws(&["owner", "to"]) {
        let role = c.ident()?;
        s.owners.insert(ObjectRef::new("table", name.quoted()), role);
        return Ok(());
    }
    let t = s.tables.get_mut(name).expect("checked by caller");
    if c.eat_kws(&["replica", "identity"]) {
        let from = c.pos;
        if c.eat_kws(&["using", "index"]) {
            c.ident()?;
        } else {
            c.word()?;
        }
        let v = c.raw(from, c.pos);
        t.replica_identity = if v == "default" { None } else { Some(v) };
        return Ok(());
    }
    if c.eat_kws(&["cluster", "on"]) {
        t.cluster_on = Some(c.ident()?);
        return Ok(());
    }
    if c.eat_kws(&["set", "without", "cluster"]) {
        t.cluster_on = None;
        return Ok(());
    }
    for (words, rls, force) in [
        (&["enable", "row", "level", "security"][..], Some(true), None),
        (&["disable", "row", "level", "security"][..], Some(false), None),
        (&["force", "row", "level", "security"][..], None, Some(true)),
        (&["no", "force", "row", "level", "security"][..], None, Some(false)),
    ] {
        if c.eat_kws(words) {
            if let Some(v) = rls {
                t.row_security = v;
            }
            if let Some(v) = force {
                t.force_row_security = v;
            }
            return Ok(());
        }
    }
    if c.eat_kws(&["set", "logged"]) {
        t.persistence = Persistence::Permanent;
        return Ok(());
    }
    if c.eat_kws(&["set", "unlogged"]) {
        t.persistence = Persistence::Unlogged;
        return Ok(());
    }
    if c.peek_kws(&["set", "("]) || (c.peek_kw("set") && c.peek_at(1).is_some_and(|x| c.text(x) == "(")) {
        c.pos += 1;
        let opts = c.options()?;
        for o in opts {
            let key = o.split('=').next().unwrap_or("").to_string();
            t.options.retain(|x| x.split('=').next() != Some(key.as_str()));
            t.options.push(o);
        }
        t.options.sort();
        return Ok(());
    }
    if c.peek_kw("reset") && c.peek_at(1).is_some_and(|x| c.text(x) == "(") {
        c.pos += 1;
        let opts = c.options()?;
        t.options.retain(|x| !opts.iter().any(|o| x.split('=').next() == Some(o.as_str())));
        return Ok(());
    }
    if c.eat_kws(&["set", "tablespace"]) {
        c.ident()?;
        return Ok(());
    }
    if c.eat_kw("inherit") {
        let parent = c.qname()?;
        t.inherits.push(parent);
        return Ok(());
    }
    if c.eat_kws(&["no", "inherit"]) {
        let parent = c.qname()?;
        t.inherits.retain(|p| *p != parent);
        return Ok(());
    }
    if c.eat_kws(&["validate", "constraint"]) {
        let cname = c.ident()?;
        let k =
            t.constraints.get_mut(&cname).ok_or_else(|| err(format!("constraint {cname} does not exist")))?;
        k.validated = true;
        return Ok(());
    }
    if c.eat_kws(&["attach", "partition"]) {
        let child = c.qname()?;
        let from = c.pos;
        if !c.eat_kw("default") {
            c.expect_kws(&["for", "values"])?;
        }
        c.until(|_| false)?;
        let bound = c.expr_text(from, c.pos);
        let parent = name.clone();
        let ct = s.tables.get_mut(&child).ok_or_else(|| err(format!("table {child} does not exist")))?;
        ct.partition_of = Some(PartitionOf { parent, bound });
        return Ok(());
    }
    if c.eat_kws(&["detach", "partition"]) {
        let child = c.qname()?;
        let _ = c.eat_kw("concurrently") || c.eat_kw("finalize");
        let ct = s.tables.get_mut(&child).ok_or_else(|| err(format!("table {child} does not exist")))?;
        ct.partition_of = None;
        return Ok(());
    }
    if c.eat_kw("rename") {
        return rename(s, c, name).map_err(|f| if f.at == 0 { err(f.message) } else { f });
    }
    c.expected("an ALTER TABLE action seqmig understands")
}

/// Partitions and inheritance children of `parent`, recursively.
fn descendants(s: &Schema, parent: &QualifiedName) -> Vec<QualifiedName> {
    let mut out = Vec::new();
    let mut todo = vec![parent.clone()];
    while let Some(p) = todo.pop() {
        for t in s.tables.values() {
            let child = t.partition_of.as_ref().is_some_and(|po| po.parent == p) || t.inherits.contains(&p);
            if child && !out.contains(&t.name) && t.name != *parent {
                out.push(t.name.clone());
                todo.push(t.name.clone());
            }
        }
    }
    out
}

fn rename(s: &mut Schema, c: &mut Cursor, name: &QualifiedName) -> PResult<()> {
    if c.eat_kw("to") {
        let new = QualifiedName::new(name.schema.clone(), c.ident()?);
        let mut t = s.tables.remove(name).expect("checked by caller");
        t.name = new.clone();
        s.tables.insert(new, t);
        return Ok(());
    }
    if c.eat_kw("constraint") {
        let old = c.ident()?;
        c.expect_kw("to")?;
        let new = c.ident()?;
        let t = s.tables.get_mut(name).expect("checked by caller");
        let mut k = t
            .constraints
            .remove(&old)
            .ok_or_else(|| Fail { at: 0, message: format!("constraint {old} does not exist") })?;
        k.name = new.clone();
        t.constraints.insert(new.clone(), k);
        s.constraint_names_given.insert(new.as_str());
        return Ok(());
    }
    c.eat_kw("column");
    let old = c.ident()?;
    c.expect_kw("to")?;
    let new = c.ident()?;
    let t = s.tables.get_mut(name).expect("checked by caller");
    let col = t
        .column_mut(&old)
        .ok_or_else(|| Fail { at: 0, message: format!("column {old} of table {name} does not exist") })?;
    col.name = new.clone();
    rename_column_references(s, name, &old, &new);
    // PostgreSQL renames the column in every partition and inheritance child as well.
    for child in descendants(s, name) {
        if let Some(col) = s.tables.get_mut(&child).and_then(|t| t.column_mut(&old)) {
            col.name = new.clone();
            rename_column_references(s, &child, &old, &new);
        }
    }
    Ok(())
}

/// What PostgreSQL renames with a column, by column number: the column lists of the table's
/// indexes and constraints, and of the foreign keys that reference it. Expressions (CHECK,
/// index expressions, predicates) are text here and keep the old spelling.
fn rename_column_references(s: &mut Schema, table: &QualifiedName, old: &Ident, new: &Ident) {
    let swap = |cols: &mut Vec<Ident>| {
        for c in cols.iter_mut().filter(|c| *c == old) {
            *c = new.clone();
        }
    };
    for idx in s.indexes.values_mut().filter(|i| i.table == *table) {
        for k in &mut idx.keys {
            if let IndexExpr::Column(c) = &mut k.expr {
                if c == old {
                    *c = new.clone();
                }
            }
        }
        swap(&mut idx.include);
    }
    for (tname, t) in s.tables.iter_mut() {
        for k in t.constraints.values_mut() {
            match &mut k.kind {
                ConstraintKind::PrimaryKey { columns, include }
                | ConstraintKind::Unique { columns, include, .. }
                    if tname == table =>
                {
                    swap(columns);
                    swap(include);
                }
                ConstraintKind::ForeignKey { columns, ref_table, ref_columns, .. } => {
                    if tname == table {
                        swap(columns);
                    }
                    if ref_table == table {
                        swap(ref_columns);
                    }
                }
                _ => {}
            }
        }
    }
}

/// One `ALTER COLUMN` action. Without ONLY, PostgreSQL applies a type, default or NOT NULL
/// change to the column of every partition and inheritance child too; so does this.
fn alter_column(
    s: &mut Schema,
    c: &mut Cursor,
    table: &QualifiedName,
    col_name: &Ident,
    only: bool,
) -> PResult<()> {
    let before = s.tables.get(table).and_then(|t| t.column(col_name)).cloned();
    alter_own_column(s, c, table, col_name)?;
    let after = s.tables.get(table).and_then(|t| t.column(col_name)).cloned();
    let (Some(before), Some(after)) = (before, after) else { return Ok(()) };
    if only {
        return Ok(());
    }
    for child in descendants(s, table) {
        if let Some(col) = s.tables.get_mut(&child).and_then(|t| t.column_mut(col_name)) {
            if after.data_type != before.data_type || after.collation != before.collation {
                col.data_type = after.data_type.clone();
                col.collation = after.collation.clone();
            }
            if after.default != before.default {
                col.default = after.default.clone();
            }
            if after.not_null != before.not_null {
                col.not_null = after.not_null;
            }
        }
    }
    Ok(())
}

fn alter_own_column(s: &mut Schema, c: &mut Cursor, table: &QualifiedName, col_name: &Ident) -> PResult<()> {
    let at = c.offset();
    if c.eat_kws(&["set", "data", "type"]) || c.eat_kw("type") {
        let from = c.until(|c| c.peek_kw("collate") || c.peek_kw("using") || c.peek_punct(","))?;
        let data_type = super::objects::resolve_type(s, c, c.type_text(from, c.pos));
        let collation = if c.eat_kw("collate") {
            let from = c.pos;
            c.name_parts()?;
            Some(super::objects::collation_text(&c.raw(from, c.pos)))
        } else {
            None
        };
        if c.eat_kw("using") {
            c.until(|c| c.peek_punct(","))?;
        }
        let t = s.tables.get_mut(table).expect("checked by caller");
        let Some(col) = t.column_mut(col_name) else {
            return Err(Fail { at, message: format!("column {col_name} of table {table} does not exist") });
        };
        col.data_type = data_type;
        if collation.is_some() {
            col.collation = collation;
        }
        return Ok(());
    }
    let t = s.tables.get_mut(table).expect("checked by caller");
    let Some(col) = t.column_mut(col_name) else {
        return Err(Fail { at, message: format!("column {col_name} of table {table} does not exist") });
    };
    if c.eat_kws(&["set", "default"]) {
        let from = c.pos;
        c.until(|c| c.peek_punct(","))?;
        col.default = Some(crate::parse::normalize_default(
            &canonical_default(c, c.expr_text(from, c.pos)),
            &col.data_type,
        ));
    } else if c.eat_kws(&["drop", "default"]) {
        col.default = None;
    } else if c.eat_kws(&["set", "not", "null"]) {
        col.not_null = true;
    } else if c.eat_kws(&["drop", "not", "null"]) {
        col.not_null = false;
    } else if c.eat_kws(&["set", "statistics"]) {
        let n = c.integer()?;
        col.statistics = if n < 0 { None } else { Some(n as i32) };
    } else if c.eat_kw("add") {
        c.expect_kw("generated")?;
        if c.eat_kw("always") {
            col.identity = Some(Identity::Always);
        } else {
            c.expect_kws(&["by", "default"])?;
            col.identity = Some(Identity::ByDefault);
        }
        c.expect_kws(&["as", "identity"])?;
        col.not_null = true;
        skip_identity_options(c)?;
    } else if c.eat_kws(&["drop", "identity"]) {
        c.eat_kws(&["if", "exists"]);
        col.identity = None;
    } else {
        return c.expected("an ALTER COLUMN action seqmig understands");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::model::{ConstraintKind, FkAction, GeneratedKind, Ident, Identity, QualifiedName, Schema};
    use crate::parse::load_str;

    fn load(sql: &str) -> Schema {
        load_str("t.sql", sql).unwrap_or_else(|e| panic!("{e}")).schema
    }

    fn id(s: &str) -> Ident {
        Ident::exact(s).unwrap()
    }

    #[test]
    fn unnamed_constraints_get_postgres_default_names() {
        let s = load(
            "CREATE TABLE users (id int PRIMARY KEY, email text UNIQUE, age int CHECK (age > 0));
             CREATE TABLE orders (id int, user_id int REFERENCES users, a int, b int,
                 UNIQUE (a, b), CHECK (b > a), FOREIGN KEY (a) REFERENCES users (id) ON DELETE CASCADE,
                 EXCLUDE USING gist (a WITH =));",
        );
        let users = &s.tables[&QualifiedName::of("public", "users")];
        let names: Vec<&str> = users.constraints.keys().map(Ident::as_str).collect();
        assert_eq!(names, ["users_age_check", "users_email_key", "users_pkey"]);
        let orders = &s.tables[&QualifiedName::of("public", "orders")];
        let names: Vec<&str> = orders.constraints.keys().map(Ident::as_str).collect();
        assert_eq!(
            names,
            ["orders_a_b_key", "orders_a_excl", "orders_a_fkey", "orders_check", "orders_user_id_fkey"]
        );
        // REFERENCES users without columns points at its primary key.
        let ConstraintKind::ForeignKey { ref_columns, on_delete, .. } =
            &orders.constraints[&id("orders_user_id_fkey")].kind
        else {
            panic!("not a foreign key")
        };
        assert_eq!(ref_columns, &[id("id")]);
        assert_eq!(*on_delete, FkAction::NoAction);
        let ConstraintKind::ForeignKey { on_delete, .. } = &orders.constraints[&id("orders_a_fkey")].kind
        else {
            panic!("not a foreign key")
        };
        assert_eq!(*on_delete, FkAction::Cascade);
    }

    #[test]
    fn clashing_default_names_get_a_number() {
        let s = load("CREATE TABLE t (a int CHECK (a > 0), CHECK (a < 10));");
        let names: Vec<&str> =
            s.tables[&QualifiedName::of("public", "t")].constraints.keys().map(Ident::as_str).collect();
        assert_eq!(names, ["t_a_check", "t_a_check1"]);
    }

    #[test]
    fn serial_expands_like_postgres() {
        let s = load("CREATE TABLE app_users (id bigserial PRIMARY KEY, n smallserial);");
        let t = &s.tables[&QualifiedName::of("public", "app_users")];
        let c = &t.columns[0];
        assert_eq!(c.data_type, "bigint");
        assert!(c.not_null);
        assert_eq!(c.default.as_deref(), Some("nextval('public.app_users_id_seq'::regclass)"));
        let seq = &s.sequences[&QualifiedName::of("public", "app_users_id_seq")];
        assert_eq!(seq.data_type, "bigint");
        assert_eq!(seq.owned_by, Some((t.name.clone(), id("id"))));
        assert_eq!(s.sequences[&QualifiedName::of("public", "app_users_n_seq")].data_type, "smallint");
    }

    #[test]
    fn pg_dump_alter_forms_apply() {
        let s = load(
            "CREATE TABLE public.t (id integer NOT NULL, v text, c integer);
             CREATE SEQUENCE public.t_id_seq AS integer START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1;
             ALTER SEQUENCE public.t_id_seq OWNED BY public.t.id;
             ALTER TABLE ONLY public.t ALTER COLUMN id SET DEFAULT nextval('public.t_id_seq'::regclass);
             ALTER TABLE public.t ALTER COLUMN c ADD GENERATED ALWAYS AS IDENTITY (
                 SEQUENCE NAME public.t_c_seq START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1);
             ALTER TABLE ONLY public.t ADD CONSTRAINT t_pkey PRIMARY KEY (id);
             ALTER TABLE ONLY public.t ADD CONSTRAINT t_v_check CHECK ((v <> ''::text)) NOT VALID;
             ALTER TABLE ONLY public.t ALTER COLUMN v SET STATISTICS 1000;
             ALTER TABLE ONLY public.t REPLICA IDENTITY FULL;
             ALTER TABLE public.t CLUSTER ON t_pkey;
             ALTER TABLE public.t ENABLE ROW LEVEL SECURITY;
             ALTER TABLE public.t OWNER TO app;",
        );
        let t = &s.tables[&QualifiedName::of("public", "t")];
        assert_eq!(t.columns[0].default.as_deref(), Some("nextval('public.t_id_seq'::regclass)"));
        assert_eq!(t.columns[2].identity, Some(Identity::Always));
        assert_eq!(t.columns[1].statistics, Some(1000));
        assert!(!t.constraints[&id("t_v_check")].validated);
        assert_eq!(t.replica_identity.as_deref(), Some("full"));
        assert_eq!(t.cluster_on, Some(id("t_pkey")));
        assert!(t.row_security);
        let seq = &s.sequences[&QualifiedName::of("public", "t_id_seq")];
        assert_eq!(
            (seq.data_type.as_str(), seq.start, seq.increment, seq.cache),
            ("integer", None, None, None)
        );
        assert_eq!(s.owners.len(), 1);
    }

    #[test]
    fn partitions_generated_columns_and_options() {
        let s = load(
            "CREATE UNLOGGED TABLE m (at date NOT NULL, x int, y int GENERATED ALWAYS AS (x * 2) STORED)
                 PARTITION BY RANGE (at) WITH (fillfactor = '70');
             CREATE TABLE m_2024 PARTITION OF m FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
             CREATE TABLE m_old (at date NOT NULL, x int, y int);
             ALTER TABLE ONLY m ATTACH PARTITION m_old DEFAULT;
             CREATE TABLE child (z int) INHERITS (m_old);",
        );
        let m = &s.tables[&QualifiedName::of("public", "m")];
        assert_eq!(m.partition_key.as_deref(), Some("range (at)"));
        assert_eq!(m.options, ["fillfactor=70"]);
        assert_eq!(m.persistence, crate::model::Persistence::Unlogged);
        assert_eq!(
            m.columns[2].generated.as_ref().map(|g| (g.expr.as_str(), g.kind)),
            Some(("x * 2", GeneratedKind::Stored))
        );
        let p = &s.tables[&QualifiedName::of("public", "m_2024")];
        assert_eq!(p.columns.len(), 3, "a partition has its parent's columns");
        assert_eq!(
            p.partition_of.as_ref().unwrap().bound,
            "for values from ('2024-01-01') to ('2025-01-01')"
        );
        assert_eq!(
            s.tables[&QualifiedName::of("public", "m_old")].partition_of.as_ref().unwrap().bound,
            "default"
        );
        assert_eq!(
            s.tables[&QualifiedName::of("public", "child")].inherits,
            [QualifiedName::of("public", "m_old")]
        );
    }

    #[test]
    fn an_alter_on_a_known_table_that_cannot_be_read_is_an_error() {
        let err =
            load_str("t.sql", "CREATE TABLE t (a int);\nALTER TABLE t ALTER COLUMN a SET STORAGE PLAIN;")
                .unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("t.sql:2:"), "{msg}");
        assert!(msg.contains("ALTER TABLE t ALTER COLUMN a SET STORAGE PLAIN"), "{msg}");
    }

    #[test]
    fn search_path_decides_where_unqualified_names_go() {
        let s = load(
            "CREATE SCHEMA app; SET search_path = app, pg_catalog;
             CREATE TYPE mood AS ENUM ('a');
             CREATE TABLE t (m mood, id serial);
             SELECT pg_catalog.set_config('search_path', '', false);",
        );
        let t = &s.tables[&QualifiedName::of("app", "t")];
        assert_eq!(t.columns[0].data_type, "app.mood");
        assert_eq!(t.columns[1].default.as_deref(), Some("nextval('app.t_id_seq'::regclass)"));
    }
}
