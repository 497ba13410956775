//! Synthetic schemas of any size, for the scale benchmark (`benches/scale.rs`) and the
//! growth test (`tests/scale_tests.rs`): both include this file.
//!
//! [`before_sql`] writes exactly `n` statements in the shape pg_dump gives a large schema:
//! tables with typed columns, defaults, a named primary key, a foreign key to the table
//! before, a named and an unnamed check constraint, and a secondary index per table, the constraints added by
//! `ALTER TABLE ONLY … ADD CONSTRAINT` as pg_dump writes them. [`after_sql`] is the same
//! schema with changes spread evenly over all of it: added nullable columns, added and dropped
//! indexes, an added foreign key and new tables, so that a plan has work everywhere.

use std::fmt::Write;

/// Statements written per table in [`before_sql`].
pub const STATEMENTS_PER_TABLE: usize = 4;

fn table(i: usize) -> String {
    format!("t{i:06}")
}

/// `n` statements (rounded down to whole tables) of a schema of `n / 4` tables.
pub fn before_sql(n: usize) -> String {
    schema_sql(n, false)
}

/// The schema of [`before_sql`] with changes on roughly one table in ten.
pub fn after_sql(n: usize) -> String {
    schema_sql(n, true)
}

fn schema_sql(n: usize, changed: bool) -> String {
    let tables = n / STATEMENTS_PER_TABLE;
    let mut out = String::with_capacity(tables * 700);
    for i in 0..tables {
        let t = table(i);
        let _ = write!(
            out,
            "CREATE TABLE public.{t} (\n    id bigint NOT NULL,\n    parent_id bigint,\n    \
             name text NOT NULL,\n    amount numeric(12,2) DEFAULT 0 NOT NULL CHECK ((amount >= (0)::numeric)),\n    \
             created_at timestamp with time zone DEFAULT now() NOT NULL"
        );
        if changed && i % 10 == 3 {
            out.push_str(",\n    note text");
        }
        // The check is unnamed: PostgreSQL's default name must be chosen against all names.
        out.push_str(",\n    CONSTRAINT ");
        let _ = writeln!(out, "{t}_name_check CHECK ((length(name) > 0))\n);\n");
        let _ = writeln!(out, "ALTER TABLE ONLY public.{t}\n    ADD CONSTRAINT {t}_pkey PRIMARY KEY (id);\n");
        if i > 0 {
            let p = table(i - 1);
            let _ = writeln!(
                out,
                "ALTER TABLE ONLY public.{t}\n    ADD CONSTRAINT {t}_parent_id_fkey FOREIGN KEY (parent_id) \
                 REFERENCES public.{p}(id);\n"
            );
        } else {
            let _ = writeln!(out, "COMMENT ON TABLE public.{t} IS 'the root of the chain';\n");
        }
        if changed && i % 10 == 5 {
            // The name index is dropped and one on created_at takes its place.
            let _ =
                writeln!(out, "CREATE INDEX {t}_created_at_idx ON public.{t} USING btree (created_at);\n");
        } else {
            let _ = writeln!(out, "CREATE INDEX {t}_name_idx ON public.{t} USING btree (name);\n");
        }
        if changed && i % 20 == 7 {
            let _ = writeln!(out, "CREATE INDEX {t}_parent_id_idx ON public.{t} USING btree (parent_id);\n");
        }
        if changed && i % 100 == 11 {
            let _ = writeln!(
                out,
                "CREATE TABLE public.{t}_audit (\n    id bigint NOT NULL,\n    {t}_id bigint NOT NULL,\n    \
                 at timestamp with time zone DEFAULT now() NOT NULL\n);\n"
            );
        }
    }
    out
}
