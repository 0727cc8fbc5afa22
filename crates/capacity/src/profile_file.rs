//! Writing measured values into a profile file that [`crate::load`] reads back: each `tenantd
//! bench` scenario calls [`update_profile_file`] with the fields it measured, so a workload or
//! machine profile fills up scenario by scenario. The file is created with a `base` (the
//! fields nobody measured come from it) or merged into: fields set by earlier scenarios keep
//! their values and sources, the new ones replace theirs, the `[provenance]` scenarios are
//! united, its date is the latest and its machine, version and emulation are this run's. The result is loaded back before it replaces the old
//! file (temp file + rename), so a failed update leaves the file as it was. The file is
//! rewritten in this module's layout: comments are not kept.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::field::{Profile, Provenance};
use crate::load::{self, LoadError, Origin};

/// One measured value for a profile field.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Measured {
    /// The field's name (`cpu_seconds_per_request`, `disk_sync_ops_per_second`, …).
    pub field: String,
    /// The value, in the field's unit.
    pub value: f64,
    /// Where it comes from, recorded as the field's source (by convention `measured: …`).
    pub source: String,
}

/// A profile file could not be updated; the file is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum ProfileFileError {
    /// A measured field is not a field of this profile kind.
    #[error("cannot update {file}: `{field}` is not a {kind} field (known: {known})")]
    UnknownField {
        /// The file.
        file: PathBuf,
        /// `machine` or `workload`.
        kind: &'static str,
        /// The unknown name.
        field: String,
        /// The kind's field names, comma separated.
        known: String,
    },
    /// The existing file names another base profile than the one given.
    #[error(
        "cannot update {file}: it is based on `{found}`, not `{wanted}`; write to another \
         file or remove this one"
    )]
    BaseMismatch {
        /// The file.
        file: PathBuf,
        /// The base the file names (empty for none).
        found: String,
        /// The base asked for.
        wanted: String,
    },
    /// The existing file is not a valid profile of this kind.
    #[error("cannot update {file}: it is not a valid {kind} profile: {source}")]
    Existing {
        /// The file.
        file: PathBuf,
        /// `machine` or `workload`.
        kind: &'static str,
        /// Why it does not load.
        source: LoadError,
    },
    /// The updated profile would not load (a value out of range, a broken base).
    #[error("cannot update {file}: the result would not load: {source}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Why it does not load.
        source: LoadError,
    },
    /// Reading, writing or renaming failed.
    #[error("cannot update {file}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What a profile file sets itself (not inherited from its base).
#[derive(Default)]
struct Local {
    base: Option<String>,
    values: BTreeMap<String, f64>,
    sources: BTreeMap<String, String>,
    provenance: Option<Provenance>,
}

/// Writes `measured` into the profile file at `path` (kind `P`), creating it with `base`
/// (a built-in name or a path relative to the file; empty for none), `name` and `description`,
/// or merging into it (see the module doc). Errors, with the file unchanged: a field `P` does
/// not have, an existing file that is invalid or names another base, a result that would not
/// load, or I/O.
pub fn update_profile_file<P: Profile>(
    path: &Path,
    base: &str,
    name: &str,
    description: &str,
    measured: &[Measured],
    provenance: &Provenance,
) -> Result<(), ProfileFileError> {
    let file = path.to_path_buf();
    for m in measured {
        if P::field(&m.field).is_none() {
            let known: Vec<_> = P::fields().iter().map(|f| f.name).collect();
            return Err(ProfileFileError::UnknownField {
                file,
                kind: P::KIND,
                field: m.field.clone(),
                known: known.join(", "),
            });
        }
    }
    let wanted_base = (!base.is_empty()).then(|| base.to_string());
    let mut local = if path.exists() {
        read_local::<P>(path)?
    } else {
        Local {
            base: wanted_base.clone(),
            ..Local::default()
        }
    };
    if local.base != wanted_base {
        return Err(ProfileFileError::BaseMismatch {
            file,
            found: local.base.unwrap_or_default(),
            wanted: base.to_string(),
        });
    }
    for m in measured {
        local.values.insert(m.field.clone(), m.value);
        local.sources.insert(m.field.clone(), m.source.clone());
    }
    local.provenance = Some(merge(local.provenance.take(), provenance));

    let text = render::<P>(&local, name, description);
    load::parse::<P>(&text, &Origin::File(file.clone())).map_err(|source| {
        ProfileFileError::Invalid {
            file: file.clone(),
            source,
        }
    })?;
    replace(path, &text).map_err(|source| ProfileFileError::Io { file, source })
}

