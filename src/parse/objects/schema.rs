//! `CREATE SCHEMA`.

use super::*;

pub fn create_schema(s: &mut Schema, c: &mut Cursor) -> PResult<()> {
    c.expect_kw("schema")?;
    c.eat_kws(&["if", "not", "exists"]);
    let (name, owner) = if c.eat_kw("authorization") {
        let r = c.ident()?;
        (r.clone(), Some(r))
    } else {
        let n = c.ident()?;
        let o = if c.eat_kw("authorization") { Some(c.ident()?) } else { None };
        (n, o)
    };
    c.expect_end()?;
    if let Some(o) = owner {
        s.owners.insert(ObjectRef::new("schema", name.quoted_sql()), o);
    }
    if name.as_str() != "public" {
        s.namespaces.insert(name);
    }
    Ok(())
}
