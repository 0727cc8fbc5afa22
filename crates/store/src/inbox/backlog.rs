//! The backlog: acknowledged (or about to be) deliveries that are not yet in their tenant
//! files, in memory, per tenant, with the caps that bound it. Shared by the ingest path (which
//! adds records and marks them logged), the pool (which applies a tenant's logged records before
//! anything reads or writes that tenant) and the appliers (which move them to the catalog and
//! drop them).
//!
//! A record goes `Appending` (submitted to the log) → `Logged` (acknowledged: in the log) →
//! `Applied` (in its tenant file) → gone (its delivery id and the tenant's next event id are in
//! the catalog). A failed append removes it. Only a tenant with records has an entry, so an
//! idle tenant costs nothing here. Within a tenant, records are kept in event-id order, which
//! is also their log order (ids are given and records submitted under one lock), and only the
//! logged prefix is applied, so a reader paging with `after` never skips a record.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use ingest::{Lsn, Record};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::catalog::{CatalogUpdate, NewDelivery};
use crate::name::{SourceName, TenantId};

/// Bounds on the backlog; past one, new deliveries are refused (`503`) until it drains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Records across all tenants.
    pub records: usize,
    /// Bytes of records (bodies and fields) across all tenants.
    pub bytes: usize,
    /// Records of one tenant (so one stuck tenant cannot take the node's whole backlog).
    pub tenant_records: usize,
}

/// Where a record is on its way to its tenant file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Submitted to the log; its LSN will be above `after`.
    Appending {
        /// The log's last written LSN when the record was submitted.
        after: Lsn,
    },
    /// In the log (acknowledged) since `at`.
    Logged {
        /// Its LSN.
        lsn: Lsn,
        /// When the append finished (the apply lag is measured from it).
        at: Instant,
    },
    /// In its tenant file; waiting for the catalog.
    Applied {
        /// Its LSN.
        lsn: Lsn,
    },
}

/// What the appending request learns when a record's append ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not known yet.
    Pending,
    /// In the log.
    Logged,
    /// The append failed; the record is gone.
    Failed,
}

struct Pending {
    seq: u64,
    record: Record,
    stage: Stage,
    outcome: watch::Sender<Outcome>,
    bytes: usize,
}

/// Why a tenant's records could not be applied (the appliers retry with a growing delay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stuck {
    /// The tenant's size quota is used up: new deliveries get `507` until space is freed.
    Quota,
    /// Its migration failed: new deliveries get `503` until it is fixed.
    Migration(String),
    /// Anything else (a full disk, an I/O error): new deliveries are still taken.
    Other,
}

/// First retry delay after a failed apply; doubled per failure up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// Longest delay between retries of a failing tenant.
const MAX_RETRY: Duration = Duration::from_secs(10);

struct Failing {
    why: Stuck,
    retry_at: Instant,
    backoff: Duration,
}

#[derive(Default)]
struct TenantBacklog {
    /// The id the tenant's next delivery gets.
    next_event_id: i64,
    /// Bytes of its records.
    bytes: usize,
    /// Set while its records fail to apply.
    failing: Option<Failing>,
    /// In event-id order.
    records: VecDeque<Pending>,
    /// (source, delivery id) → event id, for every record here with a delivery id.
    deliveries: HashMap<(String, String), i64>,
}

impl TenantBacklog {
    /// Whether any record is acknowledged but not yet in the tenant file.
    fn has_logged(&self) -> bool {
        self.records
            .iter()
            .any(|p| matches!(p.stage, Stage::Logged { .. }))
    }

    /// Takes a record leaving the queue out of the delivery index and the byte count; returns
    /// its bytes.
    fn unindex(&mut self, p: &Pending) -> usize {
        if let Some(d) = &p.record.delivery_id {
            self.deliveries
                .remove(&(p.record.source.clone(), d.clone()));
        }
        self.bytes -= p.bytes;
        p.bytes
    }
}

#[derive(Default)]
struct State {
    tenants: HashMap<TenantId, TenantBacklog>,
    records: usize,
    bytes: usize,
    next_seq: u64,
}

