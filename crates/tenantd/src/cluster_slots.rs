//! `tenantd cluster move`, `move-slot` and `rebalance`: tenants and slots moved with their
//! data (docs/CLUSTER.md "Moving tenants"). A slot moves by flip then drain
//! (`cluster::handover`); `cluster-moves.json` next to the table journals slot moves between
//! the two, so an interrupted run is finished by the next one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use cluster::handover::{self, Journal, SlotMove};
use cluster::plan::{loads, plan, Move};
use cluster::slot::{slot_of, SLOTS};
use cluster::table::SlotTable;
use futures_util::StreamExt as _;
use store::TenantId;

use crate::cluster_ops::{Ctx, Transfer};

/// Tenants moved per switch in a drain (each switch pushes the table to every node).
pub const DRAIN_BATCH: usize = 32;

/// The journal's path: `cluster-moves.json` next to the table.
fn journal_path(ctx: &Ctx) -> PathBuf {
    ctx.table_path.with_file_name("cluster-moves.json")
}

/// `tenantd cluster move TENANT --to NODE`: moves one tenant with its data and pins it there.
pub async fn move_tenant(ctx: &Ctx, tenant: &TenantId, to: &str) -> anyhow::Result<()> {
    ctx.node(to)?;
    let table = ctx.table()?;
    let from = table.owner(tenant).to_string();
    if from == to {
        let missed = ctx.switch(&table, &[to]).await?;
        println!(
            "{tenant} is already served by {to} (epoch {}; table pushed again)",
            table.epoch()
        );
        return report_missed(&missed);
    }
    let tr = ctx.transfer(tenant, &from, to).await?;
    let mut next = table.clone();
    let pin = (table.slot_owner(slot_of(tenant)) != to).then_some(to);
    next.set_override(tenant, pin)?;
    let missed = switch_or_undo(ctx, &table, &next, &[(tenant.clone(), from.clone())], to).await?;
    print_transfer(tenant, &from, to, &tr);
    report_missed(&missed)
}

fn print_transfer(tenant: &TenantId, from: &str, to: &str, tr: &Transfer) {
    if tr.already {
        println!("{tenant}: {from} -> {to} (its data had moved in an earlier run; route switched)");
    } else {
        println!(
            "{tenant}: {from} -> {to}, {} bytes, writes paused {} ms",
            tr.bytes,
            tr.fenced_for.as_millis()
        );
    }
}

fn report_missed(missed: &[String]) -> anyhow::Result<()> {
    if missed.is_empty() {
        Ok(())
    } else {
        bail!(
            "nodes without the new table: {} (run `tenantd cluster push` when they answer)",
            missed.join(", ")
        )
    }
}

/// Switches to `next` with `to` told first; if `to` does not take it, puts `old` back in the
/// table file and undoes the transfers of `moved` (tenant, source), so every tenant is served
/// by its source again. Past that point (the target has the table) failures roll forward.
async fn switch_or_undo(
    ctx: &Ctx,
    old: &SlotTable,
    next: &SlotTable,
    moved: &[(TenantId, String)],
    to: &str,
) -> anyhow::Result<Vec<String>> {
    let tf = next.to_file();
    if let Err(e) = ctx.push_node(ctx.node(to)?, &tf).await {
        let back = serde_json::to_string_pretty(&old.to_file())?;
        cluster::runtime::write_atomic(&ctx.table_path, back.as_bytes())?;
        for (t, from) in moved {
            // After a commit the source holds the file retired; no token is needed to restore.
            if let Err(u) = ctx.undo(t, from, to, "0").await {
                eprintln!("warning: undoing the move of {t}: {u:#}");
            }
        }
        return Err(e.context(format!(
            "{to} did not take the new table: the move was undone"
        )));
    }
    ctx.switch(next, &[to]).await
}

/// `tenantd cluster move-slot` and the execution of a rebalance: flips `moves` (pinning the
/// tenants their old owners hold), then drains every slot in the journal, `parallel` tenants
/// at a time, with a progress bar. Returns the tenants moved and their bytes.
pub async fn move_slots(
    ctx: &Ctx,
    moves: Vec<SlotMove>,
    parallel: usize,
) -> anyhow::Result<(usize, u64)> {
    let jpath = journal_path(ctx);
    let mut journal = Journal::load(&jpath).map_err(anyhow::Error::msg)?;
    let mut table = ctx.table()?;
    let new: Vec<SlotMove> = moves
        .into_iter()
        .filter(|m| table.slot_owner(m.slot) != m.to && !journal.slots().contains(&m.slot))
        .collect();
    for m in &new {
        ctx.node(&m.to)?;
    }
    if !new.is_empty() {
        table = flip(ctx, &table, &new, &mut journal, &jpath).await?;
    }
    let drained = drain(ctx, &mut table, &journal, parallel).await;
    let done: BTreeSet<u16> = handover::finished(&table, &journal).into_iter().collect();
    journal.moves.retain(|m| !done.contains(&m.slot));
    journal
        .save(&jpath)
        .with_context(|| format!("cannot write {}", jpath.display()))?;
    drained
}

