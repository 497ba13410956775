//! `CREATE TYPE … AS ENUM | AS (…)` and `ALTER TYPE`: enum and composite types.

use super::*;

/// `CREATE TYPE name AS ENUM (…) | AS (…)`; other forms return `Ok(false)` (opaque).
pub fn create_type(s: &mut Schema, c: &mut Cursor) -> PResult<bool> {
    c.expect_kw("type")?;
    let name = c.qname()?;
    if !c.eat_kw("as") {
        return Ok(false);
    }
    if c.eat_kw("enum") {
        c.expect_punct("(")?;
        let mut values = Vec::new();
        if !c.eat_punct(")") {
            loop {
                values.push(c.string()?);
                if c.eat_punct(")") {
                    break;
                }
                c.expect_punct(",")?;
            }
        }
        c.expect_end()?;
        s.enums.insert(name.clone(), EnumType { name, values });
        return Ok(true);
    }
    if c.peek_punct("(") {
        c.pos += 1;
        let mut attributes = Vec::new();
        if !c.eat_punct(")") {
            loop {
                let attr = c.ident()?;
                let from = c.until(|c| c.peek_punct(",") || c.peek_kw("collate"))?;
                let ty = resolve_type(s, c, c.type_text(from, c.pos));
                if c.eat_kw("collate") {
                    c.name_parts()?;
                }
                attributes.push((attr, ty));
                if c.eat_punct(")") {
                    break;
                }
                c.expect_punct(",")?;
            }
        }
        c.expect_end()?;
        s.composites.insert(name.clone(), CompositeType { name, attributes });
        return Ok(true);
    }
    Ok(false)
}

pub fn alter_type(s: &mut Schema, c: &mut Cursor) -> PResult<()> {
    let name = c.qname()?;
    if c.eat_kws(&["owner", "to"]) {
        let role = c.ident()?;
        if !s.enums.contains_key(&name) && !s.composites.contains_key(&name) {
            return c.fail(format!("type {name} is not modelled"));
        }
        s.owners.insert(ObjectRef::new("type", name.quoted()), role);
        return c.expect_end();
    }
    let Some(e) = s.enums.get_mut(&name) else {
        return c.fail(format!("enum type {name} does not exist"));
    };
    if c.eat_kws(&["add", "value"]) {
        let if_not_exists = c.eat_kws(&["if", "not", "exists"]);
        let v = c.string()?;
        let pos = if c.eat_kw("before") {
            let other = c.string()?;
            e.values.iter().position(|x| *x == other)
        } else if c.eat_kw("after") {
            let other = c.string()?;
            e.values.iter().position(|x| *x == other).map(|p| p + 1)
        } else {
            None
        };
        c.expect_end()?;
        if e.values.contains(&v) {
            if if_not_exists {
                return Ok(());
            }
            return c.fail(format!("enum value '{v}' already exists"));
        }
        match pos {
            Some(p) => e.values.insert(p, v),
            None => e.values.push(v),
        }
        return Ok(());
    }
    if c.eat_kws(&["rename", "value"]) {
        let old = c.string()?;
        c.expect_kw("to")?;
        let new = c.string()?;
        c.expect_end()?;
        for v in &mut e.values {
            if *v == old {
                v.clone_from(&new);
            }
        }
        return Ok(());
    }
    c.expected("an ALTER TYPE action seqmig understands")
}
