//! `tenantd prove`: runs the calibration scenarios within a time budget, writes what they
//! measured into workload and machine profiles, evaluates the seed's launch case next to the
//! measured one, and writes a report folder (markdown, SVG charts, raw JSON, the profiles).
//!
//! - [`plan`]: what runs, fitted to the budget (pure);
//! - [`verdict`]: the side-by-side tables and the sentence (pure);
//! - [`chart`]: the in-flight memory chart (pure);
//! - [`report`]: the folder.

pub mod chart;
pub mod plan;
pub mod report;
pub mod verdict;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use capacity::profile_file::{update_profile_file, Measured};
use capacity::{MachineProfile, WorkloadProfile};
use store::Durability;

use crate::calibrate::{self, Context, Outcome};
use plan::Plan;

/// A validated `tenantd prove` request.
#[derive(Debug, Clone)]
pub struct Prove {
    /// Machine profile: built-in name or file (what the user rents).
    pub machine: String,
    /// Workload profile the business inputs come from (built-in name or file).
    pub workload: String,
    /// Business inputs given as flags (field, value), recorded as such.
    pub business: Vec<(String, f64)>,
    /// Durability mode the verdict is for.
    pub durability: Durability,
    /// Time budget of the calibration.
    pub budget: Duration,
    /// Quick calibration (under a minute).
    pub quick: bool,
    /// Run the servers under the machine's CPU count and RAM (cgroup v1).
    pub emulate: bool,
    /// Report folder.
    pub out: PathBuf,
    /// Where the servers' data directories go (its disk is the one measured).
    pub scratch: PathBuf,
    /// Load generator threads.
    pub threads: usize,
    /// The tenantd binary to start.
    pub binary: PathBuf,
    /// Gross margin the report prices for.
    pub target_margin: f64,
    /// Progress on stderr.
    pub verbose: bool,
}

/// What a prove run did, for the caller to print.
#[derive(Debug)]
pub struct Proved {
    /// The verdict sentence.
    pub sentence: String,
    /// The report as text (what the markdown says).
    pub text: String,
    /// Scenarios that failed (their fields keep the base profile's values).
    pub failed: Vec<(String, String)>,
    /// Where the report is.
    pub out: PathBuf,
}

