//! The verdict: the seed's launch case next to the same case with measured inputs. Pure: takes
//! the profiles (the measured ones already written and loaded back by the caller) and gives the
//! tables, the binding constraints and the one-sentence verdict.

use capacity::economics::{economics, Economics};
use capacity::field::Profile;
use capacity::render::doc::{Align, Block, Table};
use capacity::units::{count, count_floor, sig};
use capacity::{evaluate, Capacity, MachineProfile, WorkloadProfile};
use serde::Serialize;

/// Workload fields a calibration measures; every other workload field is a business input
/// or a server setting.
pub const MEASURED_WORKLOAD_FIELDS: [&str; 6] = [
    "tenant_create_mb",
    "ram_mb_per_in_flight_op",
    "ram_mb_per_idle_tenant",
    "cpu_seconds_per_request",
    "cold_cpu_seconds_per_request",
    "syncs_per_request",
];

/// One launch case evaluated.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    /// The machine.
    pub machine: MachineProfile,
    /// The workload.
    pub workload: WorkloadProfile,
    /// Its limits.
    pub capacity: Capacity,
    /// Its money figures.
    pub economics: Economics,
}

impl Case {
    /// Evaluates `workload` on `machine`.
    pub fn new(machine: MachineProfile, workload: WorkloadProfile, target_margin: f64) -> Case {
        let capacity = evaluate(&machine, &workload);
        let economics = economics(&machine, &workload, &capacity, target_margin);
        Case {
            machine,
            workload,
            capacity,
            economics,
        }
    }
}

/// The seed's case and the measured one.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The seed's own assumptions on the seed's machine.
    pub seed: Case,
    /// Measured inputs (business inputs kept) on the chosen machine.
    pub measured: Case,
    /// The sentence.
    pub sentence: String,
    /// Business inputs that were assumed, not measured (field, value, source).
    pub assumed: Vec<(String, f64, String)>,
}

/// Compares the two cases.
pub fn verdict(seed: Case, measured: Case) -> Verdict {
    let sentence = format!(
        "this machine ({}) holds {} active tenants under the measured inputs (binding: {}); \
         the seed claimed {} ({} under its own assumptions, binding: {})",
        measured.machine.meta.name,
        count(measured.capacity.supported_tenants as f64),
        measured.capacity.binding.label(),
        count(1_500.0),
        count(seed.capacity.supported_tenants as f64),
        seed.capacity.binding.label()
    );
    let assumed = WorkloadProfile::fields()
        .iter()
        .filter(|f| !MEASURED_WORKLOAD_FIELDS.contains(&f.name))
        .map(|f| {
            let source = measured
                .workload
                .meta
                .sources
                .get(f.name)
                .cloned()
                .unwrap_or_default();
            (f.name.to_string(), (f.get)(&measured.workload), source)
        })
        .collect();
    Verdict {
        seed,
        measured,
        sentence,
        assumed,
    }
}

fn source_kind(source: &str) -> &str {
    source.split(':').next().unwrap_or("")
}

/// A row per field of `P` that differs between the two profiles or was measured.
fn changed_rows<P: Profile>(t: &mut Table, prefix: &str, seed: &P, measured: &P) {
    for f in P::fields() {
        let (a, b) = ((f.get)(seed), (f.get)(measured));
        let source = measured
            .meta()
            .sources
            .get(f.name)
            .cloned()
            .unwrap_or_default();
        if a != b || source_kind(&source) == "measured" {
            t.row(vec![
                format!("{prefix}{} ({})", f.name, f.unit),
                sig(a, 4),
                sig(b, 4),
                source,
            ]);
        }
    }
}

/// The seed's inputs next to the measured ones (only fields that differ or were measured).
pub fn inputs_table(v: &Verdict) -> Table {
    let mut t = Table::new(&[
        ("input", Align::Left),
        ("seed", Align::Right),
        ("measured / used", Align::Right),
        ("source of the second", Align::Left),
    ])
    .wrap(3, 70);
    changed_rows(&mut t, "", &v.seed.workload, &v.measured.workload);
    changed_rows(&mut t, "machine ", &v.seed.machine, &v.measured.machine);
    t
}

