//! Textual normalisation shared by every producer of the model, so that the same schema read
//! from a file and from a live catalog compares equal: type names (`int4` = `integer`), and
//! expressions (whitespace outside literals collapsed, keywords in one case).
//! Moved from `model` (issue 19) so that SQL text is read only in `parse`; like
//! [`super::text`] it imports nothing from the rest of the crate, so `model` may call it.

/// Normalises a type name to the spelling `format_type()` uses: `int4` → `integer`,
/// `varchar(20)` → `character varying(20)`, `timestamptz` → `timestamp with time zone`,
/// `int[]` → `integer[]`. Schema-qualified user types are kept as given (lower-cased when
/// unquoted). `pg_catalog.` prefixes on built-in types are dropped.
pub fn normalize_type(raw: &str) -> String {
    let mut t = collapse_ws(raw.trim());
    // Array suffixes: `int[]`, `int []`, `int ARRAY`, `int[3]` (dimensions are not enforced).
    let mut dims = 0;
    loop {
        let trimmed = t.trim_end();
        if let Some(stripped) = trimmed.strip_suffix(']') {
            if let Some(open) = stripped.rfind('[') {
                t = stripped[..open].trim_end().to_string();
                dims += 1;
                continue;
            }
        }
        let lower = trimmed.to_ascii_lowercase();
        if lower.ends_with(" array") {
            t = trimmed[..trimmed.len() - " array".len()].to_string();
            dims += 1;
            continue;
        }
        break;
    }
    let base = normalize_base_type(&t);
    format!("{base}{}", "[]".repeat(dims))
}

fn normalize_base_type(t: &str) -> String {
    // Split off a modifier list "(…)" and anything after it (e.g. `time(3) with time zone`).
    let lower_full = lower_outside_quotes(t);
    let stripped = lower_full.strip_prefix("pg_catalog.").unwrap_or(&lower_full).to_string();
    let (head, modifier, tail) = match stripped.find('(') {
        Some(open) => {
            let close = stripped[open..].find(')').map(|c| open + c).unwrap_or(stripped.len() - 1);
            (
                stripped[..open].trim().to_string(),
                stripped[open..=close].replace(' ', ""),
                stripped[close + 1..].trim().to_string(),
            )
        }
        None => (stripped.trim().to_string(), String::new(), String::new()),
    };
    let head = if tail.is_empty() { head } else { format!("{head} {tail}") };
    let canonical = match head.as_str() {
        "int" | "int4" | "integer" => "integer",
        "int2" | "smallint" => "smallint",
        "int8" | "bigint" => "bigint",
        "serial" | "serial4" => "serial",
        "bigserial" | "serial8" => "bigserial",
        "smallserial" | "serial2" => "smallserial",
        "float4" | "real" => "real",
        "float8" | "double precision" => "double precision",
        "float" if modifier.is_empty() => "double precision",
        "float" => {
            // float(p): 1..24 → real, 25..53 → double precision.
            let p: u32 = modifier.trim_matches(|c| c == '(' || c == ')').parse().unwrap_or(53);
            return if p <= 24 { "real".into() } else { "double precision".into() };
        }
        "bool" | "boolean" => "boolean",
        "varchar" | "character varying" | "char varying" => "character varying",
        "char" | "character" | "bpchar" => {
            // `char` without a length is character(1); the quoted "char" type stays distinct.
            return if modifier.is_empty() { "character(1)".into() } else { format!("character{modifier}") };
        }
        "\"char\"" => "\"char\"",
        "decimal" | "numeric" => "numeric",
        "timestamp" | "timestamp without time zone" => "timestamp without time zone",
        "timestamptz" | "timestamp with time zone" => "timestamp with time zone",
        "time" | "time without time zone" => "time without time zone",
        "timetz" | "time with time zone" => "time with time zone",
        "varbit" | "bit varying" => "bit varying",
        "bit" if modifier.is_empty() => return "bit(1)".into(),
        other => return format!("{other}{modifier}"),
    };
    // format_type() writes the modifier before the time-zone words: timestamp(3) with time zone.
    if !modifier.is_empty() {
        if let Some(rest) = canonical.strip_prefix("timestamp ") {
            return format!("timestamp{modifier} {rest}");
        }
        if let Some(rest) = canonical.strip_prefix("time ") {
            return format!("time{modifier} {rest}");
        }
    }
    format!("{canonical}{modifier}")
}

