//! A tenant's webhook policy: which deliveries are accepted without a verified signature.
//!
//! Stored inside the tenant file (`_tenantd_meta`, key `webhook_policy`; absent = `open`), so it
//! moves and is backed up with the tenant, and tenant SQL cannot reach it (reserved table). An
//! unreadable stored value is reported, never replaced by a default: callers fail closed.

use rusqlite::{Connection, OptionalExtension};

/// The `_tenantd_meta` key holding the policy.
pub const POLICY_KEY: &str = "webhook_policy";

/// Which webhook deliveries a tenant accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookPolicy {
    /// Any source; sources with a configured scheme are verified (the default).
    #[default]
    Open,
    /// Only sources an admin configured (one configured with scheme `none` included).
    Configured,
    /// Only configured sources whose scheme verifies a signature (not `none`).
    Signed,
}

/// A policy name that is not one of `open`, `configured`, `signed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown webhook policy {0:?}: expected \"open\", \"configured\" or \"signed\"")]
pub struct UnknownPolicy(pub String);

impl WebhookPolicy {
    /// Parses a policy name; errors on anything else (case-sensitive).
    pub fn parse(raw: &str) -> Result<Self, UnknownPolicy> {
        match raw {
            "open" => Ok(WebhookPolicy::Open),
            "configured" => Ok(WebhookPolicy::Configured),
            "signed" => Ok(WebhookPolicy::Signed),
            other => Err(UnknownPolicy(other.to_owned())),
        }
    }

    /// The policy's name, as stored and shown by the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookPolicy::Open => "open",
            WebhookPolicy::Configured => "configured",
            WebhookPolicy::Signed => "signed",
        }
    }
}

/// The tenant's policy: `Ok(Err(_))` when the stored value is not a policy (corruption or a
/// newer tenantd), which callers must treat as a refusal; SQLite errors as the outer error.
pub fn webhook_policy(conn: &Connection) -> rusqlite::Result<Result<WebhookPolicy, UnknownPolicy>> {
    let stored: Option<rusqlite::types::Value> = conn
        .prepare_cached("SELECT value FROM _tenantd_meta WHERE key = ?1")?
        .query_row([POLICY_KEY], |r| r.get(0))
        .optional()?;
    Ok(match stored {
        None => Ok(WebhookPolicy::default()),
        Some(rusqlite::types::Value::Text(t)) => WebhookPolicy::parse(&t),
        Some(other) => Err(UnknownPolicy(format!("{other:?}"))),
    })
}

/// Stores the tenant's policy (must run on the tenant's writer).
pub fn set_webhook_policy(conn: &Connection, policy: WebhookPolicy) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO _tenantd_meta(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?
    .execute([POLICY_KEY, policy.as_str()])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_is_open_and_set_round_trips() {
        let conn = Connection::open_in_memory().unwrap();
        crate::events::init_schema(&conn).unwrap();
        assert_eq!(webhook_policy(&conn).unwrap(), Ok(WebhookPolicy::Open));
        for p in [
            WebhookPolicy::Signed,
            WebhookPolicy::Configured,
            WebhookPolicy::Open,
        ] {
            set_webhook_policy(&conn, p).unwrap();
            assert_eq!(webhook_policy(&conn).unwrap(), Ok(p));
            assert_eq!(WebhookPolicy::parse(p.as_str()), Ok(p));
        }
    }

    #[test]
    fn a_corrupt_stored_policy_is_an_error_not_a_default() {
        let conn = Connection::open_in_memory().unwrap();
        crate::events::init_schema(&conn).unwrap();
        conn.execute(
            "INSERT INTO _tenantd_meta(key, value) VALUES (?1, 'Signed')",
            [POLICY_KEY],
        )
        .unwrap();
        assert!(webhook_policy(&conn).unwrap().is_err());
        conn.execute(
            "UPDATE _tenantd_meta SET value = 7 WHERE key = ?1",
            [POLICY_KEY],
        )
        .unwrap();
        assert!(webhook_policy(&conn).unwrap().is_err());
    }
}
