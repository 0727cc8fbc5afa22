//! Path templates: a request path with one `{tenant}` placeholder, e.g.
//! `/t/{tenant}/hooks/bench`, split once so rendering is two copies and the name.

/// Why a path template is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A path must start with `/`.
    #[error("path template {0:?} must start with /")]
    NotAPath(String),
    /// There is no `{tenant}` to replace.
    #[error("path template {0:?} has no {{tenant}}: say where the tenant name goes")]
    NoPlaceholder(String),
    /// More than one `{tenant}`.
    #[error("path template {0:?} has {{tenant}} more than once")]
    TwoPlaceholders(String),
    /// A character that cannot be sent in a request line unescaped.
    #[error("path template {0:?} contains a space, a control character or a brace other than {{tenant}}")]
    BadCharacter(String),
}

/// The placeholder replaced by the tenant name.
pub const PLACEHOLDER: &str = "{tenant}";

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    head: String,
    tail: String,
}

impl PathTemplate {
    /// Parses `/…{tenant}…`; errors say what is wrong with it.
    pub fn parse(s: &str) -> Result<Self, TemplateError> {
        if !s.starts_with('/') {
            return Err(TemplateError::NotAPath(s.into()));
        }
        let Some(at) = s.find(PLACEHOLDER) else {
            return Err(TemplateError::NoPlaceholder(s.into()));
        };
        let (head, rest) = s.split_at(at);
        let tail = &rest[PLACEHOLDER.len()..];
        if tail.contains(PLACEHOLDER) {
            return Err(TemplateError::TwoPlaceholders(s.into()));
        }
        let bad = |p: &str| {
            p.chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '{' || c == '}')
        };
        if bad(head) || bad(tail) {
            return Err(TemplateError::BadCharacter(s.into()));
        }
        Ok(PathTemplate {
            head: head.into(),
            tail: tail.into(),
        })
    }

    /// The path for one tenant.
    pub fn render(&self, name: &str) -> String {
        let mut s = String::with_capacity(self.head.len() + name.len() + self.tail.len());
        self.render_into(name, &mut s);
        s
    }

    /// Appends the path for one tenant to `out` (no allocation when `out` has room).
    pub fn render_into(&self, name: &str, out: &mut String) {
        out.push_str(&self.head);
        out.push_str(name);
        out.push_str(&self.tail);
    }
}

impl std::fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{PLACEHOLDER}{}", self.head, self.tail)
    }
}

impl std::str::FromStr for PathTemplate {
    type Err = TemplateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_name_in_place() {
        let t = PathTemplate::parse("/t/{tenant}/hooks/bench").unwrap();
        assert_eq!(t.render("tenant00042"), "/t/tenant00042/hooks/bench");
        assert_eq!(t.to_string(), "/t/{tenant}/hooks/bench");
        let end = PathTemplate::parse("/db/{tenant}").unwrap();
        assert_eq!(end.render("a"), "/db/a");
    }

    #[test]
    fn template_parse_errors_name_the_problem() {
        use TemplateError::*;
        let err = |s: &str| PathTemplate::parse(s).unwrap_err();
        assert_eq!(err("/t/x/hooks"), NoPlaceholder("/t/x/hooks".into()));
        assert_eq!(err("t/{tenant}"), NotAPath("t/{tenant}".into()));
        assert_eq!(
            err("/{tenant}/{tenant}"),
            TwoPlaceholders("/{tenant}/{tenant}".into())
        );
        assert_eq!(
            err("/t/{tenant}/a b"),
            BadCharacter("/t/{tenant}/a b".into())
        );
        assert_eq!(
            err("/t/{tenant}/{id}"),
            BadCharacter("/t/{tenant}/{id}".into())
        );
        assert!(err("/x").to_string().contains("no {tenant}"));
    }
}
