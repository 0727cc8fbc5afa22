//! `tenantd token …`: per-tenant SQL tokens for libSQL clients (JWT, Ed25519, sqld's claims).
//! The key pair lives in `<data>/token.key` (mode 0600; public key in `token.key.pub`) unless
//! `--key`/`TENANTD_TOKEN_KEY` names another file; `tenantd serve` uses the same file, and
//! whichever runs first creates it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use auth::{Access, Keys};
use store::TenantId;

use crate::config::{parse_duration, DEFAULT_DATA};

/// File name of the token key pair inside the data directory.
pub const TOKEN_KEY_FILE: &str = "token.key";

/// The key file: the configured one, else `<data>/token.key`.
pub fn key_path(data: &Path, configured: Option<&Path>) -> PathBuf {
    configured.map_or_else(|| data.join(TOKEN_KEY_FILE), Path::to_owned)
}

/// Loads the key pair, creating it (and the directory) if missing. Errors name the file.
pub fn load_keys(path: &Path) -> anyhow::Result<Keys> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    Ok(Keys::load_or_create(path)?)
}

/// `tenantd token` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCmd {
    /// Print a token for one tenant (alone on the last line of stdout).
    Create(CreateArgs),
}

/// Flags of `tenantd token create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The tenant the token is for.
    #[arg(long, value_name = "ID")]
    pub tenant: String,
    /// Allow reading only: every write fails inside SQLite.
    #[arg(long)]
    pub read_only: bool,
    /// Expire after this long, e.g. 1h, 30d [default: never].
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,
    /// Data directory holding the key pair [default: ./data].
    #[arg(long, env = "TENANTD_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Key file instead of DATA/token.key (as `tenantd serve --token-key`).
    #[arg(long, env = "TENANTD_TOKEN_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
}

/// Runs a `tenantd token` command.
pub fn run(cmd: TokenCmd) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Create(args) => {
            let token = create(&args)?;
            println!("{token}");
            Ok(())
        }
    }
}

/// The token `args` ask for. Errors: a bad tenant id or duration, an unusable key file.
pub fn create(args: &CreateArgs) -> anyhow::Result<String> {
    let tenant = TenantId::parse(&args.tenant)
        .with_context(|| format!("invalid tenant id {:?}", args.tenant))?;
    let ttl: Option<Duration> = match args.ttl.as_deref() {
        Some(v) => {
            let d = parse_duration("ttl", v)?;
            anyhow::ensure!(
                !d.is_zero(),
                "ttl must be more than 0 (omit it for no expiry)"
            );
            Some(d)
        }
        None => None,
    };
    let data = args.data.clone().unwrap_or_else(|| DEFAULT_DATA.into());
    let keys = load_keys(&key_path(&data, args.key.as_deref()))?;
    if !store::layout::tenant_path(&data, &tenant).exists() {
        eprintln!(
            "note: tenant {tenant} does not exist in {} (yet); the token works once it does",
            data.display()
        );
    }
    let access = if args.read_only {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    };
    Ok(keys.issue(tenant.as_str(), access, ttl))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::SystemTime;

    fn args(dir: &Path, tenant: &str) -> CreateArgs {
        CreateArgs {
            tenant: tenant.into(),
            read_only: false,
            ttl: None,
            data: Some(dir.to_owned()),
            key: None,
        }
    }

    #[test]
    fn tokens_verify_with_the_key_in_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let rw = create(&args(dir.path(), "acme")).unwrap();
        let key = dir.path().join(TOKEN_KEY_FILE);
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let keys = load_keys(&key).unwrap();
        let claims = keys.authorize(&rw, "acme", SystemTime::now()).unwrap();
        assert_eq!((claims.access, claims.exp), (Access::ReadWrite, None));

        let ro = create(&CreateArgs {
            read_only: true,
            ttl: Some("1h".into()),
            ..args(dir.path(), "acme")
        })
        .unwrap();
        let claims = keys.authorize(&ro, "acme", SystemTime::now()).unwrap();
        assert_eq!(claims.access, Access::ReadOnly);
        assert_eq!(claims.exp.unwrap() - claims.iat.unwrap(), 3600);
        assert!(keys.authorize(&ro, "globex", SystemTime::now()).is_err());
    }

    #[test]
    fn bad_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(create(&args(dir.path(), "Bad/Id")).is_err());
        let zero = CreateArgs {
            ttl: Some("0".into()),
            ..args(dir.path(), "acme")
        };
        assert!(format!("{:#}", create(&zero).unwrap_err()).contains("ttl"));
    }
}
