//! Generated rows for the scratch database: N per table, in foreign-key order, with values
//! derived from the row number so unique keys stay unique, enum labels from the type,
//! referencing columns taken from rows already in the referenced table. A CHECK or a type
//! seqmig cannot guess may still refuse a row: each row gets a few value variants, and a
//! row every variant fails is skipped and counted, never fatal.

use std::collections::BTreeMap;

use serde::Serialize;
use tokio_postgres::Client;

use crate::model::ddl::literal;
use crate::model::{ConstraintKind, QualifiedName, Schema, Table};

/// How many rows each table got, and why some did not.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SeedReport {
    /// Table → rows inserted.
    pub rows: BTreeMap<String, usize>,
    /// Table → the last error of a row that could not be inserted with any variant.
    pub refused: BTreeMap<String, String>,
}

/// Tables in an order where referenced tables come first (cycles are broken by name order).
fn fk_order(schema: &Schema) -> Vec<&Table> {
    schema.tables_in_dependency_order(|t| {
        t.constraints
            .values()
            .filter_map(|c| match &c.kind {
                ConstraintKind::ForeignKey { ref_table, .. } if *ref_table != t.name => {
                    Some(ref_table.clone())
                }
                _ => None,
            })
            .collect()
    })
}

/// A value of `ty` for row `i` (1-based); `variant` picks an alternative when a CHECK refused
/// the first. `None` when seqmig has no idea how to make one.
fn value(schema: &Schema, ty: &str, i: usize, variant: usize) -> Option<String> {
    if let Some(elem) = ty.strip_suffix("[]") {
        return value(schema, elem, i, variant).map(|v| format!("ARRAY[{v}]::{ty}"));
    }
    let base = ty.split('(').next().unwrap_or(ty).trim();
    let len: Option<usize> =
        ty.split_once('(').and_then(|(_, r)| r.trim_end_matches(')').split(',').next()?.trim().parse().ok());
    if let Ok(name) = QualifiedName::parse_sql(ty, "public") {
        if let Some(e) = schema.enums.get(&name) {
            if e.values.is_empty() {
                return None;
            }
            let label = &e.values[(i + variant) % e.values.len()];
            return Some(format!("{}::{}", literal(label), name.quoted()));
        }
        if let Some(d) = schema.domains.get(&name) {
            return value(schema, &d.data_type, i, variant).map(|v| format!("({v})::{}", name.quoted()));
        }
    }
    let n = match variant {
        0 => i as i64,
        1 => 0,
        _ => 1,
    };
    let text = |s: String| -> String {
        let s = match len {
            Some(l) if s.len() > l => s[s.len() - l..].to_string(),
            _ => s,
        };
        literal(&s)
    };
    Some(match base {
        "smallint" | "integer" | "bigint" | "numeric" | "real" | "double precision" | "decimal" | "int2"
        | "int4" | "int8" | "float4" | "float8" | "money" | "oid" => format!("{n}::{ty}"),
        "text" | "character varying" | "varchar" | "character" | "char" | "bpchar" | "citext" | "name" => {
            match variant {
                0 => text(format!("r{i}")),
                1 => text(format!("{i}")),
                _ => text("a".into()),
            }
        }
        "boolean" => (if variant == 0 { i % 2 == 0 } else { variant == 1 }).to_string(),
        "date" => format!("date '2024-01-01' + {n}"),
        "timestamp without time zone" | "timestamp" => {
            format!("(timestamp '2024-01-01' + {n} * interval '1 hour')::{ty}")
        }
        "timestamp with time zone" | "timestamptz" => {
            format!("(timestamptz '2024-01-01 00:00+00' + {n} * interval '1 hour')::{ty}")
        }
        "time without time zone" | "time" | "time with time zone" | "timetz" => {
            format!("(time '00:00' + {n} * interval '1 minute')::{ty}")
        }
        "interval" => format!("{n} * interval '1 minute'"),
        "uuid" => format!("md5('{i}')::uuid"),
        "json" | "jsonb" => format!("'{{\"i\": {n}}}'::{ty}"),
        "bytea" => format!("convert_to('b{i}', 'UTF8')"),
        "inet" | "cidr" => format!("'10.{}.{}.0/24'::{ty}", i / 256 % 256, i % 256),
        "macaddr" => format!("'08:00:2b:01:{:02x}:{:02x}'::macaddr", i / 256 % 256, i % 256),
        "tsvector" => format!("to_tsvector('simple', 'w{i}')"),
        "xml" => "'<a/>'::xml".into(),
        "point" => format!("point({n}, {n})"),
        "geometry" | "geography" => match variant {
            0 => format!("'SRID=4326;POINT({n} {n})'::{ty}"),
            1 => format!("'POINT({n} {n})'::{ty}"),
            _ => format!("'SRID=4326;LINESTRING(0 0, {i} {i})'::{ty}"),
        },
        _ => return None,
    })
}

