//! Identifiers as PostgreSQL sees them: unquoted names fold to lower case, quoted names are
//! kept exactly, and a name longer than 63 bytes is rejected (PostgreSQL would silently
//! truncate it, which turns two different names into one).

use std::fmt;

use crate::parse::text::split_qualified;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// PostgreSQL's `NAMEDATALEN - 1`.
pub const MAX_IDENT_BYTES: usize = 63;

/// An identifier error: the name is empty or too long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentError {
    #[error("identifier '{name}' is {len} bytes long; PostgreSQL allows at most 63 and would truncate it")]
    TooLong { name: String, len: usize },
    #[error("empty identifier")]
    Empty,
    #[error("cannot read a qualified name from '{0}'")]
    Malformed(String),
}

/// A folded identifier: the exact name stored in the catalog.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ident(String);

impl Ident {
    /// A name written without quotes: ASCII letters fold to lower case (as PostgreSQL's
    /// `downcase_identifier` does for UTF-8 databases); other characters are kept.
    pub fn unquoted(name: &str) -> Result<Self, IdentError> {
        Self::exact(&name.to_ascii_lowercase())
    }

    /// A name written in double quotes (already unescaped): kept exactly.
    pub fn quoted(name: &str) -> Result<Self, IdentError> {
        Self::exact(name)
    }

    /// A name as the catalog stores it (introspection, or already folded).
    pub fn exact(name: &str) -> Result<Self, IdentError> {
        if name.is_empty() {
            return Err(IdentError::Empty);
        }
        if name.len() > MAX_IDENT_BYTES {
            return Err(IdentError::TooLong { name: name.to_string(), len: name.len() });
        }
        Ok(Ident(name.to_string()))
    }

    /// Reads one identifier as written in SQL: `"Quoted ""name"""` or `Unquoted`.
    pub fn from_sql(text: &str) -> Result<Self, IdentError> {
        let t = text.trim();
        if let Some(inner) = t.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            Self::quoted(&inner.replace("\"\"", "\""))
        } else {
            Self::unquoted(t)
        }
    }

    /// The exact stored name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as it must be written in SQL: bare when that folds back to the same name
    /// and is not a reserved word, otherwise in double quotes with embedded quotes doubled.
    /// This is the one door through which names enter SQL.
    pub fn quoted_sql(&self) -> String {
        quote_ident(&self.0)
    }
}

/// Quotes `name` for SQL unless it is a plain lower-case identifier that is not a keyword.
pub fn quote_ident(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !is_reserved(name);
    if plain { name.to_string() } else { format!("\"{}\"", name.replace('"', "\"\"")) }
}

/// Keywords that cannot be used as bare column or table names (PostgreSQL's reserved and
/// type/function-name keywords); quoting a few extra is harmless, missing one is not.
fn is_reserved(name: &str) -> bool {
    const RESERVED: &[&str] = &[
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "authorization",
        "between",
        "bigint",
        "binary",
        "bit",
        "boolean",
        "both",
        "case",
        "cast",
        "char",
        "character",
        "check",
        "coalesce",
        "collate",
        "collation",
        "column",
        "concurrently",
        "constraint",
        "create",
        "cross",
        "current_catalog",
        "current_date",
        "current_role",
        "current_schema",
        "current_time",
        "current_timestamp",
        "current_user",
        "dec",
        "decimal",
        "default",
        "deferrable",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "exists",
        "extract",
        "false",
        "fetch",
        "float",
        "for",
        "foreign",
        "freeze",
        "from",
        "full",
        "grant",
        "greatest",
        "group",
        "grouping",
        "having",
        "ilike",
        "in",
        "initially",
        "inner",
        "inout",
        "int",
        "integer",
        "intersect",
        "interval",
        "into",
        "is",
        "isnull",
        "join",
        "lateral",
        "leading",
        "least",
        "left",
        "like",
        "limit",
        "localtime",
        "localtimestamp",
        "national",
        "natural",
        "nchar",
        "none",
        "normalize",
        "not",
        "notnull",
        "null",
        "nullif",
        "numeric",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "out",
        "outer",
        "overlaps",
        "overlay",
        "placing",
        "position",
        "precision",
        "primary",
        "real",
        "references",
        "returning",
        "right",
        "row",
        "select",
        "session_user",
        "setof",
        "similar",
        "smallint",
        "some",
        "substring",
        "symmetric",
        "system_user",
        "table",
        "tablesample",
        "then",
        "time",
        "timestamp",
        "to",
        "trailing",
        "treat",
        "trim",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "values",
        "varchar",
        "variadic",
        "verbose",
        "when",
        "where",
        "window",
        "with",
        "xmlattributes",
        "xmlconcat",
        "xmlelement",
        "xmlexists",
        "xmlforest",
        "xmlnamespaces",
        "xmlparse",
        "xmlpi",
        "xmlroot",
        "xmlserialize",
        "xmltable",
    ];
    RESERVED.binary_search(&name).is_ok()
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.quoted_sql())
    }
}