/// The flip: journal first, then the table giving each slot to its new owner with the old
/// owner's tenants pinned; then a second look at the old owners for tenants created in between.
async fn flip(
    ctx: &Ctx,
    table: &SlotTable,
    new: &[SlotMove],
    journal: &mut Journal,
    jpath: &std::path::Path,
) -> anyhow::Result<SlotTable> {
    let held = held_tenants(ctx, new).await?;
    journal.moves.extend(new.iter().cloned());
    journal
        .save(jpath)
        .with_context(|| format!("cannot write {}", jpath.display()))?;
    let mut next = handover::flip(table, new, &held)?;
    // Every node involved must know before anyone creates a tenant in these slots.
    let involved: BTreeSet<&str> = new
        .iter()
        .flat_map(|m| [m.from.as_str(), m.to.as_str()])
        .collect();
    let first: Vec<&str> = involved.into_iter().collect();
    report_missed(&ctx.switch(&next, &first).await?)?;
    // A tenant created on an old owner between the listing and the flip: pin it too.
    let again = held_tenants(ctx, new).await?;
    let mut late = next.clone();
    let mut any = false;
    for m in new {
        for t in again.get(&m.slot).into_iter().flatten() {
            if next.owner(t) != m.from {
                late.set_override(t, Some(&m.from))?;
                any = true;
            }
        }
    }
    if any {
        report_missed(&ctx.switch(&late, &first).await?)?;
        next = late;
    }
    Ok(next)
}

/// Per slot of `moves`, the tenants its old owner holds there.
async fn held_tenants(
    ctx: &Ctx,
    moves: &[SlotMove],
) -> anyhow::Result<BTreeMap<u16, Vec<TenantId>>> {
    let mut by_node: BTreeMap<&str, BTreeSet<u16>> = BTreeMap::new();
    for m in moves {
        by_node.entry(m.from.as_str()).or_default().insert(m.slot);
    }
    let mut held = BTreeMap::new();
    for (node, slots) in by_node {
        let listing = ctx.slot_ids(ctx.node(node)?).await?;
        for (slot, ids) in listing {
            if slots.contains(&slot) {
                held.insert(slot, ids);
            }
        }
    }
    Ok(held)
}

/// Moves every tenant pending in the journal's slots, `parallel` at a time, one switch per
/// batch of [`DRAIN_BATCH`]. Tenants whose move failed stay pinned (undone) and are named.
async fn drain(
    ctx: &Ctx,
    table: &mut SlotTable,
    journal: &Journal,
    parallel: usize,
) -> anyhow::Result<(usize, u64)> {
    let pending = handover::pending(table, journal);
    if pending.is_empty() {
        return Ok((0, 0));
    }
    let bar = indicatif::ProgressBar::new(pending.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} tenants moved, {elapsed} (eta {eta}) {msg}",
        )
        .expect("a valid template"),
    );
    let (mut moved_n, mut bytes, mut failed) = (0usize, 0u64, Vec::new());
    for batch in pending.chunks(DRAIN_BATCH) {
        let results: Vec<_> = futures_util::stream::iter(batch.iter().cloned())
            .map(|(t, from, to)| async move {
                let r = ctx.transfer(&t, &from, &to).await;
                (t, from, to, r)
            })
            .buffer_unordered(parallel.max(1))
            .collect()
            .await;
        let mut by_target: BTreeMap<String, Vec<(TenantId, String)>> = BTreeMap::new();
        for (t, from, to, r) in results {
            bar.inc(1);
            match r {
                Ok(tr) => {
                    bytes += tr.bytes;
                    by_target.entry(to).or_default().push((t, from));
                }
                Err(e) => failed.push(format!("{t} ({from} -> {to}): {e:#}")),
            }
        }
        for (to, moved) in by_target {
            let ids: Vec<TenantId> = moved.iter().map(|(t, _)| t.clone()).collect();
            let next = handover::drained(table, &ids);
            let missed = switch_or_undo(ctx, table, &next, &moved, &to).await?;
            for m in missed {
                bar.println(format!(
                    "warning: {m} did not take the new table (run `tenantd cluster push`)"
                ));
            }
            *table = next;
            moved_n += ids.len();
        }
    }
    bar.finish_and_clear();
    if !failed.is_empty() {
        bail!(
            "{} tenant(s) not moved (still served where they were; rerun to retry):\n  {}",
            failed.len(),
            failed.join("\n  ")
        );
    }
    Ok((moved_n, bytes))
}