/// Normalises an expression's text: whitespace outside string literals and quoted
/// identifiers collapsed to single spaces, none just inside parentheses or before commas,
/// unquoted words lower-cased, one pair of redundant outer parentheses removed.
pub fn normalize_expr(raw: &str) -> String {
    let lowered = lower_outside_quotes(raw.trim());
    let mut s = collapse_ws(&lowered);
    loop {
        let t = s.trim();
        if t.starts_with('(') && t.ends_with(')') && matching_close(t, 0) == Some(t.len() - 1) {
            s = t[1..t.len() - 1].trim().to_string();
        } else {
            return t.to_string();
        }
    }
}

/// A column default as every producer of the model stores it: [`normalize_expr`], and a
/// string literal cast to the column's own type written as the bare literal. The catalog
/// prints `DEFAULT 'pending'` of an enum column as `'pending'::order_status` (the type
/// qualified only when off the search path), a file may write either, and both mean the same:
/// the literal is coerced to the column's type on insert. A cast to another type, or to the
/// same type with another modifier, is kept.
pub fn normalize_default(raw: &str, column_type: &str) -> String {
    let e = normalize_expr(raw);
    let Some((literal, cast)) = literal_cast(&e) else { return e };
    let (cast, column) = (normalize_type(cast), normalize_type(column_type));
    let unqualified = |t: &str| -> String {
        match t.rfind('.') {
            Some(dot) if !t[..dot].contains('(') => t[dot + 1..].to_string(),
            _ => t.to_string(),
        }
    };
    let without_modifier = |t: &str| -> String {
        match t.find('(') {
            Some(open) => match t.find(')') {
                Some(close) => format!("{}{}", &t[..open], &t[close + 1..]),
                None => t.to_string(),
            },
            None => t.to_string(),
        }
    };
    let same = cast == column
        || unqualified(&cast) == unqualified(&column)
        || (!cast.contains('(') && cast == without_modifier(&column));
    if same { literal.to_string() } else { e }
}

/// `'…'::type` split into the literal and the type; none for anything else (an `E''`
/// string, a cast of a cast, an expression around the literal).
fn literal_cast(e: &str) -> Option<(&str, &str)> {
    let bytes = e.as_bytes();
    if bytes.first() != Some(&b'\'') {
        return None;
    }
    let mut j = 1;
    let end = loop {
        if j >= bytes.len() {
            return None;
        }
        if bytes[j] == b'\'' {
            if bytes.get(j + 1) == Some(&b'\'') {
                j += 2;
                continue;
            }
            break j;
        }
        j += 1;
    };
    let ty = e[end + 1..].strip_prefix("::")?;
    let plain =
        |c: char| c.is_alphanumeric() || matches!(c, '_' | '.' | '"' | ' ' | '(' | ')' | ',' | '[' | ']');
    if ty.is_empty() || ty.contains("::") || !ty.chars().all(plain) {
        return None;
    }
    Some((&e[..=end], ty))
}

/// Lower-cases ASCII letters outside `'…'`, `"…"` and `$tag$…$tag$`.
pub fn lower_outside_quotes(s: &str) -> String {
    map_outside_quotes(s, |seg| seg.to_ascii_lowercase())
}

/// Collapses whitespace outside quotes; removes it after `(` and before `)` and `,`.
fn collapse_ws(s: &str) -> String {
    map_outside_quotes(s, |seg| {
        let mut out = String::with_capacity(seg.len());
        let mut pending_space = false;
        for c in seg.chars() {
            if c.is_whitespace() {
                pending_space = true;
                continue;
            }
            if pending_space && !out.ends_with('(') && c != ')' && c != ',' {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        }
        if pending_space && !out.ends_with('(') {
            out.push(' ');
        }
        out
    })
    .trim()
    .to_string()
}

/// Applies `f` to the parts of `s` outside quoted literals, identifiers and dollar quotes.
fn map_outside_quotes(s: &str, f: impl Fn(&str) -> String) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut seg_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let end = match c {
            b'\'' | b'"' => {
                let mut j = i + 1;
                loop {
                    if j >= bytes.len() {
                        break bytes.len();
                    }
                    if bytes[j] == c {
                        if j + 1 < bytes.len() && bytes[j + 1] == c {
                            j += 2;
                            continue;
                        }
                        break j + 1;
                    }
                    // E'' strings may escape quotes with a backslash.
                    if c == b'\'' && bytes[j] == b'\\' && i > 0 && matches!(bytes[i - 1], b'e' | b'E') {
                        j += 2;
                        continue;
                    }
                    j += 1;
                }
            }
            b'$' => match dollar_tag(&s[i..]) {
                Some(tag) => match s[i + tag.len()..].find(tag) {
                    Some(rel) => i + tag.len() + rel + tag.len(),
                    None => bytes.len(),
                },
                None => {
                    i += 1;
                    continue;
                }
            },
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_str(&f(&s[seg_start..i]));
        out.push_str(&s[i..end.min(bytes.len())]);
        i = end;
        seg_start = end;
    }
    if seg_start < s.len() {
        out.push_str(&f(&s[seg_start..]));
    }
    out
}

