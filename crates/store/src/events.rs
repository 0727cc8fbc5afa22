//! The reserved tables inside every tenant file, and the queries tenantd runs on them.
//!
//! A tenant file is self-contained: its webhook sources (scheme + secret) and its events live in
//! `_tenantd_*` tables next to the tenant's own tables, so moving or backing up a tenant is
//! moving one file. Tenant SQL is denied access to these tables (see the SQL guard).

use rusqlite::{params, Connection, OptionalExtension};

/// Creates the reserved tables in a new tenant file, and its token epoch.
pub fn init_schema(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE _tenantd_meta(key TEXT PRIMARY KEY, value ANY) STRICT;
         CREATE TABLE _tenantd_hooks(
             source TEXT PRIMARY KEY, scheme TEXT NOT NULL, secret TEXT) STRICT;
         CREATE TABLE _tenantd_events(
             id INTEGER PRIMARY KEY,
             source TEXT NOT NULL,
             delivery_id TEXT,
             content_type TEXT,
             received_at_ms INTEGER NOT NULL,
             body BLOB NOT NULL) STRICT;
         CREATE UNIQUE INDEX _tenantd_events_delivery
             ON _tenantd_events(source, delivery_id) WHERE delivery_id IS NOT NULL;
         CREATE INDEX _tenantd_events_source ON _tenantd_events(source, id);",
    )?;
    crate::token_epoch::ensure(conn).map(drop)
}

/// A webhook to store.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    /// Source name (validated by the caller).
    pub source: &'a str,
    /// The sender's delivery id, used for dedupe.
    pub delivery_id: Option<&'a str>,
    /// `Content-Type` as received.
    pub content_type: Option<&'a str>,
    /// Receive time, ms since the Unix epoch.
    pub received_at_ms: i64,
    /// The raw body, as received.
    pub body: &'a [u8],
}

/// Outcome of [`insert_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Inserted {
    /// The event id (the original one for a duplicate).
    pub id: i64,
    /// True when the delivery id was seen before and nothing was stored.
    pub duplicate: bool,
}

/// Stores `ev` unless its delivery id was already stored for the same source.
/// Must run on the tenant's writer; errors are SQLite errors (e.g. `SQLITE_FULL`).
pub fn insert_event(conn: &Connection, ev: &NewEvent<'_>) -> rusqlite::Result<Inserted> {
    let tx = conn.unchecked_transaction()?;
    if let Some(delivery) = ev.delivery_id {
        let existing = tx
            .prepare_cached(
                "SELECT id FROM _tenantd_events WHERE source = ?1 AND delivery_id = ?2",
            )?
            .query_row(params![ev.source, delivery], |r| r.get(0))
            .optional()?;
        if let Some(id) = existing {
            return Ok(Inserted {
                id,
                duplicate: true,
            });
        }
    }
    tx.prepare_cached(
        "INSERT INTO _tenantd_events(source, delivery_id, content_type, received_at_ms, body)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        ev.source,
        ev.delivery_id,
        ev.content_type,
        ev.received_at_ms,
        ev.body
    ])?;
    let id = tx.last_insert_rowid();
    tx.commit()?;
    Ok(Inserted {
        id,
        duplicate: false,
    })
}

/// A stored event.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    /// Event id, increasing in receive order.
    pub id: i64,
    /// Source name.
    pub source: String,
    /// The sender's delivery id, if it gave one.
    pub delivery_id: Option<String>,
    /// `Content-Type` as received.
    pub content_type: Option<String>,
    /// Receive time, ms since the Unix epoch.
    pub received_at_ms: i64,
    /// The raw body.
    #[serde(skip)]
    pub body: Vec<u8>,
}

/// Up to `limit` events with id > `after`, in id order, optionally of one source.
pub fn list_events(
    conn: &Connection,
    after: i64,
    limit: u32,
    source: Option<&str>,
) -> rusqlite::Result<Vec<Event>> {
    Ok(list_page(conn, after, limit, source, usize::MAX)?.events)
}

/// One page of [`list_page`].
#[derive(Debug, Clone)]
pub struct EventPage {
    /// The events, in id order.
    pub events: Vec<Event>,
    /// True when the page stopped early because its bodies reached the byte cap.
    pub cut_by_bytes: bool,
}

/// Like [`list_events`], but stops before the event whose body would take the page's bodies
/// past `max_body_bytes`; the first event is always included, whatever its size, so a reader
/// always makes progress. Errors: SQLite.
pub fn list_page(
    conn: &Connection,
    after: i64,
    limit: u32,
    source: Option<&str>,
    max_body_bytes: usize,
) -> rusqlite::Result<EventPage> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, source, delivery_id, content_type, received_at_ms, body
         FROM _tenantd_events WHERE id > ?1 AND (?2 IS NULL OR source = ?2)
         ORDER BY id LIMIT ?3",
    )?;
    let mut rows = stmt.query(params![after, source, limit])?;
    let mut page = EventPage {
        events: Vec::new(),
        cut_by_bytes: false,
    };
    let mut bytes = 0usize;
    while let Some(r) = rows.next()? {
        let body: Vec<u8> = r.get(5)?;
        bytes = bytes.saturating_add(body.len());
        if bytes > max_body_bytes && !page.events.is_empty() {
            page.cut_by_bytes = true;
            break;
        }
        page.events.push(Event {
            id: r.get(0)?,
            source: r.get(1)?,
            delivery_id: r.get(2)?,
            content_type: r.get(3)?,
            received_at_ms: r.get(4)?,
            body,
        });
    }
    Ok(page)
}

