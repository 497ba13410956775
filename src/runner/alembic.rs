//! Alembic (<https://alembic.sqlalchemy.org>): one revision per [`Unit`] under `versions/`,
//! each revising the one before, with a minimal `alembic.ini` and `env.py` that read
//! `DATABASE_URL` and commit each revision on its own (`transaction_per_migration`). A unit
//! that cannot run in a transaction runs inside `autocommit_block()`, statement by statement.
//! The SQL goes to the DB-API cursor, not `op.execute`: it holds `%` and `:` that SQLAlchemy
//! would read as parameters. Upgrade phase by phase with `alembic upgrade <revision>`.

use super::{Direction, Unit, unit_statements, units};
use crate::plan::{Phase, Planned};

/// The Alembic revision id of a unit: `seqmig_<plan short id>_<unit>`.
pub fn revision(planned: &Planned, unit: &Unit<'_>) -> String {
    format!("seqmig_{}_{}", &planned.plan.short_id()[..8], unit.name())
}

/// The last revision of each phase, in order: what `alembic upgrade` names.
pub fn phase_targets(planned: &Planned) -> Vec<(Phase, String)> {
    units(planned).iter().filter(|u| u.last).map(|u| (u.phase, revision(planned, u))).collect()
}

const ALEMBIC_INI: &str = "# Written by seqmig: run with DATABASE_URL set, e.g. 'alembic upgrade <revision>'.
[alembic]
script_location = %(here)s
";

const ENV_PY: &str = r#"# Written by seqmig. Connects to DATABASE_URL and commits each revision on its own, so a
# revision in autocommit_block() (CREATE INDEX CONCURRENTLY, ALTER TYPE ... ADD VALUE) never
# shares a transaction with another.
import os
import re

from alembic import context
from sqlalchemy import create_engine, pool

try:
    import psycopg2  # noqa: F401

    driver = "postgresql+psycopg2"
except ImportError:
    driver = "postgresql+psycopg"
url = re.sub(r"^postgres(ql)?(\+\w+)?://", driver + "://", os.environ["DATABASE_URL"])
engine = create_engine(url, poolclass=pool.NullPool, connect_args={"application_name": "alembic"})
with engine.connect() as connection:
    context.configure(connection=connection, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
"#;

/// `alembic.ini`, `env.py`, `versions/*.py`.
pub fn files(planned: &Planned) -> Vec<(String, String)> {
    let plan = &planned.plan;
    let mut out = vec![
        ("alembic.ini".to_string(), ALEMBIC_INI.to_string()),
        ("env.py".to_string(), ENV_PY.to_string()),
    ];
    let mut prev: Option<String> = None;
    for (n, u) in units(planned).iter().enumerate() {
        let rev = revision(planned, u);
        // A JSON array of strings is a valid Python list literal.
        let up = serde_json::to_string_pretty(&unit_statements(planned, u, Direction::Apply))
            .expect("strings serialise");
        let one_way: Vec<&str> = u.steps.iter().filter(|s| s.one_way).map(|s| s.id.as_str()).collect();
        let down = if one_way.is_empty() {
            serde_json::to_string_pretty(&unit_statements(planned, u, Direction::Rollback))
                .expect("strings serialise")
        } else {
            "None".to_string()
        };
        let steps: Vec<&str> = u.steps.iter().map(|s| s.id.as_str()).collect();
        let text = format!(
            r#""""seqmig plan {short}: phase {phase}, steps {steps}

Revision ID: {rev}
Revises: {revises}
"""
from alembic import op

revision = "{rev}"
down_revision = {down_revision}
branch_labels = None
depends_on = None

# False for a step that cannot run in a transaction (CONCURRENTLY, ADD VALUE).
TRANSACTIONAL = {transactional}

UPGRADE = {up}

# None: the unit holds one-way steps ({one_way}); contract cannot be undone.
DOWNGRADE = {down}


def _run(statements):
    # The DB-API cursor: the SQL holds % and : that op.execute would read as parameters.
    cursor = op.get_bind().connection.cursor()
    for sql in statements:
        cursor.execute(sql)


def _in_context(statements):
    if TRANSACTIONAL:
        _run(statements)
    else:
        with op.get_context().autocommit_block():
            _run(statements)


def upgrade():
    _in_context(UPGRADE)


def downgrade():
    if DOWNGRADE is None:
        raise RuntimeError("revision {rev} is one-way (seqmig contract): it cannot be downgraded")
    _in_context(DOWNGRADE)
"#,
            short = plan.short_id(),
            phase = u.phase,
            steps = steps.join(", "),
            revises = prev.as_deref().unwrap_or(""),
            down_revision = prev.as_ref().map(|p| format!("\"{p}\"")).unwrap_or_else(|| "None".into()),
            transactional = if u.transactional { "True" } else { "False" },
            one_way = one_way.join(", "),
        );
        out.push((format!("versions/{:03}_{rev}.py", n + 1), text));
        prev = Some(rev);
    }
    out
}
