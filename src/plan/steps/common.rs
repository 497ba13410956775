//! The building blocks several change kinds share, so every kind does them the same way:
//! dual-write and fill triggers, batched backfills, NOT NULL through a validated CHECK (and
//! its online undo), authority flags, concurrent index builds and bare shadow columns.

use super::*;

/// The names of one dual-write or fill trigger: (trigger, function in schema `seqmig`).
pub fn trigger_names(prefix: &str, table: &QualifiedName, column: &Ident) -> (Ident, QualifiedName) {
    let trigger = derived_name(&format!("seqmig_{prefix}_{}", column.as_str()), "");
    let function = derived_name(&format!("{prefix}_{}_{}", table.name.as_str(), column.as_str()), "");
    (trigger, QualifiedName::new(Ident::exact("seqmig").expect("valid"), function))
}

/// Physical column names an expression's names resolve to, for one moment of the plan.
pub struct Binding<'a> {
    pub pairs: Vec<(&'a Ident, Ident)>,
}

impl Binding<'_> {
    /// `expr` with each bound name replaced by `<row>.<physical>` (or the bare physical
    /// name when `row` is empty); unbound names are other columns of the same row.
    pub fn apply(&self, expr: &str, row: &str, table_columns: &[Ident]) -> String {
        repoint(expr, &|word| {
            let hit = self.pairs.iter().find(|(logical, _)| logical.as_str() == word).map(|(_, p)| p.clone());
            let target = hit.or_else(|| table_columns.iter().find(|c| c.as_str() == word).cloned())?;
            Some(if row.is_empty() { target.quoted_sql() } else { row_ref(row, &target) })
        })
    }
}

pub struct DualWrite<'a> {
    pub table: &'a QualifiedName,
    /// The column the trigger and function are named after: stable across a swap, so the
    /// switch can replace the function body in place.
    pub named_after: &'a Ident,
    /// Physical old and new columns at this moment.
    pub old: &'a Ident,
    pub new: &'a Ident,
    /// Over the row (already pointed at `NEW.`).
    pub up: String,
    pub down: Option<String>,
}

/// `CREATE OR REPLACE FUNCTION` (+ `CREATE TRIGGER` when `with_trigger`).
pub fn dual_write_sql(ctx: &Ctx<'_>, dw: &DualWrite<'_>, with_trigger: bool) -> Result<String, RenderError> {
    let (trigger, function) = trigger_names("dw", dw.table, dw.named_after);
    ctx.sql(
        "dual_write_trigger",
        json!({
            "function": qn(&function),
            "trigger": trigger.as_str(),
            "table": qn(dw.table),
            "old": dw.old.as_str(),
            "new": dw.new.as_str(),
            "up": dw.up,
            "down": dw.down,
            "flag": ctx.flag,
            "with_trigger": with_trigger,
        }),
    )
}

/// Install step (dual_write phase) and its removal step (contract) for a dual-write pair;
/// `names_for` is the physical new column name the trigger is named after.
pub fn dual_write_steps(
    ctx: &Ctx<'_>,
    dw: &DualWrite<'_>,
    removal_table_columns: (&Ident, &Ident),
) -> Result<(StepDraft, StepDraft), RenderError> {
    let (trigger, function) = trigger_names("dw", dw.table, dw.named_after);
    let drop = ctx.sql(
        "drop_trigger",
        json!({ "trigger": trigger.as_str(), "table": qn(dw.table), "function": qn(&function) }),
    )?;
    let install = StepDraft::new(
        Phase::DualWrite,
        format!(
            "install the dual-write trigger keeping {} and {} in step",
            dw.old.quoted_sql(),
            dw.new.quoted_sql()
        ),
        dual_write_sql(ctx, dw, true)?,
    )
    .rollback(drop.clone())
    .lock(LockMode::ShareRowExclusive, dw.table)
    .needs([Res::Column(dw.table.clone(), dw.old.clone()), Res::Column(dw.table.clone(), dw.new.clone())]);
    let removal =
        StepDraft::new(Phase::Contract, "remove the dual-write trigger: the old release is gone", drop)
            .rollback(dual_write_sql(ctx, dw, true)?)
            .lock(LockMode::AccessExclusive, dw.table)
            .releases([
                Res::Column(dw.table.clone(), removal_table_columns.0.clone()),
                Res::Column(dw.table.clone(), removal_table_columns.1.clone()),
            ]);
    Ok((install, removal))
}

