//! From changes to the sealed plan: every change's steps, the DAG over them (edges inside a
//! change in phase order, edges across changes from what steps need, make, remove and
//! release), a deterministic topological order, ids, and the gate.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};

use super::draft::{Res, StepDraft};
use super::steps::{self, Ctx};
use super::{
    Effects, GateCriterion, GateSpec, LockMode, Object, Phase, Plan, PlannedChange, RelationLock, Step,
    StepLock,
};
use crate::diff::{Change, Hints, TypeChange};
use crate::finding::{Finding, FindingCode};
use crate::model::{QualifiedName, Schema};
use crate::render::{RenderError, Renderer};

/// What the runbook knows about a step beyond the artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepNote {
    pub purpose: String,
    pub verify: Option<String>,
}

/// A sealed plan with the notes the runbook uses.
#[derive(Debug, Clone)]
pub struct Planned {
    pub plan: Plan,
    pub notes: BTreeMap<String, StepNote>,
}

/// Why planning failed (not a finding: the plan could not be built at all).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    #[error("failed to render the SQL of change {change} ({kind}): {source}")]
    Render { change: String, kind: String, source: RenderError },
}

struct Node {
    change: usize,
    index: usize,
    draft: StepDraft,
}

/// Plans `changes` (from [`crate::diff::diff`]) into a sealed [`Plan`].
pub fn build(
    current: &Schema,
    desired: &Schema,
    changes: &[Change],
    mut findings: Vec<Finding>,
    hints: &Hints,
    renderer: &Renderer,
) -> Result<Planned, PlanError> {
    let mut nodes: Vec<Node> = Vec::new();
    for (ci, change) in changes.iter().enumerate() {
        let ctx = Ctx { r: renderer, current, desired, hints, flag: change.object() };
        let mut drafts = steps::steps(&ctx, change).map_err(|source| PlanError::Render {
            change: change.object(),
            kind: change.kind().into(),
            source,
        })?;
        // Phase order inside a change; the planner files list steps in that order already.
        drafts.sort_by_key(|d| d.phase);
        for (si, d) in drafts.into_iter().enumerate() {
            nodes.push(Node { change: ci, index: si, draft: d });
        }
    }
    place_floating(&mut nodes);

    let mut graph: DiGraph<usize, ()> = DiGraph::new();
    let ids: Vec<NodeIndex> = (0..nodes.len()).map(|i| graph.add_node(i)).collect();
    let mut edges: BTreeSet<(usize, usize)> = BTreeSet::new();
    for w in (0..nodes.len()).collect::<Vec<_>>().windows(2) {
        if nodes[w[0]].change == nodes[w[1]].change {
            edges.insert((w[0], w[1]));
        }
    }
    let mut makers: BTreeMap<&Res, Vec<usize>> = BTreeMap::new();
    let mut removers: BTreeMap<&Res, Vec<usize>> = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for r in &n.draft.makes {
            makers.entry(r).or_default().push(i);
        }
        for r in &n.draft.removes {
            removers.entry(r).or_default().push(i);
        }
    }
    for (i, n) in nodes.iter().enumerate() {
        for r in &n.draft.needs {
            for &m in makers.get(r).into_iter().flatten() {
                if nodes[m].change != n.change {
                    edges.insert((m, i));
                }
            }
        }
        for r in &n.draft.after_removal {
            for &x in removers.get(r).into_iter().flatten() {
                if nodes[x].change != n.change {
                    edges.insert((x, i));
                }
            }
        }
        for r in &n.draft.releases {
            for &x in removers.get(r).into_iter().flatten() {
                if nodes[x].change != n.change {
                    edges.insert((i, x));
                }
            }
        }
    }
    for (i, n) in nodes.iter().enumerate() {
        for t in &n.draft.leads {
            for (m, o) in nodes.iter().enumerate() {
                if o.change != n.change
                    && o.draft.phase >= n.draft.phase
                    && change_table(&changes[o.change]) == Some(t)
                {
                    edges.insert((i, m));
                }
            }
        }
    }
    // An edge into an earlier phase cannot be honoured: the releases ship in phase order.
    let mut conflicts: BTreeSet<(usize, usize)> = BTreeSet::new();
    for &(a, b) in &edges {
        if nodes[a].draft.phase > nodes[b].draft.phase {
            conflicts.insert((nodes[a].change, nodes[b].change));
        }
    }
    for (a, b) in &conflicts {
        findings.push(
            Finding::error(
                FindingCode::PhaseConflict,
                changes[*b].object(),
                format!(
                    "{} must follow {}, which happens in a later phase",
                    changes[*b].summary(),
                    changes[*a].summary()
                ),
            )
            .with_help(
                "split the change into two plans: apply the first through contract, then plan the second",
            ),
        );
    }
    edges.retain(|(a, b)| nodes[*a].draft.phase <= nodes[*b].draft.phase);
    for &(a, b) in &edges {
        graph.add_edge(ids[a], ids[b], ());
    }
    // Cycles: reported by object names, then broken so the rest still gets an order.
    let mut in_cycle: BTreeMap<usize, usize> = BTreeMap::new();
    for (k, scc) in petgraph::algo::tarjan_scc(&graph).into_iter().enumerate() {
        if scc.len() > 1 {
            let mut objects: Vec<String> =
                scc.iter().map(|n| changes[nodes[graph[*n]].change].object()).collect();
            objects.sort();
            objects.dedup();
            findings.push(
                Finding::error(FindingCode::DependencyCycle, objects.join(", "), format!("these objects depend on each other in a cycle: {}", objects.join(" → ")))
                    .with_help("break the cycle by splitting the change into two plans (for example, add a foreign key in a second plan)"),
            );
            for n in scc {
                in_cycle.insert(graph[n], k);
            }
        }
    }
    graph.retain_edges(|g, e| {
        let (a, b) = g.edge_endpoints(e).expect("edge exists");
        !matches!((in_cycle.get(&g[a]), in_cycle.get(&g[b])), (Some(x), Some(y)) if x == y)
    });

    // Kahn's algorithm, always taking the ready step earliest by (phase, change, index).
    let mut indegree: Vec<usize> =
        ids.iter().map(|&n| graph.neighbors_directed(n, Direction::Incoming).count()).collect();
    let key = |i: usize| (nodes[i].draft.phase, nodes[i].change, nodes[i].index, i);
    let mut ready: BinaryHeap<Reverse<(Phase, usize, usize, usize)>> =
        (0..nodes.len()).filter(|&i| indegree[i] == 0).map(|i| Reverse(key(i))).collect();
    let mut order: Vec<usize> = Vec::with_capacity(nodes.len());
    while let Some(Reverse((_, _, _, i))) = ready.pop() {
        order.push(i);
        let mut next: Vec<usize> =
            graph.neighbors_directed(ids[i], Direction::Outgoing).map(|n| graph[n]).collect();
        next.sort_unstable();
        next.dedup();
        for j in next {
            indegree[j] -= graph.edges_connecting(ids[i], ids[j]).count();
            if indegree[j] == 0 {
                ready.push(Reverse(key(j)));
            }
        }
    }
    debug_assert_eq!(order.len(), nodes.len(), "cycles were broken");
    // Steps of one phase must be contiguous: order by phase, keeping the topological order
    // inside each phase (every remaining edge goes forward in phase).
    order.sort_by_key(|&i| nodes[i].draft.phase);
    let (groups, split) = view_replacements(changes, &nodes, &graph, &ids, &mut order);
    // A group's members share its first member's step.
    let leader: BTreeMap<usize, usize> =
        groups.iter().flat_map(|g| g.iter().map(move |&m| (m, g[0]))).collect();
    let lead = |i: usize| leader.get(&i).copied().unwrap_or(i);

    let mut step_id: BTreeMap<usize, String> = BTreeMap::new();
    let mut emitted = 0;
    for &i in &order {
        if lead(i) == i {
            emitted += 1;
            step_id.insert(i, format!("s{emitted}"));
        }
    }
    for &i in &order {
        step_id.insert(i, step_id[&lead(i)].clone());
    }
    let position: BTreeMap<usize, usize> = order.iter().enumerate().map(|(k, &i)| (i, k)).collect();
    // Each change's expectations (its "before", see `expect`) go on its first step in plan
    // order: the first of its first phase, checked before that phase changes anything.
    let mut first_of_change: BTreeMap<usize, usize> = BTreeMap::new();
    for &i in &order {
        first_of_change.entry(nodes[i].change).or_insert(i);
    }
    let mut steps_out = Vec::with_capacity(order.len());
    let mut notes = BTreeMap::new();
    for &i in &order {
        if lead(i) != i {
            continue;
        }
        let n = &nodes[i];
        let members: Vec<usize> = groups.iter().find(|g| g[0] == i).cloned().unwrap_or_else(|| vec![i]);
        let mut preds: Vec<usize> = members
            .iter()
            .flat_map(|&m| graph.neighbors_directed(ids[m], Direction::Incoming).map(|p| lead(graph[p])))
            .filter(|p| *p != i)
            .collect();
        preds.sort_by_key(|p| position[p]);
        preds.dedup();
        let merged;
        let d = if members.len() > 1 {
            merged = steps::views::one_transaction(members.iter().map(|&m| &nodes[m].draft));
            &merged
        } else {
            &n.draft
        };
        let mut purpose = d.purpose.clone();
        if let Some(create) = split.get(&i) {
            purpose.push_str(&format!(
                "; queries on it fail until {} recreates it (a step between cannot share their transaction)",
                step_id[create]
            ));
        }
        let id = step_id[&i].clone();
        notes.insert(id.clone(), StepNote { purpose, verify: d.verify.clone() });
        steps_out.push(Step {
            id,
            change: format!("c{}", n.change + 1),
            phase: d.phase,
            sql: d.sql.clone(),
            rollback_sql: d.rollback_sql.clone(),
            one_way: d.rollback_sql.is_none(),
            transactional: d.transactional,
            lock: d.lock,
            lock_target: d.lock_on.iter().map(QualifiedName::quoted).collect::<Vec<_>>().join(", "),
            rewrites_table: d.rewrites_table,
            scans_table: d.scans_table,
            depends_on: preds.iter().map(|p| step_id[p].clone()).collect(),
            backfill: d.backfill.clone(),
            expects: members
                .iter()
                .filter(|&&m| first_of_change.get(&nodes[m].change) == Some(&m))
                .flat_map(|&m| super::expect::expectations(&changes[nodes[m].change], current))
                .collect(),
            effects: effects(d, current, desired),
        });
    }
    blocking_findings(current, changes, &steps_out, hints, &mut findings);
    backfill_trigger_findings(current, desired, &steps_out, &mut findings);
    // From every change's own steps: a step replacing a view may carry another change's.
    let one_way_changes: BTreeSet<String> = nodes
        .iter()
        .filter(|n| n.draft.rollback_sql.is_none())
        .map(|n| format!("c{}", n.change + 1))
        .collect();
    let planned_changes = changes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let id = format!("c{}", i + 1);
            PlannedChange {
                one_way: one_way_changes.contains(id.as_str()),
                id,
                kind: c.kind().into(),
                object: c.object(),
                summary: c.summary(),
                relation: change_relation(c),
            }
        })
        .collect();
    let gate = gate(hints, &steps_out);
    let plan = Plan::assemble_typed(planned_changes, steps_out, findings, gate);
    Ok(Planned { plan, notes })
}

