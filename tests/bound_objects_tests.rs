//! Objects PostgreSQL binds to a column's attribute number rather than its name: a
//! trigger's `UPDATE OF` list, a policy's expressions, extended statistics, a view's `*`,
//! column privileges, a `BEGIN ATOMIC` body, the column's comment and statistics target.
//! A type change swaps names at switch, so without care they stay on the parked column: the
//! trigger fires on it, the policy filters on it, the contract's drop of it fails with 2BP01
//! and statistics go with it. And each of these objects takes its own lock on its table
//! when created or dropped, which the plan used to predict as ACCESS SHARE or none.

use seqmig::plan::Phase;

use crate::exec_examples_tests::{apply, rollback};
use crate::harness::{TestDb, block_on};
use crate::partition2_tests::plan as plan_of;
use crate::rehearse_tests::rehearse_pair;

const TYPED: &str = "
CREATE TABLE public.orders (id integer PRIMARY KEY, total integer, note text, touched boolean NOT NULL DEFAULT false);
CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.touched := true; RETURN NEW; END $$;
CREATE TRIGGER orders_touch BEFORE UPDATE OF total ON public.orders FOR EACH ROW EXECUTE FUNCTION public.touch();
ALTER TABLE public.orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY positive ON public.orders FOR SELECT USING (total > 0);
CREATE STATISTICS public.orders_stats ON id, total FROM public.orders;
CREATE VIEW public.all_orders AS SELECT * FROM public.orders;
CREATE VIEW public.o_star AS SELECT o.*, 1 AS one FROM public.orders o;
COMMENT ON COLUMN public.orders.total IS 'in cents';
ALTER TABLE public.orders ALTER COLUMN total SET STATISTICS 500;
GRANT SELECT (id, total) ON public.orders TO PUBLIC;
CREATE FUNCTION public.order_sum() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT sum(total) FROM public.orders; END;
";

fn widened() -> String {
    TYPED.replace("total integer", "total bigint")
}

/// Rehearsed (every phase applied, rolled back and applied again, locks observed, the end
/// schema compared with the desired one), each of these failed before: contract stopped with
/// 2BP01 or statistics went missing, a `*` view kept the shadow column, a rename left a `*`
/// view's columns in another order, and nine object steps took a lock stronger than predicted.
#[test]
fn type_changes_renames_and_object_changes_under_bound_objects_rehearse_clean() {
    let objects_before = "
CREATE TABLE public.t (id integer PRIMARY KEY, a integer, b integer, touched boolean);
CREATE TABLE public.log (id integer);
CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.touched := true; RETURN NEW; END $$;
CREATE TRIGGER t_touch BEFORE UPDATE OF a ON public.t FOR EACH ROW EXECUTE FUNCTION public.touch();
CREATE TRIGGER t_gone BEFORE UPDATE ON public.t FOR EACH ROW EXECUTE FUNCTION public.touch();
CREATE STATISTICS public.t_gone_stats ON a, b FROM public.t;
CREATE POLICY p_gone ON public.t USING (a > 0);
CREATE RULE r_gone AS ON DELETE TO public.log DO INSTEAD NOTHING;
";
    let objects_after = "
CREATE TABLE public.t (id integer PRIMARY KEY, a integer, b integer, touched boolean);
CREATE TABLE public.log (id integer);
CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.touched := true; RETURN NEW; END $$;
CREATE TRIGGER t_touch BEFORE UPDATE OF a, b ON public.t FOR EACH ROW EXECUTE FUNCTION public.touch();
CREATE TRIGGER t_new BEFORE INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION public.touch();
CREATE STATISTICS public.t_stats ON a, b FROM public.t;
CREATE POLICY p_new ON public.t USING (b > 0);
CREATE RULE r_new AS ON UPDATE TO public.log DO INSTEAD NOTHING;
";
    let objects_toml = "[plan]\nallow_one_way = [\"t_gone on public.t\", \"public.t_gone_stats\", \"p_gone on public.t\", \"r_gone on public.log\"]\n";
    let renamed_before = "
CREATE TABLE public.orders (id integer PRIMARY KEY, user_id integer NOT NULL, total integer, note text);
CREATE VIEW public.v3 AS SELECT * FROM public.orders;
";
    let renamed_after = "
CREATE TABLE public.orders (id integer PRIMARY KEY, customer_id integer NOT NULL, total integer);
CREATE VIEW public.v3 AS SELECT * FROM public.orders;
";
    let renamed_toml = "[[rename]]\ntable = \"public.orders\"\nfrom = \"user_id\"\nto = \"customer_id\"\n\n[plan]\nallow_one_way = [\"public.orders.note\"]\n";
    let attrs_before = "
CREATE TABLE public.o (id integer PRIMARY KEY, a integer, gone integer);
COMMENT ON COLUMN public.o.a IS 'x';
ALTER TABLE public.o ALTER COLUMN a SET STATISTICS 300;
GRANT SELECT (id, a, gone) ON public.o TO PUBLIC;
";
    let attrs_after = "
CREATE TABLE public.o (id integer PRIMARY KEY, b integer, n integer);
COMMENT ON COLUMN public.o.b IS 'x';
COMMENT ON COLUMN public.o.n IS 'new';
ALTER TABLE public.o ALTER COLUMN b SET STATISTICS 300;
ALTER TABLE public.o ALTER COLUMN n SET STATISTICS 200;
GRANT SELECT (id, b) ON public.o TO PUBLIC;
CREATE TABLE public.fresh (id integer PRIMARY KEY, k integer);
ALTER TABLE public.fresh ALTER COLUMN k SET STATISTICS 50;
";
    let attrs_toml = "[[rename]]\ntable = \"public.o\"\nfrom = \"a\"\nto = \"b\"\n\n[plan]\nallow_one_way = [\"public.o.gone\"]\n";
    let widened = widened();
    for (what, before, after, toml) in [
        ("a type change under objects bound to the column", TYPED, widened.as_str(), ""),
        (
            "triggers, policies, rules and statistics created, replaced and dropped",
            objects_before,
            objects_after,
            objects_toml,
        ),
        ("a rename and a drop under a SELECT * view", renamed_before, renamed_after, renamed_toml),
        (
            "comments, statistics targets and column grants of renamed, added, dropped and new columns",
            attrs_before,
            attrs_after,
            attrs_toml,
        ),
    ] {
        let hints = seqmig::diff::Hints::from_toml(toml, "seqmig.toml").unwrap();
        let report = rehearse_pair(before, after, &hints, 20);
        let text = seqmig::rehearse::render::text(&report);
        assert!(report.passed(), "{what}:\n{text}");
    }
}

