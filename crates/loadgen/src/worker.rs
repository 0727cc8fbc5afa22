//! One load thread: a current-thread runtime running its connections as local tasks that
//! count into one set of per-thread stats (one histogram per thread, not per connection: a
//! histogram is ~200 KiB and runs go to thousands of connections), and the loop of one
//! connection (claim the next request, build it in reused buffers, send, time, count).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::conn::Conn;
use crate::histogram::Latency;
use crate::run::{LoadError, Pace, Shared, CONNECT_TIMEOUT, REQUEST_TIMEOUT};
use crate::schedule::{OpenSchedule, Slots};
use crate::workload::{self, Op, Workload};

/// Pause after a failed connect, so a dead server is not hammered in a tight loop.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);
/// Counters are published to the shared progress every this many requests.
const PUBLISH_EVERY: u64 = 32;

/// What the connections of one thread did.
#[derive(Debug)]
pub(crate) struct ConnStats {
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    pub sql_errors: u64,
    pub sent_late: u64,
    pub unsent: u64,
    /// Answers by status code (a handful of distinct codes: a list beats a map).
    pub statuses: Vec<(u16, u64)>,
    pub latency: Latency,
    pub by_op: BTreeMap<Op, Latency>,
    pub last_end: Option<Instant>,
    published: (u64, u64, u64),
}

impl ConnStats {
    fn new() -> Self {
        ConnStats {
            requests: 0,
            ok: 0,
            errors: 0,
            sql_errors: 0,
            sent_late: 0,
            unsent: 0,
            statuses: Vec::new(),
            latency: Latency::new(),
            by_op: BTreeMap::new(),
            last_end: None,
            published: (0, 0, 0),
        }
    }

    fn count_status(&mut self, status: u16) {
        match self.statuses.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => self.statuses.push((status, 1)),
        }
    }

    fn publish(&mut self, shared: &Shared) {
        let live = &shared.live;
        live.requests
            .fetch_add(self.requests - self.published.0, Ordering::Relaxed);
        live.ok
            .fetch_add(self.ok - self.published.1, Ordering::Relaxed);
        live.errors
            .fetch_add(self.errors - self.published.2, Ordering::Relaxed);
        self.published = (self.requests, self.ok, self.errors);
    }
}

/// Runs connections `conns` on a current-thread runtime until each is done; returns the
/// thread's stats.
pub(crate) fn run_thread(shared: Arc<Shared>, conns: Vec<usize>) -> Result<ConnStats, LoadError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LoadError::Thread)?;
    let stats = Rc::new(RefCell::new(ConnStats::new()));
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let tasks: Vec<_> = conns
            .into_iter()
            .map(|k| {
                tokio::task::spawn_local(connection(Arc::clone(&shared), k, Rc::clone(&stats)))
            })
            .collect();
        for t in tasks {
            t.await.expect("connection tasks do not panic");
        }
    });
    let mut stats = Rc::try_unwrap(stats)
        .expect("every connection task has ended")
        .into_inner();
    stats.publish(&shared);
    Ok(stats)
}

/// Connects within [`CONNECT_TIMEOUT`].
async fn connect(shared: &Shared) -> Option<Conn> {
    match tokio::time::timeout(CONNECT_TIMEOUT, Conn::connect(shared.spec.addr)).await {
        Ok(Ok(c)) => Some(c),
        Ok(Err(_)) | Err(_) => None,
    }
}

/// Reused buffers that turn (op, tenant) into request bytes.
struct Builder {
    host: String,
    auth: String,
    get: Vec<u8>,
    name: String,
    path: String,
    body: Vec<u8>,
    req: Vec<u8>,
    conn_id: u64,
    seq: u64,
}

