//! The operator's side of changing a cluster: pushing a new table (the switch) and moving one
//! tenant's data between nodes (the transfer). `cluster_cmd.rs` (push, move) and
//! `cluster_slots.rs` (move-slot, rebalance) drive these. The node endpoints are in
//! `server/src/routes/moves.rs`; the protocol in docs/ARCHITECTURE.md "Moving a tenant".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use cluster::file::{ClusterFile, Node};
use cluster::haproxy::{map_paths, render_slots_map, render_tenants_map};
use cluster::runtime::{add_map_cmd, del_map_cmd, set_map_cmd, write_atomic, Runtime};
use cluster::slot::SLOTS;
use cluster::table::{SlotTable, TableFile};
use server::routes::moves::{BYTES_HEADER, NEXT_EVENT_HEADER, SHA256_HEADER};
use store::TenantId;

/// Default life of a mover's fence; renewed every third of it while the mover works.
pub const DEFAULT_FENCE_TTL: Duration = Duration::from_secs(30);

/// What the operator's commands share: the cluster file, its table, HTTP clients, the token.
pub struct Ctx {
    /// The cluster file.
    pub c: ClusterFile,
    /// Where the table lives.
    pub table_path: PathBuf,
    /// Quick admin calls (3 s).
    http: reqwest::Client,
    /// Snapshot and import streams (no total timeout; connect and idle bounded).
    bulk: reqwest::Client,
    token: Option<String>,
    /// Fence life asked of sources.
    pub fence_ttl: Duration,
}

/// A tenant's data, moved (or found moved by an earlier run).
#[derive(Debug, Clone, Copy, Default)]
pub struct Transfer {
    /// Bytes of its database.
    pub bytes: u64,
    /// From fence to commit: how long its writes waited.
    pub fenced_for: Duration,
    /// The source had already committed (a rerun).
    pub already: bool,
}

/// A node's own account of itself (`tenantd cluster status`).
#[derive(Debug, Clone, Copy)]
pub struct NodeStatus {
    /// The epoch of the table it holds, if any.
    pub epoch: Option<u64>,
    /// Tenants in its catalog.
    pub tenants: u64,
    /// Their bytes on disk.
    pub bytes: u64,
}

/// Reads the table at `path`. Errors: unreadable or not a table.
pub fn load_table(path: &Path) -> anyhow::Result<SlotTable> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the slot table {} (run `tenantd cluster init` first)",
            path.display()
        )
    })?;
    let tf: TableFile =
        serde_json::from_str(&text).with_context(|| format!("slot table {}", path.display()))?;
    SlotTable::from_file(&tf).with_context(|| format!("slot table {}", path.display()))
}

