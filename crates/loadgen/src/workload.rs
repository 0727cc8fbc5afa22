//! Workloads: what one request is. Each writes the same request as the wrk scripts in
//! `bench/wrk/` (`ingest.lua`: the webhook; `hrana.lua`: the SQL read and write), into a
//! reused buffer, so a connection builds its next request without allocating.

use std::io::Write;

use rand::Rng;

/// Default weights of `mixed`: webhooks, SQL reads, SQL writes.
pub const DEFAULT_MIX: (u32, u32, u32) = (2, 6, 2);
/// Keys per tenant of the SQL workloads (bench/sql/0001_kv.sql seeds 1..=100).
pub const KV_KEYS: u64 = 100;
/// The SQL write (`hrana.lua`'s): an upsert that always changes the row.
pub const WRITE_SQL: &str =
    "INSERT INTO kv(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v, n = n + 1";
/// The SQL read: a point read by primary key.
pub const READ_SQL: &str = "SELECT v FROM kv WHERE k = ?";
/// The SQL ping: opens the tenant and reads nothing (no schema needed).
pub const PING_SQL: &str = "SELECT 1";

/// What the load sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// POST a ~300-byte JSON webhook (unique id per request).
    Webhook,
    /// A Hrana pipeline with one point read.
    SqlRead,
    /// A Hrana pipeline with one 100-byte upsert that changes stored bytes.
    SqlWrite,
    /// A Hrana pipeline with `SELECT 1`: the cost of reaching (and opening) a tenant, on
    /// any tenant file, with no schema of ours.
    SqlPing,
    /// Each request one of the three, drawn with these weights.
    Mixed {
        /// Weight of webhooks.
        webhook: u32,
        /// Weight of SQL reads.
        read: u32,
        /// Weight of SQL writes.
        write: u32,
    },
    /// GET one fixed path (e.g. `/healthz`): the load generator's own overhead.
    Get,
}

/// One kind of request (a mixed workload draws one per request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// A webhook POST.
    Webhook,
    /// A SQL point read.
    SqlRead,
    /// A SQL write.
    SqlWrite,
    /// A SQL `SELECT 1`.
    SqlPing,
    /// A plain GET.
    Get,
}

impl Op {
    /// Its name in reports (`latency_by_op` keys).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Webhook => "webhook",
            Op::SqlRead => "sql-read",
            Op::SqlWrite => "sql-write",
            Op::SqlPing => "sql-ping",
            Op::Get => "get",
        }
    }

    /// Whether the answer is a Hrana pipeline whose results may hold an in-band error.
    pub fn is_sql(self) -> bool {
        matches!(self, Op::SqlRead | Op::SqlWrite | Op::SqlPing)
    }
}

/// Why a workload name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    /// Not one of the names.
    #[error("unknown workload {0:?}: use webhook, sql-read, sql-write, sql-ping, get, mixed or mixed:W:R:X (weights of webhooks, reads, writes)")]
    Unknown(String),
    /// `mixed:` weights that are not three numbers, or all zero.
    #[error("bad mixed weights {0:?}: give three integers webhook:read:write, not all 0")]
    BadMix(String),
}

impl Workload {
    /// Whether any request needs a bearer token (the SQL ones).
    pub fn needs_token(&self) -> bool {
        match *self {
            Workload::SqlRead | Workload::SqlWrite | Workload::SqlPing => true,
            Workload::Mixed { read, write, .. } => read + write > 0,
            Workload::Webhook | Workload::Get => false,
        }
    }

    /// Whether any request reads or writes the benchmark's `kv` table
    /// (`bench/sql/0001_kv.sql`), which the tenants must have.
    pub fn needs_sql_schema(&self) -> bool {
        match *self {
            Workload::SqlRead | Workload::SqlWrite => true,
            Workload::Mixed { read, write, .. } => read + write > 0,
            Workload::Webhook | Workload::Get | Workload::SqlPing => false,
        }
    }

    /// Whether any request goes to a tenant (all but `get`).
    pub fn uses_tenants(&self) -> bool {
        !matches!(self, Workload::Get)
    }

