//! `tenantd cluster …`: the operator's side of a cluster (docs/CLUSTER.md). Reads the cluster
//! file (nodes, HAProxy settings), keeps the slot table next to it, renders HAProxy's config and
//! maps, plans rebalances, and pushes the table to the nodes and to HAProxy's runtime API.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use cluster::file::{ClusterFile, Node};
use cluster::haproxy::{render_config, render_slots_map, render_tenants_map};
use cluster::plan::DEFAULT_TOLERANCE;
use cluster::runtime::write_atomic;
use cluster::table::SlotTable;
use store::TenantId;

use crate::cluster_ops::Ctx;
use crate::cluster_slots;

/// `tenantd cluster` arguments.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// The cluster file (TOML; see docs/CLUSTER.md). The slot table is kept next to it in
    /// cluster-table.json unless the file names another `table`.
    #[arg(
        long,
        env = "TENANTD_CLUSTER_FILE",
        default_value = "cluster.toml",
        global = true
    )]
    file: PathBuf,
    #[command(subcommand)]
    cmd: ClusterCmd,
}

/// `tenantd cluster` subcommands.
#[derive(Debug, clap::Subcommand)]
enum ClusterCmd {
    /// Write the slot table: the 16,384 slots split over the file's nodes by weight, epoch 1.
    /// Refuses to overwrite an existing table unless --force.
    Init {
        /// Overwrite an existing table.
        #[arg(long)]
        force: bool,
    },
    /// Add a node to the cluster file. It owns no slot until a rebalance moves some to it.
    AddNode {
        /// Node name (1-63 of a-z 0-9 _ -), as given to `tenantd serve --node-name`.
        name: String,
        /// host:port of its data plane (what HAProxy connects to).
        #[arg(long)]
        data: String,
        /// Base URL of its admin API [default: http://DATA].
        #[arg(long)]
        admin: Option<String>,
        /// Relative share of slots.
        #[arg(long, default_value_t = 1)]
        weight: u32,
    },
    /// Per node: slots owned, /healthz, the table epoch it reports at /admin/cluster, and the
    /// tenants and bytes it holds (/admin/slots). Nodes that do not answer are listed as such.
    Status {
        /// Admin token of the nodes.
        #[arg(long, env = "TENANTD_ADMIN_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Render haproxy.cfg, slots.map and tenants.map into DIR. The config reads the maps from
    /// the file's haproxy.map_dir, so put them there (the default).
    HaproxyConfig {
        /// Output directory [default: haproxy.map_dir].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Move slots so every node is within the tolerance of its weighted share of the slots
    /// (tenants and bytes follow the hash): the fewest slot moves, each slot flipped
    /// to its new owner and its tenants then moved with their data, PARALLEL at a time, with a
    /// progress bar. Slot moves in flight are journaled in cluster-moves.json next to the
    /// table: an interrupted run is finished by the next one before anything new is planned.
    Rebalance {
        /// Print the planned moves and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Allowed distance from each node's share (0.05 = 5%).
        #[arg(long, default_value_t = DEFAULT_TOLERANCE)]
        tolerance: f64,
        /// Tenants moved at once.
        #[arg(long, default_value_t = 4)]
        parallel: usize,
        #[command(flatten)]
        mover: MoverArgs,
    },
    /// Move one tenant, with its data, to NODE and pin it there: writes to it pause (fenced on
    /// its node) while its file is copied, verified and installed on NODE; then the table and
    /// HAProxy send it to NODE. Any failure before NODE takes the table undoes the move; safe
    /// to rerun.
    Move {
        /// The tenant id.
        tenant: String,
        /// The node it goes to.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        mover: MoverArgs,
    },
    /// Move slot N to NODE with every tenant in it: the slot flips first (its tenants pinned
    /// where they are, new tenants land on NODE), then its tenants move PARALLEL at a time.
    MoveSlot {
        /// The slot, 0..16384 (`crc32(tenant) mod 16384`).
        slot: u16,
        /// The node it goes to.
        #[arg(long)]
        to: String,
        /// Tenants moved at once.
        #[arg(long, default_value_t = 4)]
        parallel: usize,
        #[command(flatten)]
        mover: MoverArgs,
    },
    /// Send the table to every node (PUT /admin/cluster), `set map` every changed slot and
    /// override through HAProxy's runtime API, then rewrite the map files.
    Push {
        /// Admin token of the nodes.
        #[arg(long, env = "TENANTD_ADMIN_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
}

/// What every command that moves tenants takes.
#[derive(Debug, clap::Args)]
struct MoverArgs {
    /// Admin token of the nodes.
    #[arg(long, env = "TENANTD_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Life of a move's fence on the source unless renewed (renewed every third of it while
    /// the move runs): how long a tenant stays unwritable if this command dies mid-move.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    fence_ttl: std::time::Duration,
}

impl MoverArgs {
    fn ctx(self, file: &Path) -> anyhow::Result<Ctx> {
        let mut ctx = Ctx::load(file, self.token)?;
        if self.fence_ttl < std::time::Duration::from_millis(300) {
            bail!("--fence-ttl must be at least 300ms (it is renewed every third of it)");
        }
        ctx.fence_ttl = self.fence_ttl;
        Ok(ctx)
    }
}

/// Runs one `tenantd cluster` command. Errors: printed once by `main`.
pub fn run(args: ClusterArgs) -> anyhow::Result<()> {
    let file = args.file;
    match args.cmd {
        ClusterCmd::Init { force } => init(&file, force),
        ClusterCmd::AddNode {
            name,
            data,
            admin,
            weight,
        } => {
            let mut c = ClusterFile::load(&file)?;
            c.nodes.push(Node {
                name: name.clone(),
                data,
                admin,
                weight,
            });
            c.validate(&file)?;
            c.save(&file)?;
            println!(
                "added {name} to {}; it owns no slot until `tenantd cluster rebalance`",
                file.display()
            );
            Ok(())
        }
        ClusterCmd::Status { token } => rt()?.block_on(status(&file, token)),
        ClusterCmd::HaproxyConfig { out } => haproxy_config(&file, out),
        ClusterCmd::Rebalance {
            dry_run,
            tolerance,
            parallel,
            mover,
        } => {
            let ctx = mover.ctx(&file)?;
            rt()?.block_on(cluster_slots::rebalance(&ctx, tolerance, parallel, dry_run))
        }
        ClusterCmd::Push { token } => rt()?.block_on(push(&file, token)),
        ClusterCmd::Move { tenant, to, mover } => {
            let tenant =
                TenantId::parse(&tenant).map_err(|e| anyhow::anyhow!("tenant {tenant:?}: {e}"))?;
            let ctx = mover.ctx(&file)?;
            rt()?.block_on(cluster_slots::move_tenant(&ctx, &tenant, &to))
        }
        ClusterCmd::MoveSlot {
            slot,
            to,
            parallel,
            mover,
        } => {
            let ctx = mover.ctx(&file)?;
            rt()?.block_on(cluster_slots::move_slot(&ctx, slot, &to, parallel))
        }
    }
}

fn rt() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn load_table(c: &ClusterFile, file: &Path) -> anyhow::Result<(PathBuf, SlotTable)> {
    let path = c.table_path(file);
    let t = crate::cluster_ops::load_table(&path)?;
    Ok((path, t))
}

fn init(file: &Path, force: bool) -> anyhow::Result<()> {
    let c = ClusterFile::load(file)?;
    if c.nodes.is_empty() {
        bail!(
            "cluster file {} has no [[node]]: add one with `tenantd cluster add-node`",
            file.display()
        );
    }
    let path = c.table_path(file);
    if path.exists() && !force {
        bail!(
            "slot table {} exists: pass --force to replace it (with a higher epoch)",
            path.display()
        );
    }
    // A replaced table must outrank the old one, or every node would refuse it as stale.
    let epoch = match path.exists() {
        true => load_table(&c, file).map_or(1, |(_, old)| old.epoch() + 1),
        false => 1,
    };
    let t = SlotTable::even(&c.weights(), epoch)?;
    write_atomic(
        &path,
        serde_json::to_string_pretty(&t.to_file())?.as_bytes(),
    )
    .with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {} (epoch {epoch})", path.display());
    for (node, n) in t.slot_counts() {
        println!("{node}\t{n} slots");
    }
    Ok(())
}

fn haproxy_config(file: &Path, out: Option<PathBuf>) -> anyhow::Result<()> {
    let c = ClusterFile::load(file)?;
    let (_, t) = load_table(&c, file)?;
    let dir = out.unwrap_or_else(|| c.haproxy.map_dir.clone());
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, text) in [
        ("haproxy.cfg", render_config(&c)),
        ("slots.map", render_slots_map(&t)),
        ("tenants.map", render_tenants_map(&t)),
    ] {
        let p = dir.join(name);
        write_atomic(&p, text.as_bytes())
            .with_context(|| format!("cannot write {}", p.display()))?;
        println!("wrote {}", p.display());
    }
    Ok(())
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()?)
}

async fn status(file: &Path, token: Option<String>) -> anyhow::Result<()> {
    let ctx = Ctx::load(file, token)?;
    let t = ctx.table()?;
    let counts = t.slot_counts();
    let http = client()?;
    println!("table epoch {}", t.epoch());
    for n in &ctx.c.nodes {
        let slots = counts.get(n.name.as_str()).copied().unwrap_or(0);
        let health = match http.get(format!("http://{}/healthz", n.data)).send().await {
            Ok(r) if r.status().is_success() => "healthy".to_string(),
            Ok(r) => format!("unhealthy ({})", r.status()),
            Err(_) => "not answering".to_string(),
        };
        let held = match ctx.node_status(n).await {
            Ok(s) => match s.epoch {
                Some(e) => format!("epoch {e}\t{} tenants\t{} bytes", s.tenants, s.bytes),
                None => format!("no table\t{} tenants\t{} bytes", s.tenants, s.bytes),
            },
            Err(e) if e.to_string().contains("not answering") => "admin not answering".into(),
            Err(e) => format!("admin: {e:#}"),
        };
        println!("{}\t{slots} slots\t{health}\t{held}", n.name);
    }
    Ok(())
}

async fn push(file: &Path, token: Option<String>) -> anyhow::Result<()> {
    let ctx = Ctx::load(file, token)?;
    let t = ctx.table()?;
    let tf = t.to_file();
    let mut failed = Vec::new();
    for n in &ctx.c.nodes {
        match ctx.push_node(n, &tf).await {
            Ok(()) => println!("{}: epoch {}", n.name, tf.epoch),
            Err(e) => {
                println!("{e:#}");
                failed.push(n.name.clone());
            }
        }
    }
    let (changed, pinned) = ctx.sync_haproxy(&t).await?;
    println!("haproxy: {changed} slots and {pinned} overrides changed");
    if !failed.is_empty() {
        bail!(
            "nodes without the new table: {} (rerun push when they answer)",
            failed.join(", ")
        );
    }
    Ok(())
}