/// The dual-write trigger's removal and the old column's drop as one contract step. Apart,
/// there is a moment when nothing fills the old column any more while it still exists, and
/// N, which does not write it, fails on its NOT NULL.
pub fn drop_with_trigger(removal: StepDraft, mut drop: StepDraft) -> StepDraft {
    drop.sql = format!("{}\n{}", removal.sql, drop.sql);
    drop.purpose = format!("remove the dual-write trigger and {}", drop.purpose);
    drop.releases.extend(removal.releases);
    drop
}

/// The batched copy into `target` (backfill phase).
pub fn backfill_step(
    ctx: &Ctx<'_>,
    table: &QualifiedName,
    target: &Ident,
    expr: &str,
) -> Result<StepDraft, RenderError> {
    let pending = format!("{} IS DISTINCT FROM ({expr})", target.quoted_sql());
    let sql = ctx.sql(
        "backfill",
        json!({ "table": qn(table), "column": target.as_str(), "expr": expr, "pending": pending }),
    )?;
    let verify = ctx.verify(json!({ "kind": "pending", "table": qn(table), "pending": pending }))?;
    Ok(StepDraft::new(
        Phase::Backfill,
        format!("copy existing rows into {} in batches", target.quoted_sql()),
        sql,
    )
    .rollback(
        "-- nothing to undo: the backfill writes only the new column; the old shape is untouched".into(),
    )
    .lock(LockMode::RowExclusive, table)
    .scans()
    .backfill(BackfillSpec {
        table: table.clone(),
        target_column: target.clone(),
        expr: expr.to_string(),
        pending_predicate: pending,
    })
    .verify(verify)
    .needs([Res::Column(table.clone(), target.clone())])
    .makes([Res::Data(table.clone(), target.clone())]))
}

/// The helper CHECK that lets `SET NOT NULL` skip its scan.
pub fn not_null_check_name(table: &QualifiedName, column: &Ident) -> Ident {
    derived_name(&format!("{}_{}", table.name.as_str(), column.as_str()), "_seqmig_nn")
}

