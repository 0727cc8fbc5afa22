//! Turns model results into documents: one builder per command. Formatting choices (which
//! columns, what a cell says) live here; every number comes from the model.

use crate::builtin;
use crate::claims::{Claim, Verdict};
use crate::compare::CompareRow;
use crate::economics::Economics;
use crate::explain::Step;
use crate::field::{Profile, ProfileMeta};
use crate::limits::{Capacity, Limit, Quantity};
use crate::machine::MachineProfile;
use crate::render::doc::{Align, Block, Table};
use crate::roadmap::{PhasePlan, RoadmapRow};
use crate::sensitivity::Crossover;
use crate::units::{bytes, count, count_floor, percent, plural, sig, usd};
use crate::workload::WorkloadProfile;

fn amount(quantity: Quantity, x: f64) -> String {
    match quantity {
        Quantity::Bytes => bytes(x),
        Quantity::Vcpu => format!("{} vCPU", sig(x, 3)),
        Quantity::SyncsPerSecond => format!("{} syncs/s", sig(x, 7)),
        Quantity::Files => format!("{} files", sig(x, 7)),
    }
}

fn opt_usd(x: Option<f64>) -> String {
    x.map(usd).unwrap_or_else(|| "n/a".into())
}

fn opt_count(x: Option<u64>) -> String {
    x.map(|n| count(n as f64)).unwrap_or_else(|| "n/a".into())
}

fn limits_table(capacity: &Capacity) -> Table {
    let mut t = Table::new(&[
        ("constraint", Align::Left),
        ("per tenant", Align::Right),
        ("machine has", Align::Right),
        ("max tenants", Align::Right),
        ("", Align::Left),
    ]);
    for Limit {
        constraint,
        capacity: cap,
        demand_per_tenant,
        quantity,
        max_tenants,
        ..
    } in &capacity.limits
    {
        t.row(vec![
            constraint.label().into(),
            amount(*quantity, *demand_per_tenant),
            amount(*quantity, *cap),
            count_floor(*max_tenants),
            if *constraint == capacity.binding {
                "<- binds".into()
            } else {
                String::new()
            },
        ]);
    }
    t
}

/// "Machine `x` measured on … . Workload `y` measured on … ." for the profiles that were
/// measured; `None` when neither was.
fn provenance(profiles: &[(&str, &ProfileMeta)]) -> Option<Block> {
    let lines: Vec<String> = profiles
        .iter()
        .filter_map(|(kind, meta)| {
            let p = meta.provenance.as_ref()?;
            Some(format!("{kind} `{}` {}.", meta.name, p.summary()))
        })
        .collect();
    (!lines.is_empty()).then(|| Block::Para(lines.join(" ")))
}

/// "31.7% at peak, 36.8% on average (open cap 1,024, idle TTL 10 s, access skew 0); each
/// costs 0 vCPU-s more": the cold requests at the verdict.
fn cold_requests(workload: &WorkloadProfile, capacity: &Capacity) -> String {
    format!(
        "{} at peak, {} on average (open cap {}, idle TTL {} s, access skew {}); each costs {} \
         vCPU-s more",
        percent(capacity.cold.peak.cold_fraction),
        percent(capacity.cold.average.cold_fraction),
        count(workload.open_tenants_max),
        sig(workload.idle_ttl_seconds, 6),
        sig(workload.access_skew, 3),
        sig(workload.cold_cpu_seconds_per_request, 3)
    )
}

