//! Tenant names by index: `{prefix}{index:0width}` (as `tenantd bench provision` creates
//! them, `tenant00042`), or an explicit list.

use std::fmt::Write;
use std::sync::Arc;

/// How a tenant index becomes a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Names {
    /// `{prefix}{index:0width}`.
    Numbered {
        /// Name prefix, e.g. `tenant`.
        prefix: String,
        /// Zero-padded digits.
        width: u32,
    },
    /// Index i is the i-th name (the chooser must draw below the list's length).
    List(Arc<Vec<String>>),
}

impl Default for Names {
    fn default() -> Self {
        Names::Numbered {
            prefix: "tenant".into(),
            width: 5,
        }
    }
}

impl Names {
    /// Appends the name of tenant `i` to `out`. A list index past the end wraps around.
    pub fn write(&self, i: u64, out: &mut String) {
        match self {
            Names::Numbered { prefix, width } => {
                out.push_str(prefix);
                // Writing to a String cannot fail.
                let _ = write!(out, "{i:0width$}", width = *width as usize);
            }
            Names::List(list) if !list.is_empty() => {
                out.push_str(&list[(i % list.len() as u64) as usize])
            }
            Names::List(_) => {}
        }
    }

    /// The name of tenant `i`.
    pub fn name(&self, i: u64) -> String {
        let mut s = String::new();
        self.write(i, &mut s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_names_match_provisioning() {
        assert_eq!(Names::default().name(42), "tenant00042");
        let n = Names::Numbered {
            prefix: "t".into(),
            width: 2,
        };
        assert_eq!(n.name(7), "t07");
        let l = Names::List(Arc::new(vec!["a".into(), "b".into()]));
        assert_eq!(
            (l.name(0), l.name(1), l.name(2)),
            ("a".into(), "b".into(), "a".into())
        );
    }
}
