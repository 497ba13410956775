//! Rails / ActiveRecord (<https://guides.rubyonrails.org/active_record_migrations.html>): one
//! migration per [`Unit`], `db/migrate/<version>_seqmig_<plan short id>_<unit>.rb`, run in
//! version order. ActiveRecord wraps each migration in a transaction on PostgreSQL; a unit
//! that cannot run in one (`CONCURRENTLY`, `ADD VALUE`) says `disable_ddl_transaction!`. Each
//! statement is an `execute <<~'SQL'` of its own (a non-interpolating heredoc: the SQL's `#{`
//! and backslashes stay as they are). A one-way unit's `down` raises
//! `ActiveRecord::IrreversibleMigration`.
//!
//! A `Rakefile` runs the migrations with ActiveRecord's own migrator
//! (`ActiveRecord::MigrationContext`) outside a Rails app: `rake db:migrate VERSION=<the
//! phase's last version>` with `DATABASE_URL` set. In a Rails app, copy `db/migrate/` and run
//! `bin/rails db:migrate VERSION=…`. Versions are as for sqlx ([`super::sqlx`]).

use super::{Direction, Unit, unit_statements, units};
use crate::plan::{Phase, Planned};

/// The migration name of a unit (file name without version and `.rb`).
pub fn migration_name(planned: &Planned, unit: &Unit<'_>) -> String {
    format!("seqmig_{}_{}", &planned.plan.short_id()[..8], unit.name())
}

/// `ActiveSupport::Inflector#camelize` of a snake_case name: what Rails expects the class
/// in `<version>_<name>.rb` to be called.
pub fn camelize(name: &str) -> String {
    name.split('_')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c.flat_map(char::to_lowercase)).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

/// The last version of each phase, in order: what `db:migrate VERSION=` names.
pub fn phase_targets(planned: &Planned, first_version: i64) -> Vec<(Phase, i64)> {
    let mut out: Vec<(Phase, i64)> = Vec::new();
    for (i, u) in units(planned).iter().enumerate() {
        let v = first_version + i as i64;
        match out.last_mut() {
            Some((p, last)) if *p == u.phase => *last = v,
            _ => out.push((u.phase, v)),
        }
    }
    out
}

const RAKEFILE: &str = r#"# Written by seqmig: runs db/migrate with ActiveRecord's own migrator, outside a Rails app.
#   DATABASE_URL=postgres://… rake db:migrate [VERSION=<version>]
# In a Rails app, copy db/migrate/ into the app and run bin/rails db:migrate VERSION=<version>.
require "active_record"

def seqmig_migration_context
  ActiveRecord::Base.establish_connection(ENV.fetch("DATABASE_URL"))
  # ActiveRecord's migrator on db/migrate (relative to this Rakefile: rake runs here).
  pool = ActiveRecord::Base.connection_pool
  pool.respond_to?(:migration_context) ? pool.migration_context : ActiveRecord::Base.connection.migration_context
end

namespace :db do
  desc "Migrate up (or down) to VERSION, or to the last migration"
  task :migrate do
    ActiveRecord::Migration.verbose = true
    version = ENV["VERSION"] && Integer(ENV["VERSION"])
    seqmig_migration_context.migrate(version)
  end
end
"#;

/// Indents every non-empty line by six spaces, which `<<~` removes again: the SQL reaches
/// PostgreSQL unchanged.
fn heredoc(sql: &str) -> String {
    let mut out = String::from("    execute <<~'SEQMIG_SQL'\n");
    for line in sql.lines() {
        if !line.is_empty() {
            out.push_str("      ");
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("    SEQMIG_SQL\n");
    out
}

/// `Rakefile` and `db/migrate/*.rb`.
pub fn files(planned: &Planned, first_version: i64) -> Vec<(String, String)> {
    let plan = &planned.plan;
    let mut out = vec![("Rakefile".to_string(), RAKEFILE.to_string())];
    for (i, u) in units(planned).iter().enumerate() {
        let version = first_version + i as i64;
        let name = migration_name(planned, u);
        let up: String = unit_statements(planned, u, Direction::Apply).iter().map(|s| heredoc(s)).collect();
        let one_way: Vec<&str> = u.steps.iter().filter(|s| s.one_way).map(|s| s.id.as_str()).collect();
        let down: String = if one_way.is_empty() {
            unit_statements(planned, u, Direction::Rollback).iter().map(|s| heredoc(s)).collect()
        } else {
            format!(
                "    raise ActiveRecord::IrreversibleMigration, \"one-way steps ({}) of seqmig plan {}: contract cannot be undone\"\n",
                one_way.join(", "),
                plan.short_id()
            )
        };
        let steps: Vec<&str> = u.steps.iter().map(|s| s.id.as_str()).collect();
        let text = format!(
            "# seqmig plan {short}: phase {phase}, steps {steps}.\n\
             class {class} < ActiveRecord::Migration[6.1]\n\
             {no_tx}\
             \x20 def up\n{up}  end\n\n\
             \x20 def down\n{down}  end\n\
             end\n",
            short = plan.short_id(),
            phase = u.phase,
            steps = steps.join(", "),
            class = camelize(&name),
            no_tx = if u.transactional {
                String::new()
            } else {
                "  # CONCURRENTLY and ADD VALUE cannot run in a transaction.\n  disable_ddl_transaction!\n\n"
                    .to_string()
            },
        );
        out.push((format!("db/migrate/{version}_{name}.rb"), text));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn camelize_matches_active_support() {
        assert_eq!(super::camelize("seqmig_53eb5881_expand_2"), "Seqmig53eb5881Expand2");
        assert_eq!(super::camelize("seqmig_dd5f8ac1_dual_write"), "SeqmigDd5f8ac1DualWrite");
    }
}
