//! `check-seed`: every quantitative claim of the seed, recomputed by the model from the seed's
//! own profiles, with a verdict and the assumption that would have to change. A regular list:
//! one block per claim, in the seed's order. Verdicts are computed, never hard-coded, so a
//! measured workload (issue on benchmarking) re-checks the same claims.

use serde::Serialize;

use crate::builtin;
use crate::compare::compare;
use crate::economics::{gross_margin, machines_for, price_for_margin};
use crate::limits::{evaluate, Constraint};
use crate::load::LoadError;
use crate::machine::MachineProfile;
use crate::roadmap::{plan, SEED_ROADMAP};
use crate::sensitivity::requirements;
use crate::units::{bytes, count, count_floor, floor_count, percent, plural, sig, usd};
use crate::workload::WorkloadProfile;

/// Tenants in the seed's §1 comparison.
pub const COMPARE_TENANTS: u64 = 10_000;

/// Whether a claim survives the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The model computes the seed's figure (or better).
    Holds,
    /// Holds only under a condition the seed does not state; `why` names it.
    HoldsIf,
    /// The model computes a worse figure; `why` names what would have to change.
    DoesNotHold,
}

impl Verdict {
    /// Label used in tables.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::HoldsIf => "holds only if",
            Verdict::DoesNotHold => "does not hold",
        }
    }
}

/// One claim of the seed and the model's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Claim {
    /// Stable short id.
    pub id: &'static str,
    /// Section of the seed the claim is in.
    pub section: &'static str,
    /// The claim, in the seed's words (shortened).
    pub claim: &'static str,
    /// The seed's figure.
    pub stated: String,
    /// What the model computes from the profiles.
    pub computed: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, and which assumption would have to change.
    pub why: String,
}

/// The profiles the claims are checked against.
#[derive(Debug, Clone)]
pub struct SeedCase {
    /// The launch machine (seed §2).
    pub launch: MachineProfile,
    /// The growth and enterprise node (seed §3).
    pub node: MachineProfile,
    /// The scale-to-zero workload.
    pub workload: WorkloadProfile,
    /// The Docker-per-tenant comparison workload.
    pub docker: WorkloadProfile,
}

impl SeedCase {
    /// The built-in profiles, with `workload` replacing `seed` (e.g. a measured profile).
    pub fn with_workload(workload: WorkloadProfile) -> Result<SeedCase, LoadError> {
        Ok(SeedCase {
            launch: builtin::machine("fly-shared-cpu-2x")?,
            node: builtin::machine("ovh-vps-6")?,
            workload,
            docker: builtin::workload("docker-per-tenant")?,
        })
    }
}

/// The origin of a workload value: the first word of its source (`seed`, `implied`, …).
fn origin(w: &WorkloadProfile, field: &str) -> String {
    let source = w.meta.sources.get(field).map(String::as_str).unwrap_or("");
    let word: String = source
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '-')
        .collect();
    if word.is_empty() {
        "unsourced".to_string()
    } else {
        word
    }
}

/// "memory: 42,000 < 50,000 unless peak concurrency <= 0.84; …" for every failing constraint.
fn shortfalls(machine: &MachineProfile, w: &WorkloadProfile, tenants: f64) -> String {
    let parts: Vec<String> = requirements(machine, w, tenants)
        .iter()
        .map(|r| {
            let need = if r.required > 0.0 {
                format!(
                    "{} <= {} (now {})",
                    r.input,
                    sig(r.required, 3),
                    sig(r.current, 3)
                )
            } else {
                format!("{} alone cannot reach it", r.input)
            };
            format!(
                "{} allows {} < {}, unless {}",
                r.constraint.label(),
                count_floor(r.max_tenants),
                count(tenants),
                need
            )
        })
        .collect();
    if parts.is_empty() {
        "every constraint allows it".to_string()
    } else {
        parts.join("; ")
    }
}

fn at_least(computed: f64, stated: f64) -> bool {
    computed >= stated * 0.995
}

fn near(computed: f64, stated: f64) -> bool {
    (computed - stated).abs() <= stated.abs() * 0.05
}

fn verdict_if(holds: bool) -> Verdict {
    if holds {
        Verdict::Holds
    } else {
        Verdict::DoesNotHold
    }
}