impl Ctx {
    /// Loads the cluster file at `file`. Errors: the file.
    pub fn load(file: &Path, token: Option<String>) -> anyhow::Result<Ctx> {
        let c = ClusterFile::load(file)?;
        let table_path = c.table_path(file);
        Ok(Ctx {
            c,
            table_path,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()?,
            bulk: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(3))
                .read_timeout(Duration::from_secs(60))
                .build()?,
            token,
            fence_ttl: DEFAULT_FENCE_TTL,
        })
    }

    /// The table as the operator's file has it.
    pub fn table(&self) -> anyhow::Result<SlotTable> {
        load_table(&self.table_path)
    }

    /// The node named `name` in the cluster file.
    pub fn node(&self, name: &str) -> anyhow::Result<&Node> {
        self.c
            .nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| anyhow!("node {name} is not in the cluster file"))
    }

    fn call(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        url: String,
    ) -> reqwest::RequestBuilder {
        let req = client.request(method, url);
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    fn admin(&self, method: reqwest::Method, node: &Node, path: &str) -> reqwest::RequestBuilder {
        self.call(&self.http, method, format!("{}{path}", node.admin_url()))
    }

    /// Sends `table` to one node. Errors: refused (quoted) or not answering.
    pub async fn push_node(&self, node: &Node, table: &TableFile) -> anyhow::Result<()> {
        let r = self
            .admin(reqwest::Method::PUT, node, "/admin/cluster")
            .json(table)
            .send()
            .await
            .with_context(|| format!("{} not answering", node.name))?;
        let status = r.status();
        if status.is_success() {
            Ok(())
        } else {
            bail!(
                "{} refused the table ({status}): {}",
                node.name,
                r.text().await.unwrap_or_default()
            )
        }
    }

    /// Makes `next` the cluster's table: written to the table file, sent to the `first` nodes
    /// (each must take it: else an error, and nothing else was told), then to HAProxy (live
    /// maps through the runtime API, then the map files), then to every other node. Returns
    /// the nodes that did not take it (rerun `tenantd cluster push`). Errors: a `first` node,
    /// or HAProxy.
    pub async fn switch(&self, next: &SlotTable, first: &[&str]) -> anyhow::Result<Vec<String>> {
        let tf = next.to_file();
        write_atomic(
            &self.table_path,
            serde_json::to_string_pretty(&tf)?.as_bytes(),
        )
        .with_context(|| format!("cannot write {}", self.table_path.display()))?;
        for name in first {
            self.push_node(self.node(name)?, &tf).await?;
        }
        self.sync_haproxy(next).await?;
        let mut missed = Vec::new();
        for n in self
            .c
            .nodes
            .iter()
            .filter(|n| !first.contains(&n.name.as_str()))
        {
            if let Err(e) = self.push_node(n, &tf).await {
                eprintln!("warning: {e:#}");
                missed.push(n.name.clone());
            }
        }
        Ok(missed)
    }

    /// Brings HAProxy's live maps to `t` and rewrites the map files.
    pub async fn sync_haproxy(&self, t: &SlotTable) -> anyhow::Result<(usize, usize)> {
        let runtime = Runtime::new(&self.c.haproxy.runtime_api);
        let (slots, tenants) = map_paths(&self.c);
        let t = t.clone();
        tokio::task::spawn_blocking(move || sync_maps(&runtime, &slots, &tenants, &t)).await?
    }

    /// Moves `tenant`'s data from `from` to `to` (both in the cluster file): fence on the
    /// source (renewed while this runs), snapshot streamed into the target's import, commit on
    /// the source. Any failure undoes what was done (the source serves the tenant again, the
    /// target drops its copy). Does not switch the route: the caller does, and calls
    /// [`Ctx::undo`] if that fails. Errors: any step, with the node's answer quoted.
    pub async fn transfer(
        &self,
        tenant: &TenantId,
        from: &str,
        to: &str,
    ) -> anyhow::Result<Transfer> {
        let (src, dst) = (self.node(from)?, self.node(to)?);
        let path = format!("/admin/tenants/{tenant}/move");
        let started = Instant::now();
        let r = self
            .admin(reqwest::Method::POST, src, &path)
            .json(&serde_json::json!({"to": to, "ttl_ms": self.fence_ttl.as_millis() as u64}))
            .send()
            .await
            .with_context(|| format!("{from} not answering"))?;
        let status = r.status();
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        if status == reqwest::StatusCode::MISDIRECTED_REQUEST
            && body["error"]["owner"].as_str() == Some(to)
        {
            // Committed by an earlier run that stopped before the switch.
            return Ok(Transfer {
                already: true,
                ..Transfer::default()
            });
        }
        if !status.is_success() {
            bail!("{from} refused to fence {tenant} ({status}): {body}");
        }
        let fence = body["fence"]
            .as_str()
            .ok_or_else(|| anyhow!("{from} answered without a fence: {body}"))?
            .to_string();
        let renewer = self.renew(src, tenant, to, &fence);
        let moved = self.copy_and_commit(tenant, src, dst, &fence).await;
        renewer.abort();
        match moved {
            Ok(bytes) => Ok(Transfer {
                bytes,
                fenced_for: started.elapsed(),
                already: false,
            }),
            Err(e) => {
                if let Err(u) = self.undo(tenant, from, to, &fence).await {
                    eprintln!("warning: undoing the move of {tenant}: {u:#}");
                }
                Err(e)
            }
        }
    }

    /// Renews the fence every third of its life until aborted.
    fn renew(
        &self,
        src: &Node,
        tenant: &TenantId,
        to: &str,
        fence: &str,
    ) -> tokio::task::JoinHandle<()> {
        let req = self
            .admin(reqwest::Method::POST, src, &format!("/admin/tenants/{tenant}/move"))
            .json(&serde_json::json!({"to": to, "ttl_ms": self.fence_ttl.as_millis() as u64, "fence": fence}));
        let every = self.fence_ttl / 3;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Some(r) = req.try_clone() {
                    let _ = r.send().await;
                }
            }
        })
    }

    async fn copy_and_commit(
        &self,
        tenant: &TenantId,
        src: &Node,
        dst: &Node,
        fence: &str,
    ) -> anyhow::Result<u64> {
        let base = format!("{}/admin/tenants/{tenant}/move/{fence}", src.admin_url());
        let snap = self
            .call(&self.bulk, reqwest::Method::GET, format!("{base}/snapshot"))
            .send()
            .await
            .with_context(|| format!("{}: snapshot", src.name))?;
        if !snap.status().is_success() {
            let status = snap.status();
            bail!(
                "{} refused the snapshot of {tenant} ({status}): {}",
                src.name,
                snap.text().await.unwrap_or_default()
            );
        }
        let header = |name: &str| -> anyhow::Result<String> {
            Ok(snap
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| anyhow!("{}: snapshot without {name}", src.name))?
                .to_string())
        };
        let (sha, bytes, next) = (
            header(SHA256_HEADER)?,
            header(BYTES_HEADER)?,
            header(NEXT_EVENT_HEADER)?,
        );
        let imported = self
            .call(
                &self.bulk,
                reqwest::Method::PUT,
                format!("{}/admin/tenants/{tenant}/import", dst.admin_url()),
            )
            .header(SHA256_HEADER, &sha)
            .header(BYTES_HEADER, &bytes)
            .header(NEXT_EVENT_HEADER, &next)
            .body(reqwest::Body::wrap_stream(snap.bytes_stream()))
            .send()
            .await
            .with_context(|| format!("{}: import", dst.name))?;
        if !imported.status().is_success() {
            let status = imported.status();
            bail!(
                "{} refused the import of {tenant} ({status}): {}",
                dst.name,
                imported.text().await.unwrap_or_default()
            );
        }
        let committed = self
            .call(&self.http, reqwest::Method::POST, format!("{base}/commit"))
            .send()
            .await
            .with_context(|| format!("{}: commit", src.name))?;
        if !committed.status().is_success() {
            let status = committed.status();
            bail!(
                "{} refused to commit the move of {tenant} ({status}): {}",
                src.name,
                committed.text().await.unwrap_or_default()
            );
        }
        Ok(bytes.parse().unwrap_or(0))
    }

    /// Undoes a move of `tenant` that did not switch: the source lifts its fence (or restores
    /// its retired file), the target drops its copy. Errors: either node (both are tried).
    pub async fn undo(
        &self,
        tenant: &TenantId,
        from: &str,
        to: &str,
        fence: &str,
    ) -> anyhow::Result<()> {
        let (src, dst) = (self.node(from)?, self.node(to)?);
        let a = self
            .admin(
                reqwest::Method::DELETE,
                src,
                &format!("/admin/tenants/{tenant}/move/{fence}"),
            )
            .send()
            .await;
        let b = self
            .admin(
                reqwest::Method::DELETE,
                dst,
                &format!("/admin/tenants/{tenant}/import"),
            )
            .send()
            .await;
        let ok = |r: Result<reqwest::Response, reqwest::Error>, what: &str| -> anyhow::Result<()> {
            let r = r.with_context(|| format!("{what}: not answering"))?;
            // 404: the target never received it.
            if r.status().is_success() || r.status() == reqwest::StatusCode::NOT_FOUND {
                Ok(())
            } else {
                bail!("{what}: {}", r.status())
            }
        };
        ok(a, from).and(ok(b, to))
    }

    /// What `node` says of itself: its table's epoch, and the tenants and bytes it holds.
    /// Errors: not answering (the message says so), refused.
    pub async fn node_status(&self, node: &Node) -> anyhow::Result<NodeStatus> {
        let r = self
            .admin(reqwest::Method::GET, node, "/admin/cluster")
            .send()
            .await
            .with_context(|| format!("{} not answering", node.name))?;
        if !r.status().is_success() {
            bail!("answered {}", r.status());
        }
        let v: serde_json::Value = r.json().await?;
        let slots = self.slots(node, false).await?;
        let (mut tenants, mut bytes) = (0, 0);
        for s in slots["slots"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, s)| s)
        {
            tenants += s["tenants"].as_u64().unwrap_or(0);
            bytes += s["bytes"].as_u64().unwrap_or(0);
        }
        Ok(NodeStatus {
            epoch: v["table"]["epoch"].as_u64(),
            tenants,
            bytes,
        })
    }

    /// Per slot, the tenants and the bytes on disk in it, summed over every node of the file.
    /// Errors: a node not answering (named).
    pub async fn slot_costs(&self) -> anyhow::Result<(Vec<u64>, Vec<u64>)> {
        let n = usize::from(cluster::slot::SLOTS);
        let (mut tenants, mut bytes) = (vec![0u64; n], vec![0u64; n]);
        for node in &self.c.nodes {
            let v = self.slots(node, false).await?;
            for (slot, s) in v["slots"].as_object().into_iter().flatten() {
                let Ok(i) = slot.parse::<usize>() else {
                    continue;
                };
                if i < n {
                    tenants[i] += s["tenants"].as_u64().unwrap_or(0);
                    bytes[i] += s["bytes"].as_u64().unwrap_or(0);
                }
            }
        }
        Ok((tenants, bytes))
    }

    /// Per slot, the tenants `node` holds (its `GET /admin/slots?ids=true`, from its catalog).
    pub async fn slot_ids(&self, node: &Node) -> anyhow::Result<BTreeMap<u16, Vec<TenantId>>> {
        let v = self.slots(node, true).await?;
        let mut out = BTreeMap::new();
        for (slot, s) in v["slots"].as_object().into_iter().flatten() {
            let slot: u16 = slot.parse().context("slot number")?;
            let ids = s["ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().and_then(|s| TenantId::parse(s).ok()))
                .collect();
            out.insert(slot, ids);
        }
        Ok(out)
    }

    async fn slots(&self, node: &Node, ids: bool) -> anyhow::Result<serde_json::Value> {
        let r = self
            .call(
                &self.bulk,
                reqwest::Method::GET,
                format!("{}/admin/slots?ids={ids}", node.admin_url()),
            )
            .send()
            .await
            .with_context(|| format!("{} not answering", node.name))?;
        if !r.status().is_success() {
            bail!("{}: slot listing: {}", node.name, r.status());
        }
        Ok(r.json().await?)
    }
}

