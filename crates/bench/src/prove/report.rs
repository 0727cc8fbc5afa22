//! The report folder of `tenantd prove`: `report.md` (the verdict, the seed's launch table side
//! by side, the roadmap with measured inputs, every scenario's findings, what was assumed),
//! `capacity.svg` and `inflight.svg` (charts), `raw.json` (everything measured), and the
//! `workload.toml` / `machine.toml` profiles the run wrote (`tenantd capacity --workload …`).

use std::path::Path;
use std::time::Duration;

use capacity::render::doc::{to_markdown, to_text, Block};
use capacity::render::{report as model_report, svg};
use capacity::roadmap::{seed_roadmap, SEED_ROADMAP};
use capacity::series::{cost_curves, log_spaced, retention_curve};
use capacity::Provenance;
use loadgen::machine::MachineInfo;
use serde_json::json;

use super::chart::{self, Scatter};
use super::plan::Plan;
use super::verdict::Verdict;
use super::Prove;
use crate::calibrate::Outcome;

/// Everything the report shows.
pub struct Report<'a> {
    /// The request.
    pub prove: &'a Prove,
    /// The plan that ran.
    pub plan: &'a Plan,
    /// This host.
    pub host: &'a MachineInfo,
    /// Date, machine, version, scenarios, emulation.
    pub provenance: &'a Provenance,
    /// What each scenario measured.
    pub outcomes: &'a [Outcome],
    /// Scenarios that failed, with the error.
    pub failed: &'a [(String, String)],
    /// Scenarios skipped because the budget ran out.
    pub skipped: &'a [String],
    /// The verdict.
    pub verdict: &'a Verdict,
    /// Wall time of the calibration.
    pub took: Duration,
}

/// Now, as `2026-12-01T05:48:31Z`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

/// The report's blocks (markdown and text are rendered from the same blocks).
pub fn blocks(r: &Report<'_>) -> anyhow::Result<Vec<Block>> {
    let v = r.verdict;
    let mut b = vec![Block::Heading("tenantd prove".into())];
    b.push(Block::Record(vec![
        ("measured on".into(), r.provenance.machine.clone()),
        (
            "numbers are".into(),
            match &r.provenance.emulated {
                Some(e) => format!("emulated ({e})"),
                None => "native (this host's own CPU and RAM, no emulation)".into(),
            },
        ),
        ("machine profile".into(), r.prove.machine.clone()),
        (
            "durability mode".into(),
            crate::calibrate::mode_name(r.prove.durability).into(),
        ),
        (
            "version, date".into(),
            format!("tenantd {}, {}", r.provenance.version, r.provenance.date),
        ),
        (
            "calibration".into(),
            format!(
                "{:.0} s (budget {:.0} s, plan estimate {:.0} s{})",
                r.took.as_secs_f64(),
                r.prove.budget.as_secs_f64(),
                r.plan.estimate().as_secs_f64(),
                if r.prove.quick { ", --quick" } else { "" }
            ),
        ),
    ]));
    b.extend(super::verdict::blocks(v));
    b.push(Block::Heading(
        "Assumed, not measured (business inputs and server settings)".into(),
    ));
    b.push(Block::Para(
        "These come from the workload profile or flags, not from this machine; change them with \
         the flags of `tenantd prove` or a workload file (`--workload`)."
            .into(),
    ));
    b.push(Block::Record(
        v.assumed
            .iter()
            .map(|(f, value, source)| (f.clone(), format!("{value} — {source}")))
            .collect(),
    ));
    b.push(Block::Heading(
        "The road to 1,000,000 users, with measured inputs".into(),
    ));
    let rows = seed_roadmap(&v.measured.workload, capacity::builtin::machine)?;
    b.extend(model_report::roadmap(&v.measured.workload, &rows));
    b.push(Block::Heading("What each scenario saw".into()));
    let planned = r.plan.estimate_by_scenario();
    for o in r.outcomes {
        let estimate = planned
            .iter()
            .find(|(name, _)| {
                o.scenario
                    .starts_with(name.split(' ').next().unwrap_or(name))
            })
            .map(|(_, d)| d.as_secs_f64());
        b.push(Block::Para(format!(
            "`tenantd bench {}` ({:.0} s; planned {})",
            o.scenario,
            o.seconds,
            estimate.map_or("?".into(), |e| format!("{e:.0} s"))
        )));
        b.push(Block::Pre(o.summary.join("\n")));
    }
    if !r.failed.is_empty() || !r.skipped.is_empty() {
        b.push(Block::Heading("Not measured".into()));
        let mut lines: Vec<(String, String)> = r
            .failed
            .iter()
            .map(|(s, e)| (s.clone(), format!("failed: {e}")))
            .collect();
        lines.extend(
            r.skipped
                .iter()
                .map(|s| (s.clone(), "skipped: the time budget ran out".to_string())),
        );
        b.push(Block::Record(lines));
        b.push(Block::Para(
            "Fields those scenarios would have measured keep the base profile's values.".into(),
        ));
    }
    b.push(Block::Para(
        "Files: raw.json (everything measured), workload.toml and machine.toml (the measured \
         profiles: `tenantd capacity --workload workload.toml --machine machine.toml`), \
         capacity.svg, inflight.svg."
            .into(),
    ));
    Ok(b)
}

