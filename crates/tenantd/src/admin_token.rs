//! The admin token: from configuration, or generated once and kept in `<data>/admin.token`
//! (mode 0600) so the CLI on the same machine can find it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// File name of the generated admin token inside the data directory.
pub const TOKEN_FILE: &str = "admin.token";

/// Shortest admin token accepted (configured or read from the file): the token grants every
/// tenant, so a guessable one is refused at start. Generated tokens have 64 hex digits.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// Refuses a token shorter than [`MIN_ADMIN_TOKEN_LEN`]; `origin` names where it came from.
pub fn check(token: &str, origin: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        token.chars().count() >= MIN_ADMIN_TOKEN_LEN,
        "{origin}: the admin token has {} characters; it must have at least {MIN_ADMIN_TOKEN_LEN} \
         (e.g. `openssl rand -hex 32`), or leave it unset to have one generated in DATA/{TOKEN_FILE}",
        token.chars().count()
    );
    Ok(())
}

/// Where the generated token lives for `data_dir`.
pub fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_FILE)
}

/// The configured token, or the one in the token file, or a new random one written there.
/// Returns the token and, when it came from (or went to) the file, the file's path. Errors: a
/// token shorter than [`MIN_ADMIN_TOKEN_LEN`], I/O.
pub fn resolve(
    configured: Option<String>,
    data_dir: &Path,
) -> anyhow::Result<(String, Option<PathBuf>)> {
    if let Some(t) = configured {
        check(&t, "admin_token")?;
        return Ok((t, None));
    }
    let path = token_path(data_dir);
    if let Some(t) = read(&path)? {
        check(&t, &path.display().to_string())?;
        return Ok((t, Some(path)));
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let token = hex::encode(rand::random::<[u8; 32]>());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(f, "{token}")?;
    f.sync_all()?;
    Ok((token, Some(path)))
}

/// Reads a token file; `None` if it does not exist.
pub fn read(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (a, path) = resolve(None, dir.path()).unwrap();
        let path = path.unwrap();
        assert_eq!(a.len(), 64);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (b, _) = resolve(None, dir.path()).unwrap();
        assert_eq!(a, b);
        let given = "given-token-0123456789";
        let (c, none) = resolve(Some(given.into()), dir.path()).unwrap();
        assert_eq!((c.as_str(), none), (given, None));
    }

    #[test]
    fn regression_a_one_character_admin_token_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve(Some("x".into()), dir.path()).unwrap_err();
        assert!(err.to_string().contains("at least 16"), "{err}");
        std::fs::write(token_path(dir.path()), "short\n").unwrap();
        let err = resolve(None, dir.path()).unwrap_err();
        assert!(err.to_string().contains("admin.token"), "{err}");
    }
}