/// With rows and the trigger and policy in use: after switch the trigger fires on updates
/// of the new `total` and the policy filters on it; rolled back, on the original column
/// again; contract then drops the parked column and the statistics stay.
#[test]
fn a_swapped_columns_trigger_policy_and_statistics_follow_the_name() {
    let plan = plan_of(TYPED, &widened(), "");
    assert!(!plan.is_blocked(), "{:#?}", plan.findings);
    let db = TestDb::new();
    db.execute(TYPED);
    db.execute("INSERT INTO public.orders (id, total) SELECT g, g - 50 FROM generate_series(1, 100) g");
    // The table owner is exempt from RLS unless forced; a reader role is not.
    db.execute("CREATE ROLE reader; GRANT SELECT, UPDATE ON public.orders TO reader; GRANT USAGE ON SCHEMA public TO reader");
    let q = |sql: &str| -> i64 {
        block_on(async { db.client().await.query_one(sql, &[]).await.unwrap().get(0) })
    };
    // Rows the trigger marked after updating `total` on row `id`, and rows the policy shows.
    let fires = |id: i64| -> i64 {
        db.execute(&format!("UPDATE public.orders SET touched = false; UPDATE public.orders SET total = total + 1 WHERE id = {id}"));
        q("SELECT count(*) FROM public.orders WHERE touched")
    };
    let visible = || -> i64 {
        block_on(async {
            let c = db.client().await;
            c.batch_execute("SET ROLE reader").await.unwrap();
            c.query_one("SELECT count(*) FROM public.orders", &[]).await.unwrap().get(0)
        })
    };
    assert_eq!(fires(1), 1);
    let shown = visible();
    assert!(shown > 0 && shown < 100, "the policy filters: {shown}");
    for phase in [Phase::Expand, Phase::DualWrite, Phase::Backfill, Phase::Switch] {
        block_on(apply(&db, &plan, phase)).unwrap();
    }
    assert_eq!(fires(2), 1, "after switch the trigger fires on the new column");
    assert_eq!(visible(), shown, "and the policy filters on it");
    // After switch the new release writes only `total`; it must now be what the policy reads.
    db.execute("UPDATE public.orders SET total = -total WHERE id = 100");
    assert_eq!(visible(), shown - 1, "a write to the new column moves the policy's verdict");
    db.execute("UPDATE public.orders SET total = -total WHERE id = 100");
    block_on(rollback(&db, Phase::Switch)).unwrap();
    assert_eq!(fires(3), 1, "rolled back, it fires on the original column again");
    assert_eq!(visible(), shown);
    block_on(apply(&db, &plan, Phase::Switch)).unwrap();
    block_on(apply(&db, &plan, Phase::Contract)).unwrap();
    assert_eq!(fires(4), 1, "contracted");
    assert_eq!(
        q("SELECT count(*) FROM pg_statistic_ext s JOIN pg_attribute a ON a.attrelid = s.stxrelid AND a.attnum = ANY (s.stxkeys)
            WHERE s.stxname = 'orders_stats' AND a.attname = 'total'"),
        1,
        "the statistics are still there, on the new total"
    );
    assert_eq!(q("SELECT count(*) FROM public.all_orders"), 100);
    assert_eq!(
        q(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'o_star' AND column_name LIKE '%seqmig%'"
        ),
        0
    );
}

/// A stored generated column computed from a column whose type changes through a shadow
/// cannot be re-pointed online on PostgreSQL 15: the plan is blocked, naming both columns.
#[test]
fn a_generated_column_over_a_type_change_blocks_the_plan() {
    let before = "CREATE TABLE public.o (id integer PRIMARY KEY, total integer, cents bigint GENERATED ALWAYS AS (total * 100) STORED);";
    let plan = plan_of(before, &before.replace("total integer", "total bigint"), "");
    let f =
        plan.findings.iter().find(|f| f.code.as_str() == "generated-column-dependency").expect("the finding");
    assert!(plan.is_blocked());
    assert!(f.message.contains("public.o.total") && f.message.contains("public.o.cents"), "{}", f.message);
}

/// A user's row trigger on UPDATE of the column a backfill writes runs for every backfilled
/// row, which rolling the backfill back cannot undo: the plan warns, naming it, and the
/// `WHEN` the warning suggests keeps it quiet (the rehearsal then restores every row).
#[test]
fn a_trigger_firing_for_the_backfill_is_reported_and_its_suggested_when_keeps_it_quiet() {
    let before = "
CREATE TABLE public.o (id integer PRIMARY KEY, a integer, touched boolean NOT NULL DEFAULT false);
CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.touched := true; RETURN NEW; END $$;
CREATE TRIGGER o_touch BEFORE UPDATE OF a ON public.o FOR EACH ROW EXECUTE FUNCTION public.touch();
";
    let after = before.replace("a integer", "b integer").replace("UPDATE OF a", "UPDATE OF b");
    let toml = "[[rename]]\ntable = \"public.o\"\nfrom = \"a\"\nto = \"b\"\n";
    let plan = plan_of(before, &after, toml);
    let f = plan.findings.iter().find(|f| f.code.as_str() == "backfill-fires-trigger").expect("the warning");
    assert!(f.message.contains("o_touch on public.o") && f.message.contains("public.o.b"), "{}", f.message);
    let when = "WHEN (current_setting('seqmig.backfill', true) IS DISTINCT FROM 'on')";
    assert!(f.help.contains(when));
    let quiet = after.replace("FOR EACH ROW EXECUTE", &format!("FOR EACH ROW {when} EXECUTE"));
    let plan = plan_of(before, &quiet, toml);
    assert!(plan.findings.iter().all(|f| f.code.as_str() != "backfill-fires-trigger"));
    let hints = seqmig::diff::Hints::from_toml(toml, "seqmig.toml").unwrap();
    let report = rehearse_pair(before, &quiet, &hints, 20);
    assert!(report.passed(), "{}", seqmig::rehearse::render::text(&report));
    // A trigger on UPDATE OF a column the backfill does not write stays quiet: a type change
    // backfills the shadow column, not `total`.
    let plan = plan_of(TYPED, &widened(), "");
    assert!(plan.findings.iter().all(|f| f.code.as_str() != "backfill-fires-trigger"));
}

/// What hangs on a renamed table follows it by OID: a view, a trigger, a policy, statistics,
/// a comment. Unchanged otherwise, none is planned (it used to be dropped and created
/// again, or a phase conflict blocked the plan); changed, it is replaced from its text as
/// it reads after the rename. Both rehearse clean.
#[test]
fn objects_on_a_renamed_table_follow_it() {
    let before = "
CREATE TABLE public.o (id integer PRIMARY KEY, a integer, t boolean);
CREATE FUNCTION public.f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.t := true; RETURN NEW; END $$;
CREATE TRIGGER tr BEFORE UPDATE ON public.o FOR EACH ROW EXECUTE FUNCTION public.f();
ALTER TABLE public.o ENABLE ROW LEVEL SECURITY;
CREATE POLICY pol ON public.o USING (a > 0);
CREATE VIEW public.v AS SELECT o.id, o.a FROM public.o WHERE o.a > 1;
CREATE STATISTICS public.st ON id, a FROM public.o;
COMMENT ON COLUMN public.o.a IS 'a';
";
    let same = before
        .replace("public.o ", "public.p ")
        .replace("public.o;", "public.p;")
        .replace("public.o.a", "public.p.a")
        .replace("o.id, o.a", "p.id, p.a")
        .replace("o.a > 1", "p.a > 1")
        .replace("public.o\n", "public.p\n");
    assert!(!same.contains("public.o"), "{same}");
    let changed = same
        .replace("BEFORE UPDATE ON", "BEFORE INSERT OR UPDATE ON")
        .replace("p.id, p.a FROM", "p.id, p.a, 1 AS one FROM")
        .replace("IS 'a'", "IS 'a2'");
    let toml = "[[rename]]\nfrom = \"public.o\"\nto = \"p\"\n";
    let kinds = |after: &str| -> Vec<String> {
        plan_of(before, after, toml).changes.iter().map(|c| c.kind.clone()).collect()
    };
    assert_eq!(kinds(&same), ["rename_table", "rename_constraint"]);
    assert_eq!(
        kinds(&changed),
        ["rename_table", "rename_constraint", "replace_view", "replace_object", "set_comment"]
    );
    let hints = seqmig::diff::Hints::from_toml(toml, "seqmig.toml").unwrap();
    for after in [same.as_str(), changed.as_str()] {
        let report = rehearse_pair(before, after, &hints, 20);
        assert!(report.passed(), "{}", seqmig::rehearse::render::text(&report));
    }
}
