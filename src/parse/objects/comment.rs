//! `COMMENT ON …` and the object reference it (and `ALTER … OWNER TO`) names.

use super::*;

/// The `ObjectRef` a `COMMENT ON`/`ALTER … OWNER TO` names; the cursor is at the kind.
pub fn object_ref(c: &mut Cursor) -> PResult<ObjectRef> {
    const TWO_WORD: &[&str] = &[
        "materialized view",
        "foreign table",
        "event trigger",
        "access method",
        "foreign data",
        "text search",
        "operator class",
        "operator family",
        "large object",
    ];
    let mut kind = c.word()?;
    if let Some(t) = c.peek() {
        let two = format!("{kind} {}", c.text(t).to_ascii_lowercase());
        if TWO_WORD.contains(&two.as_str()) {
            c.pos += 1;
            kind = two;
            if kind == "text search" || kind == "foreign data" {
                kind = format!("{kind} {}", c.word()?);
            }
        }
    }
    let identity = match kind.as_str() {
        "table" | "view" | "materialized view" | "sequence" | "index" | "type" | "domain"
        | "foreign table" | "collation" | "conversion" | "statistics" => c.qname()?.quoted(),
        "column" => {
            let at = c.offset();
            let mut parts = c.name_parts()?;
            if parts.len() < 2 {
                return Err(Fail { at, message: "COMMENT ON COLUMN needs table.column".into() });
            }
            let col = parts.pop().expect("two parts");
            format!("{}.{}", c.qualify(parts, at)?.quoted(), col.quoted_sql())
        }
        "schema"
        | "extension"
        | "role"
        | "database"
        | "language"
        | "publication"
        | "subscription"
        | "event trigger"
        | "server"
        | "tablespace"
        | "access method"
        | "foreign data wrapper" => c.ident()?.quoted_sql(),
        "constraint" | "trigger" | "policy" | "rule" => {
            let n = c.ident()?;
            c.expect_kw("on")?;
            let on_domain = c.eat_kw("domain");
            let t = c.qname()?;
            if on_domain {
                format!("{} on domain {}", n.quoted_sql(), t.quoted())
            } else {
                format!("{} on {}", n.quoted_sql(), t.quoted())
            }
        }
        "function" | "procedure" | "routine" | "aggregate" => routine_identity(c)?,
        "cast" => {
            let (a, b) = c.paren_group()?;
            cast_identity(c, a, b)
        }
        _ => {
            let from = c.pos;
            c.until(|c| c.peek_kw("is") || c.peek_kw("owner"))?;
            c.raw(from, c.pos)
        }
    };
    let kind = if kind == "routine" { "function".to_string() } else { kind };
    Ok(ObjectRef { kind, identity })
}

/// `COMMENT ON … IS '…' | NULL`.
pub fn comment_on(s: &mut Schema, c: &mut Cursor) -> PResult<()> {
    c.expect_kws(&["comment", "on"])?;
    let obj = object_ref(c)?;
    c.expect_kw("is")?;
    if obj.kind == "extension" && obj.identity == "plpgsql" {
        // Implied like the extension itself (see create_extension).
        if !c.eat_kw("null") {
            c.string()?;
        }
        return c.expect_end();
    }
    if c.eat_kw("null") {
        s.comments.remove(&obj);
    } else {
        let text = c.string()?;
        s.comments.insert(obj, text);
    }
    c.expect_end()
}
