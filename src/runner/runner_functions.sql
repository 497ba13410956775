-- seqmig: what phase files run by other tools (psql, sqitch, Alembic, …) call, so that the
-- ledger records their steps as `seqmig apply` would and `seqmig status` tells the truth
-- whichever tool ran the SQL; and the guard in front of contract (book/src/runners/).
--
-- Idempotent (CREATE OR REPLACE); run under the ledger's upgrade lock by every phase file.

-- Starts a run of `phase` of a stored plan, refusing it while an earlier phase of the plan
-- has a step not applied (the order `seqmig apply` enforces). Returns the phase run id.
CREATE OR REPLACE FUNCTION seqmig.runner_begin(p_plan text, p_phase text, p_action text DEFAULT 'apply')
RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    phases constant text[] := ARRAY['expand', 'dual_write', 'backfill', 'switch', 'contract'];
    missing text;
    run_id bigint;
BEGIN
    IF p_action = 'apply' THEN
        SELECT string_agg(st->>'phase' || ' step ' || (st->>'id'), ', ') INTO missing
        FROM seqmig.plans p, json_array_elements(p.plan_json->'steps') st
        WHERE p.id = p_plan
          AND array_position(phases, st->>'phase') < array_position(phases, p_phase)
          AND NOT EXISTS (
              SELECT 1 FROM (SELECT s.action, s.outcome FROM seqmig.step_runs s
                             WHERE s.plan_id = p_plan AND s.step_id = st->>'id'
                             ORDER BY s.id DESC LIMIT 1) last
              WHERE last.action = 'apply' AND last.outcome = 'ok');
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'phase % of plan % cannot run yet: earlier steps are not applied (%)',
                p_phase, p_plan, missing
                USING HINT = 'run the earlier phase files first; ''seqmig status --plan-id ' || p_plan || ''' shows where the plan stands';
        END IF;
    END IF;
    UPDATE seqmig.plans SET state = 'active', updated_at = now() WHERE id = p_plan AND state <> 'active';
    INSERT INTO seqmig.phase_runs (plan_id, phase, action, actor)
    VALUES (p_plan, p_phase, p_action, session_user || ' (' || coalesce(nullif(current_setting('application_name'), ''), 'migration runner') || ')')
    RETURNING id INTO run_id;
    RETURN run_id;
END
$fn$;

-- Records one step as done, in the phase run `runner_begin` started last for this plan and
-- phase. Called right after the step's SQL, in its transaction when it has one.
CREATE OR REPLACE FUNCTION seqmig.runner_step(p_plan text, p_phase text, p_step text, p_action text DEFAULT 'apply')
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    run_id bigint;
BEGIN
    SELECT id INTO run_id FROM seqmig.phase_runs
    WHERE plan_id = p_plan AND phase = p_phase AND action = p_action ORDER BY id DESC LIMIT 1;
    IF run_id IS NULL THEN
        run_id := seqmig.runner_begin(p_plan, p_phase, p_action);
    END IF;
    INSERT INTO seqmig.step_runs (phase_run_id, plan_id, step_id, phase, action, actor, outcome,
                                  finished_at, duration_ms, attempts, message)
    VALUES (run_id, p_plan, p_step, p_phase, p_action,
            session_user || ' (' || coalesce(nullif(current_setting('application_name'), ''), 'migration runner') || ')', 'ok',
            clock_timestamp(), 0, 1, 'run by a migration runner from a seqmig phase file');
END
$fn$;

-- Finishes the phase run; the plan is complete when every step's last record is an apply,
-- rolled back when none is.
CREATE OR REPLACE FUNCTION seqmig.runner_end(p_plan text, p_phase text, p_action text DEFAULT 'apply')
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    total integer;
    applied integer;
BEGIN
    UPDATE seqmig.phase_runs SET outcome = 'ok', finished_at = clock_timestamp()
    WHERE id = (SELECT id FROM seqmig.phase_runs
                WHERE plan_id = p_plan AND phase = p_phase AND action = p_action
                ORDER BY id DESC LIMIT 1)
      AND outcome = 'running';
    SELECT count(*), count(*) FILTER (WHERE last.action = 'apply' AND last.outcome = 'ok')
    INTO total, applied
    FROM seqmig.plans p
    CROSS JOIN json_array_elements(p.plan_json->'steps') st
    LEFT JOIN LATERAL (SELECT s.action, s.outcome FROM seqmig.step_runs s
                       WHERE s.plan_id = p_plan AND s.step_id = st->>'id'
                       ORDER BY s.id DESC LIMIT 1) last ON true
    WHERE p.id = p_plan;
    IF total > 0 AND applied = total THEN
        UPDATE seqmig.plans SET state = 'complete', updated_at = now() WHERE id = p_plan;
    ELSIF applied = 0 THEN
        UPDATE seqmig.plans SET state = 'rolled_back', updated_at = now() WHERE id = p_plan;
    ELSE
        UPDATE seqmig.plans SET state = 'active', updated_at = now() WHERE id = p_plan AND state <> 'active';
    END IF;
END
$fn$;

-- The guard at the top of every contract file. The gate is evaluated by the seqmig binary
-- (`seqmig gate --record`), which appends its verdict to the append-only, server-timed
-- seqmig.audit_log; this reads the latest verdict for the plan. A verdict counts only when
-- no phase of the plan was rolled back after it. `seqmig gate --record --break-glass
-- --reason …` records an audited bypass, which counts like an open verdict.
-- Raises (so the runner's transaction changes nothing) unless the gate is open.
CREATE OR REPLACE FUNCTION seqmig.assert_gate_open(p_plan text)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    v record;
    failing text;
    short constant text := left(replace(p_plan, 'sha256:', ''), 12);
BEGIN
    SELECT a.id, a.event, a.at, a.detail INTO v FROM seqmig.audit_log a
    WHERE a.plan_id = p_plan AND a.event IN ('gate_verdict', 'break_glass', 'gate_open')
      AND NOT EXISTS (SELECT 1 FROM seqmig.phase_runs r
                      WHERE r.plan_id = p_plan AND r.action = 'rollback' AND r.started_at > a.at)
    ORDER BY a.id DESC LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the soak gate in front of contract is closed for plan %: no gate verdict is recorded; run ''seqmig gate --plan-id %'' to see the criteria, then ''seqmig gate --record --plan-id %'' once they pass', short, short, short
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'a verdict counts until a phase of the plan is rolled back; break-glass: seqmig gate --record --break-glass --reason ''…''';
    END IF;
    IF v.event = 'gate_verdict' AND NOT coalesce((v.detail->>'open')::boolean, false) THEN
        SELECT string_agg(c->>'criterion' || ' (' || (c->>'evidence') || ')', '; ') INTO failing
        FROM jsonb_array_elements(v.detail->'blocking') c;
        RAISE EXCEPTION 'the soak gate in front of contract is closed for plan %: missing %; run ''seqmig gate --plan-id %'' to see the criteria, then ''seqmig gate --record --plan-id %'' once they pass', short, coalesce(failing, 'criteria'), short, short
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'a verdict counts until a phase of the plan is rolled back; break-glass: seqmig gate --record --break-glass --reason ''…''';
    END IF;
END
$fn$;

REVOKE ALL ON FUNCTION seqmig.runner_begin(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION seqmig.runner_step(text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION seqmig.runner_end(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION seqmig.assert_gate_open(text) FROM PUBLIC;
