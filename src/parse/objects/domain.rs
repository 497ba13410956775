//! `CREATE DOMAIN` and `ALTER DOMAIN`.

use super::*;

pub fn create_domain(s: &mut Schema, c: &mut Cursor) -> PResult<()> {
    c.expect_kw("domain")?;
    let name = c.qname()?;
    c.eat_kw("as");
    let stop = ["collate", "default", "constraint", "not", "null", "check"];
    let from = c.until(|c| stop.iter().any(|k| c.peek_kw(k)))?;
    let data_type = resolve_type(s, c, c.type_text(from, c.pos));
    let mut d = Domain {
        name: name.clone(),
        data_type,
        not_null: false,
        default: None,
        collation: None,
        checks: BTreeMap::new(),
    };
    loop {
        let cname = if c.eat_kw("constraint") { Some(c.ident()?) } else { None };
        if c.eat_kw("collate") {
            let f = c.pos;
            c.name_parts()?;
            d.collation = Some(collation_text(&c.raw(f, c.pos)));
        } else if c.eat_kw("default") {
            let f = c.pos;
            if !c.peek_punct("(") {
                c.pos += 1;
            }
            c.until(|c| stop.iter().any(|k| c.peek_kw(k)))?;
            d.default = Some(c.expr_text(f, c.pos));
        } else if c.eat_kws(&["not", "null"]) {
            d.not_null = true;
        } else if c.eat_kw("null") {
            d.not_null = false;
        } else if c.eat_kw("check") {
            let (a, b) = c.paren_group()?;
            let expr = c.expr_text(a, b);
            c.eat_kws(&["not", "valid"]);
            let cn = cname.unwrap_or_else(|| {
                choose_name(name.name.as_str(), None, "check", |n| d.checks.keys().any(|k| k.as_str() == n))
            });
            d.checks.insert(cn, expr);
        } else if cname.is_some() {
            return c.expected("a domain constraint");
        } else {
            break;
        }
    }
    c.expect_end()?;
    s.domains.insert(name, d);
    Ok(())
}

pub fn alter_domain(s: &mut Schema, c: &mut Cursor) -> PResult<()> {
    let name = c.qname()?;
    let Some(d) = s.domains.get_mut(&name) else {
        return c.fail(format!("domain {name} does not exist"));
    };
    if c.eat_kws(&["owner", "to"]) {
        let role = c.ident()?;
        s.owners.insert(ObjectRef::new("domain", name.quoted()), role);
        return c.expect_end();
    }
    if c.eat_kws(&["add", "constraint"]) {
        let cn = c.ident()?;
        c.expect_kw("check")?;
        let (a, b) = c.paren_group()?;
        d.checks.insert(cn, c.expr_text(a, b));
        c.eat_kws(&["not", "valid"]);
    } else if c.eat_kws(&["drop", "constraint"]) {
        let if_exists = c.eat_kws(&["if", "exists"]);
        let cn = c.ident()?;
        let _ = c.eat_kw("cascade") || c.eat_kw("restrict");
        if d.checks.remove(&cn).is_none() {
            super::super::drop::not_found(c, if_exists, format!("constraint {cn} of domain {name}"));
        }
    } else if c.eat_kws(&["set", "default"]) {
        let (f, t) = c.rest();
        d.default = Some(c.expr_text(f, t));
    } else if c.eat_kws(&["drop", "default"]) {
        d.default = None;
    } else if c.eat_kws(&["set", "not", "null"]) {
        d.not_null = true;
    } else if c.eat_kws(&["drop", "not", "null"]) {
        d.not_null = false;
    } else if c.eat_kws(&["validate", "constraint"]) {
        c.ident()?;
    } else {
        return c.expected("an ALTER DOMAIN action seqmig understands");
    }
    c.expect_end()
}
