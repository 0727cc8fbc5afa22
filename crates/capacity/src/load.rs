//! Profile files: TOML in, validated profiles out. A file may name a `base` profile (built-in
//! name or a path relative to the file) and override any subset of its fields, so a benchmark
//! can write only what it measured; a `[provenance]` table says where measured values come
//! from. Every error names the file, the field and the reason.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::builtin;
use crate::field::{Profile, Provenance};
use crate::machine::MachineProfile;
use crate::workload::WorkloadProfile;

/// How deep `base` chains may go before we call it a cycle.
const MAX_BASE_DEPTH: usize = 8;

/// Where a profile's text came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Embedded in the binary under this name.
    Builtin(String),
    /// Read from this file.
    File(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Builtin(name) => write!(f, "built-in profile `{name}`"),
            Origin::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A profile could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {file}: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{file}: not valid TOML: {reason}")]
    Syntax {
        /// The file.
        file: String,
        /// The parser's message, with the line.
        reason: String,
    },
    /// A field is unknown, missing, of the wrong type or out of range.
    #[error("{file}: field `{field}`: {reason}")]
    Field {
        /// The file.
        file: String,
        /// The field (`base`, `name`, `sources.x` or a numeric field).
        field: String,
        /// Why it is rejected.
        reason: String,
    },
    /// Neither a built-in profile nor an existing file.
    #[error("no built-in {kind} profile named `{name}` and no such file (built-in: {known})")]
    Unknown {
        /// `machine` or `workload`.
        kind: &'static str,
        /// What was asked for.
        name: String,
        /// The built-in names, comma separated.
        known: String,
    },
}

/// Loads a machine profile by built-in name or file path.
pub fn load_machine(spec: &str) -> Result<MachineProfile, LoadError> {
    load(spec)
}

/// Loads a workload profile by built-in name or file path.
pub fn load_workload(spec: &str) -> Result<WorkloadProfile, LoadError> {
    load(spec)
}

/// Loads a profile of kind `P` by built-in name or file path; errors if it is neither, or
/// if the text is invalid (see [`LoadError`]).
pub fn load<P: Profile>(spec: &str) -> Result<P, LoadError> {
    load_at_depth(spec, None, 0)
}

fn load_at_depth<P: Profile>(
    spec: &str,
    relative_to: Option<&Path>,
    depth: usize,
) -> Result<P, LoadError> {
    if let Some(text) = builtin::text(P::KIND, spec) {
        return parse_at_depth(text, &Origin::Builtin(spec.to_string()), depth);
    }
    let path = match relative_to {
        Some(dir) => dir.join(spec),
        None => PathBuf::from(spec),
    };
    if !path.exists() {
        return Err(LoadError::Unknown {
            kind: P::KIND,
            name: spec.to_string(),
            known: builtin::names(P::KIND).join(", "),
        });
    }
    let text = std::fs::read_to_string(&path).map_err(|source| LoadError::Read {
        file: path.clone(),
        source,
    })?;
    parse_at_depth(&text, &Origin::File(path), depth)
}

/// Parses profile text; `origin` names it in errors and resolves a relative `base` path.
pub fn parse<P: Profile>(text: &str, origin: &Origin) -> Result<P, LoadError> {
    parse_at_depth(text, origin, 0)
}

