//! The names PostgreSQL gives unnamed objects (`makeObjectName` / `ChooseRelationName` in
//! `indexcmds.c`): `users_pkey`, `users_email_key`, `orders_user_id_fkey`, `t_id_seq`, with
//! the same truncation to 63 bytes and the same numeric suffix on a clash.

use crate::model::{Ident, MAX_IDENT_BYTES};

/// `name1_name2_label`, truncating the longer of `name1`/`name2` until it fits in 63 bytes.
pub fn make_object_name(name1: &str, name2: Option<&str>, label: &str) -> String {
    let overhead = label.len() + 1 + usize::from(name2.is_some());
    let avail = MAX_IDENT_BYTES.saturating_sub(overhead);
    let mut n1 = name1.len();
    let mut n2 = name2.map(str::len).unwrap_or(0);
    while n1 + n2 > avail {
        if n1 > n2 {
            n1 -= 1;
        } else {
            n2 -= 1;
        }
    }
    let mut out = clip(name1, n1).to_string();
    if let Some(n) = name2 {
        out.push('_');
        out.push_str(clip(n, n2));
    }
    out.push('_');
    out.push_str(label);
    out
}

/// The longest prefix of `s` of at most `n` bytes that ends on a character boundary.
fn clip(s: &str, n: usize) -> &str {
    let mut n = n.min(s.len());
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

/// The first of `name1_name2_label`, `…_label1`, `…_label2`, … that `taken` does not report.
pub fn choose_name(name1: &str, name2: Option<&str>, label: &str, taken: impl Fn(&str) -> bool) -> Ident {
    let mut candidate = make_object_name(name1, name2, label);
    let mut n = 0;
    while taken(&candidate) {
        n += 1;
        candidate = make_object_name(name1, name2, &format!("{label}{n}"));
    }
    Ident::exact(&candidate).expect("chosen names fit in 63 bytes")
}

/// Column names joined with `_`, as PostgreSQL builds `name2` for multi-column keys.
pub fn join_columns(cols: &[Ident]) -> String {
    let mut out = String::new();
    for c in cols {
        if !out.is_empty() {
            out.push('_');
        }
        out.push_str(c.as_str());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_match_postgres() {
        assert_eq!(make_object_name("users", None, "pkey"), "users_pkey");
        assert_eq!(make_object_name("orders", Some("user_id"), "fkey"), "orders_user_id_fkey");
        let long = "a".repeat(40);
        let name = make_object_name(&long, Some(&"b".repeat(40)), "key");
        assert_eq!(name.len(), 63);
        assert!(name.ends_with("_key"));
        assert_eq!(choose_name("t", Some("a"), "key", |n| n == "t_a_key").as_str(), "t_a_key1");
    }
}
