//! Expression and type facts read from the model's normalised text: how one column type
//! casts to another, whether a default is volatile, which sequence a default draws from.
//! `diff` and `plan` ask these questions; they were in `diff/mod.rs` and moved here
//! unchanged. What needs the text's tokens (whether an expression names a column, whether a
//! view selects `*`) is in `parse` ([`crate::parse::mentions`], [`crate::parse::text`]).

use super::QualifiedName;

/// How PostgreSQL can turn one column type into another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cast {
    /// Binary-coercible: `ALTER COLUMN … TYPE` changes the catalog only.
    InPlace,
    /// A cast that cannot fail or lose data for the values of the old type (widening).
    Implicit,
    /// Needs an explicit `up` expression.
    None,
}

fn split_modifier(t: &str) -> (&str, Option<&str>) {
    match t.find('(') {
        Some(i) if t.ends_with(')') => (&t[..i], Some(&t[i + 1..t.len() - 1])),
        _ => (t, None),
    }
}

/// Classifies `from` → `to` (both normalised type names).
pub fn classify_cast(from: &str, to: &str) -> Cast {
    if from == to {
        return Cast::InPlace;
    }
    let (fb, fm) = split_modifier(from);
    let (tb, tm) = split_modifier(to);
    let num =
        |m: Option<&str>| m.and_then(|m| m.split(',').next()).and_then(|n| n.trim().parse::<u32>().ok());
    // A numeric's scale: 0 when only the precision is given.
    let scale = |m: Option<&str>| {
        m.map(|m| m.split(',').nth(1).and_then(|s| s.trim().parse::<u32>().ok()).unwrap_or(0))
    };
    match (fb, tb) {
        ("character varying", "character varying") | ("bit varying", "bit varying") => {
            match (num(fm), num(tm)) {
                (_, None) => return Cast::InPlace,
                (Some(a), Some(b)) if b >= a => return Cast::InPlace,
                _ => return Cast::None,
            }
        }
        ("character varying", "text") => return Cast::InPlace,
        ("text", "character varying") if tm.is_none() => return Cast::InPlace,
        ("numeric", "numeric") => {
            return match (num(fm), num(tm), scale(fm), scale(tm)) {
                (_, None, ..) => Cast::InPlace,
                (Some(a), Some(b), s, t) if b >= a && s == t => Cast::InPlace,
                // No fewer digits before the point nor after it: every value fits, rounding
                // nothing; a new scale rewrites the values, through a shadow column.
                (Some(a), Some(b), Some(s), Some(t))
                    if t >= s && i64::from(b) - i64::from(t) >= i64::from(a) - i64::from(s) =>
                {
                    Cast::Implicit
                }
                _ => Cast::None,
            };
        }
        _ => {}
    }
    const WIDENING: &[(&str, &str)] = &[
        ("smallint", "integer"),
        ("smallint", "bigint"),
        ("integer", "bigint"),
        ("smallint", "numeric"),
        ("integer", "numeric"),
        ("bigint", "numeric"),
        ("smallint", "double precision"),
        ("integer", "double precision"),
        ("real", "double precision"),
        ("date", "timestamp without time zone"),
        ("date", "timestamp with time zone"),
        ("timestamp without time zone", "timestamp with time zone"),
        ("json", "jsonb"),
        ("character", "text"),
        ("character", "character varying"),
    ];
    if (fm.is_none() || matches!(fb, "character" | "numeric")) && WIDENING.contains(&(fb, tb)) && tm.is_none()
    {
        return Cast::Implicit;
    }
    // Every type has an output function, so casting to unbounded text never fails.
    if to == "text" || to == "character varying" {
        return Cast::Implicit;
    }
    Cast::None
}

/// Defaults PostgreSQL must evaluate per row, forcing a rewrite on ADD COLUMN.
pub fn is_volatile(expr: &str) -> bool {
    const VOLATILE: &[&str] = &[
        "random(",
        "gen_random_uuid(",
        "uuid_generate_v",
        "uuidv4(",
        "uuidv7(",
        "clock_timestamp(",
        "timeofday(",
        "nextval(",
        "statement_timestamp(",
    ];
    let e = expr.to_ascii_lowercase();
    VOLATILE.iter().any(|v| e.contains(v))
}

/// Bytes of an integer type (`smallint`, `integer`, `bigint`), `None` for any other.
pub fn int_width(data_type: &str) -> Option<u8> {
    match data_type {
        "smallint" => Some(2),
        "integer" => Some(4),
        "bigint" => Some(8),
        _ => None,
    }
}

/// The sequence named by a `nextval('…'::regclass)` default.
pub fn nextval_sequence(expr: &str) -> Option<QualifiedName> {
    let e = expr.to_ascii_lowercase();
    let start = e.find("nextval('")? + "nextval('".len();
    let rest = &expr[start..];
    let end = rest.find('\'')?;
    QualifiedName::parse_sql(&rest[..end].replace("''", "'"), "public").ok()
}
