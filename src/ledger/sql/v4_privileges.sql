-- seqmig ledger: least privilege (issue 18.4; book/src/privileges.md).
--
-- The dual-write triggers run as whichever role writes the table, and they call
-- seqmig.flag(text). An application role has DML on its own tables and nothing in schema
-- seqmig, so the function runs with its owner's rights (SECURITY DEFINER), with the
-- search_path pinned so that no object of the caller's can stand in for a catalog or ledger
-- object (pg_temp last: it is searched first unless named). The only things PUBLIC keeps in
-- schema seqmig are USAGE on the schema (to name the function) and EXECUTE on the functions
-- the triggers call. Every ledger table, sequence and other function belongs to the ledger
-- owner alone.
--
-- Idempotent: running it twice gives the same privileges.

ALTER FUNCTION seqmig.flag(text) SECURITY DEFINER;
ALTER FUNCTION seqmig.flag(text) SET search_path = pg_catalog, seqmig, pg_temp;

REVOKE ALL ON SCHEMA seqmig FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA seqmig FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA seqmig FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA seqmig FROM PUBLIC;
-- Functions the role running this creates later in seqmig are not executable by PUBLIC
-- either (PostgreSQL grants EXECUTE to PUBLIC by default).
ALTER DEFAULT PRIVILEGES IN SCHEMA seqmig REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

GRANT USAGE ON SCHEMA seqmig TO PUBLIC;
-- Every function a seqmig trigger on an application table calls (templates/sql/*_trigger.sql).
GRANT EXECUTE ON FUNCTION seqmig.flag(text) TO PUBLIC;
