//! `tenantd serve` configuration: flags and `TENANTD_*` environment variables (clap), an
//! optional TOML file, and the defaults, resolved into one typed [`Settings`] in one pure step.
//! Precedence: flag > environment > file > default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use server::sql::SqlConfig;
use server::HttpConfig;
use store::inbox::InboxConfig;
use store::{Durability, Locking, PoolConfig};

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default data directory.
pub const DEFAULT_DATA: &str = "./data";
/// Smallest tenant quota: a new tenant file already takes ~7 pages (28 KiB); below this no
/// write could ever succeed.
pub const MIN_QUOTA_BYTES: u64 = 64 << 10;
/// Smallest request body limit (webhooks and SQL): below this every real request gets a 413.
pub const MIN_BODY_BYTES: u64 = 1 << 10;

/// Flags of `tenantd serve`; each also reads a `TENANTD_*` variable.
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "TENANTD_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Data directory: tenant files under DIR/tenants, the node catalog DIR/catalog.db, the
    /// webhook ingest log DIR/log [default: ./data].
    #[arg(long, env = "TENANTD_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// TOML configuration file (keys as in the README's configuration table).
    #[arg(long, env = "TENANTD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Close a tenant after this idle time, e.g. 10s, 500ms; 0 closes after every request
    /// [default: 10s].
    #[arg(long, env = "TENANTD_IDLE_TTL", value_name = "DURATION")]
    pub idle_ttl: Option<String>,
    /// "fsync": a 2xx survives power loss; "crash": a 2xx survives a process crash, and a
    /// power cut loses at most the last `sync_interval` (1 s) of webhooks [default: fsync].
    #[arg(long, env = "TENANTD_DURABILITY", value_name = "MODE")]
    pub durability: Option<Durability>,
    /// "exclusive": one connection per open tenant, WAL index in memory (no -shm), reads wait
    /// for writes; "shared": a -shm and reader connections beside the writer [default: shared].
    #[arg(long, env = "TENANTD_LOCKING", value_name = "MODE")]
    pub locking: Option<Locking>,
    /// Most tenants open at once (LRU eviction past it) [default: 1024].
    #[arg(long, env = "TENANTD_MAX_OPEN", value_name = "N")]
    pub max_open: Option<usize>,
    /// Threads that run SQLite work [default: 64 in fsync mode (parallel fsyncs batch in the
    /// filesystem journal), 4 per core in crash mode (fewer context switches)].
    #[arg(long, env = "TENANTD_BLOCKING_THREADS", value_name = "N")]
    pub blocking_threads: Option<usize>,
    /// Requests in flight past which new ones get 503 [default: 1024].
    #[arg(long, env = "TENANTD_MAX_IN_FLIGHT", value_name = "N")]
    pub max_in_flight: Option<usize>,
    /// Writes queued per tenant past which new ones get 429 [default: 64].
    #[arg(long, env = "TENANTD_MAX_QUEUED_WRITES", value_name = "N")]
    pub max_queued_writes: Option<usize>,
    /// Largest request body, e.g. 1MiB [default: 1MiB].
    #[arg(long, env = "TENANTD_MAX_BODY", value_name = "BYTES")]
    pub max_body: Option<String>,
    /// Per-tenant database size quota, e.g. 1GiB [default: 1GiB].
    #[arg(long, env = "TENANTD_QUOTA", value_name = "BYTES")]
    pub quota: Option<String>,
    /// Directory of numbered SQL migrations (NNNN_name.sql) applied to a tenant that is behind
    /// when it is opened [default: none].
    #[arg(long, env = "TENANTD_MIGRATIONS", value_name = "DIR")]
    pub migrations: Option<PathBuf>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "TENANTD_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Serve tenant NAME at NAME.DOMAIN (the first label of Host), e.g. db.example.com
    /// [default: none; tenants are addressed by /t/{tenant}/ or x-namespace].
    #[arg(long, env = "TENANTD_BASE_DOMAIN", value_name = "DOMAIN")]
    pub base_domain: Option<String>,
    /// This node's name in a cluster (as in the cluster file); with it the node serves only
    /// the tenants its slot table (<data>/cluster.json) gives it, and answers 421 for others
    /// [default: none: one node, every tenant].
    #[arg(long, env = "TENANTD_NODE_NAME", value_name = "NAME")]
    pub node_name: Option<String>,
    /// How long a tenant that moved to another node keeps its old file here (in
    /// <data>/moved/), e.g. 24h, 0 to delete at the next sweep [default: 24h].
    #[arg(long, env = "TENANTD_MOVED_GRACE", value_name = "DURATION")]
    pub moved_grace: Option<String>,
    /// This node's public URL, sent to SQL clients as `base_url` so a stream stays on this
    /// node, e.g. http://node1:8080 [default: none].
    #[arg(long, env = "TENANTD_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Time the SQL of one request (all its statements) may run before it is interrupted, e.g.
    /// 5s [default: 5s].
    #[arg(long, env = "TENANTD_SQL_TIME_BUDGET", value_name = "DURATION")]
    pub sql_time_budget: Option<String>,
    /// Private key file signing and verifying tenant tokens (created 0600 if missing, public
    /// key beside it as FILE.pub) [default: DATA/token.key].
    #[arg(long, env = "TENANTD_TOKEN_KEY", value_name = "FILE")]
    pub token_key: Option<PathBuf>,
    #[command(flatten)]
    pub backup: BackupArgs,
}