fn parse_at_depth<P: Profile>(text: &str, origin: &Origin, depth: usize) -> Result<P, LoadError> {
    let file = origin.to_string();
    let field_error = |field: &str, reason: String| LoadError::Field {
        file: file.clone(),
        field: field.to_string(),
        reason,
    };
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|s| format!(" (line {})", text[..s.start].lines().count().max(1)))
            .unwrap_or_default();
        LoadError::Syntax {
            file: file.clone(),
            reason: format!("{}{line}", e.message()),
        }
    })?;

    let string_of = |key: &str| -> Result<Option<String>, LoadError> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(field_error(
                key,
                format!("expected a string, found {}", other.type_str()),
            )),
        }
    };

    let base_name = string_of("base")?;
    let mut profile = match &base_name {
        None => P::blank(),
        Some(base) => {
            if depth >= MAX_BASE_DEPTH {
                return Err(field_error(
                    "base",
                    format!("`base` chain deeper than {MAX_BASE_DEPTH}: is there a cycle?"),
                ));
            }
            let dir = match origin {
                Origin::File(path) => path.parent().map(Path::to_path_buf),
                Origin::Builtin(_) => None,
            };
            load_at_depth::<P>(base, dir.as_deref(), depth + 1)
                .map_err(|e| field_error("base", format!("cannot load `{base}`: {e}")))?
        }
    };

    let default_name = match origin {
        Origin::Builtin(name) => name.clone(),
        Origin::File(path) => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| file.clone()),
    };
    profile.meta_mut().name = string_of("name")?.unwrap_or(default_name);
    if let Some(description) = string_of("description")? {
        profile.meta_mut().description = description;
    } else if let Some(base) = &base_name {
        profile.meta_mut().description = format!("`{base}` with overrides from {file}");
    }

    let mut explicit_sources = std::collections::BTreeMap::new();
    if let Some(sources) = table.get("sources") {
        let sources = sources.as_table().ok_or_else(|| {
            field_error(
                "sources",
                format!("expected a table, found {}", sources.type_str()),
            )
        })?;
        for (key, value) in sources {
            let name = format!("sources.{key}");
            if P::field(key).is_none() {
                return Err(field_error(&name, format!("unknown {} field", P::KIND)));
            }
            let text = value.as_str().ok_or_else(|| {
                field_error(
                    &name,
                    format!("expected a string, found {}", value.type_str()),
                )
            })?;
            explicit_sources.insert(key.clone(), text.to_string());
        }
    }

    let mut set_here = Vec::new();
    for (key, value) in &table {
        if matches!(
            key.as_str(),
            "base" | "name" | "description" | "sources" | "provenance"
        ) {
            continue;
        }
        let field = P::field(key).ok_or_else(|| {
            if let Some(hint) = P::retired(key) {
                return field_error(key, format!("no longer a {} field: {hint}", P::KIND));
            }
            let known: Vec<_> = P::fields().iter().map(|f| f.name).collect();
            field_error(
                key,
                format!("unknown {} field (known: {})", P::KIND, known.join(", ")),
            )
        })?;
        let number = match value {
            toml::Value::Float(x) => *x,
            toml::Value::Integer(i) => *i as f64,
            other => {
                return Err(field_error(
                    key,
                    format!(
                        "expected a number in {}, found {}",
                        field.unit,
                        other.type_str()
                    ),
                ))
            }
        };
        field
            .check(number)
            .map_err(|reason| field_error(key, reason))?;
        (field.set)(&mut profile, number);
        set_here.push(field.name);
    }

    if let Some(value) = table.get("provenance") {
        let provenance = parse_provenance(value)
            .map_err(|(key, reason)| field_error(&format!("provenance{key}"), reason))?;
        profile.meta_mut().provenance = Some(provenance);
    }

    let mut defaulted = Vec::new();
    for field in P::fields() {
        if let (true, Some((value, source))) = ((field.get)(&profile).is_nan(), field.default) {
            (field.set)(&mut profile, value);
            defaulted.push((field.name, source));
        }
        if (field.get)(&profile).is_nan() {
            return Err(field_error(
                field.name,
                format!(
                    "missing ({}, in {}); set it, or name a `base` profile to inherit it from",
                    field.doc, field.unit
                ),
            ));
        }
    }
    let sources = &mut profile.meta_mut().sources;
    for name in set_here {
        let source = explicit_sources
            .remove(name)
            .unwrap_or_else(|| file.clone());
        sources.insert(name.to_string(), source);
    }
    for (name, source) in defaulted {
        sources.insert(name.to_string(), source.to_string());
    }
    sources.extend(explicit_sources);

    profile.validate().map_err(|e| LoadError::Field {
        file: file.clone(),
        field: e.field,
        reason: e.reason,
    })?;
    Ok(profile)
}

/// Reads a `[provenance]` table: `date`, `machine`, `version` (strings), `scenarios` (an array
/// of strings), `emulated` (optional string). The error is (`.key` or "", reason).
fn parse_provenance(value: &toml::Value) -> Result<Provenance, (String, String)> {
    let table = value.as_table().ok_or_else(|| {
        (
            String::new(),
            format!("expected a table, found {}", value.type_str()),
        )
    })?;
    let text = |key: &str, required: bool| -> Result<Option<String>, (String, String)> {
        match table.get(key) {
            None if required => Err((format!(".{key}"), "missing (a string)".to_string())),
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err((
                format!(".{key}"),
                format!("expected a string, found {}", other.type_str()),
            )),
        }
    };
    for key in table.keys() {
        if !matches!(
            key.as_str(),
            "date" | "machine" | "version" | "scenarios" | "emulated"
        ) {
            return Err((
                format!(".{key}"),
                "unknown provenance key (known: date, machine, version, scenarios, emulated)"
                    .to_string(),
            ));
        }
    }
    let scenarios = match table.get("scenarios") {
        None => return Err((".scenarios".into(), "missing (an array of strings)".into())),
        Some(toml::Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str().map(str::to_string).ok_or_else(|| {
                    (
                        ".scenarios".to_string(),
                        format!("expected strings, found {}", item.type_str()),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err((
                ".scenarios".into(),
                format!("expected an array of strings, found {}", other.type_str()),
            ))
        }
    };
    Ok(Provenance {
        date: text("date", true)?.unwrap_or_default(),
        machine: text("machine", true)?.unwrap_or_default(),
        version: text("version", true)?.unwrap_or_default(),
        scenarios,
        emulated: text("emulated", false)?,
    })
}
