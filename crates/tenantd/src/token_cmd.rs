//! `tenantd token …`: per-tenant SQL tokens for libSQL clients (JWT, Ed25519, sqld's claims
//! plus the tenant's token epoch).
//!
//! `create` is offline: it signs with the key pair in `<data>/token.key` (mode 0600; public key
//! in `token.key.pub`) unless `--key`/`TENANTD_TOKEN_KEY` names another file, and reads the
//! tenant's token epoch from its file (the tenant must exist). `tenantd serve` creates the key
//! at first start; `create` refuses to make a new one unless `--init` says so, since a key the
//! server does not use only mints tokens it refuses. `revoke` asks a running server (admin API)
//! to give the tenant a new epoch, so every token issued before is refused.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use auth::{Access, Keys};
use store::{layout, token_epoch, PoolConfig, StoreError, TenantId};

use crate::cli_admin::Remote;
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
    /// Revoke every token of a tenant on a running server (tokens of other tenants and the
    /// node's key are untouched; mint new ones with `token create`).
    Revoke {
        /// The tenant whose tokens are revoked.
        #[arg(long, value_name = "ID")]
        tenant: String,
        #[command(flatten)]
        remote: Remote,
    },
}

/// Flags of `tenantd token create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The tenant the token is for (it must exist in the data directory).
    #[arg(long, value_name = "ID")]
    pub tenant: String,
    /// Allow reading only: every write fails inside SQLite.
    #[arg(long)]
    pub read_only: bool,
    /// Expire after this long, e.g. 1h, 30d [default: never].
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,
    /// Data directory holding the tenants and the key pair [default: ./data].
    #[arg(long, env = "TENANTD_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Key file instead of DATA/token.key (as `tenantd serve --token-key`).
    #[arg(long, env = "TENANTD_TOKEN_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Create the key pair if it does not exist yet (the server must then use the same file).
    #[arg(long)]
    pub init: bool,
}

/// Runs a `tenantd token` command.
pub fn run(cmd: TokenCmd) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Create(args) => {
            let token = create(&args)?;
            println!("{token}");
            Ok(())
        }
        TokenCmd::Revoke { tenant, remote } => {
            let tenant = parse_tenant(&tenant)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(crate::cli_admin::revoke_tokens(&remote, &tenant))?;
            println!("revoked every token of {tenant}");
            Ok(())
        }
    }
}

fn parse_tenant(raw: &str) -> anyhow::Result<TenantId> {
    TenantId::parse(raw).with_context(|| format!("invalid tenant id {raw:?}"))
}

/// The token `args` ask for. Errors: a bad tenant id or duration; no data directory, no key
/// (without `--init`) or no such tenant; an unusable key or tenant file.
pub fn create(args: &CreateArgs) -> anyhow::Result<String> {
    let tenant = parse_tenant(&args.tenant)?;
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
    if !data.join(layout::TENANTS_DIR).is_dir() {
        bail!(
            "{} is not a tenantd data directory (no {}/): pass --data DIR or set TENANTD_DATA",
            data.display(),
            layout::TENANTS_DIR
        );
    }
    let key = key_path(&data, args.key.as_deref());
    if !args.init && !key.exists() {
        bail!(
            "no token key at {}: `tenantd serve` creates it at first start; pass --key FILE for \
             the server's key, or --init to create a new key pair here (the server must use it)",
            key.display()
        );
    }
    let keys = load_keys(&key)?;
    let path = layout::tenant_path(&data, &tenant);
    let epoch = match token_epoch::ensure_in_file(&path, &PoolConfig::new(&data)) {
        Ok(epoch) => epoch,
        Err(StoreError::NotFound) => bail!(
            "tenant {tenant} does not exist in {}: create it first (`tenantd tenant create {tenant}`)",
            data.display()
        ),
        Err(e) if e.is_locked() => {
            bail!(
                "tenant file {} is locked: a server with locking = \"exclusive\" has tenant \
                 {tenant} open; retry once it has been idle for the server's idle_ttl",
                path.display()
            )
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read tenant file {}", path.display()))
        }
    };
    let access = if args.read_only {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    };
    Ok(keys.issue(tenant.as_str(), &epoch, access, ttl))
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
            init: false,
        }
    }

    /// A data dir with tenant `acme` (created as the server creates tenants).
    fn data_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let path = layout::tenant_path(dir.path(), &TenantId::parse("acme").unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        store::connection::create_new(&path, store::events::init_schema).unwrap();
        dir
    }

    fn epoch_of(dir: &Path) -> String {
        let path = layout::tenant_path(dir, &TenantId::parse("acme").unwrap());
        token_epoch::ensure_in_file(&path, &PoolConfig::new(dir)).unwrap()
    }

    #[test]
    fn tokens_carry_the_tenant_epoch_and_verify_with_the_key() {
        let dir = data_dir();
        let rw = create(&CreateArgs {
            init: true,
            ..args(dir.path(), "acme")
        })
        .unwrap();
        let key = dir.path().join(TOKEN_KEY_FILE);
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let keys = load_keys(&key).unwrap();
        let claims = keys.authorize(&rw, "acme", SystemTime::now()).unwrap();
        assert_eq!((claims.access, claims.exp), (Access::ReadWrite, None));
        assert_eq!(claims.epoch.as_deref(), Some(epoch_of(dir.path()).as_str()));

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
        let dir = data_dir();
        assert!(create(&args(dir.path(), "Bad/Id")).is_err());
        let zero = CreateArgs {
            ttl: Some("0".into()),
            init: true,
            ..args(dir.path(), "acme")
        };
        assert!(format!("{:#}", create(&zero).unwrap_err()).contains("ttl"));
        let missing = CreateArgs {
            init: true,
            ..args(dir.path(), "globex")
        };
        let err = format!("{:#}", create(&missing).unwrap_err());
        assert!(err.contains("globex does not exist"), "{err}");
    }

    #[test]
    fn a_tenant_held_open_by_an_exclusive_server_is_reported_as_locked() {
        let dir = data_dir();
        let path = layout::tenant_path(dir.path(), &TenantId::parse("acme").unwrap());
        let mut cfg = PoolConfig::new(dir.path());
        cfg.locking = store::Locking::Exclusive;
        let server =
            store::connection::open_existing(&path, store::connection::Access::Write, &cfg, None)
                .unwrap();
        let err = format!(
            "{:#}",
            create(&CreateArgs {
                init: true,
                ..args(dir.path(), "acme")
            })
            .unwrap_err()
        );
        assert!(err.contains("locked") && err.contains("idle_ttl"), "{err}");
        store::connection::close_clean(server);
    }

    #[test]
    fn regression_token_create_outside_a_data_dir_makes_a_new_key_pair() {
        let empty = tempfile::tempdir().unwrap();
        let err = format!("{:#}", create(&args(empty.path(), "acme")).unwrap_err());
        assert!(err.contains("not a tenantd data directory"), "{err}");
        let dir = data_dir();
        let err = format!("{:#}", create(&args(dir.path(), "acme")).unwrap_err());
        assert!(
            err.contains("no token key") && err.contains("--init"),
            "{err}"
        );
        let leftovers: Vec<_> = std::fs::read_dir(empty.path()).unwrap().collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        assert!(!dir.path().join(TOKEN_KEY_FILE).exists(), "no key made");
    }
}
