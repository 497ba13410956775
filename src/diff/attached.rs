//! What hangs on a view or materialized view and goes with it when it is dropped: its
//! indexes, its owner, the grants on it, its triggers and rules, and the comments on it, its
//! columns, its indexes, triggers and rules. A view the plan drops and recreates (a column it
//! reads changes type, its definition changes) must get all of it back, forward from the
//! desired schema and on undo from the current one: the diff leaves these objects of a
//! recreated view to the recreate (planned on their own, they would be made on the view that
//! is about to go, or dropped from one that no longer has them), and `plan/steps/views.rs`
//! creates them again with it.

use crate::model::{Ident, Index, ObjectRef, OpaqueKind, OpaqueObject, QualifiedName, Schema};

/// The objects of `schema` attached to `view`, in the order they are created again.
#[derive(Debug)]
pub struct Attached<'a> {
    pub indexes: Vec<&'a Index>,
    pub owner: Option<&'a Ident>,
    /// Grants and revokes (revokes first, as `pg_dump` writes them), then triggers, rules,
    /// policies and statistics.
    pub objects: Vec<&'a OpaqueObject>,
    pub comments: Vec<(&'a ObjectRef, &'a String)>,
}

pub fn attached<'a>(schema: &'a Schema, view: &QualifiedName) -> Attached<'a> {
    let indexes = schema.indexes.values().filter(|i| &i.table == view).collect();
    let owner = ["view", "materialized view", "table"]
        .iter()
        .find_map(|k| schema.owners.get(&ObjectRef::new(k, view.quoted())));
    let mut objects: Vec<&OpaqueObject> = schema.opaque.values().filter(|o| object_on(o, view)).collect();
    // Stable: grants keep their order among themselves, then the rest by kind.
    objects.sort_by_key(|o| match o.id.kind {
        OpaqueKind::Grant if o.text.trim_start().to_ascii_lowercase().starts_with("revoke") => 0,
        OpaqueKind::Grant => 1,
        _ => 2,
    });
    let comments = schema.comments.iter().filter(|(t, _)| comment_on(schema, t, view)).collect();
    Attached { indexes, owner, objects, comments }
}

/// Whether an opaque object is attached to `view`: a trigger, rule, policy or statistics
/// object on it, or a grant (or revoke) on it.
pub fn object_on(o: &OpaqueObject, view: &QualifiedName) -> bool {
    match o.id.kind {
        OpaqueKind::Trigger | OpaqueKind::Rule | OpaqueKind::Policy | OpaqueKind::Statistics => {
            o.depends_on.contains(view)
        }
        OpaqueKind::Grant => o.depends_on.contains(view) || granted_on(o).contains(view),
        _ => false,
    }
}

/// The relations a `GRANT … ON …  TO …` / `REVOKE … ON … FROM …` names after `ON`.
fn granted_on(o: &OpaqueObject) -> Vec<QualifiedName> {
    let lower = o.text.to_ascii_lowercase();
    let Some(on) = lower.find(" on ") else { return Vec::new() };
    let end = [" to ", " from "].iter().filter_map(|k| lower[on..].find(k).map(|e| on + e)).min();
    let Some(end) = end else { return Vec::new() };
    let default = o.search_path.as_ref().map_or("public", |s| s.as_str());
    crate::parse::named_objects(&o.text[on + 4..end], default)
}

/// Whether a comment's target is `view`, one of its columns, or an index, trigger or rule on it.
pub fn comment_on(schema: &Schema, target: &ObjectRef, view: &QualifiedName) -> bool {
    let q = view.quoted();
    match target.kind.as_str() {
        "view" | "materialized view" | "table" => target.identity == q,
        "column" => target.identity.strip_prefix(&q).is_some_and(|rest| rest.starts_with('.')),
        "index" => schema.indexes.iter().any(|(n, i)| &i.table == view && n.quoted() == target.identity),
        "trigger" | "rule" | "policy" => target.identity.ends_with(&format!(" on {q}")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(text: &str) -> OpaqueObject {
        OpaqueObject {
            id: crate::model::OpaqueId { kind: OpaqueKind::Grant, identity: text.into() },
            text: text.into(),
            depends_on: vec![],
            search_path: None,
        }
    }

    #[test]
    fn grants_on_the_view_only() {
        let v = QualifiedName::of("public", "v");
        assert!(object_on(&grant("GRANT SELECT ON TABLE public.v TO reader"), &v));
        assert!(object_on(&grant("REVOKE ALL ON TABLE v FROM PUBLIC"), &v));
        assert!(!object_on(&grant("GRANT SELECT ON TABLE public.t TO v"), &v));
        assert!(!object_on(&grant("GRANT SELECT (v) ON TABLE public.t TO reader"), &v));
    }
}
