//! The benchmark's tenant names: `{prefix}{index:0width}`, e.g. `tenant00000` … `tenant99999`.
//!
//! The wrk script (`bench/wrk/ingest.lua`) formats the same names from the same prefix and
//! width, so provisioning and load always talk about the same tenant set. Rank 1 of the Zipf
//! distribution is index 0.

use store::{NameError, TenantId};

/// Default name prefix (matches the wrk scripts' default).
pub const DEFAULT_PREFIX: &str = "tenant";
/// Default number of decimal digits after the prefix (matches `%05d` in the wrk scripts).
pub const DEFAULT_WIDTH: u32 = 5;

/// Why a set of benchmark names cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum NamesError {
    /// `prefix` + digits is not a valid tenant id.
    #[error("prefix {prefix:?} does not make valid tenant ids: {source}")]
    BadPrefix {
        /// The prefix given.
        prefix: String,
        /// Which naming rule it breaks.
        source: NameError,
    },
    /// `count` names do not fit in `width` digits.
    #[error("{count} tenants do not fit in {width} digits (at most {max})")]
    TooMany {
        /// Tenants asked for.
        count: u64,
        /// Digits available.
        width: u32,
        /// Largest count that fits.
        max: u64,
    },
    /// A width of zero, or so large the names exceed the tenant id length limit.
    #[error("width must be between 1 and {max}, got {width}")]
    BadWidth {
        /// Digits asked for.
        width: u32,
        /// Largest usable width for this prefix.
        max: u32,
    },
}

/// A validated set of `count` benchmark tenant names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameSet {
    prefix: String,
    width: u32,
    count: u64,
}

impl NameSet {
    /// Validates the prefix, width and count; errors say which rule is broken.
    pub fn new(prefix: &str, width: u32, count: u64) -> Result<Self, NamesError> {
        let max_width = (store::name::MAX_NAME_LEN.saturating_sub(prefix.len()) as u32).min(18);
        if width == 0 || width > max_width {
            return Err(NamesError::BadWidth {
                width,
                max: max_width,
            });
        }
        let max = 10u64.pow(width);
        if count > max {
            return Err(NamesError::TooMany { count, width, max });
        }
        let set = NameSet {
            prefix: prefix.to_owned(),
            width,
            count,
        };
        // Every name has the same shape, so checking the first one checks them all.
        TenantId::parse(&set.raw_name(0)).map_err(|source| NamesError::BadPrefix {
            prefix: prefix.to_owned(),
            source,
        })?;
        Ok(set)
    }

    /// Number of names in the set.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether the set has no names.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The name of tenant `index` (no range check: indices past `len` give valid names too).
    pub fn name(&self, index: u64) -> TenantId {
        TenantId::parse(&self.raw_name(index)).expect("shape validated in NameSet::new")
    }

    fn raw_name(&self, index: u64) -> String {
        format!("{}{:0w$}", self.prefix, index, w = self.width as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_wrk_scripts_format() {
        let set = NameSet::new(DEFAULT_PREFIX, DEFAULT_WIDTH, 100_000).unwrap();
        assert_eq!(set.name(0).as_str(), "tenant00000");
        assert_eq!(set.name(42).as_str(), "tenant00042");
        assert_eq!(set.name(99_999).as_str(), "tenant99999");
        assert_eq!(set.len(), 100_000);
    }

    #[test]
    fn count_must_fit_the_width() {
        assert!(NameSet::new("t", 2, 100).is_ok());
        assert!(matches!(
            NameSet::new("t", 2, 101),
            Err(NamesError::TooMany { max: 100, .. })
        ));
    }

    #[test]
    fn prefix_and_width_are_validated() {
        assert!(matches!(
            NameSet::new("Tenant", 5, 1),
            Err(NamesError::BadPrefix { .. })
        ));
        assert!(matches!(
            NameSet::new("../x", 5, 1),
            Err(NamesError::BadPrefix { .. })
        ));
        // An empty prefix is fine: the names start with a digit.
        assert_eq!(NameSet::new("", 3, 5).unwrap().name(7).as_str(), "007");
        assert!(matches!(
            NameSet::new("t", 0, 1),
            Err(NamesError::BadWidth { .. })
        ));
        let long = "x".repeat(60);
        assert!(NameSet::new(&long, 3, 10).is_ok());
        assert!(matches!(
            NameSet::new(&long, 4, 10),
            Err(NamesError::BadWidth { max: 3, .. })
        ));
    }
}
