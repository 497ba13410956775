//! Every lint code: severity, family, the lock it is about, and the book text. The help of
//! each finding is `help` unless the rule has something more specific to say.

use crate::finding::{FindingCode, Severity};
use Severity::{Error, Warning};

#[derive(Debug, Clone, Copy)]
pub struct RuleInfo {
    pub code: FindingCode,
    pub severity: Severity,
    pub family: &'static str,
    /// One line: what the rule catches.
    pub what: &'static str,
    /// Why it matters: the lock, the rewrite, what breaks.
    pub why: &'static str,
    /// The remedy, as the finding's `help`.
    pub help: &'static str,
    /// The safe recipe as SQL (may be empty).
    pub safe: &'static str,
}

pub fn rule(code: FindingCode) -> Option<&'static RuleInfo> {
    RULES.iter().find(|r| r.code == code)
}

impl RuleInfo {
    /// The rule's book page (`book/src/lints/<code>.md`); a test keeps the files equal to it.
    pub fn book_page(&self) -> String {
        let severity = match self.severity {
            Severity::Error => "error (exit 1)",
            Severity::Warning => "warning",
        };
        let mut page = format!(
            "# `{code}`\n\n**Severity:** {severity} · **Family:** {family}\n\n## What\n\n{what}\n\n## Why\n\n{why}\n\n## Instead\n\n{help}.\n",
            code = self.code,
            family = self.family,
            what = self.what,
            why = self.why,
            help = capitalise(self.help),
        );
        if !self.safe.is_empty() {
            page.push_str(&format!("\n```sql\n{}\n```\n", self.safe));
        }
        page.push_str(&format!(
            "\n## Silencing it\n\nWhen you have checked that the statement is safe here, put `-- seqmig:ignore {code}` on the line before the statement (or after it, on its last line), `-- seqmig:ignore-file {code}` anywhere in the file, or `allow = [\"{code}\"]` under `[lint]` in `seqmig.toml`. See [the linter](../lint.md).\n",
            code = self.code
        ));
        page
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|h| h.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

pub const DATA: &str = "data loss";
pub const COMPAT: &str = "breaking the previous release";
const LOCKS: &str = "locks and rewrites";
const OPS: &str = "operations";
const HYGIENE: &str = "hygiene";

pub const RULES: &[RuleInfo] = &[
    // ── data loss ──────────────────────────────────────────────────────────────────────
    RuleInfo {
        code: FindingCode::DropDatabase,
        severity: Error,
        family: DATA,
        what: "`DROP DATABASE` in a migration.",
        why: "Every table and every row of the database is gone, with no undo short of a restore. A migration file is the wrong place for it.",
        help: "drop databases by hand, after a backup, never from a migration",
        safe: "",
    },
    RuleInfo {
        code: FindingCode::DropSchema,
        severity: Error,
        family: DATA,
        what: "`DROP SCHEMA`.",
        why: "All objects in the schema and their data are deleted (with `CASCADE`, also everything that depends on them elsewhere). The previous release, still running while the migration applies, fails on every query that touches it.",
        help: "stop using the schema in a release first, keep it for a soak period, then drop it in a separate, reviewed migration (or let `seqmig plan` sequence the drop behind its gate)",
        safe: "",
    },
    RuleInfo {
        code: FindingCode::DropTable,
        severity: Error,
        family: DATA,
        what: "`DROP TABLE` of a table this file did not create.",
        why: "The rows are gone and the previous release fails on every query naming the table. `DROP TABLE` also takes an ACCESS EXCLUSIVE lock, queueing every reader behind it.",
        help: "ship a release that no longer reads or writes the table, wait for a soak period, then drop it in its own migration (`seqmig plan` does this behind the soak gate)",
        safe: "-- release N: the application stops using the table\n-- release N+1, after the soak period:\nDROP TABLE old_events;  -- seqmig:ignore drop-table",
    },
    RuleInfo {
        code: FindingCode::DropColumn,
        severity: Error,
        family: DATA,
        what: "`ALTER TABLE … DROP COLUMN` on a table this file did not create.",
        why: "The column's data is lost, and the previous release (and any ORM that caches the column list) fails on queries naming it. Takes an ACCESS EXCLUSIVE lock.",
        help: "remove every use of the column in one release (ignore it in the ORM), then drop it in a later migration",
        safe: "-- release N: the application ignores the column\n-- release N+1:\nALTER TABLE users DROP COLUMN legacy_flag;  -- seqmig:ignore drop-column",
    },
    RuleInfo {
        code: FindingCode::TruncateCascade,
        severity: Error,
        family: DATA,
        what: "`TRUNCATE … CASCADE`.",
        why: "`CASCADE` also empties every table that references the truncated ones through a foreign key, recursively: tables nobody named in the migration lose all their rows.",
        help: "truncate exactly the tables you mean, listed by name, without CASCADE",
        safe: "TRUNCATE import_staging;",
    },
    RuleInfo {
        code: FindingCode::DropForeignKey,
        severity: Warning,
        family: DATA,
        what: "Dropping a foreign-key constraint.",
        why: "Once it is gone, nothing stops orphaned rows: the previous release may delete parents whose children stay behind, and re-adding the constraint later fails until the data is repaired.",
        help: "drop a foreign key only together with the relationship itself; if it is being replaced, add the new constraint (NOT VALID, then VALIDATE) before dropping the old one",
        safe: "",
    },
    // ── breaking the previous release ──────────────────────────────────────────────────
    RuleInfo {
        code: FindingCode::RenameTable,
        severity: Error,
        family: COMPAT,
        what: "`ALTER TABLE … RENAME TO` on an existing table, with no view under the old name created in the same file.",
        why: "The previous release, still serving traffic during and after the deploy, queries the old name and fails until it is replaced.",
        help: "rename in two releases: create an updatable view under the old name in the same transaction as the rename, switch the application, then drop the view",
        safe: "BEGIN;\nALTER TABLE people RENAME TO users;\nCREATE VIEW people AS SELECT * FROM users;\nCOMMIT;",
    },
    RuleInfo {
        code: FindingCode::RenameColumn,
        severity: Error,
        family: COMPAT,
        what: "`ALTER TABLE … RENAME COLUMN` on an existing table.",
        why: "The previous release reads and writes the old column name and fails as soon as the rename commits.",
        help: "add the new column, keep both in sync with a trigger, backfill, switch the application, then drop the old column (`seqmig plan` with a [[rename]] hint writes these steps)",
        safe: "ALTER TABLE users ADD COLUMN full_name text;\n-- dual-write trigger, backfill, switch, then drop the old column later",
    },
    RuleInfo {
        code: FindingCode::RenameSchema,
        severity: Error,
        family: COMPAT,
        what: "`ALTER SCHEMA … RENAME TO`.",
        why: "Every qualified reference of the previous release to the old schema name breaks at once.",
        help: "create the new schema and move objects one at a time with compatibility views, or keep the schema name",
        safe: "",
    },
    RuleInfo {
        code: FindingCode::RenameEnumValue,
        severity: Error,
        family: COMPAT,
        what: "`ALTER TYPE … RENAME VALUE`.",
        why: "The previous release keeps writing and comparing the old label; its inserts fail and its comparisons silently stop matching.",
        help: "add the new value (ALTER TYPE … ADD VALUE), migrate rows and code to it over a release, and stop using the old value before retiring it",
        safe: "ALTER TYPE order_state ADD VALUE IF NOT EXISTS 'shipped';",
    },
    RuleInfo {
        code: FindingCode::ChangeColumnType,
        severity: Error,
        family: COMPAT,
        what: "`ALTER COLUMN … TYPE` on an existing column.",
        why: "Unless the change is binary-compatible, PostgreSQL rewrites the table and rebuilds its indexes under an ACCESS EXCLUSIVE lock, blocking every read and write for the whole rewrite; the previous release also keeps reading and writing the old type. A migration file does not say what the old type was, so the linter cannot tell a widening (`varchar(n)` to a larger `n` or `text`, more `numeric` precision: no rewrite) from a rewrite; suppress the finding on a verified widening.",
        help: "add a new column of the new type, keep it in sync with a trigger, backfill in batches, switch readers, then drop the old column (`seqmig plan` with a [[transform]] hint writes these steps)",
        safe: "-- a verified widening (varchar(100) → varchar(200)) needs no rewrite:\nALTER TABLE users ALTER COLUMN name TYPE varchar(200);  -- seqmig:ignore change-column-type",
    },
    RuleInfo {
        code: FindingCode::AddRequiredColumn,
        severity: Error,
        family: COMPAT,
        what: "`ADD COLUMN … NOT NULL` without a `DEFAULT` on an existing table.",
        why: "The statement fails on any table that has rows, and once it succeeds the previous release, which does not know the column, can no longer insert.",
        help: "add the column nullable (or with a constant DEFAULT), backfill it in batches, then add NOT NULL through a validated CHECK constraint",
        safe: "ALTER TABLE users ADD COLUMN plan text NOT NULL DEFAULT 'free';",
    },
    RuleInfo {
        code: FindingCode::DropNotNull,
        severity: Warning,
        family: COMPAT,
        what: "`ALTER COLUMN … DROP NOT NULL` on an existing table.",
        why: "New writers may store NULLs that the previous release's readers do not expect (a non-optional field in its model). The lock is brief, the risk is in the code.",
        help: "make sure every reader of the previous release tolerates NULL in this column before dropping the constraint",
        safe: "",
    },
    RuleInfo {
        code: FindingCode::ChangeColumnDefault,
        severity: Warning,
        family: COMPAT,
        what: "`ALTER COLUMN … SET DEFAULT` / `DROP DEFAULT` on an existing column.",
        why: "The previous release keeps inserting rows without the column and silently gets the new default (or NULL), which may not be what it meant. Some ORMs also cache defaults.",
        help: "check that rows inserted by the previous release are still correct with the new default, or change the default in the release after the code change",
        safe: "",
    },
    RuleInfo {
        code: FindingCode::AddJsonColumn,
        severity: Error,
        family: COMPAT,
        what: "Adding a `json` column to an existing table.",
        why: "`json` has no equality operator, so existing `SELECT DISTINCT`, `UNION` and `GROUP BY` queries of the previous release over `*` start failing with \"could not identify an equality operator for type json\".",
        help: "use jsonb",
        safe: "ALTER TABLE events ADD COLUMN payload jsonb;",
    },
    // ── locks and rewrites ─────────────────────────────────────────────────────────────
    RuleInfo {
        code: FindingCode::CreateIndexNonConcurrently,
        severity: Error,
        family: LOCKS,
        what: "`CREATE INDEX` without `CONCURRENTLY` on an existing table.",
        why: "A plain `CREATE INDEX` takes a SHARE lock: every INSERT, UPDATE and DELETE on the table waits until the index is built, which on a large table is minutes.",
        help: "use CREATE INDEX CONCURRENTLY, outside a transaction block",
        safe: "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id);",
    },
    RuleInfo {
        code: FindingCode::DropIndexNonConcurrently,
        severity: Error,
        family: LOCKS,
        what: "`DROP INDEX` without `CONCURRENTLY`.",
        why: "A plain `DROP INDEX` takes an ACCESS EXCLUSIVE lock on the index's table: it waits behind every running query and blocks all reads and writes while it waits.",
        help: "use DROP INDEX CONCURRENTLY, outside a transaction block",
        safe: "DROP INDEX CONCURRENTLY IF EXISTS orders_old_idx;",
    },
    RuleInfo {
        code: FindingCode::ReindexNonConcurrently,
        severity: Error,
        family: LOCKS,
        what: "`REINDEX` without `CONCURRENTLY`.",
        why: "A plain `REINDEX` blocks writes to the table (and reads that would use the index) for the whole rebuild.",
        help: "use REINDEX … CONCURRENTLY (PostgreSQL 12+), outside a transaction block",
        safe: "REINDEX INDEX CONCURRENTLY orders_customer_idx;",
    },
    RuleInfo {
        code: FindingCode::ConcurrentlyInTransaction,
        severity: Error,
        family: LOCKS,
        what: "A `CONCURRENTLY` operation inside a transaction block.",
        why: "`CREATE/DROP INDEX CONCURRENTLY`, `REINDEX CONCURRENTLY` and `DETACH PARTITION CONCURRENTLY` cannot run inside a transaction block: PostgreSQL rejects the statement and the migration fails.",
        help: "run the statement on its own, outside BEGIN … COMMIT (and tell your migration runner not to wrap this file in a transaction)",
        safe: "CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);",
    },
    RuleInfo {
        code: FindingCode::AddUniqueWithoutIndex,
        severity: Error,
        family: LOCKS,
        what: "`ADD CONSTRAINT … UNIQUE` or `PRIMARY KEY` without `USING INDEX` on an existing table.",
        why: "The constraint builds its index while holding an ACCESS EXCLUSIVE lock: no reads or writes for the whole build.",
        help: "build the index first with CREATE UNIQUE INDEX CONCURRENTLY, then attach it: ALTER TABLE … ADD CONSTRAINT … UNIQUE USING INDEX …",
        safe: "CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);\nALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;",
    },
    RuleInfo {
        code: FindingCode::PrimaryKeyNullableColumn,
        severity: Error,
        family: LOCKS,
        what: "A primary key added over columns the migrations left nullable (added without NOT NULL, or after DROP NOT NULL). Columns of existing tables whose nullability the files do not show are not guessed at.",
        why: "Adding the primary key sets NOT NULL on its columns, which scans the whole table under the ACCESS EXCLUSIVE lock the ALTER already holds.",
        help: "make the columns NOT NULL first (CHECK (col IS NOT NULL) NOT VALID, VALIDATE, SET NOT NULL), then add the primary key USING INDEX",
        safe: "ALTER TABLE t ADD CONSTRAINT t_id_nn CHECK (id IS NOT NULL) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT t_id_nn;\nALTER TABLE t ALTER COLUMN id SET NOT NULL;\nCREATE UNIQUE INDEX CONCURRENTLY t_pkey ON t (id);\nALTER TABLE t ADD CONSTRAINT t_pkey PRIMARY KEY USING INDEX t_pkey;",
    },
    RuleInfo {
        code: FindingCode::ExclusionConstraint,
        severity: Error,
        family: LOCKS,
        what: "`ADD CONSTRAINT … EXCLUDE` on an existing table.",
        why: "The exclusion constraint builds its index under an ACCESS EXCLUSIVE lock, and unlike UNIQUE there is no `USING INDEX` or `NOT VALID` escape.",
        help: "add exclusion constraints only to new or small tables, or in a maintenance window; consider a trigger-based check instead",
        safe: "",
    },
    RuleInfo {
        code: FindingCode::CheckWithoutNotValid,
        severity: Error,
        family: LOCKS,
        what: "`ADD CONSTRAINT … CHECK` without `NOT VALID` on an existing table.",
        why: "PostgreSQL checks every existing row while holding an ACCESS EXCLUSIVE lock: no reads or writes until the scan ends.",
        help: "add the constraint NOT VALID (instant), then VALIDATE CONSTRAINT in a separate transaction (SHARE UPDATE EXCLUSIVE: reads and writes continue)",
        safe: "ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;",
    },
    RuleInfo {
        code: FindingCode::ForeignKeyWithoutNotValid,
        severity: Error,
        family: LOCKS,
        what: "`ADD CONSTRAINT … FOREIGN KEY` without `NOT VALID` on an existing table.",
        why: "Every row is checked against the referenced table while both tables hold a SHARE ROW EXCLUSIVE lock: writes to both stop until the scan ends.",
        help: "add the foreign key NOT VALID, then VALIDATE CONSTRAINT in a separate transaction",
        safe: "ALTER TABLE orders ADD CONSTRAINT orders_customer_fkey FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fkey;",
    },
    RuleInfo {
        code: FindingCode::ValidateInSameTransaction,
        severity: Error,
        family: LOCKS,
        what: "`VALIDATE CONSTRAINT` in the same transaction that added the constraint `NOT VALID`.",
        why: "The ADD took an ACCESS EXCLUSIVE (CHECK) or SHARE ROW EXCLUSIVE (foreign key) lock that is held until COMMIT, so the validation scan runs under it: `NOT VALID` bought nothing.",
        help: "commit after adding the constraint NOT VALID and validate it in a separate transaction",
        safe: "BEGIN;\nALTER TABLE orders ADD CONSTRAINT c CHECK (total >= 0) NOT VALID;\nCOMMIT;\nALTER TABLE orders VALIDATE CONSTRAINT c;",
    },
    RuleInfo {
        code: FindingCode::SetNotNull,
        severity: Error,
        family: LOCKS,
        what: "`ALTER COLUMN … SET NOT NULL` without a validated `CHECK (col IS NOT NULL)`.",
        why: "PostgreSQL scans the whole table to prove there are no NULLs while holding an ACCESS EXCLUSIVE lock. It also breaks the previous release if it still inserts rows without the column.",
        help: "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it in a separate transaction, then SET NOT NULL (PostgreSQL 12+ skips the scan) and drop the check",
        safe: "ALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID;\nALTER TABLE users VALIDATE CONSTRAINT users_email_nn;\nALTER TABLE users ALTER COLUMN email SET NOT NULL;\nALTER TABLE users DROP CONSTRAINT users_email_nn;",
    },
    RuleInfo {
        code: FindingCode::AddColumnVolatileDefault,
        severity: Error,
        family: LOCKS,
        what: "`ADD COLUMN` with a volatile default (`random()`, `gen_random_uuid()`, `clock_timestamp()`, `nextval()` …) on an existing table — or any default before PostgreSQL 11.",
        why: "A volatile default must be computed per row, so PostgreSQL rewrites the whole table under an ACCESS EXCLUSIVE lock. Constant and stable defaults (`now()`) are stored once in the catalog since PostgreSQL 11 and are instant.",
        help: "add the column without a default (or with a constant one), set the default for new rows, and backfill existing rows in batches",
        safe: "ALTER TABLE users ADD COLUMN token uuid;\nALTER TABLE users ALTER COLUMN token SET DEFAULT gen_random_uuid();\n-- backfill existing rows in batches",
    },
    RuleInfo {
        code: FindingCode::AddColumnSerial,
        severity: Error,
        family: LOCKS,
        what: "`ADD COLUMN … serial/bigserial` on an existing table.",
        why: "The serial default calls `nextval()` for every existing row: a full table rewrite under an ACCESS EXCLUSIVE lock.",
        help: "add a plain bigint column, attach a sequence default for new rows, and backfill existing rows in batches",
        safe: "",
    },
    RuleInfo {
        code: FindingCode::AddColumnIdentity,
        severity: Error,
        family: LOCKS,
        what: "Adding an identity column (`GENERATED … AS IDENTITY`) to an existing table.",
        why: "Every existing row gets a value from the sequence: the table is rewritten under an ACCESS EXCLUSIVE lock.",
        help: "add a plain bigint column, backfill it in batches from a sequence, then attach the identity (ALTER COLUMN … ADD GENERATED … AS IDENTITY only after no NULLs remain)",
        safe: "",
    },
    RuleInfo {
        code: FindingCode::AddColumnGeneratedStored,
        severity: Error,
        family: LOCKS,
        what: "Adding a `GENERATED ALWAYS AS (…) STORED` column to an existing table.",
        why: "The expression is computed and stored for every existing row: a full rewrite under an ACCESS EXCLUSIVE lock.",
        help: "add a plain column filled by a trigger and backfilled in batches, or a VIRTUAL generated column on PostgreSQL 18",
        safe: "",
    },
    RuleInfo {
        code: FindingCode::SetTablePersistence,
        severity: Error,
        family: LOCKS,
        what: "`ALTER TABLE … SET LOGGED` / `SET UNLOGGED`.",
        why: "The table is rewritten (and for SET LOGGED written to WAL in full) under an ACCESS EXCLUSIVE lock.",
        help: "create the table with the persistence it needs, or switch it in a maintenance window",
        safe: "",
    },
    RuleInfo {
        code: FindingCode::SetTablespace,
        severity: Error,
        family: LOCKS,
        what: "`ALTER TABLE … SET TABLESPACE`.",
        why: "The table's files are copied to the new tablespace under an ACCESS EXCLUSIVE lock.",
        help: "move large tables with a logical copy (pg_repack --tablespace) or in a maintenance window",
        safe: "",
    },
    RuleInfo {
        code: FindingCode::VacuumFull,
        severity: Error,
        family: LOCKS,
        what: "`VACUUM FULL`.",
        why: "Rewrites the table under an ACCESS EXCLUSIVE lock, and needs room for a second copy of it.",
        help: "use plain VACUUM, or pg_repack / pg_squeeze to reclaim space online",
        safe: "VACUUM (ANALYZE) orders;",
    },
    RuleInfo {
        code: FindingCode::Cluster,
        severity: Error,
        family: LOCKS,
        what: "`CLUSTER`.",
        why: "Rewrites the table in index order under an ACCESS EXCLUSIVE lock.",
        help: "use pg_repack --order-by to reorder a table online",
        safe: "",
    },
    RuleInfo {
        code: FindingCode::DetachPartitionNonConcurrently,
        severity: Error,
        family: LOCKS,
        what: "`ALTER TABLE … DETACH PARTITION` without `CONCURRENTLY`.",
        why: "A plain detach takes an ACCESS EXCLUSIVE lock on the partitioned table: every query on any partition waits.",
        help: "use DETACH PARTITION … CONCURRENTLY (PostgreSQL 14+), outside a transaction block",
        safe: "ALTER TABLE measurements DETACH PARTITION measurements_2019 CONCURRENTLY;",
    },
    RuleInfo {
        code: FindingCode::ConcurrentIndexOnPartitionedTable,
        severity: Error,
        family: LOCKS,
        what: "`CREATE INDEX CONCURRENTLY` on a partitioned table (one the migrations create with `PARTITION BY`).",
        why: "PostgreSQL refuses it (SQLSTATE 0A000, cannot create index on partitioned table concurrently): the migration fails. A plain CREATE INDEX on the parent holds a SHARE lock on every partition while all of them build.",
        help: "create the index ON ONLY the parent (catalog only), build each partition's index CONCURRENTLY, then ALTER INDEX … ATTACH PARTITION each one",
        safe: "CREATE INDEX m_at_idx ON ONLY m (at);\nCREATE INDEX CONCURRENTLY m_2024_at_idx ON m_2024 (at);\nALTER INDEX m_at_idx ATTACH PARTITION m_2024_at_idx;",
    },
    RuleInfo {
        code: FindingCode::AttachPartitionWithoutCheck,
        severity: Error,
        family: LOCKS,
        what: "`ATTACH PARTITION` of an existing table without a validated CHECK constraint matching the partition bound.",
        why: "PostgreSQL scans the whole new partition to prove every row fits the bound, holding an ACCESS EXCLUSIVE lock on it (and SHARE UPDATE EXCLUSIVE on the parent).",
        help: "add a CHECK constraint that implies the partition bound NOT VALID, VALIDATE it, then ATTACH (the scan is skipped), then drop the check",
        safe: "ALTER TABLE m_2024 ADD CONSTRAINT m_2024_bound CHECK (at >= '2024-01-01' AND at < '2025-01-01') NOT VALID;\nALTER TABLE m_2024 VALIDATE CONSTRAINT m_2024_bound;\nALTER TABLE m ATTACH PARTITION m_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');",
    },
    RuleInfo {
        code: FindingCode::AccessExclusiveHeld,
        severity: Warning,
        family: LOCKS,
        what: "More statements in a transaction after one took an ACCESS EXCLUSIVE lock on an existing table.",
        why: "The lock is held until COMMIT, so every later statement in the transaction lengthens the time all reads and writes of the table wait — and the queue behind it grows.",
        help: "commit right after the statement that takes the ACCESS EXCLUSIVE lock, or move it to the end of the transaction",
        safe: "",
    },
    RuleInfo {
        code: FindingCode::DomainConstraint,
        severity: Error,
        family: LOCKS,
        what: "`ALTER DOMAIN … ADD CONSTRAINT` without `NOT VALID`.",
        why: "PostgreSQL checks every column of every table that uses the domain, locking them while it scans.",
        help: "add the domain constraint NOT VALID, then ALTER DOMAIN … VALIDATE CONSTRAINT separately",
        safe: "ALTER DOMAIN positive_int ADD CONSTRAINT positive CHECK (VALUE > 0) NOT VALID;",
    },
    // ── operations ─────────────────────────────────────────────────────────────────────
    RuleInfo {
        code: FindingCode::MissingLockTimeout,
        severity: Warning,
        family: OPS,
        what: "DDL that locks an existing table with no `SET lock_timeout` earlier in the file.",
        why: "A DDL statement waiting for its lock (behind one long transaction) blocks every query that arrives after it: one slow report turns into an outage. A short lock_timeout makes the migration fail and retry instead.",
        help: "start the file with SET lock_timeout = '2s' (and retry on failure); seqmig apply does this for you",
        safe: "SET lock_timeout = '2s';\nSET statement_timeout = '15min';",
    },
    RuleInfo {
        code: FindingCode::MissingStatementTimeout,
        severity: Warning,
        family: OPS,
        what: "DDL that locks an existing table with no `SET statement_timeout` earlier in the file.",
        why: "Without a bound, a statement that turns out to scan or rewrite a large table holds its lock for as long as that takes.",
        help: "set statement_timeout before risky DDL (SET statement_timeout = '15min'), sized to what the statement should take",
        safe: "SET lock_timeout = '2s';\nSET statement_timeout = '15min';",
    },
    RuleInfo {
        code: FindingCode::UnclosedTransaction,
        severity: Error,
        family: OPS,
        what: "`BEGIN` with no matching `COMMIT` by the end of the file.",
        why: "Depending on the runner the work is rolled back silently, or the session stays open holding every lock the transaction took.",
        help: "end the transaction with COMMIT in the same file",
        safe: "BEGIN;\n-- …\nCOMMIT;",
    },
    RuleInfo {
        code: FindingCode::NestedTransaction,
        severity: Error,
        family: OPS,
        what: "`BEGIN` while a transaction is already open (also: the runner already wraps the file).",
        why: "PostgreSQL ignores the inner BEGIN with a warning, so the first COMMIT commits everything: the file's transaction boundaries are not what they look like.",
        help: "remove the inner BEGIN, or commit the open transaction first; with a runner that wraps files, write no BEGIN at all",
        safe: "",
    },
    RuleInfo {
        code: FindingCode::IdentifierTooLong,
        severity: Error,
        family: OPS,
        what: "An identifier longer than 63 bytes.",
        why: "PostgreSQL silently truncates it to 63 bytes, so two long names can become the same name, and later statements spelled in full may miss the object.",
        help: "choose a name of at most 63 bytes",
        safe: "",
    },
    RuleInfo {
        code: FindingCode::ForeignKeyWithoutIndex,
        severity: Warning,
        family: OPS,
        what: "A foreign key whose referencing columns have no index created in the same file.",
        why: "Every DELETE or key UPDATE on the referenced table scans the referencing table to check for children, and joins along the key cannot use an index.",
        help: "create an index on the referencing columns (CONCURRENTLY on an existing table)",
        safe: "CREATE INDEX CONCURRENTLY orders_customer_id_idx ON orders (customer_id);",
    },
    RuleInfo {
        code: FindingCode::UnbatchedDml,
        severity: Warning,
        family: OPS,
        what: "An `UPDATE` or `DELETE` on an existing table without a batching predicate (no key range, no LIMIT).",
        why: "One statement touches every matching row in one transaction: row locks on all of them, a burst of WAL and replica lag, and bloat that autovacuum must clean up.",
        help: "update in batches by key range (WHERE id >= $1 AND id < $2) in separate transactions, or let seqmig's backfill do it",
        safe: "UPDATE users SET plan = 'free' WHERE id >= 1 AND id < 10001 AND plan IS NULL;",
    },
    // ── hygiene ────────────────────────────────────────────────────────────────────────
    RuleInfo {
        code: FindingCode::PreferBigint,
        severity: Warning,
        family: HYGIENE,
        what: "An `integer`/`smallint` (or `serial`) primary-key or identity column.",
        why: "A 32-bit key runs out at 2,147,483,647, and changing the type later rewrites the table and every referencing table.",
        help: "use bigint (bigint GENERATED … AS IDENTITY) for keys",
        safe: "CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);",
    },
    RuleInfo {
        code: FindingCode::PreferIdentity,
        severity: Warning,
        family: HYGIENE,
        what: "A `serial`/`bigserial` column.",
        why: "Serial columns are a default plus a loosely owned sequence: permissions, dumps and copies of the table behave surprisingly. Identity columns are the SQL-standard replacement.",
        help: "use bigint GENERATED BY DEFAULT AS IDENTITY (or ALWAYS)",
        safe: "CREATE TABLE t (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY);",
    },
    RuleInfo {
        code: FindingCode::PreferText,
        severity: Warning,
        family: HYGIENE,
        what: "A `varchar(n)` or `char(n)` column.",
        why: "The length limit is a constraint in disguise: raising it is cheap, but lowering it rewrites the table, and `char(n)` pads with blanks. A CHECK on `length()` says the same and can be changed online.",
        help: "use text, with a CHECK (length(col) <= n) constraint if a limit is needed",
        safe: "CREATE TABLE t (name text CHECK (length(name) <= 200));",
    },
    RuleInfo {
        code: FindingCode::PreferTimestamptz,
        severity: Warning,
        family: HYGIENE,
        what: "A `timestamp` (without time zone) column.",
        why: "`timestamp` stores wall-clock time with no zone: the same instant is written differently by servers in different zones, and arithmetic across DST changes is wrong.",
        help: "use timestamptz (timestamp with time zone)",
        safe: "CREATE TABLE t (created_at timestamptz NOT NULL DEFAULT now());",
    },
    RuleInfo {
        code: FindingCode::PreferJsonb,
        severity: Warning,
        family: HYGIENE,
        what: "A `json` column in a new table.",
        why: "`json` stores the text as given, has no equality operator and cannot be indexed with GIN; `jsonb` is what almost every application wants.",
        help: "use jsonb",
        safe: "CREATE TABLE t (payload jsonb);",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_kebab_case() {
        let mut seen = std::collections::BTreeSet::new();
        for r in RULES {
            assert!(seen.insert(r.code), "duplicate code {}", r.code);
            assert!(r.help.chars().next().is_some_and(|c| !c.is_ascii_uppercase()), "{}", r.code);
        }
    }
}