/// Where continuous backups go (`serve`, `restore`, `backup`); each flag also reads a
/// `TENANTD_BACKUP_*` variable and a `backup_*` key of the config file. Credentials: the
/// credentials file if given, else `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and
/// `AWS_SESSION_TOKEN`); they are never logged.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct BackupArgs {
    /// S3 bucket for continuous backups (must exist); without it there is no backup
    /// [default: none].
    #[arg(long, env = "TENANTD_BACKUP_BUCKET", value_name = "NAME")]
    pub backup_bucket: Option<String>,
    /// Key prefix inside the bucket, e.g. node1 [default: none].
    #[arg(long, env = "TENANTD_BACKUP_PREFIX", value_name = "PREFIX")]
    pub backup_prefix: Option<String>,
    /// S3-compatible endpoint, e.g. http://127.0.0.1:9000 [default: AWS].
    #[arg(long, env = "TENANTD_BACKUP_ENDPOINT", value_name = "URL")]
    pub backup_endpoint: Option<String>,
    /// Signing region [default: us-east-1].
    #[arg(long, env = "TENANTD_BACKUP_REGION", value_name = "REGION")]
    pub backup_region: Option<String>,
    /// Time between backup rounds: changed tenants reach the bucket within about this
    /// [default: 60s].
    #[arg(long, env = "TENANTD_BACKUP_INTERVAL", value_name = "DURATION")]
    pub backup_interval: Option<String>,
    /// Time between shipments of the ingest log: acknowledged webhooks reach the bucket within
    /// about this [default: 10s].
    #[arg(long, env = "TENANTD_BACKUP_LOG_INTERVAL", value_name = "DURATION")]
    pub backup_log_interval: Option<String>,
    /// Point-in-time window kept in the bucket [default: 7d].
    #[arg(long, env = "TENANTD_BACKUP_RETENTION", value_name = "DURATION")]
    pub backup_retention: Option<String>,
    /// Credentials file in the AWS format (profile from AWS_PROFILE, else default)
    /// [default: the AWS_* environment variables].
    #[arg(long, env = "TENANTD_BACKUP_CREDENTIALS", value_name = "FILE")]
    pub backup_credentials: Option<PathBuf>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The TOML file: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    listen: Option<SocketAddr>,
    data: Option<PathBuf>,
    idle_ttl: Option<String>,
    durability: Option<Durability>,
    locking: Option<Locking>,
    max_open: Option<usize>,
    open_wait: Option<String>,
    max_in_flight: Option<usize>,
    blocking_threads: Option<usize>,
    max_queued_writes: Option<usize>,
    max_body: Option<String>,
    quota: Option<String>,
    cache_kib: Option<u32>,
    wal_checkpoint_pages: Option<u32>,
    sqlite_heap_limit: Option<String>,
    readers_per_tenant: Option<usize>,
    header_read_timeout: Option<String>,
    body_read_timeout: Option<String>,
    shutdown_delay: Option<String>,
    log_format: Option<LogFormat>,
    admin_token: Option<String>,
    migrations: Option<PathBuf>,
    base_domain: Option<String>,
    node_name: Option<String>,
    moved_grace: Option<String>,
    public_url: Option<String>,
    sql_time_budget: Option<String>,
    sql_max_result: Option<String>,
    sql_stream_idle: Option<String>,
    sql_max_body: Option<String>,
    sql_max_streams: Option<usize>,
    sql_max_streams_per_tenant: Option<usize>,
    sql_max_stored_sql: Option<String>,
    sql_max_stored_sqls: Option<usize>,
    token_key: Option<PathBuf>,
    backup_bucket: Option<String>,
    backup_prefix: Option<String>,
    backup_endpoint: Option<String>,
    backup_region: Option<String>,
    backup_interval: Option<String>,
    backup_log_interval: Option<String>,
    backup_retention: Option<String>,
    backup_parallel: Option<usize>,
    backup_credentials: Option<PathBuf>,
    sync_interval: Option<String>,
    apply_delay: Option<String>,
    checkpoint_interval: Option<String>,
    dedupe_window: Option<String>,
    max_pending: Option<usize>,
    max_pending_bytes: Option<String>,
    max_pending_per_tenant: Option<usize>,
}