impl Builder {
    fn new(shared: &Shared, conn_id: u64) -> Self {
        let spec = &shared.spec;
        let auth = spec
            .token
            .as_ref()
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let get = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
            spec.get_path, spec.host
        )
        .into_bytes();
        Builder {
            host: spec.host.clone(),
            auth,
            get,
            name: String::new(),
            path: String::new(),
            body: Vec::new(),
            req: Vec::new(),
            conn_id,
            seq: 0,
        }
    }

    /// The bytes of the next request of kind `op`.
    fn build(&mut self, shared: &Shared, op: Op, rng: &mut StdRng) -> &[u8] {
        if op == Op::Get {
            return &self.get;
        }
        let spec = &shared.spec;
        self.seq += 1;
        self.name.clear();
        spec.names.write(spec.chooser.pick(rng), &mut self.name);
        workload::write_body(op, &self.name, self.conn_id, self.seq, rng, &mut self.body);
        let template = if op == Op::Webhook {
            &spec.webhook_path
        } else {
            &spec.sql_path
        };
        self.path.clear();
        template.render_into(&self.name, &mut self.path);
        let auth = if op.is_sql() { self.auth.as_str() } else { "" };
        self.req.clear();
        // Writing into a Vec cannot fail.
        let _ = write!(
            self.req,
            "POST {} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.path,
            self.host,
            self.body.len()
        );
        self.req.extend_from_slice(&self.body);
        &self.req
    }
}

/// The next request's intended send time (open loop) or `None` (closed loop); `Err(())`
/// when this connection is done.
async fn next_slot(
    shared: &Shared,
    open: &mut Option<(OpenSchedule, Slots)>,
    stats: &RefCell<ConnStats>,
) -> Result<Option<Instant>, ()> {
    match open {
        None => {
            if Instant::now() >= shared.deadline {
                return Err(());
            }
            if let Some(max) = shared.spec.max_requests {
                if shared.live.claimed.fetch_add(1, Ordering::Relaxed) >= max {
                    return Err(());
                }
            }
            Ok(None)
        }
        Some((schedule, slots)) => {
            let Some(i) = slots.take() else {
                return Err(());
            };
            let intended = shared.start + schedule.intended(i);
            let now = Instant::now();
            if now < intended {
                tokio::time::sleep_until(intended.into()).await;
            } else if now >= shared.drain_deadline {
                stats.borrow_mut().unsent += 1 + slots.left();
                return Err(());
            }
            Ok(Some(intended))
        }
    }
}

/// One connection's loop. `stats` is borrowed only between awaits.
async fn connection(shared: Arc<Shared>, k: usize, stats: Rc<RefCell<ConnStats>>) {
    let spec = &shared.spec;
    let mut rng =
        StdRng::seed_from_u64(spec.seed ^ (k as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut builder = Builder::new(&shared, k as u64);
    let mut open = match (spec.pace, shared.schedule) {
        (Pace::Open { .. }, Some(s)) => Some((s, s.slots(k))),
        _ => None,
    };
    let mut conn = connect(&shared).await;
    tokio::time::sleep_until(shared.start.into()).await;
    let mixed = matches!(spec.workload, Workload::Mixed { .. });
    while let Ok(intended) = next_slot(&shared, &mut open, &stats).await {
        let op = spec.workload.next_op(&mut rng);
        let request = builder.build(&shared, op, &mut rng);
        if conn.as_ref().is_none_or(|c| c.is_closing()) {
            conn = connect(&shared).await;
            if conn.is_none() {
                {
                    let mut st = stats.borrow_mut();
                    st.requests += 1;
                    st.errors += 1;
                }
                tokio::time::sleep(RECONNECT_PAUSE).await;
                continue;
            }
        }
        let c = conn.as_mut().expect("connected above");
        let sent = Instant::now();
        let late = intended.is_some_and(|t| {
            OpenSchedule::is_late(
                t - shared.start,
                sent.saturating_duration_since(shared.start),
            )
        });
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, c.roundtrip(request, op.is_sql())).await;
        let end = Instant::now();
        let mut st = stats.borrow_mut();
        st.requests += 1;
        st.sent_late += u64::from(late);
        st.last_end = Some(st.last_end.map_or(end, |e| e.max(end)));
        match answer {
            Ok(Ok(resp)) => {
                let took = end.saturating_duration_since(intended.unwrap_or(sent));
                st.latency.record(took);
                if mixed {
                    st.by_op.entry(op).or_default().record(took);
                }
                st.count_status(resp.status);
                if (200..300).contains(&resp.status) {
                    if resp.inband_error {
                        st.sql_errors += 1;
                    } else {
                        st.ok += 1;
                    }
                }
            }
            // No answer: the connection's state is unknown, so it is dropped.
            Ok(Err(_)) | Err(_) => {
                st.errors += 1;
                conn = None;
            }
        }
        if st.requests - st.published.0 >= PUBLISH_EVERY {
            st.publish(&shared);
        }
    }
}
