//! HAProxy's configuration for a cluster: `haproxy.cfg` (runtime API, one frontend that finds
//! the tenant, one backend per node with a health check) and the two maps it reads —
//! `slots.map` (one `slot node` line per slot) and `tenants.map` (one `tenant node` line per
//! override). The tenant comes from `/t/{tenant}/`, else `x-namespace`, else the Host's first
//! label under the base domain (the node's own precedence); tenants.map is looked up first,
//! else `crc32,mod(16384),map_int(slots.map)` (crate::slot computes the same slot).

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::file::ClusterFile;
use crate::slot::SLOTS;
use crate::table::SlotTable;

/// Backend for requests that name no tenant (`/healthz`, …): every node, round robin. Its
/// leading `_` cannot start a node name, so it never clashes with one.
pub const ANY_BACKEND: &str = "_any";

/// Paths of the two map files under the cluster's `map_dir`.
pub fn map_paths(c: &ClusterFile) -> (PathBuf, PathBuf) {
    (
        c.haproxy.map_dir.join("slots.map"),
        c.haproxy.map_dir.join("tenants.map"),
    )
}

/// The `stats socket` address: `ipv4@host:port` for TCP, the path for a unix socket.
fn socket_addr(runtime_api: &str) -> String {
    if runtime_api.starts_with('/') || runtime_api.starts_with('.') {
        runtime_api.to_string()
    } else {
        format!("ipv4@{runtime_api}")
    }
}

/// The whole haproxy.cfg. Infallible: the cluster file was validated when loaded.
pub fn render_config(c: &ClusterFile) -> String {
    let (slots, tenants) = map_paths(c);
    let (slots, tenants) = (slots.display(), tenants.display());
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Rendered by `tenantd cluster haproxy-config`; edit the cluster file instead."
    );
    let _ = writeln!(
        s,
        "global\n    stats socket {} level admin\n",
        socket_addr(&c.haproxy.runtime_api)
    );
    s.push_str(
        "defaults\n    mode http\n    option http-keep-alive\n    timeout connect 5s\n    \
         timeout client 60s\n    timeout server 60s\n    timeout http-request 10s\n    \
         timeout check 2s\n\n",
    );
    let _ = writeln!(s, "frontend tenants\n    bind {}", c.haproxy.bind);
    if let Some(base) = &c.base_domain {
        let base = base.trim_matches('.').to_ascii_lowercase();
        // Lowest precedence first: each later match overwrites txn.tenant.
        let _ = writeln!(
            s,
            "    http-request set-var(txn.host) req.hdr(host),field(1,:),lower"
        );
        let _ = writeln!(
            s,
            "    http-request set-var(txn.tenant) var(txn.host),field(1,.) if {{ var(txn.host) -m end .{base} }}"
        );
    }
    s.push_str("    http-request set-var(txn.tenant) req.hdr(x-namespace) if { req.hdr(x-namespace) -m found }\n");
    s.push_str("    http-request set-var(txn.tenant) path,field(3,/) if { path_beg /t/ }\n");
    let _ = writeln!(
        s,
        "    use_backend %[var(txn.tenant),map({tenants})] if {{ var(txn.tenant),map({tenants}) -m found }}"
    );
    let _ = writeln!(
        s,
        "    use_backend %[var(txn.tenant),crc32,mod({SLOTS}),map_int({slots})] if {{ var(txn.tenant) -m found }}"
    );
    let _ = writeln!(s, "    default_backend {ANY_BACKEND}\n");
    for n in &c.nodes {
        let _ = writeln!(
            s,
            "backend {}\n    option httpchk GET /healthz\n    server {} {} check inter 2s\n",
            n.name, n.name, n.data
        );
    }
    let _ = writeln!(
        s,
        "backend {ANY_BACKEND}\n    balance roundrobin\n    option httpchk GET /healthz"
    );
    for n in &c.nodes {
        let _ = writeln!(s, "    server {} {} check inter 2s", n.name, n.data);
    }
    s
}

/// slots.map: `slot node`, one line per slot, in slot order.
pub fn render_slots_map(t: &SlotTable) -> String {
    let mut s = String::with_capacity(usize::from(SLOTS) * 12);
    for slot in 0..SLOTS {
        let _ = writeln!(s, "{slot} {}", t.slot_owner(slot));
    }
    s
}

/// tenants.map: `tenant node`, one line per override.
pub fn render_tenants_map(t: &SlotTable) -> String {
    let mut s = String::new();
    for (tenant, node) in &t.to_file().overrides {
        let _ = writeln!(s, "{tenant} {node}");
    }
    s
}