/// The existing file's own settings, after checking it loads as a `P`.
fn read_local<P: Profile>(path: &Path) -> Result<Local, ProfileFileError> {
    let file = path.to_path_buf();
    let text = std::fs::read_to_string(path).map_err(|source| ProfileFileError::Io {
        file: file.clone(),
        source,
    })?;
    let profile = load::parse::<P>(&text, &Origin::File(file.clone())).map_err(|source| {
        ProfileFileError::Existing {
            file,
            kind: P::KIND,
            source,
        }
    })?;
    // It parsed as a profile, so the table is valid TOML with known keys and types.
    let table: toml::Table = text.parse().unwrap_or_default();
    let mut local = Local {
        base: table
            .get("base")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        provenance: table
            .contains_key("provenance")
            .then(|| profile.meta().provenance.clone())
            .flatten(),
        ..Local::default()
    };
    for field in P::fields() {
        if table.contains_key(field.name) {
            local
                .values
                .insert(field.name.to_string(), (field.get)(&profile));
        }
    }
    if let Some(sources) = table.get("sources").and_then(|v| v.as_table()) {
        for (key, value) in sources {
            if let Some(text) = value.as_str() {
                local.sources.insert(key.clone(), text.to_string());
            }
        }
    }
    Ok(local)
}

/// The scenarios of both, in first-seen order; the later date; this run's machine and version.
fn merge(old: Option<Provenance>, new: &Provenance) -> Provenance {
    let Some(old) = old else {
        return new.clone();
    };
    let mut scenarios = old.scenarios;
    for s in &new.scenarios {
        if !scenarios.contains(s) {
            scenarios.push(s.clone());
        }
    }
    Provenance {
        date: old.date.max(new.date.clone()),
        scenarios,
        ..new.clone()
    }
}

/// The file's text: header, base, name, description, values in field-table order, sources,
/// provenance.
fn render<P: Profile>(local: &Local, name: &str, description: &str) -> String {
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut out = String::from(
        "# Written by tenantd bench: measured fields, their sources and provenance.\n\
         # Fields not set here come from `base`. Rewritten on each update (comments are lost).\n",
    );
    if let Some(base) = &local.base {
        out.push_str(&format!("base = {}\n", quote(base)));
    }
    out.push_str(&format!("name = {}\n", quote(name)));
    out.push_str(&format!("description = {}\n\n", quote(description)));
    for field in P::fields() {
        if let Some(value) = local.values.get(field.name) {
            out.push_str(&format!(
                "{} = {}\n",
                field.name,
                toml::Value::Float(*value)
            ));
        }
    }
    out.push_str("\n[sources]\n");
    for field in P::fields() {
        if let Some(source) = local.sources.get(field.name) {
            out.push_str(&format!("{} = {}\n", field.name, quote(source)));
        }
    }
    if let Some(p) = &local.provenance {
        out.push_str("\n[provenance]\n");
        out.push_str(&format!("date = {}\n", quote(&p.date)));
        out.push_str(&format!("machine = {}\n", quote(&p.machine)));
        out.push_str(&format!("version = {}\n", quote(&p.version)));
        let scenarios: Vec<String> = p.scenarios.iter().map(|s| quote(s)).collect();
        out.push_str(&format!("scenarios = [{}]\n", scenarios.join(", ")));
        if let Some(emulated) = &p.emulated {
            out.push_str(&format!("emulated = {}\n", quote(emulated)));
        }
    }
    out
}

/// Replaces `path` with `text` atomically: a temp file in the same directory, synced, renamed
/// over it, then the directory synced.
fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    // Unique per process and call, so concurrent updates never share a temp file.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let temp = dir.join(format!(
        ".{}.{}-{}.tmp",
        file_name.unwrap_or_default(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&temp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        // Best effort: the temp file is ours and useless now; the target is untouched.
        let _ = std::fs::remove_file(&temp);
    }
    result
}