/// Writes the folder; returns the report as text.
pub fn write(r: &Report<'_>) -> anyhow::Result<String> {
    let out = &r.prove.out;
    let blocks = blocks(r)?;
    write_file(&out.join("report.md"), &to_markdown(&blocks))?;

    let v = r.verdict;
    let (m, w) = (&v.measured.machine, &v.measured.workload);
    let retention = retention_curve(m, w, (w.retention_years.max(1.0) * 10.0).min(100.0), 80);
    let costs = cost_curves(
        std::slice::from_ref(m),
        w,
        &log_spaced(1_000, 10_000_000, 40),
    );
    let title = format!("{} under measured inputs", m.meta.name);
    write_file(
        &out.join("capacity.svg"),
        &svg::charts(&title, &retention, &costs, &SEED_ROADMAP)?,
    )?;
    let inflight = r.outcomes.iter().find(|o| o.scenario == "inflight");
    let points: Vec<(f64, f64)> = inflight
        .and_then(|o| o.raw["levels"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|l| {
            let c = l["concurrency"].as_f64()?;
            let grew = l["peak_rss_bytes"].as_f64()? - l["rss_before_bytes"].as_f64()?;
            Some((c, grew))
        })
        .collect();
    let line = inflight.and_then(|o| {
        Some((
            o.raw["fit"]["intercept"].as_f64()?,
            o.raw["fit"]["slope"].as_f64()?,
        ))
    });
    write_file(
        &out.join("inflight.svg"),
        &chart::scatter(&Scatter {
            title: "Peak RSS growth over operations in flight",
            x_label: "operations in flight (one tenant each)",
            y_label: "peak RSS − RSS at start (bytes)",
            points: &points,
            line,
        }),
    )?;

    let raw = json!({
        "version": r.provenance.version,
        "provenance": r.provenance,
        "host": r.host,
        "machine_profile": r.prove.machine,
        "workload_profile": r.prove.workload,
        "durability": crate::calibrate::mode_name(r.prove.durability),
        "budget_seconds": r.prove.budget.as_secs_f64(),
        "took_seconds": r.took.as_secs_f64(),
        "quick": r.prove.quick,
        "plan": r.plan,
        "plan_estimate_seconds": r.plan.estimate().as_secs_f64(),
        "plan_estimate_by_scenario": r
            .plan
            .estimate_by_scenario()
            .iter()
            .map(|(name, d)| json!({"scenario": name, "seconds": d.as_secs_f64()}))
            .collect::<Vec<_>>(),
        "scenarios": r.outcomes,
        "failed": r.failed,
        "skipped": r.skipped,
        "verdict": r.verdict,
    });
    let mut raw = raw;
    capacity::render::json::round_floats(&mut raw);
    write_file(&out.join("raw.json"), &serde_json::to_string_pretty(&raw)?)?;
    Ok(to_text(&blocks))
}
