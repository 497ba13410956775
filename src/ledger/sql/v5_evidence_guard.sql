-- seqmig ledger: the gate's evidence is append-only and timed by the server (issue 18.5).
--
-- Evidence tables: phase_runs (when switch succeeded), soak_observations, approvals,
-- audit_log, soak_samples, client_samples, statement_samples.
--   * BEFORE INSERT: the time column comes from the server clock, whatever the client sent.
--   * BEFORE UPDATE: refused, except the two updates seqmig itself makes: a running phase
--     run is finished once (outcome, message, finished_at = server clock), and a repeated
--     approval refreshes approved_at (server clock).
--   * BEFORE DELETE (row) and BEFORE TRUNCATE (statement): refused.
-- The triggers are ordinary (ENABLE ORIGIN) triggers: they hold against every role,
-- including the tables' owner, through DML. A superuser can still bypass them
-- (session_replication_role = replica) and the owner can drop or disable them with DDL;
-- the gate's `evidence_intact` criterion checks that they are present and enabled. See
-- book/src/trust-model.md.
--
-- Idempotent: every object is created or replaced.

CREATE OR REPLACE FUNCTION seqmig.evidence_refuse() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'seqmig.% is append-only: % is refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'the gate''s evidence cannot be changed or erased; see the trust model in the seqmig book';
END
$$;

-- Insert times from the server clock. clock_timestamp(), not now(): rows keep the order of
-- their ids even when transactions that started earlier insert later.
CREATE OR REPLACE FUNCTION seqmig.evidence_stamp() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    CASE TG_TABLE_NAME
    WHEN 'phase_runs' THEN
        NEW.started_at := clock_timestamp();
        IF NEW.finished_at IS NOT NULL THEN
            NEW.finished_at := clock_timestamp();
        END IF;
    WHEN 'soak_observations' THEN
        NEW.observed_at := clock_timestamp();
    WHEN 'approvals' THEN
        NEW.approved_at := clock_timestamp();
    WHEN 'audit_log' THEN
        NEW.at := clock_timestamp();
    WHEN 'soak_samples' THEN
        NEW.taken_at := clock_timestamp();
    WHEN 'client_samples', 'statement_samples' THEN
        NEW.taken_at := coalesce((SELECT s.taken_at FROM seqmig.soak_samples s WHERE s.id = NEW.sample_id),
                                 clock_timestamp());
    END CASE;
    RETURN NEW;
END
$$;

-- The updates seqmig makes, and nothing else.
-- (One function per table: PL/pgSQL resolves NEW.field when the expression runs, so a
-- shared function could not name columns of both.)
CREATE OR REPLACE FUNCTION seqmig.evidence_update_phase_run() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.outcome = 'running' AND OLD.finished_at IS NULL
       AND NEW.id = OLD.id AND NEW.plan_id = OLD.plan_id AND NEW.phase = OLD.phase
       AND NEW.action = OLD.action AND NEW.actor = OLD.actor AND NEW.backend_pid = OLD.backend_pid
       AND NEW.application_name = OLD.application_name AND NEW.started_at = OLD.started_at THEN
        IF NEW.finished_at IS NOT NULL THEN
            NEW.finished_at := clock_timestamp();
        END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'seqmig.phase_runs is append-only: only a running phase run may be finished, once'
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'the gate''s evidence cannot be changed or erased; see the trust model in the seqmig book';
END
$$;

CREATE OR REPLACE FUNCTION seqmig.evidence_update_approval() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id = OLD.id AND NEW.plan_id = OLD.plan_id AND NEW.role = OLD.role
       AND NEW.actor = OLD.actor AND NEW.comment IS NOT DISTINCT FROM OLD.comment THEN
        NEW.approved_at := clock_timestamp();
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'seqmig.approvals is append-only: only a repeated approval may refresh its time'
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'the gate''s evidence cannot be changed or erased; see the trust model in the seqmig book';
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    -- Version 2 guarded audit_log with its own trigger; this one replaces it.
    DROP TRIGGER IF EXISTS audit_log_append_only ON seqmig.audit_log;
    FOREACH t IN ARRAY ARRAY['phase_runs', 'soak_observations', 'approvals', 'audit_log',
                             'soak_samples', 'client_samples', 'statement_samples'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS evidence_stamp ON seqmig.%I', t);
        EXECUTE format('DROP TRIGGER IF EXISTS evidence_update ON seqmig.%I', t);
        EXECUTE format('DROP TRIGGER IF EXISTS evidence_no_delete ON seqmig.%I', t);
        EXECUTE format('DROP TRIGGER IF EXISTS evidence_no_truncate ON seqmig.%I', t);
        EXECUTE format('CREATE TRIGGER evidence_stamp BEFORE INSERT ON seqmig.%I '
                       'FOR EACH ROW EXECUTE FUNCTION seqmig.evidence_stamp()', t);
        IF t = 'phase_runs' THEN
            CREATE TRIGGER evidence_update BEFORE UPDATE ON seqmig.phase_runs
                FOR EACH ROW EXECUTE FUNCTION seqmig.evidence_update_phase_run();
        ELSIF t = 'approvals' THEN
            CREATE TRIGGER evidence_update BEFORE UPDATE ON seqmig.approvals
                FOR EACH ROW EXECUTE FUNCTION seqmig.evidence_update_approval();
        ELSE
            EXECUTE format('CREATE TRIGGER evidence_update BEFORE UPDATE ON seqmig.%I '
                           'FOR EACH ROW EXECUTE FUNCTION seqmig.evidence_refuse()', t);
        END IF;
        EXECUTE format('CREATE TRIGGER evidence_no_delete BEFORE DELETE ON seqmig.%I '
                       'FOR EACH ROW EXECUTE FUNCTION seqmig.evidence_refuse()', t);
        EXECUTE format('CREATE TRIGGER evidence_no_truncate BEFORE TRUNCATE ON seqmig.%I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION seqmig.evidence_refuse()', t);
    END LOOP;
END
$$;