/// For the partition key column of a RANGE or LIST partitioned table: a value inside the
/// bound of partition `i mod n`, so that every partition gets rows even without a DEFAULT one.
/// `None` (the generic value) for other columns, HASH and DEFAULT partitions, and open ends.
fn in_bounds(schema: &Schema, table: &Table, column: &crate::model::Ident, i: usize) -> Option<String> {
    let key = table.partition_columns()?;
    let pos = key.iter().position(|k| k == column)?;
    let parts = schema.partitions_of(&table.name);
    if parts.is_empty() {
        return None;
    }
    let ty = &table.column(column)?.data_type;
    let literal = match parts[i % parts.len()].bound()? {
        crate::model::Bound::Range { from, .. } => from.get(pos).cloned(),
        crate::model::Bound::List(values) => values.first().cloned(),
        _ => None,
    }?;
    let word = literal.to_ascii_lowercase();
    if word == "minvalue" || word == "maxvalue" || word == "null" {
        return None;
    }
    Some(format!("({literal})::{ty}"))
}

/// Inserts `rows` rows into every table of `schema` (already created in the database).
pub async fn seed(client: &Client, schema: &Schema, rows: usize) -> SeedReport {
    let mut report = SeedReport::default();
    for table in fk_order(schema) {
        // Partitions are seeded through their root, which routes every row to the partition
        // whose bound holds it (issue 21.4); seeded on their own, most rows fall outside.
        if table.partition_of.as_ref().is_some_and(|p| schema.tables.contains_key(&p.parent)) {
            continue;
        }
        let key = table.name.quoted();
        let mut fk_cols: BTreeMap<&str, (&QualifiedName, String)> = BTreeMap::new();
        for c in table.constraints.values() {
            if let ConstraintKind::ForeignKey { columns, ref_table, ref_columns, .. } = &c.kind {
                for (col, rc) in columns.iter().zip(ref_columns) {
                    fk_cols.entry(col.as_str()).or_insert((ref_table, rc.quoted_sql()));
                }
            }
        }
        let mut inserted = 0usize;
        for i in 1..=rows {
            let mut last_err = None;
            let mut ok = false;
            for variant in 0..3 {
                let mut cols = Vec::new();
                let mut vals = Vec::new();
                for col in &table.columns {
                    if col.generated.is_some() || col.identity.is_some() {
                        continue;
                    }
                    if col.default.as_deref().is_some_and(|d| d.contains("nextval(")) {
                        continue;
                    }
                    let v = if let Some((rt, rc)) = fk_cols.get(col.name.as_str()) {
                        let n_ref = if *rt == &table.name {
                            inserted
                        } else {
                            report.rows.get(&rt.quoted()).copied().unwrap_or(0)
                        };
                        if n_ref == 0 {
                            "NULL".to_string()
                        } else {
                            // Same offset for every column of a composite key: one real row.
                            format!(
                                "(SELECT {rc} FROM {} ORDER BY ctid OFFSET {} LIMIT 1)",
                                rt.quoted(),
                                (i - 1 + variant) % n_ref
                            )
                        }
                    } else if let Some(v) =
                        (variant == 0).then(|| in_bounds(schema, table, &col.name, i)).flatten()
                    {
                        v
                    } else if variant == 0 && !col.not_null && i % 4 == 0 {
                        // Real tables hold NULLs where they may: a plan must meet them (a
                        // column made NOT NULL, a transform of NULL). A row that refuses it
                        // (a key, a CHECK) is retried with values.
                        "NULL".into()
                    } else {
                        match value(schema, &col.data_type, i, variant) {
                            Some(v) => v,
                            None if col.default.is_some() => "DEFAULT".into(),
                            None => "NULL".into(),
                        }
                    };
                    cols.push(col.name.quoted_sql());
                    vals.push(v);
                }
                let sql = if cols.is_empty() {
                    format!("INSERT INTO {key} DEFAULT VALUES")
                } else {
                    format!("INSERT INTO {key} ({}) VALUES ({})", cols.join(", "), vals.join(", "))
                };
                match client.batch_execute(&sql).await {
                    Ok(()) => {
                        ok = true;
                        break;
                    }
                    Err(e) => last_err = Some(crate::exec::describe_pg(&e)),
                }
            }
            if ok {
                inserted += 1;
            } else if let Some(e) = last_err {
                report.refused.insert(key.clone(), e);
            }
        }
        report.rows.insert(key, inserted);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_fit_their_types() {
        let s = Schema::default();
        assert_eq!(value(&s, "integer", 3, 0).unwrap(), "3::integer");
        assert_eq!(value(&s, "character varying(2)", 123, 0).unwrap(), "'23'");
        assert_eq!(value(&s, "text[]", 1, 0).unwrap(), "ARRAY['r1']::text[]");
        assert!(value(&s, "public.unknown_type", 1, 0).is_none());
    }
}