/// `ADD CONSTRAINT … CHECK (c IS NOT NULL) NOT VALID` in `phase`, `VALIDATE` in backfill,
/// `SET NOT NULL` + drop of the helper in contract. `column` is the physical name at each
/// point (a rename keeps the check attached, so one name is enough for the add/validate
/// and `final_name` is used in contract).
pub fn not_null_steps(
    ctx: &Ctx<'_>,
    table: &QualifiedName,
    column: &Ident,
    final_name: &Ident,
    check_phase: Phase,
) -> Result<(Vec<StepDraft>, Vec<StepDraft>), RenderError> {
    let check = not_null_check_name(table, column);
    let expr = format!("{} IS NOT NULL", column.quoted_sql());
    let add = |not_valid: bool| {
        ctx.sql(
            "add_check",
            json!({ "table": qn(table), "name": check.as_str(), "expr": expr, "not_valid": not_valid }),
        )
    };
    let drop_check =
        ctx.sql("drop_constraint", json!({ "table": qn(table), "name": check.as_str(), "if_exists": true }))?;
    let add_step = StepDraft::new(
        check_phase,
        format!("add CHECK ({expr}) NOT VALID: new rows are checked at once, existing rows later"),
        add(true)?,
    )
    .rollback(drop_check.clone())
    .lock(LockMode::AccessExclusive, table)
    .needs([Res::Column(table.clone(), column.clone())]);
    let validate = StepDraft::new(
        Phase::Backfill,
        "validate the NOT NULL check: scans the table without blocking writes",
        ctx.sql("validate_constraint", json!({ "table": qn(table), "name": check.as_str() }))?,
    )
    .rollback("-- nothing to undo: validation changes no data".into())
    .lock(LockMode::ShareUpdateExclusive, table)
    .scans()
    .verify(
        ctx.verify(json!({ "kind": "constraint", "table_text": table.quoted(), "name": check.as_str() }))?,
    )
    .after_removal([])
    .needs([Res::Data(table.clone(), column.clone())]);
    let set =
        StepDraft::new(
            Phase::Contract,
            format!(
                "SET NOT NULL on {}: uses the validated check, so no scan under the lock",
                final_name.quoted_sql()
            ),
            ctx.sql(
                "alter_column",
                json!({ "table": qn(table), "column": final_name.as_str(), "action": "set_not_null" }),
            )?,
        )
        .rollback(ctx.sql(
            "alter_column",
            json!({ "table": qn(table), "column": final_name.as_str(), "action": "drop_not_null" }),
        )?)
        .lock(LockMode::AccessExclusive, table)
        .verify(ctx.verify(
            json!({ "kind": "not_null", "table_text": table.quoted(), "column": final_name.as_str() }),
        )?)
        .makes([Res::NotNull(table.clone(), final_name.clone())]);
    let drop = StepDraft::new(Phase::Contract, "drop the helper check, now redundant with NOT NULL", drop_check)
        .rollback(ctx.sql(
            "add_check",
            json!({ "table": qn(table), "name": check.as_str(), "expr": format!("{} IS NOT NULL", final_name.quoted_sql()), "not_valid": true }),
        )?)
        .lock(LockMode::AccessExclusive, table);
    Ok((vec![add_step, validate], vec![set, drop]))
}

/// Dropping NOT NULL is catalog-only, but putting it back scans the table under an ACCESS
/// EXCLUSIVE lock; so the undo is spread over three transactions, the way [`not_null_steps`]
/// does it forward. A rollback runs a phase's steps last first: the returned rollback SQL
/// (for the step that drops NOT NULL) adds the helper check NOT VALID, the undo of the second
/// returned step validates it without blocking writes, and the undo of the first sets NOT
/// NULL through it (no scan) and drops it. The two steps go right before the step that drops
/// NOT NULL, in the same phase, and do nothing when applied.
pub fn online_not_null_undo(
    ctx: &Ctx<'_>,
    table: &QualifiedName,
    column: &Ident,
    phase: Phase,
) -> Result<(Vec<StepDraft>, String), RenderError> {
    let check = not_null_check_name(table, column);
    let add = ctx.sql(
        "add_check",
        json!({ "table": qn(table), "name": check.as_str(), "expr": format!("{} IS NOT NULL", column.quoted_sql()), "not_valid": true }),
    )?;
    let set = format!(
        "{}\n{}",
        ctx.sql(
            "alter_column",
            json!({ "table": qn(table), "column": column.as_str(), "action": "set_not_null" })
        )?,
        ctx.sql("drop_constraint", json!({ "table": qn(table), "name": check.as_str(), "if_exists": true }))?
    );
    let validate = ctx.sql("validate_constraint", json!({ "table": qn(table), "name": check.as_str() }))?;
    let prepare = |purpose: String, undo: String| {
        StepDraft::new(phase, purpose, "-- nothing to do when applying: this step exists for its undo".into())
            .rollback(undo)
            .lock(LockMode::None, table)
    };
    Ok((
        vec![
            prepare(
                format!(
                    "undo only: SET NOT NULL on {} through the validated helper check (no scan), then drop the check",
                    column.quoted_sql()
                ),
                set,
            ),
            prepare(
                format!(
                    "undo only: validate the NOT NULL check on {} without blocking writes",
                    column.quoted_sql()
                ),
                validate,
            ),
        ],
        add,
    ))
}

