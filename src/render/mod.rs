//! Tera setup for every piece of SQL and Markdown seqmig writes. Templates live in
//! `templates/`, are embedded in the binary, and can be overridden file by file with
//! `--templates DIR`. Names reach SQL only through the `ident` filter and values only
//! through the `literal` filter, both defined here.
//!
//! `render` is a leaf used by `plan` (each step's SQL is rendered when the step is built,
//! because the SQL is part of the sealed plan) and by `runbook`; it knows nothing about
//! plans itself.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use tera::{Context, Tera};

use crate::model::{QualifiedName, quote_ident};

/// Every embedded template: (name, text). Names are paths relative to `templates/`.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("sql/add_check.sql", include_str!("../../templates/sql/add_check.sql")),
    ("sql/add_column.sql", include_str!("../../templates/sql/add_column.sql")),
    ("sql/add_constraint.sql", include_str!("../../templates/sql/add_constraint.sql")),
    (
        "sql/add_constraint_using_index.sql",
        include_str!("../../templates/sql/add_constraint_using_index.sql"),
    ),
    ("sql/add_enum_value.sql", include_str!("../../templates/sql/add_enum_value.sql")),
    ("sql/alter_column.sql", include_str!("../../templates/sql/alter_column.sql")),
    ("sql/attach_index.sql", include_str!("../../templates/sql/attach_index.sql")),
    ("sql/attach_partition.sql", include_str!("../../templates/sql/attach_partition.sql")),
    ("sql/backfill.sql", include_str!("../../templates/sql/backfill.sql")),
    ("sql/comment.sql", include_str!("../../templates/sql/comment.sql")),
    ("sql/create_index.sql", include_str!("../../templates/sql/create_index.sql")),
    ("sql/create_table.sql", include_str!("../../templates/sql/create_table.sql")),
    ("sql/create_type.sql", include_str!("../../templates/sql/create_type.sql")),
    ("sql/create_view.sql", include_str!("../../templates/sql/create_view.sql")),
    ("sql/detach_partition.sql", include_str!("../../templates/sql/detach_partition.sql")),
    ("sql/drop_column.sql", include_str!("../../templates/sql/drop_column.sql")),
    ("sql/drop_constraint.sql", include_str!("../../templates/sql/drop_constraint.sql")),
    ("sql/drop_index.sql", include_str!("../../templates/sql/drop_index.sql")),
    ("sql/drop_object.sql", include_str!("../../templates/sql/drop_object.sql")),
    ("sql/drop_table.sql", include_str!("../../templates/sql/drop_table.sql")),
    ("sql/drop_trigger.sql", include_str!("../../templates/sql/drop_trigger.sql")),
    ("sql/drop_view.sql", include_str!("../../templates/sql/drop_view.sql")),
    ("sql/dual_write_trigger.sql", include_str!("../../templates/sql/dual_write_trigger.sql")),
    ("sql/fill_trigger.sql", include_str!("../../templates/sql/fill_trigger.sql")),
    ("sql/flag.sql", include_str!("../../templates/sql/flag.sql")),
    ("sql/rename.sql", include_str!("../../templates/sql/rename.sql")),
    ("sql/rename_table.sql", include_str!("../../templates/sql/rename_table.sql")),
    ("sql/schema_object.sql", include_str!("../../templates/sql/schema_object.sql")),
    ("sql/sequence.sql", include_str!("../../templates/sql/sequence.sql")),
    ("sql/swap_columns.sql", include_str!("../../templates/sql/swap_columns.sql")),
    ("sql/validate_constraint.sql", include_str!("../../templates/sql/validate_constraint.sql")),
    ("sql/verify.sql", include_str!("../../templates/sql/verify.sql")),
    ("phase.sql", include_str!("../../templates/phase.sql")),
    ("rollback.sql", include_str!("../../templates/rollback.sql")),
    ("runbook.md", include_str!("../../templates/runbook.md")),
];

/// Why a template could not be loaded or rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    #[error("failed to read template '{path}': {source}")]
    Io { path: String, source: std::io::Error },
    #[error("template '{name}' is invalid: {detail}")]
    Template { name: String, detail: String },
    #[error("failed to render template '{name}': {detail}")]
    Render { name: String, detail: String },
}

/// The loaded templates with seqmig's filters registered.
#[derive(Debug)]
pub struct Renderer {
    tera: Tera,
}

impl Renderer {
    /// The embedded templates only.
    pub fn embedded() -> Renderer {
        Self::with_overrides(None).expect("embedded templates are valid")
    }