/// The launch report: limits, binding constraint, tenants supported, cost and margin.
pub fn launch(
    machine: &MachineProfile,
    workload: &WorkloadProfile,
    capacity: &Capacity,
    economics: &Economics,
) -> Vec<Block> {
    let mut blocks = vec![
        Block::Heading(format!(
            "Capacity of one {} under workload `{}`",
            machine.meta.name, workload.meta.name
        )),
        Block::Para(format!(
            "Machine: {}. Workload: {}. Data kept: {}; headroom: {}.",
            machine.meta.description,
            workload.meta.description,
            plural(workload.retention_years, "year"),
            percent(workload.headroom_fraction)
        )),
    ];
    blocks.extend(provenance(&[
        ("Machine", &machine.meta),
        ("Workload", &workload.meta),
    ]));
    blocks.extend([
        Block::Table(limits_table(capacity)),
        Block::Record(vec![
            ("binding constraint".into(), capacity.binding.label().into()),
            (
                "tenants supported".into(),
                format!(
                    "{}  (= {} x (1 - {} headroom), rounded down)",
                    count(capacity.supported_tenants as f64),
                    count_floor(capacity.max_tenants),
                    percent(capacity.headroom_fraction)
                ),
            ),
            ("requests cold".into(), cold_requests(workload, capacity)),
            ("monthly cost".into(), usd(economics.monthly_cost_usd)),
            (
                "cost per tenant".into(),
                format!("{} per month", opt_usd(economics.cost_per_tenant_usd)),
            ),
            (
                "price".into(),
                format!(
                    "{} per tenant per month",
                    usd(economics.price_usd_per_tenant_month)
                ),
            ),
            (
                "gross margin".into(),
                economics
                    .gross_margin
                    .map(percent)
                    .unwrap_or_else(|| "n/a".into()),
            ),
            (
                format!("price for {} margin", percent(economics.target_margin)),
                format!(
                    "{} per tenant per month",
                    opt_usd(economics.price_for_target_margin_usd)
                ),
            ),
        ]),
        Block::Para(
            "Formulas with these numbers: `tenantd capacity explain`. The seed's claims \
             checked: `tenantd capacity check-seed`. Inputs and their sources: `tenantd \
             capacity profiles <name>`."
                .into(),
        ),
    ]);
    blocks
}

/// The seed's roadmap next to the model's plan for the same phases.
pub fn roadmap(workload: &WorkloadProfile, rows: &[RoadmapRow]) -> Vec<Block> {
    let mut t = Table::new(&[
        ("phase", Align::Left),
        ("users", Align::Right),
        ("machine", Align::Left),
        ("per machine", Align::Right),
        ("binds", Align::Left),
        ("machines", Align::Right),
        ("monthly", Align::Right),
        ("per user", Align::Right),
        ("the seed says", Align::Left),
    ]);
    for row in rows {
        let m = &row.model;
        let seed = match &row.seed {
            // Name the seed's machine when the model plans the phase on another one.
            Some(s) if s.machine != m.machine => format!(
                "{} {}, {}, {}/user",
                count(s.machines as f64),
                s.machine,
                usd(s.monthly_cost_usd),
                usd(s.cost_per_user_usd)
            ),
            Some(s) => format!(
                "{}, {}, {}/user",
                plural(s.machines as f64, "machine"),
                usd(s.monthly_cost_usd),
                usd(s.cost_per_user_usd)
            ),
            None => "-".into(),
        };
        t.row(vec![
            m.phase.clone(),
            count(m.users as f64),
            m.machine.clone(),
            count(m.per_machine as f64),
            m.binding.label().into(),
            opt_count(m.machines),
            opt_usd(m.monthly_cost_usd),
            opt_usd(m.cost_per_user_usd),
            seed,
        ]);
    }
    let mut blocks = vec![Block::Heading(format!(
        "Scaling roadmap under workload `{}`",
        workload.meta.name
    ))];
    blocks.extend(provenance(&[("Workload", &workload.meta)]));
    blocks.extend([
        Block::Table(t),
        Block::Para(
            "Users = tenants (one store per user, as the seed counts). Costs are machines \
             only: no load balancer, bandwidth, backups or AI calls. `--users N` sizes a \
             cluster for any N; `--machine` plans every phase on one machine."
                .into(),
        ),
    ]);
    blocks
}