    /// The kind of the next request (draws from `rng` only for `mixed`).
    pub fn next_op(&self, rng: &mut impl Rng) -> Op {
        match *self {
            Workload::Webhook => Op::Webhook,
            Workload::SqlRead => Op::SqlRead,
            Workload::SqlWrite => Op::SqlWrite,
            Workload::SqlPing => Op::SqlPing,
            Workload::Get => Op::Get,
            Workload::Mixed {
                webhook,
                read,
                write,
            } => {
                let x = rng.gen_range(0..webhook + read + write);
                if x < webhook {
                    Op::Webhook
                } else if x < webhook + read {
                    Op::SqlRead
                } else {
                    Op::SqlWrite
                }
            }
        }
    }
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Workload::Webhook => f.write_str("webhook"),
            Workload::SqlRead => f.write_str("sql-read"),
            Workload::SqlWrite => f.write_str("sql-write"),
            Workload::SqlPing => f.write_str("sql-ping"),
            Workload::Get => f.write_str("get"),
            Workload::Mixed {
                webhook,
                read,
                write,
            } if (webhook, read, write) == DEFAULT_MIX => f.write_str("mixed"),
            Workload::Mixed {
                webhook,
                read,
                write,
            } => write!(f, "mixed:{webhook}:{read}:{write}"),
        }
    }
}

/// Serialised by name (`"sql-write"`, `"mixed:1:2:3"`), as `--workload` takes it.
impl serde::Serialize for Workload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::str::FromStr for Workload {
    type Err = WorkloadError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "webhook" => Workload::Webhook,
            "sql-read" => Workload::SqlRead,
            "sql-write" => Workload::SqlWrite,
            "sql-ping" => Workload::SqlPing,
            "get" => Workload::Get,
            "mixed" => {
                let (webhook, read, write) = DEFAULT_MIX;
                Workload::Mixed {
                    webhook,
                    read,
                    write,
                }
            }
            _ => {
                let Some(weights) = s.strip_prefix("mixed:") else {
                    return Err(WorkloadError::Unknown(s.into()));
                };
                let w: Vec<u32> = weights
                    .split(':')
                    .map(|p| p.parse())
                    .collect::<Result<_, _>>()
                    .map_err(|_| WorkloadError::BadMix(s.into()))?;
                match w[..] {
                    [webhook, read, write]
                        if webhook.saturating_add(read).saturating_add(write) > 0
                            && webhook
                                .checked_add(read)
                                .and_then(|x| x.checked_add(write))
                                .is_some() =>
                    {
                        Workload::Mixed {
                            webhook,
                            read,
                            write,
                        }
                    }
                    _ => return Err(WorkloadError::BadMix(s.into())),
                }
            }
        })
    }
}

/// Writes the JSON body of one request of kind `op` for `tenant` into `body` (cleared first);
/// `conn` and `seq` make webhook ids and written values unique in the run. `Get` has none.
pub fn write_body(
    op: Op,
    tenant: &str,
    conn: u64,
    seq: u64,
    rng: &mut impl Rng,
    body: &mut Vec<u8>,
) {
    body.clear();
    // Writing into a Vec cannot fail.
    let _ = match op {
        Op::Get => Ok(()),
        Op::Webhook => write!(
            body,
            "{{\"event\":\"order.created\",\"id\":\"evt_{conn}_{seq:010}\",\"tenant\":\"{tenant}\",\"ts\":{ts},\
\"data\":{{\"order_id\":{order},\"amount_cents\":{amount},\"currency\":\"EUR\",\"customer\":\"cus_{cus:08}\",\
\"items\":[{{\"sku\":\"SKU-{sku:05}\",\"qty\":{qty}}}],\"note\":\"{pad}\"}}}}",
            ts = unix_seconds(),
            order = rng.gen_range(1..=1_000_000_000u64),
            amount = rng.gen_range(1..=100_000u32),
            cus = rng.gen_range(1..=10_000_000u32),
            sku = rng.gen_range(1..=99_999u32),
            qty = rng.gen_range(1..=9u32),
            pad = PAD,
        ),
        Op::SqlRead => write!(
            body,
            "{{\"baton\":null,\"requests\":[{{\"type\":\"execute\",\"stmt\":{{\"sql\":\"{READ_SQL}\",\
\"args\":[{{\"type\":\"integer\",\"value\":\"{key}\"}}]}}}},{{\"type\":\"close\"}}]}}",
            key = rng.gen_range(1..=KV_KEYS),
        ),
        Op::SqlPing => write!(
            body,
            "{{\"baton\":null,\"requests\":[{{\"type\":\"execute\",\"stmt\":{{\"sql\":\"{PING_SQL}\"}}}},\
{{\"type\":\"close\"}}]}}"
        ),
        Op::SqlWrite => {
            let head_len = write_value_head_len(conn, seq);
            write!(
                body,
                "{{\"baton\":null,\"requests\":[{{\"type\":\"execute\",\"stmt\":{{\"sql\":\"{WRITE_SQL}\",\
\"args\":[{{\"type\":\"integer\",\"value\":\"{key}\"}},{{\"type\":\"text\",\"value\":\"w{conn}-{seq}-{pad}\"}}]}}}},\
{{\"type\":\"close\"}}]}}",
                key = rng.gen_range(1..=KV_KEYS),
                pad = &VALUE_PAD[..100usize.saturating_sub(head_len)],
            )
        }
    };
}

