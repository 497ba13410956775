//! Objects seqmig keeps only by identity and text: functions, procedures, aggregates,
//! triggers, policies, row-level security switches, rules, casts, extended statistics and
//! publications. Their text is rebuilt the way pg_dump writes it (`CREATE FUNCTION …
//! RETURNS … LANGUAGE … AS $$…$$`), so a catalog and a pg_dump file of it compare equal.

use std::collections::HashMap;

use super::IntrospectError;
use super::build::qname;
use crate::model::*;

fn put(s: &mut Schema, kind: OpaqueKind, identity: String, text: &str, depends_on: Vec<QualifiedName>) {
    let id = OpaqueId { kind, identity };
    s.opaque.insert(
        id.clone(),
        OpaqueObject {
            id,
            text: crate::parse::normalize_statement(text.trim().trim_end_matches(';')),
            depends_on,
            search_path: None,
        },
    );
}

/// pg_dump's dollar quote: `$`, extended with `_`, `X`, `X`… until the body does not
/// contain it (without the closing `$`), then closed: `$$`, `$_$`, `$_X$`.
fn dollar_quote(body: &str) -> String {
    const SUFFIXES: &[u8] = b"_XXXXXXX";
    let mut tag = String::from("$");
    let mut next = 0;
    while body.contains(&tag) {
        tag.push(SUFFIXES[next] as char);
        next = (next + 1) % SUFFIXES.len();
    }
    format!("{tag}${body}{tag}$")
}

