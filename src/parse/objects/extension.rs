//! `CREATE EXTENSION`.

use super::*;

pub fn create_extension(s: &mut Schema, c: &mut Cursor) -> PResult<()> {
    c.expect_kw("extension")?;
    c.eat_kws(&["if", "not", "exists"]);
    let name = c.ident()?;
    c.eat_kw("with");
    let mut ext = Extension { name: name.clone(), schema: None, version: None };
    loop {
        if c.eat_kw("schema") {
            ext.schema = Some(c.ident()?);
        } else if c.eat_kw("version") {
            ext.version =
                Some(if c.peek().is_some_and(|t| t.kind == Kind::Str) { c.string()? } else { c.word()? });
        } else if c.eat_kw("cascade") {
        } else {
            break;
        }
    }
    c.expect_end()?;
    // plpgsql is in every database (since PostgreSQL 9.0) whether a file says so or not, and
    // introspection leaves it out: a file that stops creating it drops nothing.
    if name.as_str() != "plpgsql" {
        s.extensions.insert(name, ext);
    }
    Ok(())
}