/// A step's typed effects, from what its draft makes, removes and needs, its lock and its
/// SQL (split into statements by the parser, which also names a concurrent index build).
fn effects(d: &StepDraft, current: &Schema, desired: &Schema) -> Effects {
    let mut creates = BTreeSet::new();
    let mut removes = BTreeSet::new();
    let mut alters = BTreeSet::new();
    let mut reads = BTreeSet::new();
    for r in &d.makes {
        let Some(o) = object(r) else { continue };
        match r {
            Res::Data(..) | Res::NotNull(..) | Res::Key(..) => alters.insert(o),
            _ => creates.insert(o),
        };
    }
    for r in &d.removes {
        let Some(o) = object(r) else { continue };
        match r {
            Res::Data(..) | Res::NotNull(..) | Res::Key(..) => alters.insert(o),
            _ => removes.insert(o),
        };
    }
    let is = |q: &QualifiedName, s: &Schema, view: bool| {
        if view { s.views.contains_key(q) } else { s.tables.contains_key(q) }
    };
    for r in &d.needs {
        // A view's reads name tables and views alike; keep the kind that exists.
        let exists = match r {
            Res::Table(q) => {
                is(q, current, false)
                    || is(q, desired, false)
                    || !(is(q, current, true) || is(q, desired, true))
            }
            Res::View(q) => is(q, current, true) || is(q, desired, true),
            _ => true,
        };
        if exists {
            reads.extend(object(r));
        }
    }
    for q in &d.lock_on {
        let o = if is(q, current, true) || is(q, desired, true) {
            Object::View { name: q.clone() }
        } else if current.indexes.contains_key(q) || desired.indexes.contains_key(q) {
            Object::Index { name: q.clone() }
        } else {
            Object::Table { name: q.clone() }
        };
        if !creates.contains(&o) && !removes.contains(&o) {
            alters.insert(o);
        }
    }
    let alters: BTreeSet<Object> =
        alters.into_iter().filter(|o| !creates.contains(o) && !removes.contains(o)).collect();
    let reads: Vec<Object> = reads
        .into_iter()
        .filter(|o| !creates.contains(o) && !removes.contains(o) && !alters.contains(o))
        .collect();
    let lock = (d.lock != LockMode::None && !d.lock_on.is_empty()).then(|| StepLock {
        mode: d.lock,
        relations: d.lock_on.clone(),
        per_relation: if d.lock_modes.is_empty() {
            Vec::new()
        } else {
            d.lock_on
                .iter()
                .map(|r| RelationLock {
                    relation: r.clone(),
                    mode: d.lock_modes.iter().find(|(q, _)| q == r).map_or(d.lock, |(_, m)| *m),
                })
                .collect()
        },
    });
    let (statements, rollback_statements) = if d.backfill.is_some() {
        (Vec::new(), Vec::new())
    } else {
        let split = crate::parse::effects::statements;
        (split(&d.sql), d.rollback_sql.as_deref().map(split).unwrap_or_default())
    };
    let index_build = crate::parse::effects::index_build;
    let (builds_index, rollback_builds_index, detaches) = if d.transactional {
        (None, None, None)
    } else {
        (
            index_build(&statements),
            index_build(&rollback_statements),
            crate::parse::effects::partition_detach(&statements),
        )
    };
    Effects {
        creates: creates.into_iter().collect(),
        removes: removes.into_iter().collect(),
        alters: alters.into_iter().collect(),
        reads,
        lock,
        statements,
        rollback_statements,
        builds_index,
        rollback_builds_index,
        detaches,
    }
}

