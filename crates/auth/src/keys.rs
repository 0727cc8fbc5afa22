//! tenantd's token key pair. The private key (32-byte Ed25519 seed, base64url) lives in a file
//! created with mode 0600 and refused if group/others can read it; the public key (32 bytes,
//! base64url — the format sqld's `--auth-jwt-key-file` accepts) is written beside it as
//! `<file>.pub`. Creation is atomic: a temporary file is hard-linked into place, so two
//! processes racing to create the key agree on one.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::RngCore;

use crate::claims::{Access, Claims};
use crate::jwt::{self, AuthError};

/// The key file could not be created or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing a key file failed.
    #[error("cannot access key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A key file does not hold a key.
    #[error("key file {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// The private key file is readable by group or others.
    #[error("private key file {path} has mode {mode:o}; it must not be accessible to group or others (chmod 600)")]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The public key file does not match the private key.
    #[error("public key file {path} does not match the private key")]
    PublicKeyMismatch {
        /// The public key file.
        path: PathBuf,
    },
}

/// The key pair that issues and verifies tenant tokens.
pub struct Keys {
    signing: SigningKey,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys {{ public: {} }}", self.public_key_base64())
    }
}

impl Keys {
    /// A fresh in-memory key pair (tests, ephemeral servers). Never fails.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        Keys {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// Loads the private key at `path`, creating it (mode 0600) with its `.pub` file if absent.
    /// Errors: I/O, a corrupt file, a private key readable by others, a mismatched `.pub`.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let keys = match read_private(path) {
            Ok(keys) => keys,
            Err(KeyError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                create_private(path)?
            }
            Err(e) => return Err(e),
        };
        keys.ensure_public_file(&public_path(path))?;
        Ok(keys)
    }

    /// The public key, base64url without padding (sqld's key-file format).
    pub fn public_key_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.signing.verifying_key().to_bytes())
    }

    /// The verifying half.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// A token for `tenant` at its token `epoch` (read from the tenant file), expiring after
    /// `ttl` (never, if `None`). Never fails.
    pub fn issue(
        &self,
        tenant: &str,
        epoch: &str,
        access: Access,
        ttl: Option<Duration>,
    ) -> String {
        self.issue_at(tenant, epoch, access, ttl, SystemTime::now())
    }

    /// [`Keys::issue`] as if the time were `now`.
    pub fn issue_at(
        &self,
        tenant: &str,
        epoch: &str,
        access: Access,
        ttl: Option<Duration>,
        now: SystemTime,
    ) -> String {
        let iat = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims = Claims {
            tenant: tenant.to_owned(),
            epoch: Some(epoch.to_owned()),
            access,
            exp: ttl.map(|t| iat.saturating_add(t.as_secs().max(1))),
            iat: Some(iat),
            nbf: None,
        };
        jwt::sign(&self.signing, &claims)
    }

    /// Signs `claims` as they are (tools and tests; [`Keys::issue`] builds the usual ones).
    /// Never fails.
    pub fn sign(&self, claims: &Claims) -> String {
        jwt::sign(&self.signing, claims)
    }

    /// The claims of a token signed by this key. Errors: malformed, bad signature, expired,
    /// not yet valid.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<Claims, AuthError> {
        jwt::verify(&self.signing.verifying_key(), token, now)
    }

    /// [`Keys::verify`], then checks the token is for `tenant` and carries an epoch (pure CPU:
    /// the epoch itself is compared with the tenant file's by [`Claims::check_epoch`]). Errors:
    /// those of `verify`, [`AuthError::WrongTenant`], [`AuthError::Unbound`].
    pub fn authorize(
        &self,
        token: &str,
        tenant: &str,
        now: SystemTime,
    ) -> Result<Claims, AuthError> {
        let claims = self.verify(token, now)?;
        if claims.tenant != tenant {
            return Err(AuthError::WrongTenant);
        }
        if claims.epoch.is_none() {
            return Err(AuthError::Unbound);
        }
        Ok(claims)
    }

    fn ensure_public_file(&self, path: &Path) -> Result<(), KeyError> {
        let expected = self.public_key_base64();
        match fs::read_to_string(path) {
            Ok(text) if text.trim() == expected => Ok(()),
            Ok(_) => Err(KeyError::PublicKeyMismatch {
                path: path.to_owned(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match write_new(path, format!("{expected}\n").as_bytes(), 0o644) {
                    // Another process wrote it meanwhile: it must hold the same key.
                    Err(KeyError::Io { source, .. })
                        if source.kind() == io::ErrorKind::AlreadyExists =>
                    {
                        self.ensure_public_file(path)
                    }
                    other => other,
                }
            }
            Err(source) => Err(KeyError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }
}

/// `<path>.pub`.
pub fn public_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

fn read_private(path: &Path) -> Result<Keys, KeyError> {
    let meta = fs::metadata(path).map_err(io_err(path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    let corrupt = |reason| KeyError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let seed: [u8; 32] = URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|_| corrupt("not base64url"))?
        .try_into()
        .map_err(|_| corrupt("not a 32-byte Ed25519 seed"))?;
    Ok(Keys {
        signing: SigningKey::from_bytes(&seed),
    })
}

fn create_private(path: &Path) -> Result<Keys, KeyError> {
    let keys = Keys::generate();
    let text = format!("{}\n", URL_SAFE_NO_PAD.encode(keys.signing.to_bytes()));
    match write_new(path, text.as_bytes(), 0o600) {
        Ok(()) => Ok(keys),
        // Another process created it first: use theirs.
        Err(KeyError::Io { source, .. }) if source.kind() == io::ErrorKind::AlreadyExists => {
            read_private(path)
        }
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to a new file at `path` with `mode`, atomically (temp file, fsync, hard link;
/// fails with `AlreadyExists` if `path` exists).
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(
        ".tmp.{}.{:x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::hard_link(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    let _ = fs::remove_file(&tmp); // best effort: the temp name is unique and harmless
    result.map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn creates_0600_key_and_public_file_then_reloads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt.key");
        let keys = Keys::load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let public = fs::read_to_string(public_path(&path)).unwrap();
        assert_eq!(public.trim(), keys.public_key_base64());
        assert_eq!(URL_SAFE_NO_PAD.decode(public.trim()).unwrap().len(), 32);
        let again = Keys::load_or_create(&path).unwrap();
        assert_eq!(again.public_key_base64(), keys.public_key_base64());
        let token = keys.issue_at("acme", "e", Access::ReadWrite, None, at(1));
        assert_eq!(again.verify(&token, at(2)).unwrap().tenant, "acme");
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 2, "no temp files left: {leftovers:?}");
    }

    #[test]
    fn refuses_a_world_readable_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt.key");
        Keys::load_or_create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Keys::load_or_create(&path).unwrap_err();
        assert!(
            matches!(err, KeyError::InsecurePermissions { mode: 0o644, .. }),
            "{err}"
        );
    }

    #[test]
    fn corrupt_and_mismatched_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt.key");
        write_new(&path, b"hello\n", 0o600).unwrap();
        assert!(matches!(
            Keys::load_or_create(&path),
            Err(KeyError::Corrupt { .. })
        ));
        fs::remove_file(&path).unwrap();
        Keys::load_or_create(&path).unwrap();
        fs::write(
            public_path(&path),
            format!("{}\n", Keys::generate().public_key_base64()),
        )
        .unwrap();
        assert!(matches!(
            Keys::load_or_create(&path),
            Err(KeyError::PublicKeyMismatch { .. })
        ));
    }

    #[test]
    fn racing_creators_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt.key");
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    Keys::load_or_create(&path).map(|k| k.public_key_base64())
                })
            })
            .collect();
        let keys: Vec<String> = handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect();
        assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
    }

    #[test]
    fn missing_public_file_is_recreated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt.key");
        let keys = Keys::load_or_create(&path).unwrap();
        fs::remove_file(public_path(&path)).unwrap();
        Keys::load_or_create(&path).unwrap();
        assert_eq!(
            fs::read_to_string(public_path(&path)).unwrap().trim(),
            keys.public_key_base64()
        );
    }

    #[test]
    fn issue_verify_authorize() {
        let keys = Keys::generate();
        let t = keys.issue_at(
            "acme",
            "e1",
            Access::ReadOnly,
            Some(Duration::from_secs(60)),
            at(1000),
        );
        let c = keys.verify(&t, at(1059)).unwrap();
        assert_eq!(
            (c.tenant.as_str(), c.access, c.exp, c.iat),
            ("acme", Access::ReadOnly, Some(1060), Some(1000))
        );
        assert_eq!(keys.verify(&t, at(1060)), Err(AuthError::Expired));
        assert_eq!(
            keys.authorize(&t, "globex", at(1001)),
            Err(AuthError::WrongTenant)
        );
        assert!(keys.authorize(&t, "acme", at(1001)).is_ok());
        assert_eq!(
            Keys::generate().verify(&t, at(1001)),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn regression_tokens_outlive_their_tenant_epoch_is_checked() {
        let keys = Keys::generate();
        let t = keys.issue_at("acme", "old", Access::ReadWrite, None, at(1));
        let claims = keys.authorize(&t, "acme", at(2)).unwrap();
        assert_eq!(claims.check_epoch("old"), Ok(()));
        assert_eq!(claims.check_epoch("new"), Err(AuthError::Revoked));
        assert_eq!(AuthError::Revoked.code(), "token_revoked");
        // A token minted before epochs existed carries none: refused before any file is read.
        let unbound = Claims {
            epoch: None,
            ..claims
        };
        let t = keys.sign(&unbound);
        assert_eq!(keys.authorize(&t, "acme", at(2)), Err(AuthError::Unbound));
        assert!(AuthError::Unbound
            .to_string()
            .contains("tenantd token create"));
    }

    #[test]
    fn debug_does_not_print_the_private_key() {
        let keys = Keys::generate();
        let seed = URL_SAFE_NO_PAD.encode(keys.signing.to_bytes());
        assert!(!format!("{keys:?}").contains(&seed));
    }
}