/// `$tag$` or `$$` at the start of `s`.
pub fn dollar_tag(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('$')?;
    let end = rest.find('$')?;
    let tag = &rest[..end];
    if tag.chars().all(|c| c.is_alphanumeric() || c == '_') && !tag.starts_with(|c: char| c.is_ascii_digit())
    {
        Some(&s[..end + 2])
    } else {
        None
    }
}

fn matching_close(s: &str, open: usize) -> Option<usize> {
    let mut depth = 0i32;
    let mut in_quote: Option<char> = None;
    for (i, c) in s.char_indices().skip_while(|(i, _)| *i < open) {
        match (in_quote, c) {
            (Some(q), c) if c == q => in_quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => in_quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_cast_to_its_columns_type_is_the_bare_literal() {
        let d = |raw: &str, ty: &str| normalize_default(raw, ty);
        assert_eq!(d("'pending'::order_status", "public.order_status"), "'pending'");
        assert_eq!(d("'pending'::public.order_status", "order_status"), "'pending'");
        assert_eq!(d("('new'::shop.state)", "shop.state"), "'new'");
        assert_eq!(d("'it''s'::text", "text"), "'it''s'");
        assert_eq!(d("'x'::character varying", "varchar(20)"), "'x'");
        assert_eq!(d("'{}'::text[]", "text[]"), "'{}'");
        // Kept: another type, another modifier, an expression, an E'' string.
        assert_eq!(d("'1'::integer", "text"), "'1'::integer");
        assert_eq!(d("'abcdef'::varchar(3)", "varchar(20)"), "'abcdef'::varchar(3)");
        assert_eq!(d("'a'::text || 'b'::text", "text"), "'a'::text || 'b'::text");
        assert_eq!(d("e'a'::text", "text"), "e'a'::text");
        assert_eq!(d("now()", "timestamp with time zone"), "now()");
    }

    #[test]
    fn types_normalise_to_format_type_spelling() {
        for (raw, want) in [
            ("int4", "integer"),
            ("INT", "integer"),
            ("int8", "bigint"),
            ("varchar(20)", "character varying(20)"),
            ("VARCHAR ( 20 )", "character varying(20)"),
            ("timestamptz", "timestamp with time zone"),
            ("timestamp(3) with time zone", "timestamp(3) with time zone"),
            ("timestamp(6) without time zone", "timestamp(6) without time zone"),
            ("numeric(12, 2)", "numeric(12,2)"),
            ("decimal", "numeric"),
            ("bool", "boolean"),
            ("text[]", "text[]"),
            ("int4 []", "integer[]"),
            ("integer ARRAY", "integer[]"),
            ("pg_catalog.int4", "integer"),
            ("float", "double precision"),
            ("float(10)", "real"),
            ("char", "character(1)"),
            ("char(3)", "character(3)"),
            ("public.mood", "public.mood"),
            ("\"Public\".\"Mood\"", "\"Public\".\"Mood\""),
        ] {
            assert_eq!(normalize_type(raw), want, "{raw}");
        }
    }

    #[test]
    fn expressions_normalise_outside_quotes() {
        assert_eq!(normalize_expr("  (Price  *  100 ) "), "price * 100");
        assert_eq!(normalize_expr("lower( 'A  B' )"), "lower('A  B')");
        assert_eq!(normalize_expr("\"Mixed  Case\" > 0"), "\"Mixed  Case\" > 0");
        assert_eq!(normalize_expr("(a) + (b)"), "(a) + (b)");
        assert_eq!(normalize_expr("$x$ Keep  THIS $x$"), "$x$ Keep  THIS $x$");
    }
}
