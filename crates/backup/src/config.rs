//! Where backups go and how often: bucket, prefix, endpoint, region, credentials, interval,
//! retention. Credentials come from the usual environment variables or from a credentials file
//! in the AWS format; they are never logged (`Debug` shows only the key id).

use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::error::BackupError;

/// Default time between two backup rounds: the SQL RPO target.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Default time between two shipments of the ingest log: the webhook RPO target.
pub const DEFAULT_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Default point-in-time window: snapshots older than this are removed (but the newest of them).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default tenants snapshotted and uploaded at once.
pub const DEFAULT_PARALLEL: usize = 4;
/// Default region (S3-compatible stores mostly ignore it, but requests are signed with it).
pub const DEFAULT_REGION: &str = "us-east-1";

/// Everything the backup needs to reach its bucket and pace itself.
#[derive(Debug, Clone)]
pub struct BackupConfig {
    /// The bucket (must exist).
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/` (may be empty).
    pub prefix: String,
    /// An S3-compatible endpoint (`http://127.0.0.1:9000`); `None` = AWS.
    pub endpoint: Option<String>,
    /// The signing region.
    pub region: String,
    /// Time between rounds.
    pub interval: Duration,
    /// Time between shipments of the ingest log (acknowledged webhooks).
    pub log_interval: Duration,
    /// Point-in-time window.
    pub retention: Duration,
    /// Tenants handled at once in a round or a restore.
    pub parallel: usize,
    /// Access key.
    pub credentials: Credentials,
}

impl BackupConfig {
    /// A configuration with the defaults for `bucket` and `credentials`.
    pub fn new(bucket: impl Into<String>, credentials: Credentials) -> Self {
        BackupConfig {
            bucket: bucket.into(),
            prefix: String::new(),
            endpoint: None,
            region: DEFAULT_REGION.to_owned(),
            interval: DEFAULT_INTERVAL,
            log_interval: DEFAULT_LOG_INTERVAL,
            retention: DEFAULT_RETENTION,
            parallel: DEFAULT_PARALLEL,
            credentials,
        }
    }

    /// Checks the values and normalises the prefix. Errors name the field.
    pub fn validated(mut self) -> Result<Self, BackupError> {
        let bad = |m: &str| Err(BackupError::Config(m.to_owned()));
        if self.bucket.is_empty() || self.bucket.contains('/') {
            return bad("backup_bucket must be a bucket name (no '/')");
        }
        self.prefix = self.prefix.trim_matches('/').to_owned();
        if self
            .prefix
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
            && !self.prefix.is_empty()
        {
            return bad("backup_prefix must be path segments without empty, '.' or '..' parts");
        }
        if let Some(e) = &self.endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return bad("backup_endpoint must start with http:// or https://");
            }
        }
        if self.interval.is_zero() {
            return bad("backup_interval must be more than 0");
        }
        if self.log_interval.is_zero() {
            return bad("backup_log_interval must be more than 0");
        }
        if self.parallel == 0 {
            return bad("backup_parallel must be at least 1");
        }
        Ok(self)
    }
}

/// An access key for the bucket.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The key id (shown in logs and errors).
    pub access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// A key from its parts.
    pub fn new(id: impl Into<String>, secret: impl Into<String>, token: Option<String>) -> Self {
        Credentials {
            access_key_id: id.into(),
            secret_access_key: secret.into(),
            session_token: token,
        }
    }

    /// The secret, for signing only.
    pub fn secret(&self) -> &str {
        &self.secret_access_key
    }

    /// The session token, if any.
    pub fn token(&self) -> Option<&str> {
        self.session_token.as_deref()
    }

    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` from `env`
    /// (a lookup, so tests need not touch the process environment); `None` without the first two.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let id = env("AWS_ACCESS_KEY_ID").filter(|v| !v.is_empty())?;
        let secret = env("AWS_SECRET_ACCESS_KEY").filter(|v| !v.is_empty())?;
        let token = env("AWS_SESSION_TOKEN").filter(|v| !v.is_empty());
        Some(Credentials::new(id, secret, token))
    }

    /// Reads profile `profile` of a credentials file in the AWS format (`[name]` sections of
    /// `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`). Errors name the file,
    /// never a secret.
    pub fn from_file(path: &Path, profile: &str) -> Result<Self, BackupError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            BackupError::Config(format!(
                "cannot read credentials file {}: {e}",
                path.display()
            ))
        })?;
        parse_credentials(&text, profile).ok_or_else(|| {
            BackupError::Config(format!(
                "credentials file {} has no [{profile}] section with aws_access_key_id and \
                 aws_secret_access_key",
                path.display()
            ))
        })
    }
}

/// The credentials of `profile` in an AWS-format credentials file, if complete.
fn parse_credentials(text: &str, profile: &str) -> Option<Credentials> {
    let (mut id, mut secret, mut token) = (None, None, None);
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            inside =
                name == profile || name.strip_prefix("profile ").map(str::trim) == Some(profile);
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if !inside {
            continue;
        }
        let v = v.trim().to_owned();
        match k.trim() {
            "aws_access_key_id" => id = Some(v),
            "aws_secret_access_key" => secret = Some(v),
            "aws_session_token" => token = Some(v),
            _ => {}
        }
    }
    Some(Credentials::new(id?, secret?, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_file_profiles_and_redaction() {
        let text =
            "# keys\n[default]\naws_access_key_id = AKIDDEF\naws_secret_access_key=s3cr3t\n\n\
                    [profile backup]\naws_access_key_id = AKIDB\naws_secret_access_key = other\n\
                    aws_session_token = tok\n";
        let d = parse_credentials(text, "default").unwrap();
        assert_eq!(
            (d.access_key_id.as_str(), d.secret(), d.token()),
            ("AKIDDEF", "s3cr3t", None)
        );
        let b = parse_credentials(text, "backup").unwrap();
        assert_eq!(
            (b.access_key_id.as_str(), b.secret(), b.token()),
            ("AKIDB", "other", Some("tok"))
        );
        assert!(parse_credentials(text, "missing").is_none());
        assert!(parse_credentials("[default]\naws_access_key_id = x\n", "default").is_none());
        let shown = format!("{d:?}");
        assert!(
            shown.contains("AKIDDEF") && !shown.contains("s3cr3t"),
            "{shown}"
        );
    }

    #[test]
    fn environment_needs_both_parts() {
        let env = |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some("id".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".to_owned()),
            _ => None,
        };
        assert_eq!(
            Credentials::from_env(env),
            Some(Credentials::new("id", "secret", None))
        );
        assert_eq!(
            Credentials::from_env(|k| env(k).filter(|_| k != "AWS_SECRET_ACCESS_KEY")),
            None
        );
    }

    #[test]
    fn validation_names_the_field() {
        let c = || BackupConfig::new("b", Credentials::new("i", "s", None));
        assert_eq!(
            BackupConfig {
                prefix: "/a/b/".into(),
                ..c()
            }
            .validated()
            .unwrap()
            .prefix,
            "a/b"
        );
        let err = |cfg: BackupConfig| cfg.validated().unwrap_err().to_string();
        assert!(err(BackupConfig {
            bucket: "a/b".into(),
            ..c()
        })
        .contains("backup_bucket"));
        assert!(err(BackupConfig {
            prefix: "a//b".into(),
            ..c()
        })
        .contains("backup_prefix"));
        assert!(err(BackupConfig {
            endpoint: Some("localhost:9".into()),
            ..c()
        })
        .contains("backup_endpoint"));
        assert!(err(BackupConfig {
            interval: Duration::ZERO,
            ..c()
        })
        .contains("backup_interval"));
    }
}