/// 70 bytes of padding, as `ingest.lua`'s note.
const PAD: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
/// Padding of a written value up to 100 bytes.
const VALUE_PAD: &str = "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv";

/// Length of "w<conn>-<seq>-", the unique head of a written value.
fn write_value_head_len(conn: u64, seq: u64) -> usize {
    fn digits(mut n: u64) -> usize {
        let mut d = 1;
        while n >= 10 {
            n /= 10;
            d += 1;
        }
        d
    }
    3 + digits(conn) + digits(seq)
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    fn body(op: Op, conn: u64, seq: u64) -> serde_json::Value {
        let mut rng = StdRng::seed_from_u64(1);
        let mut b = Vec::new();
        write_body(op, "tenant00042", conn, seq, &mut rng, &mut b);
        serde_json::from_slice(&b)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&b)))
    }

    #[test]
    fn names_round_trip() {
        for s in [
            "webhook",
            "sql-read",
            "sql-write",
            "sql-ping",
            "get",
            "mixed",
            "mixed:1:0:3",
        ] {
            let w: Workload = s.parse().unwrap();
            assert_eq!(w.to_string(), s);
        }
        assert!(matches!(
            "post".parse::<Workload>(),
            Err(WorkloadError::Unknown(_))
        ));
        for bad in [
            "mixed:0:0:0",
            "mixed:1:2",
            "mixed:a:b:c",
            "mixed:4294967295:1:0",
        ] {
            assert!(
                matches!(bad.parse::<Workload>(), Err(WorkloadError::BadMix(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn ping_is_select_1_and_needs_no_schema() {
        let v = body(Op::SqlPing, 0, 0);
        assert_eq!(v["requests"][0]["stmt"]["sql"], PING_SQL);
        assert_eq!(v["requests"][1]["type"], "close");
        assert!(Workload::SqlPing.needs_token() && !Workload::SqlPing.needs_sql_schema());
        assert!(Workload::SqlRead.needs_sql_schema() && !Workload::Webhook.needs_sql_schema());
    }

    #[test]
    fn webhook_body_is_the_ingest_script_shape() {
        let v = body(Op::Webhook, 3, 17);
        assert_eq!(v["id"], "evt_3_0000000017");
        assert_eq!(v["tenant"], "tenant00042");
        assert_eq!(v["data"]["currency"], "EUR");
        let mut b = Vec::new();
        write_body(
            Op::Webhook,
            "tenant00042",
            3,
            17,
            &mut StdRng::seed_from_u64(1),
            &mut b,
        );
        assert!((250..400).contains(&b.len()), "{}", b.len());
    }

    #[test]
    fn sql_bodies_are_hrana_pipelines_and_writes_are_unique_100_bytes() {
        let r = body(Op::SqlRead, 0, 0);
        assert_eq!(r["requests"][0]["stmt"]["sql"], READ_SQL);
        assert_eq!(r["requests"][1]["type"], "close");
        let k: u64 = r["requests"][0]["stmt"]["args"][0]["value"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=KV_KEYS).contains(&k));
        for (conn, seq) in [(0, 0), (12, 123_456_789), (999, 1)] {
            let w = body(Op::SqlWrite, conn, seq);
            assert_eq!(w["requests"][0]["stmt"]["sql"], WRITE_SQL);
            let v = w["requests"][0]["stmt"]["args"][1]["value"]
                .as_str()
                .unwrap();
            assert_eq!(v.len(), 100, "{v}");
            assert!(v.starts_with(&format!("w{conn}-{seq}-v")), "{v}");
        }
    }

    #[test]
    fn mixed_draws_each_kind_by_weight() {
        let w: Workload = "mixed:1:2:1".parse().unwrap();
        let mut rng = StdRng::seed_from_u64(5);
        let mut n = [0u32; 3];
        for _ in 0..4000 {
            match w.next_op(&mut rng) {
                Op::Webhook => n[0] += 1,
                Op::SqlRead => n[1] += 1,
                Op::SqlWrite => n[2] += 1,
                Op::Get | Op::SqlPing => unreachable!(),
            }
        }
        assert!(n.iter().all(|&c| c > 800), "{n:?}");
        assert!(n[1] > n[0] && n[1] > n[2], "{n:?}");
        assert!(w.needs_token() && !Workload::Webhook.needs_token());
    }
}