/// Fill trigger (dual_write) + its removal (contract) for a column that becomes NOT NULL.
pub fn fill_steps(
    ctx: &Ctx<'_>,
    table: &QualifiedName,
    column: &Ident,
    fill_expr: &str,
) -> Result<(StepDraft, StepDraft), RenderError> {
    let (trigger, function) = trigger_names("fill", table, column);
    let fill_new = Binding { pairs: vec![] }.apply(fill_expr, "NEW", &desired_columns(ctx, table));
    let install_sql = ctx.sql(
        "fill_trigger",
        json!({ "function": qn(&function), "trigger": trigger.as_str(), "table": qn(table), "column": column.as_str(), "fill": fill_new }),
    )?;
    let drop = ctx.sql(
        "drop_trigger",
        json!({ "trigger": trigger.as_str(), "table": qn(table), "function": qn(&function) }),
    )?;
    let install = StepDraft::new(
        Phase::DualWrite,
        format!(
            "install a trigger giving {} its fill value on rows the old release writes",
            column.quoted_sql()
        ),
        install_sql.clone(),
    )
    .rollback(drop.clone())
    .lock(LockMode::ShareRowExclusive, table)
    .needs([Res::Column(table.clone(), column.clone())]);
    let removal =
        StepDraft::new(Phase::Contract, "remove the fill trigger: the column is NOT NULL now", drop)
            .rollback(install_sql)
            .lock(LockMode::AccessExclusive, table)
            .releases([Res::Column(table.clone(), column.clone())]);
    Ok((install, removal))
}

