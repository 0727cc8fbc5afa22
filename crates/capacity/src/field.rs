//! Input fields of a profile as data: name, unit, meaning and valid range, with accessors.
//! One table per profile kind drives validation, file loading, `profiles` listings and the
//! sensitivity search, so a field cannot be added to one of them and forgotten in another.

use std::collections::BTreeMap;

use serde::Serialize;

/// What a field feeds: the tenant limits, or only the money figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Changes at least one tenant limit.
    Limit,
    /// Changes cost, price or margin, or the headroom kept below the binding limit.
    Economics,
}

/// One numeric input of a profile of type `P`.
pub struct Field<P> {
    /// The key in profile files and JSON output.
    pub name: &'static str,
    /// The unit the value is expressed in.
    pub unit: &'static str,
    /// What the value means, in one sentence.
    pub doc: &'static str,
    /// Whether the field changes tenant limits or only economics.
    pub role: Role,
    /// Smallest valid value.
    pub min: f64,
    /// Whether `min` itself is invalid (the field is a divisor, or zero makes no sense).
    pub min_exclusive: bool,
    /// Largest valid value: anything above is treated as a typo in units.
    pub max: f64,
    /// Reads the field.
    pub get: fn(&P) -> f64,
    /// Writes the field.
    pub set: fn(&mut P, f64),
    /// The value a file without a `base` gets when it does not set the field, and the source
    /// recorded for it; `None` makes the field required there.
    pub default: Option<(f64, &'static str)>,
}

impl<P> Field<P> {
    /// Checks `value` against the field's range; the error is the reason, in words.
    pub fn check(&self, value: f64) -> Result<(), String> {
        if value.is_nan() {
            return Err("is not a number (NaN)".to_string());
        }
        if value.is_infinite() {
            return Err("must be finite".to_string());
        }
        if self.min_exclusive && value <= self.min {
            return Err(format!(
                "must be greater than {} (in {})",
                self.min, self.unit
            ));
        }
        if value < self.min {
            return Err(format!("must be at least {} (in {})", self.min, self.unit));
        }
        if value > self.max {
            return Err(format!(
                "must be at most {} (in {}): a larger value is almost certainly a unit mistake",
                self.max, self.unit
            ));
        }
        Ok(())
    }
}

/// Where a measured profile's values come from: written by `tenantd bench` scenarios into a
/// profile file's `[provenance]` table (see [`crate::profile_file`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Provenance {
    /// When it was measured (RFC 3339 date or date-time; the latest of merged runs).
    pub date: String,
    /// The machine it was measured on (CPU, cores, RAM, kernel, as the bench describes it).
    pub machine: String,
    /// The tenantd version that measured it.
    pub version: String,
    /// The bench scenarios that wrote fields into the profile, in the order they first did.
    pub scenarios: Vec<String>,
    /// `Some(what)` when the server ran under an emulated machine (cgroup CPU share and memory
    /// limit), e.g. `fly-shared-cpu-2x`; `None` for native numbers.
    pub emulated: Option<String>,
}

impl Provenance {
    /// One line for reports: "measured on … by tenantd … (scenarios …), DATE[, emulating …]".
    pub fn summary(&self) -> String {
        let emulated = match &self.emulated {
            Some(what) => format!(", emulating {what}"),
            None => String::new(),
        };
        format!(
            "measured on {} by tenantd {} (scenarios {}), {}{emulated}",
            self.machine,
            self.version,
            self.scenarios.join(", "),
            self.date
        )
    }
}

/// Name, description and per-field sources of a profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProfileMeta {
    /// Short name, as used on the command line (`seed`, `ovh-vps-6`).
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Where each field's value comes from, keyed by field name: `seed §2: …`, `implied: …`,
    /// `public: …`, `measured: …`, or the file or flag that set it.
    pub sources: BTreeMap<String, String>,
    /// Where a measured profile comes from (its file's `[provenance]`, else its base's);
    /// `None` for profiles nobody measured.
    pub provenance: Option<Provenance>,
}

/// A profile is invalid: names the profile, the field and the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind} profile `{profile}`: field `{field}`: {reason}")]
pub struct ValidationError {
    /// `machine` or `workload`.
    pub kind: &'static str,
    /// The profile's name.
    pub profile: String,
    /// The offending field.
    pub field: String,
    /// Why the value is rejected.
    pub reason: String,
}

/// Behaviour shared by machine and workload profiles.
pub trait Profile: Clone + Sized + 'static {
    /// `machine` or `workload`.
    const KIND: &'static str;
    /// The field table of this profile kind.
    fn fields() -> &'static [Field<Self>];
    /// A profile whose numeric fields are all NaN: the start of a file without a `base`.
    fn blank() -> Self;
    /// Name, description and sources.
    fn meta(&self) -> &ProfileMeta;
    /// Mutable name, description and sources.
    fn meta_mut(&mut self) -> &mut ProfileMeta;
    /// For a field name this kind no longer has, what replaced it (shown when a file sets it).
    fn retired(_name: &str) -> Option<&'static str> {
        None
    }
    /// Checks that involve more than one field; errors name the field to change.
    fn check_relations(&self) -> Result<(), (String, String)>;

    /// Validates every field, then the relations between them; errors name the field.
    fn validate(&self) -> Result<(), ValidationError> {
        let fail = |field: &str, reason: String| ValidationError {
            kind: Self::KIND,
            profile: self.meta().name.clone(),
            field: field.to_string(),
            reason,
        };
        for field in Self::fields() {
            field
                .check((field.get)(self))
                .map_err(|reason| fail(field.name, reason))?;
        }
        self.check_relations()
            .map_err(|(field, reason)| fail(&field, reason))
    }

    /// Looks a field up by name.
    fn field(name: &str) -> Option<&'static Field<Self>> {
        Self::fields().iter().find(|f| f.name == name)
    }

    /// Sets a field by name and records where the value came from; errors if the name is
    /// unknown (the value itself is checked by [`Profile::validate`]).
    fn override_field(&mut self, name: &str, value: f64, source: &str) -> Result<(), String> {
        let field = Self::field(name).ok_or_else(|| format!("unknown {} field", Self::KIND))?;
        (field.set)(self, value);
        self.meta_mut()
            .sources
            .insert(name.to_string(), source.to_string());
        Ok(())
    }

    /// The field values as a name -> value map, for JSON output.
    fn values(&self) -> BTreeMap<&'static str, f64> {
        Self::fields()
            .iter()
            .map(|f| (f.name, (f.get)(self)))
            .collect()
    }
}