    /// The embedded templates, each replaced by `DIR/<name>` when that file exists.
    pub fn with_overrides(dir: Option<&Path>) -> Result<Renderer, RenderError> {
        let mut tera = Tera::default();
        // Autoescaping is for HTML; SQL escaping is done by the ident and literal filters.
        tera.autoescape_on(vec![]);
        let mut sources: Vec<(String, String)> = Vec::new();
        for (name, text) in TEMPLATES {
            let text = match dir {
                Some(d) => {
                    let path: PathBuf = d.join(name);
                    if path.is_file() {
                        std::fs::read_to_string(&path)
                            .map_err(|source| RenderError::Io { path: path.display().to_string(), source })?
                    } else {
                        (*text).to_string()
                    }
                }
                None => (*text).to_string(),
            };
            sources.push((name.to_string(), text));
        }
        tera.add_raw_templates(sources)
            .map_err(|e| RenderError::Template { name: "templates".into(), detail: error_chain(&e) })?;
        tera.register_filter("ident", ident_filter);
        tera.register_filter("literal", literal_filter);
        Ok(Renderer { tera })
    }

    /// Renders template `name` with `ctx`; the result has no surrounding whitespace.
    pub fn render(&self, name: &str, ctx: &Context) -> Result<String, RenderError> {
        self.tera
            .render(name, ctx)
            .map(|s| s.trim().to_string())
            .map_err(|e| RenderError::Render { name: name.into(), detail: error_chain(&e) })
    }

    /// Renders `name` with a serialisable value as the whole context.
    pub fn render_value(&self, name: &str, value: &impl Serialize) -> Result<String, RenderError> {
        let ctx = Context::from_serialize(value)
            .map_err(|e| RenderError::Render { name: name.into(), detail: error_chain(&e) })?;
        self.render(name, &ctx)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// A qualified name as templates receive it: `{schema, name}`, rendered by `ident`.
pub fn qn(q: &QualifiedName) -> Value {
    serde_json::json!({ "schema": q.schema.as_str(), "name": q.name.as_str() })
}

/// `ident`: a string is one name; `{schema, name}` is a qualified name; an array is a
/// comma-separated list of either. The only way names enter templates' SQL.
fn ident_filter(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    ident_text(value).map(Value::String)
}

fn ident_text(value: &Value) -> tera::Result<String> {
    match value {
        Value::String(s) => Ok(quote_ident(s)),
        Value::Object(m) => match (m.get("schema"), m.get("name")) {
            (Some(Value::String(s)), Some(Value::String(n))) => {
                Ok(format!("{}.{}", quote_ident(s), quote_ident(n)))
            }
            _ => Err(tera::Error::msg("ident: object must have string 'schema' and 'name'")),
        },
        Value::Array(items) => Ok(items.iter().map(ident_text).collect::<tera::Result<Vec<_>>>()?.join(", ")),
        other => Err(tera::Error::msg(format!("ident: cannot quote {other}"))),
    }
}

/// `literal`: a string becomes a standard SQL string literal (quotes doubled; `E''` form
/// when it holds a backslash so the meaning does not depend on standard_conforming_strings);
/// numbers and booleans as is; null as NULL.
fn literal_filter(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    Ok(Value::String(match value {
        Value::String(s) => quote_literal(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "NULL".into(),
        other => return Err(tera::Error::msg(format!("literal: cannot quote {other}"))),
    }))
}

/// The SQL string literal for `s`.
pub fn quote_literal(s: &str) -> String {
    if s.contains('\\') {
        format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_quote_names_and_values() {
        let r = Renderer::embedded();
        let mut t = Tera::default();
        t.register_filter("ident", ident_filter);
        t.register_filter("literal", literal_filter);
        t.add_raw_template("x", "{{ q | ident }} {{ cols | ident }} {{ v | literal }}").unwrap();
        let mut ctx = Context::new();
        ctx.insert("q", &qn(&QualifiedName::of("My Schema", "we\"ird Name")));
        ctx.insert("cols", &vec!["a", "B"]);
        ctx.insert("v", "it's");
        let out = t.render("x", &ctx).unwrap();
        assert_eq!(out, r#""My Schema"."we""ird Name" a, "B" 'it''s'"#);
        assert_eq!(quote_literal("a\\b"), "E'a\\\\b'");
        drop(r);
    }

    #[test]
    fn override_dir_replaces_one_template() {
        let dir = std::env::temp_dir().join(format!("seqmig-tpl-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sql")).unwrap();
        std::fs::write(dir.join("sql/drop_table.sql"), "DROP TABLE {{ table | ident }} -- custom").unwrap();
        let r = Renderer::with_overrides(Some(&dir)).unwrap();
        let mut ctx = Context::new();
        ctx.insert("table", &qn(&QualifiedName::of("public", "t")));
        assert_eq!(r.render("sql/drop_table.sql", &ctx).unwrap(), "DROP TABLE public.t -- custom");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