impl FileConfig {
    /// The `data` key, if set.
    pub fn data_dir(&self) -> Option<PathBuf> {
        self.data.clone()
    }

    /// Reads and parses `path`; errors name the file and the offending key.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }
}

/// The resolved configuration of a server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address.
    pub listen: SocketAddr,
    /// Pool configuration (includes the data dir).
    pub pool: PoolConfig,
    /// HTTP limits.
    pub http: HttpConfig,
    /// Log format.
    pub log_format: LogFormat,
    /// Admin token from the environment or the file, if any.
    pub admin_token: Option<String>,
    /// SQL endpoints: addressing, guard, caps, stream expiry.
    pub sql: SqlConfig,
    /// The token key file, if configured (else `<data>/token.key`).
    pub token_key: Option<PathBuf>,
    /// Threads that run SQLite work (tokio's blocking pool size).
    pub blocking_threads: usize,
    /// The webhook ingest path: log sync, batching, backlog caps, dedupe window.
    pub inbox: InboxConfig,
    /// This node's name in a cluster, if any (validated like a tenant id).
    pub node_name: Option<String>,
    /// How long a moved tenant's old file is kept.
    pub moved_grace: Duration,
    /// Continuous backup, if a bucket is configured.
    pub backup: Option<backup::BackupConfig>,
}