/// The backlog; see the module docs.
pub struct Backlog {
    state: Mutex<State>,
    caps: Caps,
    /// Wakes the appliers when a record is logged.
    pub(crate) logged: tokio::sync::Notify,
}

/// What [`Backlog::reserve`] asks of the catalog and the log, under the backlog's lock.
pub trait Lookups {
    /// What the lookups fail with.
    type Error;
    /// The next event id of a tenant that has no backlog entry.
    fn first_id(&self, tenant: &TenantId) -> Result<i64, Self::Error>;
    /// The event id a delivery was stored under, if it is in the dedupe window.
    fn seen(
        &self,
        tenant: &TenantId,
        source: &str,
        delivery_id: &str,
    ) -> Result<Option<i64>, Self::Error>;
    /// Submits the tenant's record to the log (or refuses it: a tenant being moved).
    fn submit(&self, tenant: &TenantId, record: &Record) -> Result<ingest::Appending, Self::Error>;
}

/// Why [`Backlog::reserve`] refused a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// A cap is reached: retry later.
    Full,
    /// The tenant's own cap is reached: retry later.
    TenantFull,
    /// The tenant's records cannot be applied (quota, migration): see [`Stuck`].
    Stuck(Stuck),
}

/// What [`Backlog::reserve`] decided.
pub enum Reserved {
    /// A new record, submitted: wait for `outcome`, then call [`Backlog::finish`].
    New {
        /// Its event id.
        event_id: i64,
        /// Its number in the backlog.
        seq: u64,
        /// What the log's writer makes of it.
        appending: ingest::Appending,
    },
    /// A delivery seen before.
    Duplicate {
        /// The original event id.
        event_id: i64,
        /// For one still in the backlog, its outcome (`Logged`: answer duplicate; `Failed`:
        /// the original is gone, retry); `None` for one already in the catalog.
        outcome: Option<watch::Receiver<Outcome>>,
    },
}

/// Gauges of the backlog, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BacklogStats {
    /// Records not yet in the catalog.
    pub records: usize,
    /// Their bytes.
    pub bytes: usize,
    /// Tenants with records.
    pub tenants: usize,
    /// Records acknowledged but not yet in their tenant files.
    pub unapplied: usize,
    /// Age of the oldest of those, seconds (0 without any).
    pub lag_secs: f64,
}

impl Backlog {
    /// An empty backlog bounded by `caps`.
    pub fn new(caps: Caps) -> Self {
        Backlog {
            state: Mutex::new(State::default()),
            caps,
            logged: tokio::sync::Notify::new(),
        }
    }

    /// Gives `record` the tenant's next event id and submits it to the log, both under the
    /// backlog's lock (so log order is event-id order per tenant), unless its delivery id is
    /// already here or in the catalog (a duplicate). A tenant without an entry gets its next
    /// id from `with.first_id`, read under the lock, so an entry that just went to the catalog
    /// is never re-created from an older value. `after` is the log's last written LSN.
    /// Errors: `Refused` (a cap), or what `with` returns.
    pub fn reserve<L: Lookups>(
        &self,
        mut record: Record,
        tenant: &TenantId,
        after: Lsn,
        with: &L,
    ) -> Result<Result<Reserved, Refused>, L::Error> {
        let bytes = record_bytes(&record);
        let mut st = self.state.lock();
        let st = &mut *st;
        if let Some(t) = st.tenants.get(tenant) {
            if let Some(d) = &record.delivery_id {
                let key = (record.source.clone(), d.clone());
                if let Some(&event_id) = t.deliveries.get(&key) {
                    let p = t.records.iter().find(|p| p.record.event_id == event_id);
                    if let Some(p) = p {
                        return Ok(Ok(Reserved::Duplicate {
                            event_id,
                            outcome: Some(p.outcome.subscribe()),
                        }));
                    }
                }
            }
        }
        if let Some(d) = &record.delivery_id {
            if let Some(event_id) = with.seen(tenant, &record.source, d)? {
                return Ok(Ok(Reserved::Duplicate {
                    event_id,
                    outcome: None,
                }));
            }
        }
        if st.records >= self.caps.records || st.bytes + bytes > self.caps.bytes {
            return Ok(Err(Refused::Full));
        }
        let entry = match st.tenants.get_mut(tenant) {
            Some(t) => t,
            None => {
                let next = with.first_id(tenant)?;
                st.tenants
                    .entry(tenant.clone())
                    .or_insert_with(|| TenantBacklog {
                        next_event_id: next,
                        ..Default::default()
                    })
            }
        };
        if entry.records.len() >= self.caps.tenant_records {
            return Ok(Err(Refused::TenantFull));
        }
        if let Some(f) = &entry.failing {
            if f.why != Stuck::Other {
                return Ok(Err(Refused::Stuck(f.why.clone())));
            }
        }
        record.event_id = entry.next_event_id;
        let appending = match with.submit(tenant, &record) {
            Ok(a) => a,
            Err(e) => {
                if entry.records.is_empty() {
                    st.tenants.remove(tenant);
                }
                return Err(e);
            }
        };
        let event_id = record.event_id;
        entry.next_event_id += 1;
        if let Some(d) = &record.delivery_id {
            entry
                .deliveries
                .insert((record.source.clone(), d.clone()), event_id);
        }
        st.next_seq += 1;
        let seq = st.next_seq;
        entry.bytes += bytes;
        entry.records.push_back(Pending {
            seq,
            record,
            stage: Stage::Appending { after },
            outcome: watch::channel(Outcome::Pending).0,
            bytes,
        });
        st.records += 1;
        st.bytes += bytes;
        Ok(Ok(Reserved::New {
            event_id,
            seq,
            appending,
        }))
    }

