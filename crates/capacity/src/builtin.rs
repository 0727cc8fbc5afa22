//! Built-in profiles, embedded in the binary as TOML (the files under `profiles/`), so the
//! seed's figures reproduce with no file at hand, and a user file can name them as `base`.

use crate::field::Profile;
use crate::load::{self, LoadError, Origin};
use crate::machine::MachineProfile;
use crate::workload::WorkloadProfile;

/// Built-in machine profiles: (name, TOML text).
pub const MACHINES: [(&str, &str); 2] = [
    (
        "fly-shared-cpu-2x",
        include_str!("../profiles/machines/fly-shared-cpu-2x.toml"),
    ),
    (
        "ovh-vps-6",
        include_str!("../profiles/machines/ovh-vps-6.toml"),
    ),
];

/// Built-in workload profiles: (name, TOML text).
pub const WORKLOADS: [(&str, &str); 2] = [
    ("seed", include_str!("../profiles/workloads/seed.toml")),
    (
        "docker-per-tenant",
        include_str!("../profiles/workloads/docker-per-tenant.toml"),
    ),
];

/// The TOML text of a built-in profile of `kind` (`machine` or `workload`), if any.
pub fn text(kind: &str, name: &str) -> Option<&'static str> {
    table(kind)
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// Names of the built-in profiles of `kind`.
pub fn names(kind: &str) -> Vec<&'static str> {
    table(kind).iter().map(|(n, _)| *n).collect()
}

fn table(kind: &str) -> &'static [(&'static str, &'static str)] {
    match kind {
        "machine" => &MACHINES,
        "workload" => &WORKLOADS,
        _ => &[],
    }
}

/// A built-in profile of kind `P`; errors only if the name is unknown or the embedded text is
/// broken (a test loads every built-in).
pub fn get<P: Profile>(name: &str) -> Result<P, LoadError> {
    let text = text(P::KIND, name).ok_or_else(|| LoadError::Unknown {
        kind: P::KIND,
        name: name.to_string(),
        known: names(P::KIND).join(", "),
    })?;
    load::parse(text, &Origin::Builtin(name.to_string()))
}

/// The built-in machine profile `name`.
pub fn machine(name: &str) -> Result<MachineProfile, LoadError> {
    get(name)
}

/// The built-in workload profile `name`.
pub fn workload(name: &str) -> Result<WorkloadProfile, LoadError> {
    get(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_field_sourced<P: Profile>(p: &P) {
        for field in P::fields() {
            let source = p.meta().sources.get(field.name);
            assert!(
                source.is_some_and(|s| !s.trim().is_empty()),
                "{} `{}` has no source for `{}`",
                P::KIND,
                p.meta().name,
                field.name
            );
        }
    }

    #[test]
    fn every_builtin_loads_validates_and_sources_every_field() {
        for (name, _) in MACHINES {
            let m = machine(name).unwrap();
            assert_eq!(m.meta.name, name);
            every_field_sourced(&m);
        }
        for (name, _) in WORKLOADS {
            let w = workload(name).unwrap();
            assert_eq!(w.meta.name, name);
            every_field_sourced(&w);
        }
    }

    #[test]
    fn implied_seed_values_are_marked_implied() {
        let seed = workload("seed").unwrap();
        for field in [
            "headroom_fraction",
            "price_usd_per_tenant_month",
            "op_in_flight_seconds",
        ] {
            assert!(
                seed.meta.sources[field].starts_with("implied"),
                "{field}: {}",
                seed.meta.sources[field]
            );
        }
        assert!(seed.meta.sources["ram_mb_per_in_flight_op"].starts_with("seed"));
    }
}