impl Settings {
    /// Merges flags/env, the file and the defaults. Errors name the setting and the bad value.
    pub fn resolve(
        args: &ServeArgs,
        file: &FileConfig,
        env_token: Option<String>,
    ) -> anyhow::Result<Self> {
        let data = args
            .data
            .clone()
            .or(file.data.clone())
            .unwrap_or_else(|| DEFAULT_DATA.into());
        let mut pool = PoolConfig::new(data);
        if let Some(v) = args.idle_ttl.as_deref().or(file.idle_ttl.as_deref()) {
            pool.idle_ttl = parse_duration("idle_ttl", v)?;
        }
        if let Some(v) = args.durability.or(file.durability) {
            pool.durability = v;
        }
        if let Some(v) = args.locking.or(file.locking) {
            pool.locking = v;
        }
        if let Some(v) = args.max_open.or(file.max_open) {
            pool.max_open = positive("max_open", v)?;
        }
        if let Some(v) = file.open_wait.as_deref() {
            pool.open_wait = parse_duration("open_wait", v)?;
        }
        if let Some(v) = args.max_queued_writes.or(file.max_queued_writes) {
            pool.max_queued_writes = positive("max_queued_writes", v)?;
        }
        if let Some(v) = args.quota.as_deref().or(file.quota.as_deref()) {
            pool.quota_bytes = at_least("quota", parse_bytes("quota", v)?, MIN_QUOTA_BYTES)?;
        }
        if let Some(v) = file.cache_kib {
            pool.cache_kib = v;
        }
        if let Some(v) = file.wal_checkpoint_pages {
            pool.wal_checkpoint_pages = positive("wal_checkpoint_pages", v as usize)? as u32;
        }
        if let Some(v) = file.sqlite_heap_limit.as_deref() {
            pool.sqlite_heap_limit = parse_bytes("sqlite_heap_limit", v)?;
        }
        if let Some(v) = file.readers_per_tenant {
            pool.readers_per_tenant = v;
        }
        if let Some(dir) = args.migrations.as_ref().or(file.migrations.as_ref()) {
            let set = store::migrate::MigrationSet::load_dir(dir)
                .with_context(|| format!("migrations: cannot use {}", dir.display()))?;
            pool.migrations = Some(std::sync::Arc::new(set));
        }
        let mut http = HttpConfig::default();
        if let Some(v) = args.max_in_flight.or(file.max_in_flight) {
            http.max_in_flight = positive("max_in_flight", v)?;
        }
        if let Some(v) = args.max_body.as_deref().or(file.max_body.as_deref()) {
            let n = at_least("max_body", parse_bytes("max_body", v)?, MIN_BODY_BYTES)?;
            http.max_body_bytes = usize::try_from(n)?;
        }
        if let Some(v) = file.header_read_timeout.as_deref() {
            http.header_read_timeout = parse_duration("header_read_timeout", v)?;
            if http.header_read_timeout.is_zero() {
                bail!("header_read_timeout must be more than 0");
            }
        }
        if let Some(v) = file.body_read_timeout.as_deref() {
            http.body_read_timeout = parse_duration("body_read_timeout", v)?;
            if http.body_read_timeout.is_zero() {
                bail!("body_read_timeout must be more than 0");
            }
        }
        if let Some(v) = file.shutdown_delay.as_deref() {
            http.shutdown_delay = parse_duration("shutdown_delay", v)?;
        }
        let sql = resolve_sql(args, file)?;
        let inbox = resolve_inbox(&pool, file)?;
        let backup = resolve_backup(&args.backup, file, |k| std::env::var(k).ok())?;
        pool.track_changes = backup.is_some();
        let admin_token = env_token
            .or(file.admin_token.clone())
            .filter(|t| !t.is_empty());
        if let Some(t) = &admin_token {
            crate::admin_token::check(t, "admin_token")?;
        }
        let blocking_threads = match args.blocking_threads.or(file.blocking_threads) {
            Some(n) => positive("blocking_threads", n)?,
            None => default_blocking_threads(pool.durability),
        };
        Ok(Settings {
            blocking_threads,
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default")),
            pool,
            http,
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            admin_token,
            sql,
            token_key: args.token_key.clone().or(file.token_key.clone()),
            inbox,
            node_name: resolve_node_name(args, file)?,
            moved_grace: match args.moved_grace.as_deref().or(file.moved_grace.as_deref()) {
                Some(v) => parse_duration("moved_grace", v)?,
                None => store::handoff::DEFAULT_MOVED_GRACE,
            },
            backup,
        })
    }
}