/// Every limit under the seed's inputs and under the measured ones.
pub fn limits_table(v: &Verdict) -> Table {
    let mut t = Table::new(&[
        ("constraint", Align::Left),
        ("seed: max tenants", Align::Right),
        ("measured: max tenants", Align::Right),
    ]);
    for (a, b) in v
        .seed
        .capacity
        .limits
        .iter()
        .zip(&v.measured.capacity.limits)
    {
        let mark = |c: &Capacity, l: &capacity::limits::Limit| {
            let n = count_floor(l.max_tenants);
            if c.binding == l.constraint {
                format!("{n} <- binds")
            } else {
                n
            }
        };
        t.row(vec![
            a.constraint.label().to_string(),
            mark(&v.seed.capacity, a),
            mark(&v.measured.capacity, b),
        ]);
    }
    t
}

/// The verdict as report blocks: the sentence, the inputs, the limits, the money.
pub fn blocks(v: &Verdict) -> Vec<Block> {
    let money = |c: &Case| {
        format!(
            "{} tenants supported, {} per tenant per month",
            count(c.capacity.supported_tenants as f64),
            c.economics
                .cost_per_tenant_usd
                .map_or("n/a".into(), |x| format!("${x:.4}"))
        )
    };
    vec![
        Block::Heading("Verdict".into()),
        Block::Para(format!("{}.", capitalize(&v.sentence))),
        Block::Heading("The seed's launch table, side by side".into()),
        Block::Table(inputs_table(v)),
        Block::Table(limits_table(v)),
        Block::Record(vec![
            ("seed".into(), money(&v.seed)),
            ("measured".into(), money(&v.measured)),
        ]),
    ]
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_case() -> Case {
        Case::new(
            capacity::builtin::machine("fly-shared-cpu-2x").unwrap(),
            capacity::builtin::workload("seed").unwrap(),
            0.8,
        )
    }

    #[test]
    fn the_seed_against_itself_reproduces_its_claim() {
        let v = verdict(seed_case(), seed_case());
        assert_eq!(v.seed.capacity.supported_tenants, 1_500);
        assert!(
            v.sentence.contains("holds 1,500 active tenants"),
            "{}",
            v.sentence
        );
        assert!(
            v.sentence.contains("the seed claimed 1,500"),
            "{}",
            v.sentence
        );
        // Nothing measured, nothing different: the inputs table is empty.
        assert!(inputs_table(&v).rows.is_empty());
        // Every business input is listed as assumed.
        assert!(v
            .assumed
            .iter()
            .any(|(f, _, _)| f == "requests_per_tenant_per_day"));
        assert!(!v
            .assumed
            .iter()
            .any(|(f, _, _)| f == "cpu_seconds_per_request"));
    }

    #[test]
    fn a_measured_field_shows_with_its_source_and_moves_the_limit() {
        let mut w = capacity::builtin::workload("seed").unwrap();
        w.ram_mb_per_in_flight_op = 0.15;
        w.meta.sources.insert(
            "ram_mb_per_in_flight_op".into(),
            "measured: slope (tenantd bench inflight)".into(),
        );
        let m = capacity::builtin::machine("fly-shared-cpu-2x").unwrap();
        let v = verdict(seed_case(), Case::new(m, w, 0.8));
        let t = inputs_table(&v);
        assert_eq!(t.rows.len(), 1, "{:?}", t.rows);
        assert_eq!(t.rows[0][2], "0.15");
        assert!(v.measured.capacity.supported_tenants > 1_500);
        let limits = limits_table(&v);
        assert!(limits.rows.iter().any(|r| r[1].ends_with("<- binds")));
    }
}
