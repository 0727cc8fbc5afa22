//! The hardened SQL surface for untrusted tenant SQL, applied to a connection for one use and
//! removed afterwards (the same connection also serves trusted tenantd code that reads the
//! reserved `_tenantd_*` tables). While a [`Guard`] lives: an authorizer enforces
//! [`policy`], `sqlite3_limit` values are lowered, a progress handler interrupts statements once
//! the request's time budget is spent or the request is cancelled ([`budget`]), and `PRAGMA
//! query_only` enforces read-only access. Outside a guard the connection carries the
//! [`trusted`] authorizer (installed at open, restored when a guard ends), which keeps tenant
//! triggers and views away from reserved objects. Connection-wide settings applied once at open
//! are checked by [`open_settings`].

pub mod budget;
pub mod names;
mod notes;
pub mod open_settings;
pub mod policy;
pub mod session;
pub mod trusted;

use std::ffi::{c_char, c_int, c_void, CStr};
use std::time::{Duration, Instant};

use rusqlite::ffi;
use rusqlite::limits::Limit;
use rusqlite::Connection;

pub(crate) use budget::{statement_starting, take_interrupt, Interrupt};
pub use budget::{Cancel, CancelOnDrop};
pub use names::check_reserved_names;
pub(crate) use notes::take_denial;
pub use open_settings::{apply_open_settings, expected_open_settings_ok, open_settings_problems};
pub use trusted::install_trusted_authorizer;

/// Default time budget of one guard's tenant SQL: every statement of one HTTP request together.
pub const DEFAULT_TIME_BUDGET: Duration = Duration::from_secs(5);

/// How many VM instructions run between two time-budget checks.
pub const DEFAULT_PROGRESS_OPS: i32 = 1_000;

/// Reduced `sqlite3_limit` values for tenant SQL (`SQLITE_LIMIT_ATTACHED` is always 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqlLimits {
    /// Max bytes of one string or blob (`SQLITE_LIMIT_LENGTH`).
    pub length: i32,
    /// Max bytes of one SQL text (`SQLITE_LIMIT_SQL_LENGTH`).
    pub sql_length: i32,
    /// Max expression tree depth (`SQLITE_LIMIT_EXPR_DEPTH`).
    pub expr_depth: i32,
    /// Max terms of a compound SELECT (`SQLITE_LIMIT_COMPOUND_SELECT`).
    pub compound_select: i32,
    /// Max VM instructions of one prepared statement (`SQLITE_LIMIT_VDBE_OP`).
    pub vdbe_op: i32,
    /// Max arguments of a function call (`SQLITE_LIMIT_FUNCTION_ARG`).
    pub function_arg: i32,
    /// Max bytes of a LIKE/GLOB pattern (`SQLITE_LIMIT_LIKE_PATTERN_LENGTH`).
    pub like_pattern_length: i32,
    /// Max index of a `?NNN` parameter (`SQLITE_LIMIT_VARIABLE_NUMBER`).
    pub variable_number: i32,
    /// Max trigger recursion depth (`SQLITE_LIMIT_TRIGGER_DEPTH`).
    pub trigger_depth: i32,
}

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits {
            length: 8 * 1024 * 1024,
            sql_length: 1024 * 1024,
            expr_depth: 100,
            compound_select: 50,
            vdbe_op: 250_000,
            function_arg: 100,
            like_pattern_length: 1_000,
            variable_number: 10_000,
            trigger_depth: 10,
        }
    }
}

impl SqlLimits {
    fn pairs(&self) -> [(Limit, i32); 10] {
        [
            (Limit::SQLITE_LIMIT_ATTACHED, 0),
            (Limit::SQLITE_LIMIT_LENGTH, self.length),
            (Limit::SQLITE_LIMIT_SQL_LENGTH, self.sql_length),
            (Limit::SQLITE_LIMIT_EXPR_DEPTH, self.expr_depth),
            (Limit::SQLITE_LIMIT_COMPOUND_SELECT, self.compound_select),
            (Limit::SQLITE_LIMIT_VDBE_OP, self.vdbe_op),
            (Limit::SQLITE_LIMIT_FUNCTION_ARG, self.function_arg),
            (
                Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH,
                self.like_pattern_length,
            ),
            (Limit::SQLITE_LIMIT_VARIABLE_NUMBER, self.variable_number),
            (Limit::SQLITE_LIMIT_TRIGGER_DEPTH, self.trigger_depth),
        ]
    }
}

/// How tenant SQL is restricted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardConfig {
    /// Wall-clock budget of all statements run under one guard (one request), counted from
    /// `Guard::enter`; past it the running statement is interrupted and later ones fail at once.
    pub time_budget: Duration,
    /// VM instructions between two budget checks.
    pub progress_ops: i32,
    /// Reduced SQLite limits.
    pub limits: SqlLimits,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            time_budget: DEFAULT_TIME_BUDGET,
            progress_ops: DEFAULT_PROGRESS_OPS,
            limits: SqlLimits::default(),
        }
    }
}