/// A webhook source's verification settings (the secret never leaves the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookConfig {
    /// Scheme name (`standard-webhooks`, `github`, `stripe`, `shopify`, `none`).
    pub scheme: String,
    /// The shared secret, if the scheme uses one.
    pub secret: Option<String>,
}

/// Sets (or replaces) the verification settings of `source`.
pub fn set_hook(conn: &Connection, source: &str, cfg: &HookConfig) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO _tenantd_hooks(source, scheme, secret) VALUES (?1, ?2, ?3)
         ON CONFLICT(source) DO UPDATE SET scheme = excluded.scheme, secret = excluded.secret",
    )?
    .execute(params![source, cfg.scheme, cfg.secret])?;
    Ok(())
}

/// The verification settings of `source`, if an admin configured them.
pub fn get_hook(conn: &Connection, source: &str) -> rusqlite::Result<Option<HookConfig>> {
    conn.prepare_cached("SELECT scheme, secret FROM _tenantd_hooks WHERE source = ?1")?
        .query_row([source], |r| {
            Ok(HookConfig {
                scheme: r.get(0)?,
                secret: r.get(1)?,
            })
        })
        .optional()
}

/// Removes the verification settings of `source`; false if it had none.
pub fn delete_hook(conn: &Connection, source: &str) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM _tenantd_hooks WHERE source = ?1")?
        .execute([source])?;
    Ok(n > 0)
}

/// Every configured source with its scheme (no secrets).
pub fn list_hooks(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt =
        conn.prepare_cached("SELECT source, scheme FROM _tenantd_hooks ORDER BY source")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Event count and the newest event's receive time.
pub fn event_stats(conn: &Connection) -> rusqlite::Result<(i64, Option<i64>)> {
    conn.query_row(
        "SELECT count(*), max(received_at_ms) FROM _tenantd_events",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev<'a>(delivery: Option<&'a str>, body: &'a [u8]) -> NewEvent<'a> {
        NewEvent {
            source: "gh",
            delivery_id: delivery,
            content_type: None,
            received_at_ms: 1,
            body,
        }
    }

    #[test]
    fn dedupes_on_source_and_delivery_id() {
        let conn = Connection::open_in_memory().unwrap();
        init_schema(&conn).unwrap();
        let a = insert_event(&conn, &ev(Some("d1"), b"one")).unwrap();
        assert_eq!(
            a,
            Inserted {
                id: 1,
                duplicate: false
            }
        );
        let again = insert_event(&conn, &ev(Some("d1"), b"changed")).unwrap();
        assert_eq!(
            again,
            Inserted {
                id: 1,
                duplicate: true
            }
        );
        let other_source = NewEvent {
            source: "stripe",
            ..ev(Some("d1"), b"x")
        };
        assert!(!insert_event(&conn, &other_source).unwrap().duplicate);
        assert!(!insert_event(&conn, &ev(None, b"y")).unwrap().duplicate);
        assert!(!insert_event(&conn, &ev(None, b"y")).unwrap().duplicate);
        let all = list_events(&conn, 0, 100, None).unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].body, b"one");
        assert_eq!(list_events(&conn, 1, 100, Some("gh")).unwrap().len(), 2);
    }

    #[test]
    fn a_page_stops_at_the_byte_cap_but_never_empty() {
        let conn = Connection::open_in_memory().unwrap();
        init_schema(&conn).unwrap();
        for body in [&[1u8; 40][..], &[2; 40], &[3; 40]] {
            insert_event(&conn, &ev(None, body)).unwrap();
        }
        let page = list_page(&conn, 0, 10, None, 100).unwrap();
        assert_eq!((page.events.len(), page.cut_by_bytes), (2, true));
        let page = list_page(&conn, 0, 10, None, 120).unwrap();
        assert_eq!((page.events.len(), page.cut_by_bytes), (3, false));
        let page = list_page(&conn, 0, 10, None, 1).unwrap();
        assert_eq!(
            (page.events.len(), page.cut_by_bytes),
            (1, true),
            "one event at least"
        );
    }

    #[test]
    fn hooks_round_trip_and_replace() {
        let conn = Connection::open_in_memory().unwrap();
        init_schema(&conn).unwrap();
        assert_eq!(get_hook(&conn, "gh").unwrap(), None);
        let cfg = HookConfig {
            scheme: "github".into(),
            secret: Some("s".into()),
        };
        set_hook(&conn, "gh", &cfg).unwrap();
        let cfg2 = HookConfig {
            scheme: "none".into(),
            secret: None,
        };
        set_hook(&conn, "gh", &cfg2).unwrap();
        assert_eq!(get_hook(&conn, "gh").unwrap(), Some(cfg2));
        assert_eq!(
            list_hooks(&conn).unwrap(),
            vec![("gh".into(), "none".into())]
        );
        assert!(delete_hook(&conn, "gh").unwrap());
        assert!(!delete_hook(&conn, "gh").unwrap());
        assert_eq!(get_hook(&conn, "gh").unwrap(), None);
    }
}