/// The column names of `table` in the desired schema (what a fill expression may name).
fn desired_columns(ctx: &Ctx<'_>, table: &QualifiedName) -> Vec<Ident> {
    ctx.desired
        .tables
        .get(table)
        .map(|t| t.columns.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default()
}

/// Everything a `[[fill]]` hint adds for a column becoming NOT NULL: the fill trigger
/// (dual_write), the batched replacement of existing NULLs (backfill) and the trigger's
/// removal (contract). Only NULLs are pending, and a value already there is kept, so it is
/// also what verification expects (found by `seqmig rehearse`: seeded rows with an email
/// failed verification).
pub fn fill_null_steps(
    ctx: &Ctx<'_>,
    table: &QualifiedName,
    column: &Ident,
    fill_expr: &str,
) -> Result<(StepDraft, StepDraft, StepDraft), RenderError> {
    let (install, removal) = fill_steps(ctx, table, column, fill_expr)?;
    let expr = Binding { pairs: vec![] }.apply(fill_expr, "", &desired_columns(ctx, table));
    let mut fill = backfill_step(ctx, table, column, &expr)?;
    let pending = crate::plan::BackfillSpec::nulls_of(column);
    if let Some(spec) = &mut fill.backfill {
        spec.pending_predicate = pending.clone();
        spec.expr = format!("coalesce({}, {})", column.quoted_sql(), spec.expr);
    }
    fill.sql = ctx.sql(
        "backfill",
        json!({ "table": qn(table), "column": column.as_str(), "expr": expr, "pending": pending }),
    )?;
    Ok((install, fill, removal))
}

/// The three flag steps of a change with a switch: insert 'old' (expand), set 'new'
/// (switch), delete (contract).
pub fn flag_steps(ctx: &Ctx<'_>) -> Result<(StepDraft, StepDraft, StepDraft), RenderError> {
    let flags = flags_table();
    let insert = StepDraft::new(
        Phase::Expand,
        "register the authority flag (old shape authoritative)",
        ctx.flag_sql("insert", "old")?,
    )
    .rollback(ctx.flag_sql("delete", "old")?)
    .lock(LockMode::RowExclusive, &flags)
    .verify(ctx.verify_flag("old")?);
    let switch = StepDraft::new(
        Phase::Switch,
        "flip the authority flag: the new shape wins from now on",
        ctx.flag_sql("set", "new")?,
    )
    .rollback(ctx.flag_sql("set", "old")?)
    .lock(LockMode::RowExclusive, &flags)
    .verify(ctx.verify_flag("new")?);
    Ok((insert, switch, forget_flag(ctx)?))
}

/// The flag steps of a drop: switch marks the object retired (the new release no longer
/// uses `what`), contract forgets the flag. There is no expand step: the old shape needs no
/// flag to stay authoritative.
pub fn retire_flag_steps(ctx: &Ctx<'_>, what: &str) -> Result<(StepDraft, StepDraft), RenderError> {
    let retire = StepDraft::new(
        Phase::Switch,
        format!("flag {what} as retired: the new release no longer uses it"),
        ctx.flag_sql("upsert", "new")?,
    )
    .rollback(ctx.flag_sql("set", "old")?)
    .lock(LockMode::RowExclusive, &flags_table())
    .verify(ctx.verify_flag("new")?);
    Ok((retire, forget_flag(ctx)?))
}

fn forget_flag(ctx: &Ctx<'_>) -> Result<StepDraft, RenderError> {
    Ok(StepDraft::new(Phase::Contract, "forget the authority flag", ctx.flag_sql("delete", "new")?)
        .rollback(ctx.flag_sql("upsert", "new")?)
        .lock(LockMode::RowExclusive, &flags_table()))
}

fn flags_table() -> QualifiedName {
    QualifiedName::of("seqmig", "flags")
}

/// A `CREATE INDEX CONCURRENTLY` step: outside a transaction, SHARE UPDATE EXCLUSIVE on the
/// table while it scans it, undone by dropping `index` concurrently (if it got that far).
pub fn concurrent_index_step(
    ctx: &Ctx<'_>,
    phase: Phase,
    description: String,
    create_sql: String,
    index: &QualifiedName,
    table: &QualifiedName,
) -> Result<StepDraft, RenderError> {
    Ok(StepDraft::new(phase, description, create_sql)
        .rollback(
            ctx.sql("drop_index", json!({ "index": qn(index), "concurrently": true, "if_exists": true }))?,
        )
        .outside_transaction()
        .lock(LockMode::ShareUpdateExclusive, table)
        .scans())
}

/// A step giving `column` the default `value` (catalog only), undone by dropping it.
pub fn set_default_step(
    ctx: &Ctx<'_>,
    phase: Phase,
    purpose: String,
    table: &QualifiedName,
    column: &Ident,
    value: &str,
) -> Result<StepDraft, RenderError> {
    let alter = |action: &str| {
        ctx.sql(
            "alter_column",
            json!({ "table": qn(table), "column": column.as_str(), "action": action, "value": value }),
        )
    };
    Ok(StepDraft::new(phase, purpose, alter("set_default")?)
        .rollback(alter("drop_default")?)
        .lock(LockMode::AccessExclusive, table))
}

/// Expand step adding `column` bare (nullable, no default: catalog only, no rewrite), undone by
/// dropping it; what makes it whole (fill, default, NOT NULL) comes in later steps.
pub fn add_bare_column_step(
    ctx: &Ctx<'_>,
    table: &QualifiedName,
    column: &Column,
    description: String,
) -> Result<StepDraft, RenderError> {
    let c = &column.name;
    Ok(StepDraft::new(
        Phase::Expand,
        description,
        ctx.sql(
            "add_column",
            json!({ "table": qn(table), "column": column_value(&bare_column(column, c)) }),
        )?,
    )
    .rollback(ctx.sql("drop_column", json!({ "table": qn(table), "column": c.as_str(), "if_exists": true }))?)
    .lock(LockMode::AccessExclusive, table)
    .verify(ctx.verify_column(table, c, true)?)
    .needs(ctx.column_needs(table, column))
    .makes([Res::Column(table.clone(), c.clone())]))
}

/// A column without NOT NULL and default: how a shadow or renamed column is first added.
pub fn bare_column(c: &Column, name: &Ident) -> Column {
    Column {
        name: name.clone(),
        not_null: false,
        default: None,
        identity: None,
        generated: None,
        statistics: None,
        ..c.clone()
    }
}