/// `tenantd cluster move-slot N --to NODE`.
pub async fn move_slot(ctx: &Ctx, slot: u16, to: &str, parallel: usize) -> anyhow::Result<()> {
    if slot >= SLOTS {
        bail!("slot {slot}: slots are 0..{SLOTS}");
    }
    let table = ctx.table()?;
    let from = table.slot_owner(slot).to_string();
    let started = Instant::now();
    let (n, bytes) = move_slots(
        ctx,
        vec![SlotMove {
            slot,
            from: from.clone(),
            to: to.to_string(),
        }],
        parallel,
    )
    .await?;
    println!(
        "slot {slot}: {from} -> {to}, {n} tenants ({bytes} bytes) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `tenantd cluster rebalance`: finishes any journaled slot moves, plans the fewest slot moves
/// that bring every node within `tolerance` of its weighted share of the slots (tenants and
/// bytes follow the hash; docs/CLUSTER.md), and runs them.
/// Prints each node's tenants and bytes now and after `moves`, and warns when the slot plan
/// leaves a node far from its share by either (off by more than [`SKEW`], or the tolerance if
/// larger: hashing spreads small counts unevenly, so only a gross skew is worth a line). The
/// plan moves slots, so data skewed within slots (a few big tenants) stays where it is.
/// How far from its share (a fraction) a node may end before the rebalance warns.
const SKEW: f64 = 0.5;

fn report_balance(
    table: &SlotTable,
    weights: &[(String, u32)],
    moves: &[Move],
    tenants: &[u64],
    bytes: &[u64],
    tolerance: f64,
) {
    let by_tenants = loads(table, weights, moves, tenants);
    let by_bytes = loads(table, weights, moves, bytes);
    for (t, b) in by_tenants.iter().zip(&by_bytes) {
        println!(
            "{}: tenants {} -> {} (share {:.0}), bytes {} -> {} (share {:.0})",
            t.node, t.now, t.after, t.target, b.now, b.after, b.target
        );
    }
    for (what, l, costs) in [
        ("tenants", &by_tenants, tenants),
        ("bytes", &by_bytes, bytes),
    ] {
        let unit = costs.iter().copied().max().unwrap_or(0);
        for x in l.iter().filter(|x| !x.balanced(tolerance.max(SKEW), unit)) {
            println!(
                "warning: after the plan {} holds {} {what} against a share of {:.0}: the data \
                 is skewed within slots; move its largest tenants with `tenantd cluster move`",
                x.node, x.after, x.target
            );
        }
    }
}

pub async fn rebalance(
    ctx: &Ctx,
    tolerance: f64,
    parallel: usize,
    dry_run: bool,
) -> anyhow::Result<()> {
    if !(0.0..1.0).contains(&tolerance) {
        bail!("--tolerance {tolerance}: expected a fraction in [0, 1), e.g. 0.05");
    }
    let started = Instant::now();
    if !dry_run
        && !Journal::load(&journal_path(ctx))
            .map_err(anyhow::Error::msg)?
            .moves
            .is_empty()
    {
        println!("finishing the slot moves of an interrupted run first");
        move_slots(ctx, Vec::new(), parallel).await?;
    }
    let table = ctx.table()?;
    let moves = plan(&table, &ctx.c.weights(), None, tolerance)?;
    let mut per_pair: BTreeMap<(String, String), usize> = BTreeMap::new();
    for m in &moves {
        *per_pair.entry((m.from.clone(), m.to.clone())).or_default() += 1;
    }
    for ((from, to), n) in &per_pair {
        println!("{from} -> {to}: {n} slots");
    }
    match ctx.slot_costs().await {
        Ok((tenants, bytes)) => report_balance(
            &table,
            &ctx.c.weights(),
            &moves,
            &tenants,
            &bytes,
            tolerance,
        ),
        Err(e) => println!("tenants and bytes per node unknown ({e:#}): the plan balances slots"),
    }
    if dry_run {
        for m in &moves {
            println!("slot {}: {} -> {}", m.slot, m.from, m.to);
        }
        println!(
            "{} of {SLOTS} slots would move (dry run: nothing changed)",
            moves.len()
        );
        return Ok(());
    }
    let n_slots = moves.len();
    let moves = moves
        .into_iter()
        .map(|m| SlotMove {
            slot: m.slot,
            from: m.from,
            to: m.to,
        })
        .collect();
    let (n, bytes) = move_slots(ctx, moves, parallel).await?;
    println!(
        "rebalanced: {n_slots} slots, {n} tenants ({bytes} bytes) moved in {:.1} s; table epoch {}",
        started.elapsed().as_secs_f64(),
        ctx.table()?.epoch()
    );
    Ok(())
}