    /// Records a finished append: `Some(lsn)` marks the record logged (and wakes the
    /// appliers), `None` (failed) removes it. A record no longer here (its tenant was deleted
    /// meanwhile) is ignored.
    pub fn finish(&self, tenant: &TenantId, seq: u64, lsn: Option<Lsn>) {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        let Some(t) = st.tenants.get_mut(tenant) else {
            return;
        };
        let Some(i) = t.records.iter().rposition(|p| p.seq == seq) else {
            return;
        };
        match lsn {
            Some(lsn) => {
                let p = &mut t.records[i];
                p.stage = Stage::Logged {
                    lsn,
                    at: Instant::now(),
                };
                p.outcome.send_replace(Outcome::Logged);
                drop(guard);
                self.logged.notify_one();
            }
            None => {
                let p = t.records.remove(i).expect("index from rposition");
                p.outcome.send_replace(Outcome::Failed);
                st.bytes -= t.unindex(&p);
                st.records -= 1;
                if t.records.is_empty() {
                    st.tenants.remove(tenant);
                }
            }
        }
    }

    /// Adds a record read back from the log at start (already acknowledged, with its id).
    /// `first_id` gives a tenant without an entry its next event id. No cap applies.
    pub fn restore(&self, record: Record, lsn: Lsn, first_id: i64) {
        let tenant = match TenantId::parse(&record.tenant) {
            Ok(t) => t,
            Err(_) => return,
        };
        let bytes = record_bytes(&record);
        let mut st = self.state.lock();
        let st = &mut *st;
        let entry = st.tenants.entry(tenant).or_insert_with(|| TenantBacklog {
            next_event_id: first_id,
            ..Default::default()
        });
        entry.next_event_id = entry.next_event_id.max(record.event_id.saturating_add(1));
        if let Some(d) = &record.delivery_id {
            entry
                .deliveries
                .insert((record.source.clone(), d.clone()), record.event_id);
        }
        st.next_seq += 1;
        entry.bytes += bytes;
        entry.records.push_back(Pending {
            seq: st.next_seq,
            record,
            stage: Stage::Logged {
                lsn,
                at: Instant::now(),
            },
            outcome: watch::channel(Outcome::Logged).0,
            bytes,
        });
        st.records += 1;
        st.bytes += bytes;
    }

    /// Waits for every `reserve` running now to finish (takes and drops the lock).
    pub fn barrier(&self) {
        drop(self.state.lock());
    }

    /// Whether any record of the tenant is still being appended to the log.
    pub fn appending(&self, tenant: &TenantId) -> bool {
        let st = self.state.lock();
        st.tenants.get(tenant).is_some_and(|t| {
            t.records
                .iter()
                .any(|p| matches!(p.stage, Stage::Appending { .. }))
        })
    }

