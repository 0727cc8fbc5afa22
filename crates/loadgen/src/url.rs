//! Plain-HTTP URLs, as far as a load generator needs them: `http://host[:port][/path]`.

use std::net::{SocketAddr, ToSocketAddrs};

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Only `http://` is spoken.
    #[error("{0:?}: only http:// URLs are supported (no TLS)")]
    NotHttp(String),
    /// The host part is empty or the port is not a number.
    #[error("{0:?}: expected http://HOST[:PORT][/PATH]")]
    Malformed(String),
    /// The host name does not resolve.
    #[error("{0:?}: the host does not resolve")]
    Unresolved(String),
}

/// A parsed `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host as written (the `Host` header is `host[:port]`).
    pub host: String,
    /// Port (80 when absent).
    pub port: u16,
    /// Path with query, at least `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parses `http://host[:port][/path]`; errors say what form is expected.
    pub fn parse(s: &str) -> Result<Self, UrlError> {
        let rest = s
            .strip_prefix("http://")
            .ok_or_else(|| UrlError::NotHttp(s.into()))?;
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                (h, p.parse().map_err(|_| UrlError::Malformed(s.into()))?)
            }
            _ => (authority, 80),
        };
        if host.is_empty() {
            return Err(UrlError::Malformed(s.into()));
        }
        Ok(HttpUrl {
            host: host.into(),
            port,
            path: path.into(),
        })
    }

    /// The `Host` header value.
    pub fn host_header(&self) -> String {
        if self.port == 80 {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The first address the host resolves to; errors if none.
    pub fn resolve(&self) -> Result<SocketAddr, UrlError> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        (host, self.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| UrlError::Unresolved(self.host.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_we_take() {
        let u = HttpUrl::parse("http://127.0.0.1:3000/t/{tenant}/webhook").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 3000, "/t/{tenant}/webhook")
        );
        assert_eq!(u.host_header(), "127.0.0.1:3000");
        let bare = HttpUrl::parse("http://localhost").unwrap();
        assert_eq!((bare.port, bare.path.as_str()), (80, "/"));
        assert!(matches!(
            HttpUrl::parse("https://x"),
            Err(UrlError::NotHttp(_))
        ));
        assert!(matches!(
            HttpUrl::parse("http://:80/"),
            Err(UrlError::Malformed(_))
        ));
        assert!(matches!(
            HttpUrl::parse("http://h:x/"),
            Err(UrlError::Malformed(_))
        ));
        assert_eq!(u.resolve().unwrap(), "127.0.0.1:3000".parse().unwrap());
    }
}
