//! `CREATE SEQUENCE` and `ALTER SEQUENCE`, with PostgreSQL's defaults normalised away.

use super::*;

/// Sequence options shared by `CREATE SEQUENCE` and `ALTER SEQUENCE`.
fn sequence_options(c: &mut Cursor, seq: &mut Sequence) -> PResult<()> {
    // Options as written; defaults are normalised away afterwards.
    loop {
        if c.eat_kw("as") {
            let from = c.pos;
            c.word()?;
            seq.data_type = crate::parse::normalize_type(&c.raw(from, c.pos));
        } else if c.eat_kw("increment") {
            c.eat_kw("by");
            seq.increment = Some(c.integer()?);
        } else if c.eat_kws(&["no", "minvalue"]) {
            seq.min_value = None;
        } else if c.eat_kws(&["no", "maxvalue"]) {
            seq.max_value = None;
        } else if c.eat_kws(&["no", "cycle"]) {
            seq.cycle = false;
        } else if c.eat_kw("minvalue") {
            seq.min_value = Some(c.integer()?);
        } else if c.eat_kw("maxvalue") {
            seq.max_value = Some(c.integer()?);
        } else if c.eat_kw("start") {
            c.eat_kw("with");
            seq.start = Some(c.integer()?);
        } else if c.eat_kw("restart") {
            if !c.eat_kw("with") && c.peek().is_none_or(|t| t.kind != Kind::Number) {
                continue;
            }
            c.integer()?;
        } else if c.eat_kw("cache") {
            seq.cache = Some(c.integer()?);
        } else if c.eat_kw("cycle") {
            seq.cycle = true;
        } else if c.eat_kws(&["owned", "by"]) {
            if c.eat_kw("none") {
                seq.owned_by = None;
            } else {
                let at = c.offset();
                let mut parts = c.name_parts()?;
                if parts.len() < 2 {
                    return Err(Fail { at, message: "OWNED BY needs table.column".into() });
                }
                let col = parts.pop().expect("two parts");
                seq.owned_by = Some((c.qualify(parts, at)?, col));
            }
        } else {
            return Ok(());
        }
    }
}

/// Replaces values equal to PostgreSQL's defaults with `None`, so that `START WITH 1 …
/// NO MAXVALUE CACHE 1` and a bare `CREATE SEQUENCE` compare equal.
pub fn normalize_sequence(seq: &mut Sequence) {
    let (type_min, type_max) = match seq.data_type.as_str() {
        "smallint" => (i64::from(i16::MIN), i64::from(i16::MAX)),
        "integer" => (i64::from(i32::MIN), i64::from(i32::MAX)),
        _ => (i64::MIN, i64::MAX),
    };
    if seq.increment == Some(1) {
        seq.increment = None;
    }
    let ascending = seq.increment.unwrap_or(1) > 0;
    let (min_default, max_default) = if ascending { (1, type_max) } else { (type_min, -1) };
    if seq.min_value == Some(min_default) {
        seq.min_value = None;
    }
    if seq.max_value == Some(max_default) {
        seq.max_value = None;
    }
    let start_default =
        if ascending { seq.min_value.unwrap_or(min_default) } else { seq.max_value.unwrap_or(max_default) };
    if seq.start == Some(start_default) {
        seq.start = None;
    }
    if seq.cache == Some(1) {
        seq.cache = None;
    }
}

pub fn create_sequence(s: &mut Schema, c: &mut Cursor) -> PResult<()> {
    let unlogged = c.eat_kw("unlogged");
    c.expect_kw("sequence")?;
    let if_not_exists = c.eat_kws(&["if", "not", "exists"]);
    let name = c.qname()?;
    let mut seq = Sequence::new(name.clone());
    if unlogged {
        seq.persistence = crate::model::Persistence::Unlogged;
    }
    sequence_options(c, &mut seq)?;
    c.expect_end()?;
    normalize_sequence(&mut seq);
    if relation_taken(s, &name.schema, name.name.as_str()) {
        if if_not_exists {
            return Ok(());
        }
        return c.fail(format!("relation {name} already exists"));
    }
    s.sequences.insert(name, seq);
    Ok(())
}

pub fn alter_sequence(s: &mut Schema, c: &mut Cursor) -> PResult<()> {
    c.eat_kws(&["if", "exists"]);
    let name = c.qname()?;
    if !s.sequences.contains_key(&name) {
        return c.fail(format!("sequence {name} does not exist"));
    }
    if c.eat_kws(&["owner", "to"]) {
        let role = c.ident()?;
        s.owners.insert(ObjectRef::new("sequence", name.quoted()), role);
        return c.expect_end();
    }
    let seq = s.sequences.get_mut(&name).expect("checked");
    sequence_options(c, seq)?;
    normalize_sequence(seq);
    c.expect_end()
}