/// The typed object of a resource; `None` for what is there only for order (routines).
fn object(r: &Res) -> Option<Object> {
    Some(match r {
        Res::Schema(name) => Object::Schema { name: name.clone() },
        Res::Extension(name) => Object::Extension { name: name.clone() },
        Res::Type(name) => Object::Type { name: name.clone() },
        Res::Sequence(name) => Object::Sequence { name: name.clone() },
        Res::Table(name) | Res::Key(name, _) => Object::Table { name: name.clone() },
        Res::View(name) => Object::View { name: name.clone() },
        Res::Index(name) => Object::Index { name: name.clone() },
        Res::Column(table, name) | Res::Data(table, name) | Res::NotNull(table, name) => {
            Object::Column { table: table.clone(), name: name.clone() }
        }
        Res::Constraint(table, name) => Object::Constraint { table: table.clone(), name: name.clone() },
        Res::Routine(_) => return None,
    })
}

/// The relation a change is about, as [`Change::object`] names it: the object itself when it
/// is a relation, a column's or constraint's table; none for schemas, extensions, objects
/// seqmig does not model and comments.
fn change_relation(c: &Change) -> Option<QualifiedName> {
    Some(match c {
        Change::CreateSchema { .. }
        | Change::CreateExtension { .. }
        | Change::DropExtension { .. }
        | Change::CreateObject { .. }
        | Change::DropObject { .. }
        | Change::ReplaceObject { .. }
        | Change::SetComment { .. } => return None,
        Change::CreateType { def } | Change::DropType { def } => def.name().clone(),
        Change::AddEnumValue { name, .. } => name.clone(),
        Change::CreateSequence { seq } | Change::DropSequence { seq } => seq.name.clone(),
        Change::AlterSequence { to, .. } => to.name.clone(),
        Change::CreateTable { table }
        | Change::DropTable { table }
        | Change::AttachTable { table }
        | Change::DetachTable { table } => table.name.clone(),
        Change::RenameTable { from, .. } => from.clone(),
        Change::AddColumn { table, .. }
        | Change::AddNotNullColumn { table, .. }
        | Change::DropColumn { table, .. }
        | Change::SetNotNull { table, .. }
        | Change::DropNotNull { table, .. }
        | Change::RenameColumn { table, .. }
        | Change::ChangeType(TypeChange { table, .. })
        | Change::ChangeDefault { table, .. }
        | Change::SetStatistics { table, .. }
        | Change::AddConstraint { table, .. }
        | Change::AddUnique { table, .. }
        | Change::DropConstraint { table, .. }
        | Change::ChangeConstraint { table, .. }
        | Change::RenameConstraint { table, .. } => table.clone(),
        Change::RenameIndex { from, .. } => from.name.clone(),
        Change::AddIndex { index, .. } | Change::DropIndex { index } => index.name.clone(),
        Change::ChangeIndex { to, .. } => to.name.clone(),
        Change::CreateView { view } | Change::DropView { view } => view.name.clone(),
        Change::ReplaceView { to, .. } => to.name.clone(),
    })
}