/// Brings HAProxy's live maps to the table (`show map`, then `set`/`add`/`del map` only for
/// entries that differ, batched several per connection), then rewrites the map files so a
/// reload agrees. Returns (slots, overrides) changed.
pub fn sync_maps(
    rt: &Runtime,
    slots: &Path,
    tenants: &Path,
    t: &SlotTable,
) -> anyhow::Result<(usize, usize)> {
    let live: BTreeMap<String, String> = rt.show_map(slots)?.into_iter().collect();
    let mut cmds = Vec::new();
    for s in 0..SLOTS {
        let (key, owner) = (s.to_string(), t.slot_owner(s));
        match live.get(&key) {
            Some(v) if v == owner => {}
            Some(_) => cmds.push(set_map_cmd(slots, &key, owner)),
            None => cmds.push(add_map_cmd(slots, &key, owner)),
        }
    }
    let changed = cmds.len();
    let live: BTreeMap<String, String> = rt.show_map(tenants)?.into_iter().collect();
    let want = t.to_file().overrides;
    for (tenant, node) in &want {
        match live.get(tenant) {
            Some(v) if v == node => {}
            Some(_) => cmds.push(set_map_cmd(tenants, tenant, node)),
            None => cmds.push(add_map_cmd(tenants, tenant, node)),
        }
    }
    for tenant in live.keys().filter(|k| !want.contains_key(*k)) {
        cmds.push(del_map_cmd(tenants, tenant));
    }
    let pinned = cmds.len() - changed;
    rt.batch(&cmds)?;
    write_atomic(slots, render_slots_map(t).as_bytes())
        .with_context(|| format!("cannot write {}", slots.display()))?;
    write_atomic(tenants, render_tenants_map(t).as_bytes())
        .with_context(|| format!("cannot write {}", tenants.display()))?;
    Ok((changed, pinned))
}