/// Runs the calibration and writes the report. Errors: a profile that does not load, an
/// emulation the host cannot do, a report folder that cannot be written. A scenario that
/// fails is reported in [`Proved::failed`] and in the report, and the run goes on.
pub fn run(p: &Prove) -> anyhow::Result<Proved> {
    let started = Instant::now();
    let machine = capacity::load::load_machine(&p.machine)?;
    let base = capacity::load::load_workload(&p.workload)?;
    let host = loadgen::machine::MachineInfo::detect(&p.scratch);
    let emulate = if p.emulate {
        let limits = crate::emulate::limits_for(&machine, host.cores);
        // Fail before any measurement when the host cannot emulate.
        drop(crate::emulate::Cgroup::create(
            "tenantd-prove-check",
            limits,
        )?);
        Some(limits)
    } else {
        None
    };
    let plan = if p.quick {
        Plan::quick(p.durability)
    } else {
        Plan::full(p.durability)
    }
    .fit(p.budget);
    std::fs::create_dir_all(&p.out)?;
    let ctx = Context {
        binary: p.binary.clone(),
        scratch: p.scratch.clone(),
        durability: p.durability,
        threads: p.threads,
        emulate,
        verbose: p.verbose,
    };

    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut step = |name: &str, f: &dyn Fn() -> anyhow::Result<Outcome>| {
        // The budget is the plan's estimate; past 1.5x of it the rest is skipped.
        if started.elapsed() > p.budget.mul_f64(1.5) {
            skipped.push(name.to_string());
            return;
        }
        if p.verbose {
            eprintln!("[{:>5.1} s] {name}", started.elapsed().as_secs_f64());
        }
        let began = Instant::now();
        match f() {
            Ok(mut o) => {
                o.seconds = began.elapsed().as_secs_f64();
                outcomes.push(o)
            }
            Err(e) => failed.push((name.to_string(), format!("{e:#}"))),
        }
    };
    step("disk", &|| {
        calibrate::disk::run(
            &ctx,
            calibrate::disk::Disk {
                events: plan.disk_events,
                sync_for: Duration::from_secs_f64(plan.sync_seconds),
            },
        )
    });
    step("idle", &|| {
        calibrate::idle::run(
            &ctx,
            calibrate::idle::Idle {
                tenants: plan.idle_tenants,
            },
        )
    });
    let load = Duration::from_secs_f64(plan.load_seconds);
    step("inflight", &|| {
        calibrate::inflight::run(
            &ctx,
            &calibrate::inflight::Inflight {
                levels: plan.inflight_levels.clone(),
                duration: load,
                workload: loadgen::workload::Workload::SqlWrite,
            },
        )
    });
    for (i, &mode) in plan.modes.iter().enumerate() {
        let in_mode = Context {
            durability: mode,
            ..ctx.clone()
        };
        let name = format!("cpu ({})", calibrate::mode_name(mode));
        step(&name, &|| {
            let mut o = calibrate::cpu::run(
                &in_mode,
                &calibrate::cpu::Cpu {
                    workloads: plan.cpu_workloads.clone(),
                    duration: load,
                },
            )?;
            if i > 0 {
                // Only the verdict's mode feeds the profile; the others are for the report.
                o.workload.clear();
                o.scenario = format!("cpu-{}", calibrate::mode_name(mode));
            }
            Ok(o)
        });
    }
    step("cold", &|| {
        calibrate::cold::run(
            &ctx,
            &calibrate::cold::Cold {
                cases: plan.cold_cases.clone(),
                duration: load,
            },
        )
    });

    let provenance = calibrate::provenance(
        &host,
        outcomes.iter().map(|o| o.scenario.clone()).collect(),
        emulate,
        Some(&machine.meta.name),
    );
    let mut workload_fields: Vec<Measured> =
        outcomes.iter().flat_map(|o| o.workload.clone()).collect();
    for (field, value) in &p.business {
        workload_fields.push(Measured {
            field: field.clone(),
            value: *value,
            source: format!("flag: --{} (a business input)", field.replace('_', "-")),
        });
    }
    let machine_fields: Vec<Measured> = outcomes.iter().flat_map(|o| o.machine.clone()).collect();
    let workload_file = p.out.join("workload.toml");
    let machine_file = p.out.join("machine.toml");
    let _ = std::fs::remove_file(&workload_file);
    let _ = std::fs::remove_file(&machine_file);
    update_profile_file::<WorkloadProfile>(
        &workload_file,
        &absolute_spec(&p.workload),
        "measured",
        &format!("{} with the inputs tenantd prove measured", base.meta.name),
        &workload_fields,
        &provenance,
    )?;
    update_profile_file::<MachineProfile>(
        &machine_file,
        &absolute_spec(&p.machine),
        &format!("{}-measured", machine.meta.name),
        &format!(
            "{} with the values tenantd prove measured",
            machine.meta.name
        ),
        &machine_fields,
        &provenance,
    )?;
    let measured_workload = capacity::load::load_workload(&workload_file.to_string_lossy())?;
    let measured_machine = capacity::load::load_machine(&machine_file.to_string_lossy())?;
    let seed = verdict::Case::new(
        capacity::builtin::machine("fly-shared-cpu-2x")?,
        capacity::builtin::workload("seed")?,
        p.target_margin,
    );
    let measured = verdict::Case::new(measured_machine, measured_workload, p.target_margin);
    let v = verdict::verdict(seed, measured);
    let r = report::Report {
        prove: p,
        plan: &plan,
        host: &host,
        provenance: &provenance,
        outcomes: &outcomes,
        failed: &failed,
        skipped: &skipped,
        verdict: &v,
        took: started.elapsed(),
    };
    let text = report::write(&r)?;
    Ok(Proved {
        sentence: v.sentence.clone(),
        text,
        failed,
        out: p.out.clone(),
    })
}

/// A profile spec a file in another folder can name as its `base`: built-in names as they
/// are, paths made absolute.
fn absolute_spec(spec: &str) -> String {
    let path = std::path::Path::new(spec);
    if capacity::builtin::names("machine").contains(&spec)
        || capacity::builtin::names("workload").contains(&spec)
        || !path.exists()
    {
        return spec.to_string();
    }
    std::fs::canonicalize(path)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| spec.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_names_stay_names() {
        assert_eq!(absolute_spec("seed"), "seed");
        assert_eq!(absolute_spec("fly-shared-cpu-2x"), "fly-shared-cpu-2x");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.toml");
        std::fs::write(&file, "").unwrap();
        let spec = absolute_spec(&file.to_string_lossy());
        assert!(std::path::Path::new(&spec).is_absolute());
    }
}