/// Cluster sizes for a target user count on each machine profile.
pub fn sizing(workload: &WorkloadProfile, plans: &[PhasePlan]) -> Vec<Block> {
    let mut t = Table::new(&[
        ("machine", Align::Left),
        ("per machine", Align::Right),
        ("binds", Align::Left),
        ("machines", Align::Right),
        ("monthly", Align::Right),
        ("per user", Align::Right),
    ]);
    for p in plans {
        t.row(vec![
            p.machine.clone(),
            count(p.per_machine as f64),
            p.binding.label().into(),
            opt_count(p.machines),
            opt_usd(p.monthly_cost_usd),
            opt_usd(p.cost_per_user_usd),
        ]);
    }
    let users = plans.first().map(|p| p.users).unwrap_or(0);
    vec![
        Block::Heading(format!(
            "Cluster for {} users under workload `{}`",
            count(users as f64),
            workload.meta.name
        )),
        Block::Table(t),
    ]
}

/// The seed's claims with verdicts. `wide` puts the reasons in the table (markdown); otherwise
/// they follow it as a numbered list (terminals).
pub fn check_seed(workload: &WorkloadProfile, claims: &[Claim], wide: bool) -> Vec<Block> {
    let mut columns = vec![
        ("#", Align::Right),
        ("§", Align::Left),
        ("the seed claims", Align::Left),
        ("seed", Align::Right),
        ("model computes", Align::Left),
        ("verdict", Align::Left),
    ];
    if wide {
        columns.push(("why / what would have to change", Align::Left));
    }
    let mut t = Table::new(&columns).wrap(2, 34).wrap(4, 30);
    for (i, c) in claims.iter().enumerate() {
        let mut row = vec![
            (i + 1).to_string(),
            c.section.into(),
            c.claim.into(),
            c.stated.clone(),
            c.computed.clone(),
            c.verdict.label().into(),
        ];
        if wide {
            row.push(c.why.clone());
        }
        t.row(row);
    }
    let tally = |v: Verdict| claims.iter().filter(|c| c.verdict == v).count();
    let mut blocks = vec![Block::Heading(format!(
        "The seed's claims, recomputed from workload `{}`",
        workload.meta.name
    ))];
    blocks.extend(provenance(&[("Workload", &workload.meta)]));
    blocks.extend([
        Block::Para(format!(
            "{} claims: {} hold, {} hold only under a condition the seed does not state, {} \
             do not hold. Inputs and their sources: `tenantd capacity profiles NAME|FILE`.",
            claims.len(),
            tally(Verdict::Holds),
            tally(Verdict::HoldsIf),
            tally(Verdict::DoesNotHold)
        )),
        Block::Table(t),
    ]);
    if !wide {
        let mut why = Table::new(&[
            ("#", Align::Right),
            ("why / what would have to change", Align::Left),
        ])
        .wrap(1, 94);
        for (i, c) in claims.iter().enumerate() {
            why.row(vec![(i + 1).to_string(), format!("{}: {}", c.id, c.why)]);
        }
        blocks.push(Block::Table(why));
    }
    blocks
}

/// The Docker-per-tenant versus scale-to-zero comparison.
pub fn compare(rows: &[CompareRow]) -> Vec<Block> {
    let mut t = Table::new(&[
        ("approach", Align::Left),
        ("tenants", Align::Right),
        ("idle RAM", Align::Right),
        ("stored", Align::Right),
        ("machines (idle)", Align::Right),
        ("monthly (idle)", Align::Right),
        ("machines (active)", Align::Right),
        ("monthly (active)", Align::Right),
        ("binds (active)", Align::Left),
    ]);
    for r in rows {
        t.row(vec![
            r.approach.clone(),
            count(r.tenants as f64),
            bytes(r.idle_ram_bytes),
            bytes(r.stored_bytes),
            count(r.machines_idle as f64),
            usd(r.monthly_cost_idle_usd),
            opt_count(r.machines_active),
            opt_usd(r.monthly_cost_active_usd),
            r.binding_active.label().into(),
        ]);
    }
    let machine = rows.first().map(|r| r.machine.as_str()).unwrap_or("");
    vec![
        Block::Heading(format!(
            "Idle cost: Docker per tenant vs scale to zero, on {machine}"
        )),
        Block::Table(t),
        Block::Para(
            "Idle: machines for idle RAM and stored bytes alone. Active: machines for the \
             workload's peak as well (memory, CPU, syncs, files), with headroom."
                .into(),
        ),
    ]
}