/// The backup settings (flag > environment > file > default); `None` without a bucket. `env`
/// looks up the AWS credential variables. Errors name the setting.
pub fn resolve_backup(
    args: &BackupArgs,
    file: &FileConfig,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<backup::BackupConfig>> {
    let Some(bucket) = args.backup_bucket.clone().or(file.backup_bucket.clone()) else {
        return Ok(None);
    };
    let credentials = match args
        .backup_credentials
        .as_ref()
        .or(file.backup_credentials.as_ref())
    {
        Some(path) => {
            let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
            backup::Credentials::from_file(path, &profile)?
        }
        None => backup::Credentials::from_env(&env).ok_or_else(|| {
            anyhow::anyhow!(
                "backup_bucket is set but there are no credentials: set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY, or backup_credentials (a credentials file)"
            )
        })?,
    };
    let mut c = backup::BackupConfig::new(bucket, credentials);
    if let Some(v) = args.backup_prefix.clone().or(file.backup_prefix.clone()) {
        c.prefix = v;
    }
    c.endpoint = args
        .backup_endpoint
        .clone()
        .or(file.backup_endpoint.clone());
    if let Some(v) = args.backup_region.clone().or(file.backup_region.clone()) {
        c.region = v;
    }
    if let Some(v) = args
        .backup_interval
        .as_deref()
        .or(file.backup_interval.as_deref())
    {
        c.interval = parse_duration("backup_interval", v)?;
    }
    if let Some(v) = args
        .backup_log_interval
        .as_deref()
        .or(file.backup_log_interval.as_deref())
    {
        c.log_interval = parse_duration("backup_log_interval", v)?;
    }
    if let Some(v) = args
        .backup_retention
        .as_deref()
        .or(file.backup_retention.as_deref())
    {
        c.retention = parse_duration("backup_retention", v)?;
    }
    if let Some(v) = file.backup_parallel {
        c.parallel = positive("backup_parallel", v)?;
    }
    Ok(Some(c.validated()?))
}

/// The ingest path's settings (file only): `sync_interval`, `apply_delay`,
/// `checkpoint_interval`, `dedupe_window`, `max_pending`, `max_pending_bytes`,
/// `max_pending_per_tenant`.
fn resolve_inbox(pool: &PoolConfig, file: &FileConfig) -> anyhow::Result<InboxConfig> {
    let mut c = InboxConfig::new(pool.data_dir.clone(), pool.durability);
    if let Some(v) = file.sync_interval.as_deref() {
        c.sync_interval = parse_duration("sync_interval", v)?;
    }
    if let Some(v) = file.apply_delay.as_deref() {
        c.apply_delay = parse_duration("apply_delay", v)?;
    }
    if let Some(v) = file.checkpoint_interval.as_deref() {
        c.checkpoint_interval = parse_duration("checkpoint_interval", v)?;
        if c.checkpoint_interval.is_zero() {
            bail!("checkpoint_interval must be more than 0");
        }
    }
    if let Some(v) = file.dedupe_window.as_deref() {
        c.dedupe_window = parse_duration("dedupe_window", v)?;
    }
    if let Some(v) = file.max_pending {
        c.caps.records = positive("max_pending", v)?;
    }
    if let Some(v) = file.max_pending_bytes.as_deref() {
        c.caps.bytes = usize::try_from(parse_bytes("max_pending_bytes", v)?)?;
        // One delivery of the largest accepted body must fit.
        at_least("max_pending_bytes", c.caps.bytes as u64, MIN_BODY_BYTES)?;
    }
    if let Some(v) = file.max_pending_per_tenant {
        c.caps.tenant_records = positive("max_pending_per_tenant", v)?;
    }
    Ok(c)
}

fn resolve_node_name(args: &ServeArgs, file: &FileConfig) -> anyhow::Result<Option<String>> {
    match args.node_name.as_deref().or(file.node_name.as_deref()) {
        None => Ok(None),
        Some(v) => match store::TenantId::parse(v) {
            Ok(_) => Ok(Some(v.to_owned())),
            Err(e) => bail!("node_name: {v:?}: {e} (node names follow the tenant id rules)"),
        },
    }
}

fn resolve_sql(args: &ServeArgs, file: &FileConfig) -> anyhow::Result<SqlConfig> {
    let mut sql = SqlConfig::default();
    if let Some(v) = args.base_domain.as_deref().or(file.base_domain.as_deref()) {
        let v = v.trim().trim_matches('.').to_ascii_lowercase();
        if v.is_empty() || v.contains(['/', ':']) {
            bail!("base_domain: {v:?} is not a domain name (example: db.example.com)");
        }
        sql.base_domain = Some(v);
    }
    if let Some(v) = args.public_url.as_deref().or(file.public_url.as_deref()) {
        let v = v.trim().trim_end_matches('/');
        if !(v.starts_with("http://") || v.starts_with("https://")) {
            bail!("public_url: {v:?} must start with http:// or https://");
        }
        sql.public_url = Some(v.to_owned());
    }
    let budget = args.sql_time_budget.as_deref();
    if let Some(v) = budget.or(file.sql_time_budget.as_deref()) {
        sql.guard.time_budget = parse_duration("sql_time_budget", v)?;
        if sql.guard.time_budget.is_zero() {
            bail!("sql_time_budget must be more than 0");
        }
    }
    if let Some(v) = file.sql_max_result.as_deref() {
        sql.stream.max_result_bytes = usize::try_from(parse_bytes("sql_max_result", v)?)?;
    }
    if let Some(v) = file.sql_stream_idle.as_deref() {
        sql.stream_idle = parse_duration("sql_stream_idle", v)?;
        if sql.stream_idle.is_zero() {
            bail!("sql_stream_idle must be more than 0");
        }
    }
    if let Some(v) = file.sql_max_body.as_deref() {
        let n = at_least(
            "sql_max_body",
            parse_bytes("sql_max_body", v)?,
            MIN_BODY_BYTES,
        )?;
        sql.max_body_bytes = usize::try_from(n)?;
    }
    for (name, value, field) in [
        (
            "sql_max_streams",
            file.sql_max_streams,
            &mut sql.max_streams,
        ),
        (
            "sql_max_streams_per_tenant",
            file.sql_max_streams_per_tenant,
            &mut sql.max_streams_per_tenant,
        ),
    ] {
        if let Some(v) = value {
            if v == 0 {
                bail!("{name} must be more than 0");
            }
            *field = v;
        }
    }
    if let Some(v) = file.sql_max_stored_sql.as_deref() {
        sql.stream.max_stored_sql_bytes = usize::try_from(parse_bytes("sql_max_stored_sql", v)?)?;
    }
    if let Some(v) = file.sql_max_stored_sqls {
        sql.stream.max_stored_sqls = v;
    }
    Ok(sql)
}

/// Blocking (SQLite) threads: in `fsync` mode many, since concurrent fsyncs of different
/// tenants share journal commits; in `crash` mode a few per core, since commits do not wait for
/// the disk and extra threads only add context switches.
pub fn default_blocking_threads(durability: Durability) -> usize {
    match durability {
        Durability::Fsync => 64,
        Durability::Crash => {
            4 * std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }
    }
}

fn at_least(name: &str, v: u64, min: u64) -> anyhow::Result<u64> {
    if v < min {
        bail!("{name} must be at least {min} bytes (got {v})");
    }
    Ok(v)
}

fn positive(name: &str, v: usize) -> anyhow::Result<usize> {
    if v == 0 {
        bail!("{name} must be at least 1");
    }
    Ok(v)
}

/// Parses `10s`, `500ms`, `1m`, or `0`; the error names the setting.
pub fn parse_duration(name: &str, v: &str) -> anyhow::Result<Duration> {
    if v.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(v.trim())
        .with_context(|| format!("{name}: {v:?} is not a duration (examples: 10s, 500ms, 2m)"))
}

/// Parses a byte size: a plain number or one with a KiB/MiB/GiB/KB/MB/GB suffix.
pub fn parse_bytes(name: &str, v: &str) -> anyhow::Result<u64> {
    let s = v.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .with_context(|| format!("{name}: {v:?} is not a size (examples: 1048576, 1MiB, 1GiB)"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => bail!("{name}: unknown unit {other:?} (use KiB, MiB, GiB, KB, MB or GB)"),
    };
    n.checked_mul(mult)
        .with_context(|| format!("{name}: {v:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_config() {
        let s = Settings::resolve(&ServeArgs::default(), &FileConfig::default(), None).unwrap();
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(s.pool.data_dir, PathBuf::from(DEFAULT_DATA));
        assert_eq!(s.pool.idle_ttl, Duration::from_secs(10));
        assert_eq!(s.pool.durability, Durability::Fsync);
        assert_eq!(s.http.max_body_bytes, 1 << 20);
        assert_eq!(s.admin_token, None);
        assert_eq!(s.sql.guard.time_budget, Duration::from_secs(5));
        assert_eq!(s.sql.stream_idle, Duration::from_secs(10));
        assert_eq!((s.sql.base_domain, s.sql.public_url), (None, None));
        assert_eq!(s.token_key, None);
    }

    #[test]
    fn sql_settings_resolve_and_validate() {
        let file: FileConfig = toml::from_str(
            "base_domain = \"DB.example.com.\"\nsql_time_budget = \"2s\"\n\
             sql_max_result = \"1MiB\"\nsql_stream_idle = \"30s\"\nsql_max_body = \"2MiB\"\n\
             sql_max_streams = 100\nsql_max_streams_per_tenant = 10\n\
             sql_max_stored_sql = \"64KiB\"\nsql_max_stored_sqls = 50\n\
             token_key = \"/k/token.key\"",
        )
        .unwrap();
        let args = ServeArgs {
            sql_time_budget: Some("250ms".into()),
            public_url: Some("http://node1:8080/".into()),
            ..Default::default()
        };
        let s = Settings::resolve(&args, &file, None).unwrap();
        assert_eq!(s.sql.base_domain.as_deref(), Some("db.example.com"));
        assert_eq!(s.sql.public_url.as_deref(), Some("http://node1:8080"));
        assert_eq!(s.sql.guard.time_budget, Duration::from_millis(250));
        assert_eq!(s.sql.stream.max_result_bytes, 1 << 20);
        assert_eq!(s.sql.stream_idle, Duration::from_secs(30));
        assert_eq!(s.sql.max_body_bytes, 2 << 20);
        assert_eq!((s.sql.max_streams, s.sql.max_streams_per_tenant), (100, 10));
        assert_eq!(s.sql.stream.max_stored_sql_bytes, 64 << 10);
        assert_eq!(s.sql.stream.max_stored_sqls, 50);
        let zero: FileConfig = toml::from_str("sql_max_streams_per_tenant = 0").unwrap();
        let err = Settings::resolve(&args, &zero, None).unwrap_err();
        assert!(
            format!("{err:#}").contains("sql_max_streams_per_tenant"),
            "{err:#}"
        );
        assert_eq!(s.token_key, Some(PathBuf::from("/k/token.key")));
        for (args, name) in [
            (
                ServeArgs {
                    sql_time_budget: Some("0".into()),
                    ..Default::default()
                },
                "sql_time_budget",
            ),
            (
                ServeArgs {
                    public_url: Some("node1:8080".into()),
                    ..Default::default()
                },
                "public_url",
            ),
            (
                ServeArgs {
                    base_domain: Some("http://x".into()),
                    ..Default::default()
                },
                "base_domain",
            ),
        ] {
            let err = Settings::resolve(&args, &FileConfig::default(), None).unwrap_err();
            assert!(format!("{err:#}").contains(name), "{err:#}");
        }
    }

    #[test]
    fn flags_beat_file_beats_default() {
        let file: FileConfig = toml::from_str(
            "idle_ttl = \"30s\"\nmax_open = 7\nquota = \"2MiB\"\nadmin_token = \"file-token-0123456789\"",
        )
        .unwrap();
        let args = ServeArgs {
            idle_ttl: Some("0".into()),
            ..Default::default()
        };
        let s = Settings::resolve(&args, &file, Some("env-token-0123456789".into())).unwrap();
        assert_eq!(s.pool.idle_ttl, Duration::ZERO);
        assert_eq!(s.pool.max_open, 7);
        assert_eq!(s.pool.quota_bytes, 2 << 20);
        assert_eq!(s.admin_token.as_deref(), Some("env-token-0123456789"));
    }

    #[test]
    fn locking_resolves_from_flag_env_or_file() {
        let default = Settings::resolve(&ServeArgs::default(), &FileConfig::default(), None);
        assert_eq!(
            default.unwrap().pool.locking,
            store::config::DEFAULT_LOCKING
        );
        let file: FileConfig = toml::from_str("locking = \"exclusive\"").unwrap();
        let s = Settings::resolve(&ServeArgs::default(), &file, None).unwrap();
        assert_eq!(s.pool.locking, Locking::Exclusive);
        let args = ServeArgs {
            locking: Some(Locking::Shared),
            ..Default::default()
        };
        assert_eq!(
            Settings::resolve(&args, &file, None).unwrap().pool.locking,
            Locking::Shared
        );
        assert!(toml::from_str::<FileConfig>("locking = \"normal\"").is_err());
        let err = "normal".parse::<Locking>().unwrap_err();
        assert!(err.contains("exclusive") && err.contains("shared"), "{err}");
    }

    #[test]
    fn bad_values_name_the_setting() {
        let args = ServeArgs {
            idle_ttl: Some("soon".into()),
            ..Default::default()
        };
        let err = Settings::resolve(&args, &FileConfig::default(), None).unwrap_err();
        assert!(format!("{err:#}").contains("idle_ttl"), "{err:#}");
        let args = ServeArgs {
            max_open: Some(0),
            ..Default::default()
        };
        let err = Settings::resolve(&args, &FileConfig::default(), None).unwrap_err();
        assert!(err.to_string().contains("max_open"), "{err}");
        assert!(toml::from_str::<FileConfig>("no_such_key = 1").is_err());
        assert!(parse_bytes("quota", "1TiB").is_err());
    }

    #[test]
    fn regression_zero_quota_zero_body_and_short_admin_token_are_accepted() {
        let refused = |args: ServeArgs, file: &str, env: Option<&str>, name: &str| {
            let file: FileConfig = toml::from_str(file).unwrap();
            let err = Settings::resolve(&args, &file, env.map(str::to_owned)).unwrap_err();
            assert!(format!("{err:#}").contains(name), "{name}: {err:#}");
        };
        let quota = |q: &str| ServeArgs {
            quota: Some(q.into()),
            ..Default::default()
        };
        let body = |b: &str| ServeArgs {
            max_body: Some(b.into()),
            ..Default::default()
        };
        refused(quota("0"), "", None, "quota must be at least 65536 bytes");
        refused(quota("63KiB"), "", None, "quota");
        refused(body("0"), "", None, "max_body must be at least 1024 bytes");
        refused(
            ServeArgs::default(),
            "sql_max_body = \"0\"",
            None,
            "sql_max_body",
        );
        refused(ServeArgs::default(), "", Some("x"), "at least 16");
        refused(
            ServeArgs::default(),
            "admin_token = \"short\"",
            None,
            "admin_token",
        );
        let ok = Settings::resolve(&quota("64KiB"), &FileConfig::default(), None).unwrap();
        assert_eq!(ok.pool.quota_bytes, 64 << 10);
        let ok = Settings::resolve(&body("1KiB"), &FileConfig::default(), None).unwrap();
        assert_eq!(ok.http.max_body_bytes, 1024);
        assert_eq!(parse_bytes("quota", "3KB").unwrap(), 3000);
    }

    #[test]
    fn ingest_settings_resolve_from_the_file() {
        let s = Settings::resolve(&ServeArgs::default(), &FileConfig::default(), None).unwrap();
        assert_eq!(s.inbox.sync_interval, Duration::from_secs(1));
        assert_eq!(
            s.inbox.caps.records,
            store::inbox::DEFAULT_MAX_PENDING_RECORDS
        );
        let file: FileConfig = toml::from_str(
            "sync_interval = \"200ms\"\napply_delay = \"0s\"\ndedupe_window = \"3d\"\n\
             max_pending = 10\nmax_pending_bytes = \"2MiB\"\nmax_pending_per_tenant = 4\n\
             checkpoint_interval = \"1m\"\ndurability = \"crash\"",
        )
        .unwrap();
        let s = Settings::resolve(&ServeArgs::default(), &file, None).unwrap();
        let c = &s.inbox;
        assert_eq!(c.durability, Durability::Crash);
        assert_eq!(
            (c.sync_interval, c.apply_delay, c.checkpoint_interval),
            (
                Duration::from_millis(200),
                Duration::ZERO,
                Duration::from_secs(60)
            )
        );
        assert_eq!(c.dedupe_window, Duration::from_secs(3 * 86_400));
        assert_eq!(
            (c.caps.records, c.caps.bytes, c.caps.tenant_records),
            (10, 2 << 20, 4)
        );
        for bad in [
            "max_pending = 0",
            "max_pending_bytes = \"1\"",
            "checkpoint_interval = \"0s\"",
            "sync_interval = \"soon\"",
        ] {
            let file: FileConfig = toml::from_str(bad).unwrap();
            let err = Settings::resolve(&ServeArgs::default(), &file, None).unwrap_err();
            let key = bad.split(' ').next().unwrap();
            assert!(format!("{err:#}").contains(key), "{bad}: {err:#}");
        }
    }

    #[test]
    fn open_wait_resolves_from_the_file() {
        let s = Settings::resolve(&ServeArgs::default(), &FileConfig::default(), None).unwrap();
        assert_eq!(s.pool.open_wait, store::config::DEFAULT_OPEN_WAIT);
        let file: FileConfig = toml::from_str("open_wait = \"250ms\"").unwrap();
        let s = Settings::resolve(&ServeArgs::default(), &file, None).unwrap();
        assert_eq!(s.pool.open_wait, Duration::from_millis(250));
        let file: FileConfig = toml::from_str("open_wait = \"later\"").unwrap();
        let err = Settings::resolve(&ServeArgs::default(), &file, None).unwrap_err();
        assert!(format!("{err:#}").contains("open_wait"), "{err:#}");
    }

    #[test]
    fn body_read_timeout_and_shutdown_delay_resolve() {
        let s = Settings::resolve(&ServeArgs::default(), &FileConfig::default(), None).unwrap();
        assert_eq!(s.http.body_read_timeout, Duration::from_secs(30));
        assert_eq!(s.http.shutdown_delay, Duration::ZERO);
        let file: FileConfig =
            toml::from_str("body_read_timeout = \"5s\"\nshutdown_delay = \"15s\"").unwrap();
        let s = Settings::resolve(&ServeArgs::default(), &file, None).unwrap();
        assert_eq!(s.http.body_read_timeout, Duration::from_secs(5));
        assert_eq!(s.http.shutdown_delay, Duration::from_secs(15));
        let file: FileConfig = toml::from_str("body_read_timeout = \"0s\"").unwrap();
        let err = Settings::resolve(&ServeArgs::default(), &file, None).unwrap_err();
        assert!(err.to_string().contains("body_read_timeout"), "{err}");
    }
}