    /// The id the tenant's next record would get, if it has an entry.
    pub fn next_event_id(&self, tenant: &TenantId) -> Option<i64> {
        let st = self.state.lock();
        st.tenants.get(tenant).map(|t| t.next_event_id)
    }

    /// Whether the tenant has acknowledged records not yet in its file.
    pub fn has_unapplied(&self, tenant: &TenantId) -> bool {
        let st = self.state.lock();
        st.tenants
            .get(tenant)
            .is_some_and(TenantBacklog::has_logged)
    }

    /// Tenants with acknowledged records not yet in their files.
    /// Tenants whose last apply failed are left out until their retry time.
    pub fn tenants_to_apply(&self) -> Vec<TenantId> {
        let st = self.state.lock();
        let now = Instant::now();
        st.tenants
            .iter()
            .filter(|(_, t)| t.failing.as_ref().is_none_or(|f| f.retry_at <= now))
            .filter(|(_, t)| t.has_logged())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The tenant's logged records that can go to its file now: the logged ones from the
    /// front, up to the first still appending (so ids reach the file in order). Call it while
    /// holding the tenant's writer, then [`Backlog::mark_applied`] after the commit.
    pub fn take_for_apply(&self, tenant: &TenantId) -> Vec<(u64, Lsn, Record)> {
        let st = self.state.lock();
        let Some(t) = st.tenants.get(tenant) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for p in &t.records {
            match p.stage {
                Stage::Applied { .. } => {}
                Stage::Logged { lsn, .. } => out.push((p.seq, lsn, p.record.clone())),
                Stage::Appending { .. } => break,
            }
        }
        out
    }

    /// Marks these records (by seq) as in their tenant file (and the tenant as no longer
    /// failing).
    pub fn mark_applied(&self, tenant: &TenantId, seqs: &[u64]) {
        let mut st = self.state.lock();
        let Some(t) = st.tenants.get_mut(tenant) else {
            return;
        };
        t.failing = None;
        for p in t.records.iter_mut() {
            if let Stage::Logged { lsn, .. } = p.stage {
                if seqs.binary_search(&p.seq).is_ok() {
                    p.stage = Stage::Applied { lsn };
                }
            }
        }
    }

    /// Drops these records (by seq, ascending) of the tenant: they belong to an earlier tenant
    /// of the same id, so neither its file nor the catalog may have them.
    pub fn discard(&self, tenant: &TenantId, seqs: &[u64]) {
        if seqs.is_empty() {
            return;
        }
        let mut guard = self.state.lock();
        let st = &mut *guard;
        let Some(t) = st.tenants.get_mut(tenant) else {
            return;
        };
        let mut kept = VecDeque::with_capacity(t.records.len());
        for p in std::mem::take(&mut t.records) {
            if seqs.binary_search(&p.seq).is_ok() {
                p.outcome.send_replace(Outcome::Failed);
                st.bytes -= t.unindex(&p);
                st.records -= 1;
            } else {
                kept.push_back(p);
            }
        }
        t.records = kept;
        if t.records.is_empty() {
            st.tenants.remove(tenant);
        }
    }

    /// Records that applying the tenant's records failed: the appliers retry it after a delay
    /// that doubles per failure (100 ms to 10 s); a `Quota` or `Migration` failure also refuses
    /// its new deliveries until an apply succeeds.
    pub fn note_failure(&self, tenant: &TenantId, why: Stuck) {
        let mut st = self.state.lock();
        let Some(t) = st.tenants.get_mut(tenant) else {
            return;
        };
        let backoff = match &t.failing {
            Some(f) => (f.backoff * 2).min(MAX_RETRY),
            None => FIRST_RETRY,
        };
        t.failing = Some(Failing {
            why,
            retry_at: Instant::now() + backoff,
            backoff,
        });
    }

    /// Bytes of the tenant's records here (0 without any).
    pub fn tenant_bytes(&self, tenant: &TenantId) -> usize {
        self.state.lock().tenants.get(tenant).map_or(0, |t| t.bytes)
    }

    /// What the catalog must learn about the applied records at the front of every tenant's
    /// queue, with how many records each update covers (for [`Backlog::catalogued`]).
    pub fn catalog_updates(&self) -> Vec<(CatalogUpdate, usize)> {
        let st = self.state.lock();
        let mut out = Vec::new();
        for (id, t) in &st.tenants {
            let done = t
                .records
                .iter()
                .take_while(|p| matches!(p.stage, Stage::Applied { .. }))
                .count();
            if done == 0 {
                continue;
            }
            let deliveries = t
                .records
                .iter()
                .take(done)
                .filter_map(|p| {
                    let r = &p.record;
                    let d = r.delivery_id.clone()?;
                    Some(NewDelivery {
                        source: SourceName::parse(&r.source).ok()?,
                        delivery_id: d,
                        event_id: r.event_id,
                        received_at_ms: r.received_at_ms,
                    })
                })
                .collect();
            let update = CatalogUpdate {
                tenant: id.clone(),
                next_event_id: t.next_event_id,
                deliveries,
            };
            out.push((update, done));
        }
        out
    }

    /// Drops the records the catalog now has (the first `n` of each tenant's queue, as
    /// returned by [`Backlog::catalog_updates`]); a tenant left without records loses its entry.
    pub fn catalogued(&self, done: &[(CatalogUpdate, usize)]) {
        let mut st = self.state.lock();
        let st = &mut *st;
        for (update, n) in done {
            let Some(t) = st.tenants.get_mut(&update.tenant) else {
                continue;
            };
            for _ in 0..*n {
                let Some(p) = t.records.front() else { break };
                if !matches!(p.stage, Stage::Applied { .. }) {
                    break;
                }
                let p = t.records.pop_front().expect("front exists");
                st.bytes -= t.unindex(&p);
                st.records -= 1;
            }
            if t.records.is_empty() {
                st.tenants.remove(&update.tenant);
            }
        }
        if st.tenants.is_empty() {
            // A burst over many tenants leaves a big table behind: give its memory back.
            st.tenants.shrink_to_fit();
        }
    }

    /// Drops everything of a tenant (deleted, or its file is gone); returns the records
    /// dropped.
    pub fn forget(&self, tenant: &TenantId) -> usize {
        let mut st = self.state.lock();
        let Some(t) = st.tenants.remove(tenant) else {
            return 0;
        };
        for p in &t.records {
            p.outcome.send_replace(Outcome::Failed);
            st.bytes -= p.bytes;
        }
        st.records -= t.records.len();
        t.records.len()
    }

    /// The highest LSN such that no record at or below it is still here, given the log's
    /// last written LSN `last` (read before calling).
    pub fn released_upto(&self, last: Lsn) -> Lsn {
        let st = self.state.lock();
        let mut upto = last;
        for t in st.tenants.values() {
            for p in &t.records {
                let bound = match p.stage {
                    Stage::Appending { after } => after,
                    Stage::Logged { lsn, .. } | Stage::Applied { lsn } => lsn - 1,
                };
                upto = upto.min(bound);
            }
        }
        upto
    }

    /// Whether nothing is here at all.
    pub fn is_empty(&self) -> bool {
        self.state.lock().records == 0
    }

    /// The gauges.
    pub fn stats(&self) -> BacklogStats {
        let st = self.state.lock();
        let now = Instant::now();
        let mut out = BacklogStats {
            records: st.records,
            bytes: st.bytes,
            tenants: st.tenants.len(),
            ..Default::default()
        };
        for t in st.tenants.values() {
            for p in &t.records {
                if let Stage::Logged { at, .. } = p.stage {
                    out.unapplied += 1;
                    out.lag_secs = out.lag_secs.max(now.duration_since(at).as_secs_f64());
                }
            }
        }
        out
    }
}

/// What a record counts against the byte cap.
fn record_bytes(r: &Record) -> usize {
    r.body.len()
        + r.tenant.len()
        + r.source.len()
        + r.delivery_id.as_ref().map_or(0, String::len)
        + r.content_type.as_ref().map_or(0, String::len)
        + 64
}