/// A replaced view is dropped and created again (`CREATE OR REPLACE` cannot remove or
/// retype output columns), and between the two every query on it fails. So each
/// replacement's window is narrowed to the steps that must lie inside it (those that depend
/// on the drop and that the new definition depends on: a swap of a column it reads), and a
/// window of transactional, catalog-only steps becomes one step: one transaction, in which
/// the view never goes missing. Returns those groups (members in order) and the drops whose
/// window keeps a step that cannot share a transaction (a scan, a build without a
/// transaction, a backfill), each with its create.
fn view_replacements(
    changes: &[Change],
    nodes: &[Node],
    graph: &DiGraph<usize, ()>,
    ids: &[NodeIndex],
    order: &mut [usize],
) -> (Vec<Vec<usize>>, BTreeMap<usize, usize>) {
    let mut pairs = Vec::new();
    for (ci, change) in changes.iter().enumerate() {
        let Change::ReplaceView { from, to, .. } = change else { continue };
        let members: Vec<usize> = (0..nodes.len()).filter(|&i| nodes[i].change == ci).collect();
        // A materialized view is built by its CREATE: its readers would wait for the build.
        if let [drop, create] = members[..]
            && !from.materialized
            && !to.materialized
        {
            pairs.push((drop, create));
        }
    }
    let reach = |from: usize, dir: Direction| -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from];
        while let Some(n) = stack.pop() {
            for m in graph.neighbors_directed(ids[n], dir).map(|m| graph[m]) {
                if seen.insert(m) {
                    stack.push(m);
                }
            }
        }
        seen
    };
    for &(drop, create) in &pairs {
        let pos = |n: usize| order.iter().position(|&x| x == n).expect("every node is ordered");
        let (a, b) = (pos(drop), pos(create));
        if a >= b {
            continue;
        }
        let after_drop = reach(drop, Direction::Outgoing);
        let before_create = reach(create, Direction::Incoming);
        let window = order[a + 1..b].to_vec();
        // Not after the drop: before it. After the drop but not needed by the create: after
        // it. Each keeps its relative order, so every edge still points forward.
        let (early, rest): (Vec<usize>, Vec<usize>) =
            window.into_iter().partition(|n| !after_drop.contains(n));
        let (inside, late): (Vec<usize>, Vec<usize>) =
            rest.into_iter().partition(|n| before_create.contains(n));
        let rewritten: Vec<usize> =
            early.into_iter().chain([drop]).chain(inside).chain([create]).chain(late).collect();
        order[a..=b].copy_from_slice(&rewritten);
    }
    // Windows that overlap (two views around one swap) become one group.
    let mut ranges: Vec<(usize, usize, usize, usize)> = pairs
        .iter()
        .map(|&(d, c)| {
            let pos = |n: usize| order.iter().position(|&x| x == n).expect("every node is ordered");
            (pos(d), pos(c), d, c)
        })
        .filter(|r| r.0 < r.1)
        .collect();
    ranges.sort();
    // (first position, last position, the drop/create pairs inside)
    type Window = (usize, usize, Vec<(usize, usize)>);
    let mut merged: Vec<Window> = Vec::new();
    for (a, b, d, c) in ranges {
        match merged.last_mut() {
            Some(last) if a <= last.1 => {
                last.1 = last.1.max(b);
                last.2.push((d, c));
            }
            _ => merged.push((a, b, vec![(d, c)])),
        }
    }
    let mut groups = Vec::new();
    let mut split = BTreeMap::new();
    for (a, b, members) in merged {
        let window = &order[a..=b];
        let shareable = window.iter().all(|&n| {
            let d = &nodes[n].draft;
            d.transactional && !d.scans_table && !d.rewrites_table && d.backfill.is_none()
        });
        if shareable {
            groups.push(window.to_vec());
        } else {
            split.extend(members);
        }
    }
    (groups, split)
}