/// The guard could not be applied (a SQLite error while setting limits or `query_only`).
#[derive(Debug, thiserror::Error)]
#[error("cannot apply the tenant SQL guard: {0}")]
pub struct GuardError(#[from] rusqlite::Error);

/// The tenant-SQL restrictions, active on `conn` until this value is dropped. One guard per
/// connection at a time. Derefs to the connection, so executors take `&guard`.
pub struct Guard<'c> {
    conn: &'c Connection,
    saved_limits: Vec<(Limit, i32)>,
    saved_query_only: Option<bool>,
    hooks_installed: bool,
}

impl<'c> Guard<'c> {
    /// Applies the restrictions to `conn`; with `read_only`, every write fails
    /// (`PRAGMA query_only`). Errors: SQLite refused a limit or pragma (nothing stays applied).
    pub fn enter(
        conn: &'c Connection,
        cfg: &GuardConfig,
        read_only: bool,
    ) -> Result<Self, GuardError> {
        Self::enter_with(conn, cfg, read_only, Cancel::new())
    }

    /// Like [`Guard::enter`], and the running SQL is also interrupted once `cancel` is set (the
    /// request's client is gone). Errors: as [`Guard::enter`].
    pub fn enter_with(
        conn: &'c Connection,
        cfg: &GuardConfig,
        read_only: bool,
        cancel: Cancel,
    ) -> Result<Self, GuardError> {
        let mut guard = Guard {
            conn,
            saved_limits: Vec::new(),
            saved_query_only: None,
            hooks_installed: false,
        };
        for (limit, value) in cfg.limits.pairs() {
            let old = conn.set_limit(limit, value)?;
            guard.saved_limits.push((limit, old));
        }
        session::reset_session_pragmas(conn)?;
        let was_query_only: bool = conn.pragma_query_value(None, "query_only", |r| r.get(0))?;
        guard.saved_query_only = Some(was_query_only);
        if was_query_only != read_only {
            conn.pragma_update(None, "query_only", read_only)?;
        }
        // SAFETY: `conn.handle()` is the live handle of a connection we borrow for 'c. The
        // callbacks are plain functions without user data (the budget is per thread).
        unsafe {
            let db = conn.handle();
            ffi::sqlite3_set_authorizer(db, Some(authorize), std::ptr::null_mut());
            ffi::sqlite3_progress_handler(
                db,
                cfg.progress_ops.max(1),
                Some(progress),
                std::ptr::null_mut(),
            );
        }
        guard.hooks_installed = true;
        budget::start(cfg.time_budget, cancel, Instant::now());
        Ok(guard)
    }

    /// The guarded connection.
    pub fn conn(&self) -> &'c Connection {
        self.conn
    }
}

impl std::ops::Deref for Guard<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if self.hooks_installed {
            // Back to the trusted policy (never to no authorizer: trusted statements may fire
            // tenant triggers).
            trusted::install_trusted_authorizer(self.conn);
            // SAFETY: same live handle as in `enter`; removing the handler is always valid.
            unsafe {
                ffi::sqlite3_progress_handler(self.conn.handle(), 0, None, std::ptr::null_mut());
            }
        }
        for (limit, old) in self.saved_limits.drain(..).rev() {
            if let Err(e) = self.conn.set_limit(limit, old) {
                tracing::error!(error = %e, "cannot restore an SQLite limit after tenant SQL");
            }
        }
        if let Some(old) = self.saved_query_only {
            if let Err(e) = self.conn.pragma_update(None, "query_only", old) {
                tracing::error!(error = %e, "cannot restore query_only after tenant SQL");
            }
        }
        if let Err(e) = session::reset_session_pragmas(self.conn) {
            tracing::error!(error = %e, "cannot reset foreign_keys after tenant SQL");
        }
        notes::clear();
        budget::clear();
    }
}

/// SQLite authorizer callback: applies [`policy::decide`], recording the reason of a denial.
unsafe extern "C" fn authorize(
    _user: *mut c_void,
    code: c_int,
    arg1: *const c_char,
    arg2: *const c_char,
    db_name: *const c_char,
    _accessor: *const c_char,
) -> c_int {
    // SAFETY: SQLite passes NUL-terminated strings or NULL, valid for this call.
    let text = |p: *const c_char| -> Result<Option<&str>, ()> {
        if p.is_null() {
            Ok(None)
        } else {
            unsafe { CStr::from_ptr(p) }
                .to_str()
                .map(Some)
                .map_err(|_| ())
        }
    };
    let decision = std::panic::catch_unwind(|| match (text(arg1), text(arg2), text(db_name)) {
        (Ok(a1), Ok(a2), Ok(db)) => policy::decide_in(code, a1, a2, db),
        _ => Err("object names must be valid UTF-8".to_owned()),
    });
    match decision {
        Ok(Ok(())) => ffi::SQLITE_OK,
        Ok(Err(reason)) => {
            notes::record_denial(reason);
            ffi::SQLITE_DENY
        }
        Err(_) => ffi::SQLITE_DENY,
    }
}

/// SQLite progress handler: non-zero interrupts the running statement once the request is over
/// budget or cancelled.
unsafe extern "C" fn progress(_user: *mut c_void) -> c_int {
    std::panic::catch_unwind(|| budget::should_interrupt(Instant::now())).map_or(1, c_int::from)
}