/// Checks every quantitative claim of the seed against `case`.
pub fn check_seed(case: &SeedCase) -> Vec<Claim> {
    let (fly, node, w) = (&case.launch, &case.node, &case.workload);
    let mut claims = Vec::new();

    // §1: Docker per tenant versus scale to zero.
    let rows = compare(fly, &[&case.docker, w], COMPARE_TENANTS);
    let node_rows = compare(node, &[&case.docker], COMPARE_TENANTS);
    let (docker, s2z, docker_node) = (&rows[0], &rows[1], &node_rows[0]);
    claims.push(Claim {
        id: "docker-idle-ram",
        section: "§1",
        claim: "Docker per tenant: 10,000 x 50 MB = 500 GB of RAM just to idle",
        stated: "500 GB".into(),
        computed: bytes(docker.idle_ram_bytes),
        verdict: verdict_if(near(docker.idle_ram_bytes, 500e9)),
        why: format!(
            "{} tenants x {} MB idle each (decimal units)",
            count(COMPARE_TENANTS as f64),
            sig(case.docker.ram_mb_per_idle_tenant, 3)
        ),
    });
    let docker_holds_on_node = docker_node.monthly_cost_idle_usd >= 2000.0;
    claims.push(Claim {
        id: "docker-idle-cost",
        section: "§1",
        claim: "Docker per tenant: 500 GB idle RAM costs ~$2,000+/month",
        stated: "$2,000+/month".into(),
        computed: format!(
            "{}/month ({} x {})",
            usd(docker.monthly_cost_idle_usd),
            docker.machines_idle,
            fly.meta.name
        ),
        verdict: if docker.monthly_cost_idle_usd < 2000.0 {
            Verdict::DoesNotHold
        } else if docker_holds_on_node {
            Verdict::Holds
        } else {
            Verdict::HoldsIf
        },
        why: format!(
            "holds if the RAM is bought as {} machines ({} usable for {}); the same RAM on {} \
             is {} machines, {}/month",
            fly.meta.name,
            bytes(fly.usable_ram_bytes()),
            usd(fly.price_usd_per_month),
            node.meta.name,
            docker_node.machines_idle,
            usd(docker_node.monthly_cost_idle_usd)
        ),
    });
    claims.push(Claim {
        id: "scale-to-zero-idle-ram",
        section: "§1",
        claim: "SQLite scale-to-zero: 10,000 x 0 MB = 0 GB idle RAM",
        stated: "0 GB".into(),
        computed: bytes(s2z.idle_ram_bytes),
        verdict: verdict_if(s2z.idle_ram_bytes == 0.0),
        why: "holds while a tenant's file is closed when idle: tenantd closes it after a short \
              idle TTL and caps open handles, so RAM is bounded by the cap, not the tenant \
              count (DESIGN §2)"
            .into(),
    });
    let years_to_fill = fly.disk_bytes()
        / (COMPARE_TENANTS as f64 * w.tenant_growth_mb_per_year * crate::units::MB);
    claims.push(Claim {
        id: "scale-to-zero-idle-cost",
        section: "§1",
        claim: "SQLite scale-to-zero: 10,000 tenants for ~$15/month",
        stated: "$15/month".into(),
        computed: format!(
            "{}/month idle ({} machines, storage); {}/month at the seed's activity ({} machines)",
            usd(s2z.monthly_cost_idle_usd),
            s2z.machines_idle,
            s2z.monthly_cost_active_usd
                .map(usd)
                .unwrap_or_else(|| "n/a".into()),
            s2z.machines_active
                .map(|n| n.to_string())
                .unwrap_or_else(|| "n/a".into()),
        ),
        verdict: if s2z.machines_active == Some(1) {
            Verdict::Holds
        } else if s2z.machines_idle == 1 {
            Verdict::HoldsIf
        } else {
            Verdict::DoesNotHold
        },
        why: format!(
            "idle RAM is 0, but {} tenants store {} with {} of data kept, {} volumes of {} \
             (one fills in {} years); and at the seed's own activity one machine plans {} \
             tenants",
            count(COMPARE_TENANTS as f64),
            bytes(s2z.stored_bytes),
            plural(w.retention_years, "year"),
            s2z.machines_idle,
            bytes(fly.disk_bytes()),
            sig(years_to_fill, 2),
            count(evaluate(fly, w).supported_tenants as f64)
        ),
    });

    // §2: the launch machine.
    let launch = evaluate(fly, w);
    let storage = launch.limit(Constraint::Storage).max_tenants;
    let mut three_years = w.clone();
    three_years.retention_years = 3.0;
    let storage_3y = evaluate(fly, &three_years)
        .limit(Constraint::Storage)
        .max_tenants;
    claims.push(Claim {
        id: "storage-limit",
        section: "§2",
        claim: "Storage: 50 GB / ~10 MB per store per year = ~5,000 DB files",
        stated: "5,000".into(),
        computed: format!(
            "{} with {} of data kept",
            count_floor(storage),
            plural(w.retention_years, "year")
        ),
        verdict: if !at_least(storage, 5000.0) {
            Verdict::DoesNotHold
        } else if w.retention_years <= 1.0 {
            Verdict::HoldsIf
        } else {
            Verdict::Holds
        },
        why: format!(
            "holds only if tenants keep one year of data: at 10 MB per year the volume is full \
             after one year at 5,000 tenants; with 3 years kept it holds {}",
            count_floor(storage_3y)
        ),
    });
    let concurrent_ops = fly.usable_ram_bytes() / (w.ram_mb_per_in_flight_op * crate::units::MB);
    claims.push(Claim {
        id: "ram-limit",
        section: "§2",
        claim: "RAM: (4 GB - 1 GB OS) / 1.5 MB per active hit = ~2,000 concurrent ops",
        stated: "2,000".into(),
        computed: count_floor(concurrent_ops),
        verdict: verdict_if(at_least(concurrent_ops, 2000.0)),
        why: "decimal units, as the seed counts (in GiB and MiB it would be 2,048)".into(),
    });
    // CPU per request with the cold share at the launch verdict (warm only when cold costs 0).
    let cpu_per_request =
        |cold: f64| w.cpu_seconds_per_request + cold * w.cold_cpu_seconds_per_request;
    let (burst_cpu, sustained_cpu) = (
        cpu_per_request(launch.cold.peak.cold_fraction),
        cpu_per_request(launch.cold.average.cold_fraction),
    );
    let burst_rps = fly.vcpu / burst_cpu;
    let sustained_rps = fly.sustained_vcpu() / sustained_cpu;
    let cold_note = if w.cold_cpu_seconds_per_request > 0.0 {
        format!(
            " warm, plus {} s per cold request: {} of requests at peak, {} on average, at {} \
             tenants",
            sig(w.cold_cpu_seconds_per_request, 3),
            percent(launch.cold.peak.cold_fraction),
            percent(launch.cold.average.cold_fraction),
            count(launch.cold.tenants)
        )
    } else {
        String::new()
    };
    claims.push(Claim {
        id: "cpu-limit",
        section: "§2",
        claim: "CPU: Groq handles AI, Bun only routes: thousands of req/sec",
        stated: "1,000+ req/s".into(),
        computed: format!(
            "{} req/s bursting, {} req/s sustained",
            count(burst_rps),
            count(sustained_rps)
        ),
        verdict: if sustained_rps >= 1000.0 {
            Verdict::Holds
        } else if burst_rps >= 1000.0 {
            Verdict::HoldsIf
        } else {
            Verdict::DoesNotHold
        },
        why: format!(
            "only in bursts: a {} vCPU runs at {} of a core sustained ({} CPU per request is \
             {}, cpu_seconds_per_request{cold_note}); 1,000 req/s sustained needs <= {} s of \
             CPU per request, or dedicated vCPUs",
            fly.meta.name,
            sig(fly.cpu_baseline_fraction, 3),
            origin(w, "cpu_seconds_per_request"),
            sig(w.cpu_seconds_per_request, 3),
            sig(fly.sustained_vcpu() / 1000.0, 3)
        ),
    });
    claims.push(Claim {
        id: "launch-verdict",
        section: "§2",
        claim: "A $15/month Fly.io machine supports 1,500 highly active, paying store owners",
        stated: "1,500".into(),
        computed: format!(
            "{} ({} binds at {}, {} headroom)",
            count(launch.supported_tenants as f64),
            launch.binding.label(),
            count_floor(launch.max_tenants),
            percent(w.headroom_fraction)
        ),
        verdict: if launch.supported_tenants >= 1500 {
            Verdict::HoldsIf
        } else {
            Verdict::DoesNotHold
        },
        why: if launch.supported_tenants >= 1500 {
            format!(
                "holds if each tenant has {} in flight at peak ({} req/day x {} peak \
                 ratio x {} s in flight, all {}) and {} headroom ({}) is kept",
                plural(w.peak_concurrency(), "operation"),
                count(w.requests_per_tenant_per_day),
                sig(w.peak_to_average_ratio, 3),
                sig(w.op_in_flight_seconds, 3),
                origin(w, "op_in_flight_seconds"),
                percent(w.headroom_fraction),
                origin(w, "headroom_fraction")
            )
        } else {
            shortfalls(fly, w, 1500.0 / (1.0 - w.headroom_fraction))
        },
    });

    // §3: the growth node, the enterprise cluster, costs and margin.
    let growth = evaluate(node, w);
    claims.push(Claim {
        id: "growth-node",
        section: "§3",
        claim: "Growth: 1 x OVH VPS 6 serves 50,000 users",
        stated: "50,000 per node".into(),
        computed: format!(
            "{} per node ({} binds at {})",
            count(growth.supported_tenants as f64),
            growth.binding.label(),
            count_floor(growth.max_tenants)
        ),
        verdict: if growth.supported_tenants >= 50_000 {
            Verdict::Holds
        } else if at_least(growth.max_tenants, 50_000.0) {
            Verdict::HoldsIf
        } else {
            Verdict::DoesNotHold
        },
        why: format!("even with no headroom: {}", shortfalls(node, w, 50_000.0)),
    });
    let enterprise_nodes = machines_for(1_000_000, growth.supported_tenants);
    let no_headroom_nodes = machines_for(1_000_000, floor_count(growth.max_tenants));
    let show = |n: Option<u64>| n.map(|n| count(n as f64)).unwrap_or_else(|| "n/a".into());
    claims.push(Claim {
        id: "enterprise-nodes",
        section: "§3",
        claim: "Enterprise: 20 x OVH VPS 6 serve 1,000,000 users",
        stated: "20 nodes".into(),
        computed: format!(
            "{} nodes ({} with no headroom)",
            show(enterprise_nodes),
            show(no_headroom_nodes)
        ),
        verdict: match (enterprise_nodes, no_headroom_nodes) {
            (Some(n), _) if n <= 20 => Verdict::Holds,
            (_, Some(n)) if n <= 20 => Verdict::HoldsIf,
            _ => Verdict::DoesNotHold,
        },
        why: "20 nodes means 50,000 users per node: see growth-node".into(),
    });
    claims.push(Claim {
        id: "enterprise-bill",
        section: "§3",
        claim: "Rent 20 OVH machines: infra bill ~$1,000/month",
        stated: "$1,000/month".into(),
        computed: usd(20.0 * node.price_usd_per_month),
        verdict: verdict_if(near(20.0 * node.price_usd_per_month, 1000.0)),
        why: format!(
            "20 x {}; the nodes the model needs cost {}/month",
            usd(node.price_usd_per_month),
            enterprise_nodes
                .map(|n| usd(n as f64 * node.price_usd_per_month))
                .unwrap_or_else(|| "n/a".into())
        ),
    });
    let mut enterprise_cost = None;
    for stated in SEED_ROADMAP {
        let machine = if stated.machine == fly.meta.name {
            fly
        } else {
            node
        };
        let model = plan(stated.name, stated.users, machine, w);
        let cost = model.cost_per_user_usd;
        if stated.name == "enterprise" {
            enterprise_cost = cost;
        }
        let holds = cost.is_some_and(|c| c <= stated.cost_per_user_usd * 1.05);
        claims.push(Claim {
            id: match stated.name {
                "launch" => "cost-per-user-launch",
                "growth" => "cost-per-user-growth",
                _ => "cost-per-user-enterprise",
            },
            section: "§3",
            claim: match stated.name {
                "launch" => "Roadmap, launch: 1,500 users on 1 x Fly.io at $15: $0.010 per user",
                "growth" => "Roadmap, growth: 50,000 users on 1 x OVH at $50: $0.001 per user",
                _ => "Roadmap, enterprise: 1M users on 20 x OVH at $1,000: $0.001 per user",
            },
            stated: usd(stated.cost_per_user_usd),
            computed: format!(
                "{} ({}, {}/month)",
                cost.map(usd).unwrap_or_else(|| "n/a".into()),
                model
                    .machines
                    .map(|n| plural(n as f64, "machine"))
                    .unwrap_or_else(|| "no machine fits".into()),
                model
                    .monthly_cost_usd
                    .map(usd)
                    .unwrap_or_else(|| "n/a".into())
            ),
            verdict: verdict_if(holds),
            why: format!(
                "{} / {} users = {} on the seed's {}; the model plans {} per machine ({} \
                 binds)",
                usd(stated.monthly_cost_usd),
                count(stated.users as f64),
                usd(stated.monthly_cost_usd / stated.users as f64),
                plural(stated.machines as f64, "machine"),
                count(model.per_machine as f64),
                model.binding.label()
            ),
        });
    }
    let price = w.price_usd_per_tenant_month;
    let margin = enterprise_cost.and_then(|c| gross_margin(price, c));
    let seed_margin = gross_margin(price, 0.001);
    claims.push(Claim {
        id: "gross-margin",
        section: "§3",
        claim: "Gross margins 99.8% at $0.001 cost per user",
        stated: "99.8%".into(),
        computed: format!(
            "{} at the model's enterprise cost, {} at the seed's $0.001 (price {}, {})",
            margin.map(percent).unwrap_or_else(|| "n/a".into()),
            seed_margin.map(percent).unwrap_or_else(|| "n/a".into()),
            usd(price),
            origin(w, "price_usd_per_tenant_month")
        ),
        verdict: verdict_if(margin.is_some_and(|m| m >= 0.9975)),
        why: format!(
            "99.8% at {} per user needs a price of {}; infrastructure only (no load \
             balancer, AI calls, support or payment fees)",
            enterprise_cost.map(usd).unwrap_or_else(|| "n/a".into()),
            enterprise_cost
                .and_then(|c| price_for_margin(c, 0.998))
                .map(usd)
                .unwrap_or_else(|| "n/a".into())
        ),
    });
    claims
}
