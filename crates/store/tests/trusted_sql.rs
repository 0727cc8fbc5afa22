//! Trusted SQL that fires tenant-planted code: a tenant (through the SQL guard, as the Hrana
//! routes run it) plants a trigger or view that copies `_tenantd_hooks` into its own table;
//! then tenantd's own statements touch the tenant's table — a migration (`migrate::apply`, and
//! the pool's lazy migration on open), the webhook insert. Nothing may leak or change.

use std::sync::Arc;

use hrana::exec::{Stream, StreamConfig};
use hrana::guard::{Guard, GuardConfig};
use hrana::proto::{StreamRequest, StreamResult};
use rusqlite::Connection;
use store::events::{self, HookConfig, NewEvent};
use store::migrate::{self, MigrationSet, Outcome};
use store::{PoolConfig, TenantId, TenantPool};

const SECRET: &str = "whsec_do-not-leak";

/// The attack, as a tenant token holder sends it.
const PLANT_TRIGGER: &str = "CREATE TABLE loot(a, b, c);
    CREATE TRIGGER steal AFTER INSERT ON orders BEGIN
        INSERT INTO loot SELECT source, scheme, secret FROM _tenantd_hooks;
        UPDATE _tenantd_hooks SET scheme = 'none';
    END";

fn set(sqls: &[&str]) -> MigrationSet {
    MigrationSet::numbered(sqls)
}

fn init(conn: &Connection) -> rusqlite::Result<()> {
    events::init_schema(conn)?;
    conn.execute_batch("CREATE TABLE orders(id INTEGER PRIMARY KEY, note TEXT)")?;
    let hook = HookConfig {
        scheme: "github".into(),
        secret: Some(SECRET.into()),
    };
    events::set_hook(conn, "gh", &hook)
}

/// Runs `sql` (a `sequence`) as tenant SQL under the guard; panics if it is refused.
fn tenant_sequence(conn: &Connection, sql: &str) {
    let guard = Guard::enter(conn, &GuardConfig::default(), false).unwrap();
    let mut stream = Stream::new(StreamConfig::default());
    let req = StreamRequest::Sequence {
        sql: Some(sql.into()),
        sql_id: None,
    };
    match stream.execute(&guard, req).unwrap() {
        StreamResult::Ok { .. } => {}
        StreamResult::Error { error } => panic!("tenant SQL refused: {error:?}"),
    }
}

/// Creates a tenant with a hook secret and `orders`, and plants `plant` as the tenant.
async fn tenant_with(pool: &TenantPool, name: &str, plant: &'static str) -> TenantId {
    let id = TenantId::parse(name).unwrap();
    pool.create(&id, init).await.unwrap();
    pool.write(&id, move |c| {
        tenant_sequence(c, plant);
        Ok(())
    })
    .await
    .unwrap();
    id
}

/// SQLite's words when the trusted authorizer refuses a trigger's or view's access.
#[track_caller]
fn assert_refused(message: &str) {
    assert!(
        message.contains("access to _tenantd_hooks.") && message.contains("is prohibited"),
        "{message}"
    );
}

/// Reads the evidence with a plain connection (no authorizer at all).
fn evidence(pool: &TenantPool, id: &TenantId) -> (i64, String) {
    let conn = Connection::open(pool.path_of(id)).unwrap();
    let loot: i64 = conn
        .query_row("SELECT count(*) FROM loot", [], |r| r.get(0))
        .unwrap();
    let scheme: String = conn
        .query_row("SELECT scheme FROM _tenantd_hooks", [], |r| r.get(0))
        .unwrap();
    (loot, scheme)
}