/// A string literal as pg_dump writes it (standard_conforming_strings on).
fn literal(s: &str) -> String {
    if s.contains('\\') {
        format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// Settings pg_dump writes as a list of quoted items.
const LIST_SETTINGS: &[&str] = &[
    "search_path",
    "temp_tablespaces",
    "session_preload_libraries",
    "shared_preload_libraries",
    "local_preload_libraries",
];

/// How a name is spelled in rebuilt text: bare when it lives in `bare_schema` (the first
/// schema of the session's search_path, as the server's own deparser does), else qualified.
fn spell(name: &QualifiedName, bare_schema: Option<&str>) -> String {
    if bare_schema == Some(name.schema.as_str()) { name.name.quoted_sql() } else { name.quoted() }
}

/// `bare_schema`: see [`spell`]; `None` under an empty search_path.
pub(super) fn add(
    cat: &super::Catalog,
    s: &mut Schema,
    bare_schema: Option<&str>,
) -> Result<(), IntrospectError> {
    let mut aggregates: HashMap<u32, &tokio_postgres::Row> = HashMap::new();
    for r in &cat.aggregates {
        aggregates.insert(r.get("oid"), r);
    }

    for r in &cat.functions {
        let oid: u32 = r.get("oid");
        let name = qname(r.get("schema"), r.get("name"))?;
        let kind: &str = r.get("kind");
        let arg_types: Vec<String> = r.get("arg_types");
        let args_id =
            arg_types.iter().map(|a| crate::parse::normalize_type(a)).collect::<Vec<_>>().join(", ");
        // An aggregate over no arguments is written `agg(*)`.
        let args_id = if kind == "a" && args_id.is_empty() { "*".to_string() } else { args_id };
        let identity = format!("{}({args_id})", name.quoted());
        let owner: String = r.get("owner");
        let (opaque_kind, ref_kind) = match kind {
            "p" => (OpaqueKind::Procedure, "procedure"),
            "a" => (OpaqueKind::Aggregate, "aggregate"),
            _ => (OpaqueKind::Function, "function"),
        };
        if let Ok(o) = Ident::exact(&owner) {
            s.owners.insert(ObjectRef::new(ref_kind, identity.clone()), o);
        }
        let text = if kind == "a" {
            match aggregates.get(&oid) {
                Some(a) => aggregate_text(&spell(&name, bare_schema), r, a),
                None => continue,
            }
        } else {
            function_text(&spell(&name, bare_schema), r)
        };
        put(s, opaque_kind, identity, &text, Vec::new());
    }

    for r in &cat.triggers {
        let table = qname(r.get("schema"), r.get("table_name"))?;
        let name: &str = r.get("name");
        let identity = format!("{} on {}", quote_ident(name), table.quoted());
        let mut def: String = r.get("def");
        // pg_get_triggerdef always qualifies the table; spell it as the rest of the text.
        let bare = spell(&table, bare_schema);
        if bare != table.quoted() {
            def = def.replacen(&format!(" ON {} ", table.quoted()), &format!(" ON {bare} "), 1);
        }
        put(s, OpaqueKind::Trigger, identity, &def, vec![table]);
    }

    for r in &cat.policies {
        let table = qname(r.get("schema"), r.get("table_name"))?;
        let name: &str = r.get("name");
        let cmd = match r.get::<_, &str>("cmd") {
            "r" => " FOR SELECT",
            "a" => " FOR INSERT",
            "w" => " FOR UPDATE",
            "d" => " FOR DELETE",
            _ => "",
        };
        let mut text = format!(
            "CREATE POLICY {} ON {}{}{cmd}",
            quote_ident(name),
            spell(&table, bare_schema),
            if r.get::<_, bool>("permissive") { "" } else { " AS RESTRICTIVE" }
        );
        if let Some(roles) = r.get::<_, Option<&str>>("roles") {
            text.push_str(&format!(" TO {roles}"));
        }
        if let Some(q) = r.get::<_, Option<&str>>("qual") {
            text.push_str(&format!(" USING ({q})"));
        }
        if let Some(q) = r.get::<_, Option<&str>>("with_check") {
            text.push_str(&format!(" WITH CHECK ({q})"));
        }
        let identity = format!("{} on {}", quote_ident(name), table.quoted());
        put(s, OpaqueKind::Policy, identity, &text, vec![table]);
    }

    grants(cat, s)?;

    for r in &cat.misc {
        let kind: &str = r.get("kind");
        let name: &str = r.get("name");
        let def: String = r.get::<_, Option<String>>("def").unwrap_or_default();
        let schema: Option<&str> = r.get("schema");
        match kind {
            "rule" => {
                let table = qname(schema.unwrap_or_default(), r.get("table_name"))?;
                let identity = format!("{} on {}", quote_ident(name), table.quoted());
                put(s, OpaqueKind::Rule, identity, &def, vec![table]);
            }
            "cast" => {
                put(s, OpaqueKind::Cast, format!("({})", name.replace(" AS ", " as ")), &def, Vec::new())
            }
            "statistics" => {
                let identity = qname(schema.unwrap_or_default(), name)?.quoted();
                let table = qname(r.get("table_schema"), r.get("table_name"))?;
                put(s, OpaqueKind::Statistics, identity, &def, vec![table]);
            }
            // The loader keys an operator by its whole normalised statement; so do we.
            "operator" => {
                let text = crate::parse::normalize_statement(&def);
                put(s, OpaqueKind::Operator, text, &def, Vec::new());
            }
            "publication" => put(s, OpaqueKind::Publication, quote_ident(name), &def, Vec::new()),
            _ => {}
        }
    }
    Ok(())
}

/// Every privilege of an object kind, in the order statements list them; holding all of them
/// is written `ALL`.
fn all_privileges(kind: &str) -> &'static [&'static str] {
    match kind {
        "TABLE" => &["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"],
        "SEQUENCE" => &["USAGE", "SELECT", "UPDATE"],
        "SCHEMA" => &["USAGE", "CREATE"],
        _ => &["EXECUTE"],
    }
}

/// `GRANT …` / `REVOKE …` statements for privileges that differ from an object's defaults,
/// one per object, grantee and grant option. The loader keys grants by their statement text.
fn grants(cat: &super::Catalog, s: &mut Schema) -> Result<(), IntrospectError> {
    for r in &cat.grants {
        let kind: &str = r.get("kind");
        let held: Vec<String> = r.get("privileges");
        let all = all_privileges(kind);
        let privileges = if all.iter().all(|p| held.iter().any(|h| h == p)) {
            "ALL".to_string()
        } else {
            let mut known: Vec<&str> = all.iter().copied().filter(|p| held.iter().any(|h| h == p)).collect();
            known.extend(held.iter().map(String::as_str).filter(|h| !all.contains(h)));
            known.join(",")
        };
        let (name, grantee): (&str, &str) = (r.get("name"), r.get("grantee"));
        let text = if r.get::<_, &str>("action") == "GRANT" {
            let option = if r.get::<_, bool>("grantable") { " WITH GRANT OPTION" } else { "" };
            format!("GRANT {privileges} ON {kind} {name} TO {grantee}{option}")
        } else {
            format!("REVOKE {privileges} ON {kind} {name} FROM {grantee}")
        };
        let depends_on = match (r.get::<_, Option<&str>>("schema"), r.get::<_, Option<&str>>("rel")) {
            (Some(sc), Some(rel)) => vec![qname(sc, rel)?],
            _ => Vec::new(),
        };
        put(s, OpaqueKind::Grant, crate::parse::normalize_statement(&text), &text, depends_on);
    }
    Ok(())
}

/// pg_dump's `CREATE FUNCTION` / `CREATE PROCEDURE` layout (dumpFunc).
fn function_text(name: &str, r: &tokio_postgres::Row) -> String {
    let kind: &str = r.get("kind");
    let language: &str = r.get("language");
    let mut t = format!(
        "CREATE {} {}({})",
        if kind == "p" { "PROCEDURE" } else { "FUNCTION" },
        name,
        r.get::<_, &str>("args")
    );
    if kind != "p" {
        if let Some(res) = r.get::<_, Option<&str>>("result") {
            t.push_str(&format!(" RETURNS {res}"));
        }
    }
    t.push_str(&format!("\n    LANGUAGE {}", quote_ident(language)));
    if kind == "w" {
        t.push_str(" WINDOW");
    }
    match r.get::<_, &str>("volatility") {
        "i" => t.push_str(" IMMUTABLE"),
        "s" => t.push_str(" STABLE"),
        _ => {}
    }
    if r.get::<_, bool>("strict") {
        t.push_str(" STRICT");
    }
    if r.get::<_, bool>("security_definer") {
        t.push_str(" SECURITY DEFINER");
    }
    if r.get::<_, bool>("leakproof") {
        t.push_str(" LEAKPROOF");
    }
    let cost: &str = r.get("cost");
    let default_cost = if language == "internal" || language == "c" { "1" } else { "100" };
    if cost != "0" && cost != default_cost {
        t.push_str(&format!(" COST {cost}"));
    }
    let rows: &str = r.get("rows");
    if r.get::<_, bool>("returns_set") && rows != "0" && rows != "1000" {
        t.push_str(&format!(" ROWS {rows}"));
    }
    if let Some(sup) = r.get::<_, Option<&str>>("support") {
        t.push_str(&format!(" SUPPORT {sup}"));
    }
    match r.get::<_, &str>("parallel") {
        "s" => t.push_str(" PARALLEL SAFE"),
        "r" => t.push_str(" PARALLEL RESTRICTED"),
        _ => {}
    }
    for item in r.get::<_, Vec<String>>("config") {
        let Some((k, v)) = item.split_once('=') else { continue };
        let value = if LIST_SETTINGS.contains(&k) {
            v.split(',').map(|p| literal(p.trim().trim_matches('"'))).collect::<Vec<_>>().join(", ")
        } else {
            literal(v)
        };
        t.push_str(&format!("\n    SET {} TO {value}", quote_ident(k)));
    }
    let src: &str = r.get("src");
    let body = if r.get::<_, bool>("sql_body") {
        // SQL-standard bodies are deparsed; take them from pg_get_functiondef.
        let def: &str = r.get::<_, Option<&str>>("functiondef").unwrap_or_default();
        def.find("\nBEGIN ATOMIC")
            .or_else(|| def.find("\nRETURN "))
            .map(|i| def[i + 1..].trim_end().to_string())
            .unwrap_or_default()
    } else if let Some(bin) = r.get::<_, Option<&str>>("bin").filter(|b| !b.is_empty()) {
        if src == "-" {
            format!("AS {}", literal(bin))
        } else {
            format!("AS {}, {}", literal(bin), literal(src))
        }
    } else {
        format!("AS {}", dollar_quote(src))
    };
    t.push_str(&format!("\n    {body}"));
    t
}

/// pg_dump's `CREATE AGGREGATE` layout (dumpAgg), for the common options.
fn aggregate_text(name: &str, f: &tokio_postgres::Row, a: &tokio_postgres::Row) -> String {
    let args: &str = f.get("args");
    let sig = format!("{name}({})", if args.is_empty() { "*" } else { args });
    let mut d =
        format!("    SFUNC = {},\n    STYPE = {}", a.get::<_, &str>("sfunc"), a.get::<_, &str>("stype"));
    if let Some(sp) = a.get::<_, Option<i32>>("sspace") {
        d.push_str(&format!(",\n    SSPACE = {sp}"));
    }
    if let Some(init) = a.get::<_, Option<&str>>("initcond") {
        d.push_str(&format!(",\n    INITCOND = {}", literal(init)));
    }
    if let Some(ff) = a.get::<_, Option<&str>>("finalfunc") {
        d.push_str(&format!(",\n    FINALFUNC = {ff}"));
        if a.get::<_, bool>("finalfunc_extra") {
            d.push_str(",\n    FINALFUNC_EXTRA");
        }
    }
    if let Some(cf) = a.get::<_, Option<&str>>("combinefunc") {
        d.push_str(&format!(",\n    COMBINEFUNC = {cf}"));
    }
    if let Some(op) = a.get::<_, Option<&str>>("sortop") {
        d.push_str(&format!(",\n    SORTOP = {op}"));
    }
    if a.get::<_, &str>("kind") == "h" {
        d.push_str(",\n    HYPOTHETICAL");
    }
    match f.get::<_, &str>("parallel") {
        "s" => d.push_str(",\n    PARALLEL = safe"),
        "r" => d.push_str(",\n    PARALLEL = restricted"),
        _ => {}
    }
    format!("CREATE AGGREGATE {sig} (\n{d}\n)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollar_quotes_avoid_the_body() {
        assert_eq!(dollar_quote("select 1"), "$$select 1$$");
        assert_eq!(dollar_quote("select $1"), "$_$select $1$_$");
        assert_eq!(dollar_quote("a $_ b"), "$_X$a $_ b$_X$");
    }

    #[test]
    fn literals_double_quotes_and_escape_backslashes() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal("a\\b"), "E'a\\\\b'");
    }
}
