//! Validated names: tenant ids and webhook source names.
//!
//! Both follow one rule — 1 to 63 characters of `[a-z0-9_-]`, starting and ending with a letter
//! or a digit — so a tenant id fits a DNS label (Host-based routing; `_` is the one extension)
//! and can never name a path outside its directory. Raw strings become these types in exactly one place: `parse`.

use std::fmt;

/// The longest accepted name, in bytes (a DNS label's limit).
pub const MAX_NAME_LEN: usize = 63;

/// Why a string is not a valid name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The string is empty.
    #[error("must not be empty")]
    Empty,
    /// The string is longer than [`MAX_NAME_LEN`].
    #[error("must be at most {MAX_NAME_LEN} characters, got {0}")]
    TooLong(usize),
    /// The first character is `-` or `_`.
    #[error("must start with a lowercase letter or a digit")]
    BadStart,
    /// The last character is `-` or `_`.
    #[error("must end with a lowercase letter or a digit")]
    BadEnd,
    /// A character outside `[a-z0-9_-]`.
    #[error("may only contain a-z, 0-9, '_' and '-' (found {0:?})")]
    BadChar(char),
}

fn check(raw: &str) -> Result<(), NameError> {
    if raw.is_empty() {
        return Err(NameError::Empty);
    }
    if raw.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(raw.chars().count()));
    }
    if let Some(c) = raw
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
    {
        return Err(NameError::BadChar(c));
    }
    if raw.starts_with(['-', '_']) {
        return Err(NameError::BadStart);
    }
    if raw.ends_with(['-', '_']) {
        return Err(NameError::BadEnd);
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Validates `raw`; the error says which rule it breaks.
            pub fn parse(raw: &str) -> Result<Self, NameError> {
                check(raw)?;
                Ok(Self(raw.to_owned()))
            }

            /// The validated name.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// A tenant id: the only way a tenant is named inside tenantd.
    TenantId
);
name_type!(
    /// A webhook source name (`github`, `stripe-live`, …), same rules as a tenant id.
    SourceName
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_label_like_names() {
        for ok in [
            "a",
            "acme",
            "0day",
            "tenant00042",
            "a-b_c",
            "a--b",
            &"x".repeat(63),
        ] {
            assert_eq!(TenantId::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn regression_ids_ending_in_dash_or_underscore_are_not_dns_labels() {
        for raw in ["acme-", "acme_", "a-_", "0-"] {
            assert_eq!(
                TenantId::parse(raw).unwrap_err(),
                NameError::BadEnd,
                "{raw:?}"
            );
            assert_eq!(
                SourceName::parse(raw).unwrap_err(),
                NameError::BadEnd,
                "{raw:?}"
            );
        }
    }

    #[test]
    fn rejects_every_bad_form() {
        let cases: &[(&str, NameError)] = &[
            ("", NameError::Empty),
            (&"x".repeat(64), NameError::TooLong(64)),
            ("-a", NameError::BadStart),
            ("_a", NameError::BadStart),
            ("_", NameError::BadStart),
            ("__", NameError::BadStart),
            ("A", NameError::BadChar('A')),
            ("../x", NameError::BadChar('.')),
            ("a/b", NameError::BadChar('/')),
            ("%2e%2e", NameError::BadChar('%')),
            ("café", NameError::BadChar('é')),
            ("a b", NameError::BadChar(' ')),
            ("a\0", NameError::BadChar('\0')),
        ];
        for (raw, want) in cases {
            assert_eq!(TenantId::parse(raw).unwrap_err(), *want, "{raw:?}");
            assert_eq!(SourceName::parse(raw).unwrap_err(), *want, "{raw:?}");
        }
    }
}