#[tokio::test]
async fn regression_tenant_trigger_leaks_hook_secrets_through_migrate_apply() {
    let dir = tempfile::tempdir().unwrap();
    let pool = TenantPool::open(PoolConfig::new(dir.path())).unwrap();
    let id = tenant_with(&pool, "victim", PLANT_TRIGGER).await;
    let migrations = set(&["INSERT INTO orders(note) VALUES ('seed')"]);
    let outcome = pool
        .write(&id, move |c| Ok(migrate::apply(c, &migrations, false)?))
        .await
        .unwrap();
    match outcome {
        Outcome::Failed { error, .. } => assert_refused(&error),
        other => panic!("the migration fired the tenant's trigger: {other:?}"),
    }
    assert_eq!(evidence(&pool, &id), (0, "github".to_owned()));
    pool.shutdown(std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn tenant_triggers_that_keep_to_tenant_tables_still_run_in_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let pool = TenantPool::open(PoolConfig::new(dir.path())).unwrap();
    let audit = "CREATE TABLE loot(a, b, c);
        CREATE TRIGGER audit AFTER INSERT ON orders BEGIN
            INSERT INTO loot VALUES (new.id, new.note, 'audited');
        END";
    let id = tenant_with(&pool, "audited", audit).await;
    let migrations = set(&["INSERT INTO orders(note) VALUES ('seed')"]);
    let outcome = pool
        .write(&id, move |c| Ok(migrate::apply(c, &migrations, false)?))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Migrated { from: 0, to: 1 });
    assert_eq!(evidence(&pool, &id), (1, "github".to_owned()));
    pool.shutdown(std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn regression_tenant_trigger_leaks_hook_secrets_through_lazy_migration_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let plain = TenantPool::open(PoolConfig::new(dir.path())).unwrap();
    let id = tenant_with(&plain, "lazy", PLANT_TRIGGER).await;
    plain.shutdown(std::time::Duration::from_secs(5)).await;

    let mut cfg = PoolConfig::new(dir.path());
    cfg.migrations = Some(Arc::new(set(&["INSERT INTO orders(note) VALUES ('seed')"])));
    let pool = TenantPool::open(cfg).unwrap();
    let err = pool.read(&id, |_| Ok(())).await.unwrap_err();
    assert_refused(&err.to_string());
    assert_eq!(evidence(&pool, &id), (0, "github".to_owned()));
    pool.shutdown(std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn regression_planted_trigger_on_events_leaks_through_the_webhook_insert() {
    // Tenant SQL cannot create triggers on reserved tables; a file tampered with outside
    // tenantd (or a future hole) can. The webhook insert must still not run it with access to
    // the reserved tables.
    let dir = tempfile::tempdir().unwrap();
    let pool = TenantPool::open(PoolConfig::new(dir.path())).unwrap();
    let id = tenant_with(&pool, "tampered", "CREATE TABLE loot(a, b, c)").await;
    pool.shutdown(std::time::Duration::from_secs(5)).await;
    Connection::open(pool.path_of(&id))
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER steal AFTER INSERT ON _tenantd_events BEGIN
                 INSERT INTO loot SELECT source, scheme, secret FROM _tenantd_hooks;
             END",
        )
        .unwrap();

    let pool = TenantPool::open(PoolConfig::new(dir.path())).unwrap();
    let ev = NewEvent {
        source: "gh",
        delivery_id: Some("d1"),
        content_type: Some("application/json"),
        received_at_ms: 1,
        body: b"{}",
    };
    let err = pool
        .write(&id, move |c| Ok(events::insert_event(c, &ev)?))
        .await
        .unwrap_err();
    assert_refused(&err.to_string());
    assert_eq!(evidence(&pool, &id), (0, "github".to_owned()));
    pool.shutdown(std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn regression_tenant_view_over_reserved_table_leaks_into_trusted_reads() {
    // SQLite does not authorize a view's body at CREATE VIEW, so a tenant can plant this view;
    // a trusted statement (a migration) that reads it is refused.
    let plant = "CREATE TABLE loot(a, b, c);
        CREATE VIEW orders_v AS SELECT source, scheme, secret FROM _tenantd_hooks";
    let dir = tempfile::tempdir().unwrap();
    let pool = TenantPool::open(PoolConfig::new(dir.path())).unwrap();
    let id = tenant_with(&pool, "viewed", plant).await;
    let migrations = set(&["INSERT INTO loot SELECT * FROM orders_v"]);
    let outcome = pool
        .write(&id, move |c| Ok(migrate::apply(c, &migrations, false)?))
        .await
        .unwrap();
    match outcome {
        Outcome::Failed { error, .. } => assert_refused(&error),
        other => panic!("the migration read through the view: {other:?}"),
    }
    assert_eq!(evidence(&pool, &id), (0, "github".to_owned()));
    pool.shutdown(std::time::Duration::from_secs(5)).await;
}