/// Floating steps (views) take the latest phase among the steps that make what they read
/// (and, for `SELECT *` views, remove columns they would otherwise bind again); all
/// floating steps of a change share it. A view whose old definition reads something that
/// goes away is replaced no earlier than switch (it is what the old release reads), and its
/// drop still precedes the removal: an edge, reported as a phase conflict if it cannot hold.
fn place_floating(nodes: &mut [Node]) {
    for _ in 0..8 {
        let mut makers: BTreeMap<Res, Phase> = BTreeMap::new();
        let mut removers: BTreeMap<Res, Phase> = BTreeMap::new();
        for n in nodes.iter() {
            for r in &n.draft.makes {
                let e = makers.entry(r.clone()).or_insert(n.draft.phase);
                *e = (*e).max(n.draft.phase);
            }
            for r in &n.draft.removes {
                let e = removers.entry(r.clone()).or_insert(n.draft.phase);
                *e = (*e).max(n.draft.phase);
            }
        }
        let mut wanted: BTreeMap<usize, Phase> = BTreeMap::new();
        for n in nodes.iter().filter(|n| n.draft.floating) {
            let mut p = Phase::Expand;
            for r in &n.draft.needs {
                if let Some(m) = makers.get(r) {
                    p = p.max(*m);
                }
            }
            for r in &n.draft.after_removal {
                if let Some(m) = removers.get(r) {
                    p = p.max(*m);
                }
            }
            // A view over something that goes away is what the old release reads: it changes
            // with the release point, not before (and before the removal, by an edge).
            for r in &n.draft.releases {
                if let Some(m) = removers.get(r) {
                    p = p.max((*m).min(Phase::Switch));
                }
            }
            let e = wanted.entry(n.change).or_insert(p);
            *e = (*e).max(p);
        }
        let mut changed = false;
        for n in nodes.iter_mut().filter(|n| n.draft.floating) {
            let p = wanted[&n.change];
            if n.draft.phase != p {
                n.draft.phase = p;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

/// A user's row trigger that fires on UPDATE of the column a backfill writes (or on any
/// UPDATE) runs once for every backfilled row: an `updated_at` it bumps, an audit row it
/// writes, a notification it sends, none of which rolling the backfill back undoes. A warning
/// naming the trigger and the way to keep it quiet: a `WHEN` on the setting the backfill sets
/// in every batch.
fn backfill_trigger_findings(
    current: &Schema,
    desired: &Schema,
    steps: &[Step],
    findings: &mut Vec<Finding>,
) {
    let mut seen = BTreeSet::new();
    for spec in steps.iter().filter_map(|s| s.backfill.as_ref()) {
        let triggers = desired
            .opaque
            .values()
            .chain(current.opaque.values().filter(|o| !desired.opaque.contains_key(&o.id)));
        for o in triggers {
            if o.id.kind != crate::model::OpaqueKind::Trigger || !o.depends_on.contains(&spec.table) {
                continue;
            }
            if !fires_for_backfill(&o.text, spec.target_column.as_str())
                || !seen.insert(o.id.identity.clone())
            {
                continue;
            }
            let column = crate::diff::column_object(&spec.table, &spec.target_column);
            findings.push(
                Finding::warning(FindingCode::BackfillFiresTrigger, o.id.identity.clone(), format!(
                    "trigger {} fires for every row the backfill of {column} writes: whatever it does (a timestamp, an audit row, a notification) happens once per backfilled row, and rolling the backfill back does not undo it",
                    o.id.identity))
                .with_help("if it should not fire for the backfill, give it the condition WHEN (current_setting('seqmig.backfill', true) IS DISTINCT FROM 'on'): seqmig's backfill sets seqmig.backfill in every batch"),
            );
        }
    }
}

/// Whether a row trigger's text fires on an UPDATE that writes `column`: `… UPDATE … FOR EACH
/// ROW` with no column list, or with `UPDATE OF` a list naming it. A trigger that already tests
/// `seqmig.backfill` is quiet.
fn fires_for_backfill(text: &str, column: &str) -> bool {
    let t = text.to_ascii_lowercase();
    let words = crate::parse::text::words(&t);
    let Some(on) = words.iter().position(|w| *w == "on") else { return false };
    let events = &words[..on];
    let row = t.contains("for each row");
    if !row || !events.contains(&"update") || t.contains("seqmig.backfill") {
        return false;
    }
    match events.iter().position(|w| *w == "of") {
        Some(of) => {
            let column = column.to_ascii_lowercase();
            events[of + 1..].iter().any(|w| w.trim_matches(|c| c == ',' || c == '"') == column)
        }
        None => true,
    }
}

/// Issue 17.4: "safe" means no step holds a lock that blocks writes (SHARE or stronger)
/// while it rewrites or scans a table that already has rows; catalog-only changes under a
/// brief ACCESS EXCLUSIVE lock are fine. Every planner file plans the online form where one
/// exists, so a step caught here has none (identity or stored generated column added to an
/// existing table, exclusion constraint): a blocking `table-rewrite` finding naming the
/// change's object, unless `[plan] allow_blocking` lists it.
fn blocking_findings(
    current: &Schema,
    changes: &[Change],
    steps: &[Step],
    hints: &Hints,
    findings: &mut Vec<Finding>,
) {
    let mut seen = BTreeSet::new();
    for s in steps {
        let heavy = s.rewrites_table || s.scans_table;
        let on_existing = matches!(s.lock_relations(), [q] if current.tables.contains_key(q));
        if !heavy || s.lock < super::LockMode::Share || !on_existing {
            continue;
        }
        let Some(ci) = s.change.strip_prefix('c').and_then(|n| n.parse::<usize>().ok()) else { continue };
        let change = &changes[ci - 1];
        let object = change.object();
        if !seen.insert(object.clone()) {
            continue;
        }
        let what = if s.rewrites_table { "rewrites" } else { "scans" };
        let message = format!(
            "step {} ({}) {what} {} holding {}: reads{} wait until it ends; there is no online form",
            s.id,
            change.summary(),
            s.lock_target,
            s.lock.as_str(),
            if s.lock == super::LockMode::AccessExclusive { " and writes" } else { " continue but writes" },
        );
        if hints.blocking_allowed(&object) {
            findings.push(
                Finding::warning(
                    FindingCode::TableRewrite,
                    object.clone(),
                    format!("{message} (acknowledged)"),
                )
                .with_help("acknowledged in [plan] allow_blocking: run it in a maintenance window"),
            );
        } else {
            findings.push(Finding::error(FindingCode::TableRewrite, object.clone(), message).with_help(format!(
                "change the desired schema to a form seqmig can plan online, or run it in a maintenance window: add \"{object}\" to [plan] allow_blocking in seqmig.toml"
            )));
        }
    }
}

fn gate(hints: &Hints, steps: &[Step]) -> GateSpec {
    if !steps.iter().any(|s| s.phase == Phase::Contract) {
        return GateSpec::default();
    }
    let mut criteria = Vec::new();
    if !hints.gate.min_soak.trim().eq_ignore_ascii_case("off") {
        criteria.push(GateCriterion { name: "min_soak".into(), value: hints.gate.min_soak.clone() });
    }
    if steps.iter().any(|s| s.backfill.is_some()) {
        criteria.push(GateCriterion { name: "backfill_verified".into(), value: "0 mismatches".into() });
    }
    if steps.iter().any(|s| s.sql.contains("VALIDATE CONSTRAINT")) {
        criteria.push(GateCriterion { name: "constraints_validated".into(), value: "all".into() });
    }
    if let Some(app) = &hints.gate.old_application_name {
        criteria.push(GateCriterion { name: "no_old_clients".into(), value: app.clone() });
    }
    if steps.iter().any(|s| s.phase == Phase::Contract && s.one_way) {
        // As `[gate] old_path_silent` says (issue 18.7): a plan must not ask more than the
        // gate's configuration, or `off` could never be honoured (the strictest wins).
        let value = match hints.old_path_silent {
            crate::diff::OldPathSilent::Required => Some("since switch"),
            crate::diff::OldPathSilent::IfAvailable => Some("if_available"),
            crate::diff::OldPathSilent::Off => None,
        };
        if let Some(value) = value {
            criteria.push(GateCriterion { name: "old_path_silent".into(), value: value.into() });
        }
    }
    if hints.gate.observations > 0 {
        criteria
            .push(GateCriterion { name: "observations".into(), value: hints.gate.observations.to_string() });
    }
    if !hints.gate.approvals.is_empty() {
        criteria.push(GateCriterion { name: "approvals".into(), value: hints.gate.approvals.join(", ") });
    }
    GateSpec { criteria }
}

/// The table whose columns, constraints or indexes `change` changes (what a step's `leads`
/// names).
fn change_table(change: &Change) -> Option<&QualifiedName> {
    match change {
        Change::AddColumn { table, .. }
        | Change::AddNotNullColumn { table, .. }
        | Change::DropColumn { table, .. }
        | Change::RenameColumn { table, .. }
        | Change::ChangeType(TypeChange { table, .. })
        | Change::SetNotNull { table, .. }
        | Change::DropNotNull { table, .. }
        | Change::ChangeDefault { table, .. }
        | Change::SetStatistics { table, .. }
        | Change::AddConstraint { table, .. }
        | Change::AddUnique { table, .. }
        | Change::ChangeConstraint { table, .. }
        | Change::DropConstraint { table, .. }
        | Change::RenameConstraint { table, .. } => Some(table),
        Change::AddIndex { index, .. } | Change::DropIndex { index } => Some(&index.table),
        Change::ChangeIndex { to, .. } => Some(&to.table),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::tests::{col, fk, pk, schema, table};
    use crate::model::{ColumnRef, Ident, QualifiedName, View};

    fn view(name: &str, reads: &[(&str, &str)]) -> View {
        View {
            name: QualifiedName::of("public", name),
            materialized: false,
            columns: vec![],
            definition: format!(
                "SELECT {} FROM public.users",
                reads.iter().map(|r| r.1).collect::<Vec<_>>().join(", ")
            ),
            reads: reads
                .iter()
                .map(|(t, c)| ColumnRef {
                    table: QualifiedName::of("public", t),
                    column: Some(Ident::exact(c).unwrap()),
                })
                .collect(),
            options: vec![],
            check_option: None,
            search_path: None,
            column_defaults: Default::default(),
        }
    }

    fn scenario() -> (Schema, Schema, Hints) {
        let mut users = table(
            "public",
            "users",
            vec![col("id", "integer", true), col("name", "text", false), col("legacy", "text", false)],
        );
        pk(&mut users, "id");
        let mut cur = schema(vec![users.clone()]);
        cur.views.insert(
            QualifiedName::of("public", "user_ids"),
            view("user_ids", &[("users", "id"), ("users", "legacy")]),
        );
        let mut new_users =
            table("public", "users", vec![col("id", "bigint", true), col("full_name", "text", false)]);
        pk(&mut new_users, "id");
        let mut orders =
            table("public", "orders", vec![col("id", "bigint", true), col("user_id", "bigint", false)]);
        pk(&mut orders, "id");
        fk(&mut orders, "user_id", &QualifiedName::of("public", "users"));
        let mut des = schema(vec![new_users, orders]);
        des.views.insert(QualifiedName::of("public", "user_ids"), view("user_ids", &[("users", "id")]));
        let hints = Hints::from_toml(
            "[[rename]]\ntable = \"public.users\"\nfrom = \"name\"\nto = \"full_name\"\n[plan]\nallow_one_way = [\"public.users.legacy\"]\n",
            "t",
        )
        .unwrap();
        (cur, des, hints)
    }

    #[test]
    fn dependent_changes_are_ordered_and_deterministic() {
        let (cur, des, hints) = scenario();
        let r = Renderer::embedded();
        let a = crate::plan::plan(&cur, &des, &hints, &r).unwrap();
        let b = crate::plan::plan(&cur, &des, &hints, &r).unwrap();
        assert_eq!(a.plan.to_json_pretty(), b.plan.to_json_pretty());
        assert_eq!(a.plan.id, b.plan.id);
        let plan = &a.plan;
        assert!(!plan.is_blocked(), "{:#?}", plan.findings);
        let pos = |needle: &str| {
            plan.steps
                .iter()
                .position(|s| s.sql.contains(needle))
                .unwrap_or_else(|| panic!("no step with {needle}"))
        };
        // table before its foreign key
        assert!(pos("CREATE TABLE public.orders") < pos("FOREIGN KEY (user_id)"));
        // view dropped before the column it reads, recreated after, in one step (one
        // transaction) with the swap
        let at = |needle: &str| {
            let i = pos(needle);
            (i, plan.steps[i].sql.find(needle).unwrap())
        };
        assert!(at("DROP VIEW public.user_ids") < at("RENAME COLUMN id TO id__seqmig_old"));
        assert!(at("RENAME COLUMN id TO id__seqmig_old") < at("CREATE VIEW public.user_ids"));
        assert_eq!(pos("DROP VIEW public.user_ids"), pos("CREATE VIEW public.user_ids"));
        assert!(at("DROP VIEW public.user_ids") < at("DROP COLUMN legacy"));
        // the new table's foreign key lets go of the old key during the swap
        let swap = &plan.steps[pos("RENAME COLUMN id TO id__seqmig_old")].sql;
        assert!(
            swap.find("DROP CONSTRAINT orders_user_id_fkey").unwrap()
                < swap.find("DROP CONSTRAINT users_pkey").unwrap()
        );
        // phases are contiguous and in order
        let phases: Vec<Phase> = plan.steps.iter().map(|s| s.phase).collect();
        assert!(phases.windows(2).all(|w| w[0] <= w[1]));
        for s in &plan.steps {
            crate::parse::parses(&s.sql).unwrap_or_else(|e| panic!("{e}\n{}", s.sql));
        }
    }

    #[test]
    fn cycles_are_reported_by_name() {
        let r = Renderer::embedded();
        let mut a = table("public", "a", vec![col("id", "bigint", true)]);
        pk(&mut a, "id");
        let mut b = a.clone();
        b.name = QualifiedName::of("public", "b");
        let cur = schema(vec![a.clone(), b.clone()]);
        // Each table's dropped FK must go before the other table... build an artificial cycle
        // with two views reading each other.
        let mut des = cur.clone();
        let mut v1 = view("v1", &[]);
        v1.reads.insert(ColumnRef { table: QualifiedName::of("public", "v2"), column: None });
        let mut v2 = view("v2", &[]);
        v2.reads.insert(ColumnRef { table: QualifiedName::of("public", "v1"), column: None });
        des.views.insert(v1.name.clone(), v1);
        des.views.insert(v2.name.clone(), v2);
        let p = crate::plan::plan(&cur, &des, &Hints::default(), &r).unwrap();
        let f = p.plan.findings.iter().find(|f| f.code == FindingCode::DependencyCycle).expect("cycle found");
        assert!(f.object.contains("public.v1") && f.object.contains("public.v2"));
    }
}