impl fmt::Debug for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl Serialize for Ident {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Ident {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ident::exact(&s).map_err(serde::de::Error::custom)
    }
}

/// `schema.name`. Serialised as its SQL spelling (`public."Users"`) so it can key JSON maps.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QualifiedName {
    pub schema: Ident,
    pub name: Ident,
}

impl QualifiedName {
    pub fn new(schema: Ident, name: Ident) -> Self {
        QualifiedName { schema, name }
    }

    /// Both parts as catalog names; panics only on invalid names, so for tests and constants.
    pub fn of(schema: &str, name: &str) -> Self {
        QualifiedName {
            schema: Ident::exact(schema).expect("valid schema name"),
            name: Ident::exact(name).expect("valid name"),
        }
    }

    /// `schema.name` with each part quoted as needed: the one door for qualified names.
    pub fn quoted(&self) -> String {
        format!("{}.{}", self.schema.quoted_sql(), self.name.quoted_sql())
    }

    /// Reads `a.b` / `"A"."b c"` / `b` (then `default_schema` is used) as written in SQL.
    pub fn parse_sql(text: &str, default_schema: &str) -> Result<Self, IdentError> {
        let parts = split_qualified(text).ok_or_else(|| IdentError::Malformed(text.into()))?;
        match parts.as_slice() {
            [name] => {
                Ok(QualifiedName { schema: Ident::exact(default_schema)?, name: Ident::from_sql(name)? })
            }
            [schema, name] => {
                Ok(QualifiedName { schema: Ident::from_sql(schema)?, name: Ident::from_sql(name)? })
            }
            _ => Err(IdentError::Malformed(text.into())),
        }
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.quoted())
    }
}

impl fmt::Debug for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.quoted())
    }
}

impl Serialize for QualifiedName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.quoted())
    }
}

impl<'de> Deserialize<'de> for QualifiedName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let parts = split_qualified(&s).ok_or_else(|| serde::de::Error::custom("unbalanced quotes"))?;
        let [schema, name] = parts.as_slice() else {
            return Err(serde::de::Error::custom(format!("expected schema.name, got '{s}'")));
        };
        // Serialised names are always in their quoted_sql spelling, so from_sql reads them back.
        Ok(QualifiedName {
            schema: Ident::from_sql(schema).map_err(serde::de::Error::custom)?,
            name: Ident::from_sql(name).map_err(serde::de::Error::custom)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquoted_folds_quoted_keeps() {
        assert_eq!(Ident::from_sql("Users").unwrap(), Ident::from_sql("users").unwrap());
        assert_ne!(Ident::from_sql("\"Users\"").unwrap(), Ident::from_sql("users").unwrap());
        assert_eq!(Ident::from_sql("\"users\"").unwrap(), Ident::from_sql("USERS").unwrap());
    }

    #[test]
    fn non_ascii_is_not_folded() {
        // PostgreSQL folds only ASCII letters in UTF-8 databases.
        assert_eq!(Ident::from_sql("Ünïcode").unwrap().as_str(), "Ünïcode".replace('U', "u").as_str());
        assert_eq!(Ident::from_sql("\"موظفين\"").unwrap().as_str(), "موظفين");
    }

    #[test]
    fn too_long_is_rejected() {
        let long = "a".repeat(64);
        assert!(matches!(Ident::unquoted(&long), Err(IdentError::TooLong { len: 64, .. })));
        assert!(Ident::unquoted(&"a".repeat(63)).is_ok());
        // 32 two-byte letters = 64 bytes.
        assert!(Ident::quoted(&"é".repeat(32)).is_err());
    }

    #[test]
    fn quoting_round_trips() {
        for name in ["users", "Users", "we\"ird Name", "select", "a.b", "موظفين", "_x1", "1abc"] {
            let id = Ident::exact(name).unwrap();
            assert_eq!(Ident::from_sql(&id.quoted_sql()).unwrap(), id, "{name}");
        }
        assert_eq!(Ident::exact("we\"ird Name").unwrap().quoted_sql(), "\"we\"\"ird Name\"");
        assert_eq!(Ident::exact("user").unwrap().quoted_sql(), "\"user\"");
    }

    #[test]
    fn qualified_names_serialise_and_parse() {
        let q = QualifiedName::of("My Schema", "we\"ird.Name");
        let json = serde_json::to_string(&q).unwrap();
        assert_eq!(json, r#""\"My Schema\".\"we\"\"ird.Name\"""#);
        let back: QualifiedName = serde_json::from_str(&json).unwrap();
        assert_eq!(back, q);
        assert_eq!(
            QualifiedName::parse_sql("Users", "public").unwrap(),
            QualifiedName::of("public", "users")
        );
    }

    #[test]
    fn reserved_list_is_sorted_for_binary_search() {
        assert!(is_reserved("select") && is_reserved("user") && !is_reserved("users"));
    }
}