/// The formulas with numbers, then the inputs that would change the binding constraint.
pub fn explain(
    machine: &MachineProfile,
    workload: &WorkloadProfile,
    steps: &[Step],
    crossovers: &[Crossover],
) -> Vec<Block> {
    let mut pre = String::new();
    for s in steps {
        pre.push_str(&format!(
            "{}\n    = {}\n    = {}\n    = {}\n",
            s.label, s.formula, s.substituted, s.result
        ));
    }
    let mut t = Table::new(&[
        ("input", Align::Left),
        ("now", Align::Right),
        ("binding changes at", Align::Right),
        ("unit", Align::Left),
        ("then binds", Align::Left),
    ]);
    for c in crossovers {
        t.row(vec![
            format!("{}.{}", c.profile, c.field),
            sig(c.current, 6),
            sig(c.value, 3),
            c.unit.into(),
            c.binding_after.label().into(),
        ]);
    }
    let mut blocks = vec![Block::Heading(format!(
        "How the numbers are computed: {} under `{}`",
        machine.meta.name, workload.meta.name
    ))];
    blocks.extend(provenance(&[
        ("Machine", &machine.meta),
        ("Workload", &workload.meta),
    ]));
    blocks.extend([
        Block::Pre(pre),
        Block::Heading("Sensitivity: where the binding constraint changes".into()),
        Block::Para(
            "Each row moves one input, all else fixed, to the value where another constraint \
             starts to bind (searched within a factor of a million of the current value). \
             Inputs not listed do not change the binding constraint in that range."
                .into(),
        ),
        Block::Table(t),
    ]);
    blocks
}

/// The built-in profiles, by kind.
pub fn profile_list() -> Vec<Block> {
    let mut t = Table::new(&[
        ("kind", Align::Left),
        ("name", Align::Left),
        ("description", Align::Left),
    ])
    .wrap(2, 80);
    for (name, _) in builtin::MACHINES {
        if let Ok(m) = builtin::machine(name) {
            t.row(vec!["machine".into(), name.into(), m.meta.description]);
        }
    }
    for (name, _) in builtin::WORKLOADS {
        if let Ok(w) = builtin::workload(name) {
            t.row(vec!["workload".into(), name.into(), w.meta.description]);
        }
    }
    vec![
        Block::Heading("Built-in profiles".into()),
        Block::Table(t),
        Block::Para(
            "`tenantd capacity profiles NAME` shows every field with its unit and source. A \
             TOML file with `base = \"NAME\"` overrides any subset of a profile's fields; pass \
             it as `--machine FILE` or `--workload FILE`."
                .into(),
        ),
    ]
}

/// Every field of one profile with its value, unit and source.
pub fn profile_detail<P: Profile>(profile: &P) -> Vec<Block> {
    let mut t = Table::new(&[
        ("field", Align::Left),
        ("value", Align::Right),
        ("unit", Align::Left),
        ("source", Align::Left),
    ])
    .wrap(3, 70);
    for f in P::fields() {
        t.row(vec![
            f.name.into(),
            sig((f.get)(profile), 6),
            f.unit.into(),
            profile
                .meta()
                .sources
                .get(f.name)
                .cloned()
                .unwrap_or_else(|| "(no source)".into()),
        ]);
    }
    let mut blocks = vec![
        Block::Heading(format!("{} profile `{}`", P::KIND, profile.meta().name)),
        Block::Para(profile.meta().description.clone()),
    ];
    if let Some(p) = &profile.meta().provenance {
        blocks.push(Block::Para(format!("Provenance: {}.", p.summary())));
    }
    blocks.push(Block::Table(t));
    blocks
}
