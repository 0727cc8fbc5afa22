//! `tenantd serve`: resolve settings, open the pool, bind, serve until SIGTERM/SIGINT.

use anyhow::Context;
use server::sql::SqlState;
use server::AppState;
use store::inbox::{Inbox, StartReport};
use store::TenantPool;
use tokio::net::TcpListener;

use crate::config::{FileConfig, LogFormat, ServeArgs, Settings};

/// Resolves the settings, builds the runtime they ask for, and serves until a shutdown
/// signal; then drains and closes every tenant. (The pool runs its own maintenance loop, started
/// by `TenantPool::open` and stopped by the shutdown in `server::serve`.)
pub fn main(args: ServeArgs) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let env_token = std::env::var("TENANTD_ADMIN_TOKEN").ok();
    let settings = Settings::resolve(&args, &file, env_token)?;
    // One malloc arena per core (glibc's default is 8 per core), before any thread starts.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    store::sys::limit_malloc_arenas(cores.max(2));
    // SQLite work runs on tokio's blocking threads. Bounding them keeps a burst of requests from
    // becoming hundreds of threads fighting for the cores: a busy thread takes the next job from
    // the queue without sleeping, which is where the per-request cost goes (docs/BENCHMARKS.md).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(settings.blocking_threads)
        .build()?;
    runtime.block_on(run(settings))
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    init_logging(settings.log_format);

    let data = settings.pool.data_dir.clone();
    let (token, token_file) = crate::admin_token::resolve(settings.admin_token.clone(), &data)?;
    if let Some(path) = token_file {
        println!("admin token: {}", path.display());
    }
    let pool = TenantPool::open(settings.pool.clone())
        .with_context(|| format!("cannot open data dir {}", data.display()))?;
    let key_file = crate::token_cmd::key_path(&data, settings.token_key.as_deref());
    let keys = crate::token_cmd::load_keys(&key_file)
        .with_context(|| format!("cannot use token key {}", key_file.display()))?;
    println!("token key: {}", key_file.display());
    let inbox = Inbox::open(pool.clone(), settings.inbox.clone())
        .await
        .with_context(|| {
            format!(
                "cannot open the ingest log and catalog in {}",
                data.display()
            )
        })?;
    report_start(&inbox.start_report());
    let sql = SqlState::new(settings.sql.clone(), keys);
    let routing = match &settings.node_name {
        Some(name) => server::routing::Routing::load(name.clone(), &data)
            .context("cannot read this node's slot table")?,
        None => server::routing::Routing::single(),
    };
    if let Some(t) = routing.table() {
        tracing::info!(node = routing.node(), epoch = t.epoch, "slot table loaded");
    }
    let backup = match &settings.backup {
        Some(cfg) => {
            let b = backup::Backup::new(pool.clone(), cfg.clone())
                .context("cannot set up the backup")?;
            tracing::info!(bucket = %cfg.bucket, prefix = %cfg.prefix, interval = ?cfg.interval,
                key_id = %cfg.credentials.access_key_id, "continuous backup on");
            Some(b)
        }
        None => None,
    };
    let state = AppState::with_routing(pool, inbox, token, settings.http.clone(), sql, routing);
    if let Some(b) = backup {
        let (durable, applied) = (state.inbox.clone(), state.inbox.clone());
        b.ship_log(backup::worker::LogLink {
            dir: state.inbox.log_dir(),
            durable: std::sync::Arc::new(move || durable.durable_lsn()),
            applied: std::sync::Arc::new(move || applied.applied_upto()),
            hold: state.inbox.release_hold(),
        })
        .await
        .context("cannot set up shipping the ingest log")?;
        b.start();
        let _ = state.backup.set(b);
    }
    let streams = server::sql::spawn_expiry(&state);
    server::routes::moves::spawn_sweep(&state, settings.moved_grace);
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let cfg = state.pool.config();
    tracing::info!(%addr, data = %data.display(), durability = ?cfg.durability,
        idle_ttl = ?cfg.idle_ttl, max_open = cfg.max_open, "tenantd serving");
    println!("tenantd listening on http://{addr}");
    server::serve::serve(
        listener,
        server::app(state.clone()),
        state.clone(),
        shutdown_signal(),
    )
    .await?;
    state.sql.stop_expiry();
    streams.await.ok();
    Ok(())
}

/// Logs what the ingest start found: a replayed log, a cut tail, an unclean stop.
fn report_start(r: &StartReport) {
    if let Some(n) = r.rebuilt_tenants {
        tracing::info!(
            tenants = n,
            "catalog.db was missing: rebuilt from the tenant files"
        );
    }
    if r.unclean {
        tracing::warn!(
            generation = r.generation,
            "the previous run did not stop cleanly: event ids continue in a new range"
        );
    }
    if let Some((segment, offset, why)) = &r.dropped.cut {
        tracing::warn!(segment, offset, bytes = r.dropped.bytes, segments = r.dropped.segments,
            reason = %why, "ingest log: a torn or corrupt tail was cut off");
    }
    if r.replayed > 0 || r.orphaned > 0 {
        tracing::info!(
            replayed = r.replayed,
            orphaned = r.orphaned,
            applied = r.drained,
            "ingest log replayed"
        );
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler can be installed");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("TENANTD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into files or log collectors.
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
