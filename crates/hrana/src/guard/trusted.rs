//! The authorizer every tenant connection carries when no [`super::Guard`] is active: trusted
//! tenantd code may touch the reserved `_tenantd_*` objects, but code a tenant planted in the
//! schema (a trigger or a view, which SQLite compiles into the trusted statement that fires or
//! reads it) may not. SQLite names the inner-most trigger or view responsible for each access
//! (the authorizer's last argument), so the rule is: reserved object + non-NULL accessor = deny.
//! A trusted statement that fires such code then fails to prepare (`SQLITE_AUTH`) instead of
//! leaking or rewriting reserved rows; code that leaves reserved objects alone still runs.

use std::ffi::{c_char, c_int, c_void, CStr};

use rusqlite::ffi;
use rusqlite::Connection;

use super::policy::{is_reserved, object_names};

/// Decides one authorizer call of trusted code: `Err(reason)` when a trigger or view
/// (`accessor`) would touch a reserved object. Pure; `code`, `arg1`, `arg2` as in
/// [`super::policy::decide`].
pub fn decide_trusted(
    code: i32,
    arg1: Option<&str>,
    arg2: Option<&str>,
    accessor: Option<&str>,
) -> Result<(), String> {
    let Some(accessor) = accessor else {
        return Ok(());
    };
    let reserved = object_names(code, arg1, arg2)
        .into_iter()
        .flatten()
        .find(|name| is_reserved(name));
    match reserved {
        Some(name) => Err(format!(
            "the trigger or view `{accessor}` may not access the reserved `{name}`"
        )),
        None => Ok(()),
    }
}

/// Installs the trusted authorizer on `conn`, replacing any other (the store does this at open,
/// a dropped [`super::Guard`] does it again). Never fails.
pub fn install_trusted_authorizer(conn: &Connection) {
    // SAFETY: `conn.handle()` is a live handle; the callback is a plain function without user
    // data, valid for the whole program.
    unsafe {
        ffi::sqlite3_set_authorizer(conn.handle(), Some(authorize_trusted), std::ptr::null_mut());
    }
}

/// SQLite authorizer callback for trusted code; see [`decide_trusted`].
unsafe extern "C" fn authorize_trusted(
    _user: *mut c_void,
    code: c_int,
    arg1: *const c_char,
    arg2: *const c_char,
    _db_name: *const c_char,
    accessor: *const c_char,
) -> c_int {
    if accessor.is_null() {
        return ffi::SQLITE_OK;
    }
    // SAFETY: SQLite passes NUL-terminated strings or NULL, valid for this call. Names that
    // are not UTF-8 cannot be reserved (the prefix is ASCII), so they compare as not reserved.
    let text = |p: *const c_char| -> Option<&str> {
        (!p.is_null())
            .then(|| unsafe { CStr::from_ptr(p) }.to_str().ok())
            .flatten()
    };
    let decision = std::panic::catch_unwind(|| {
        decide_trusted(
            code,
            text(arg1),
            text(arg2),
            Some(text(accessor).unwrap_or("?")),
        )
    });
    match decision {
        Ok(Ok(())) => ffi::SQLITE_OK,
        Ok(Err(reason)) => {
            tracing::warn!(%reason, "refused tenant schema code inside trusted SQL");
            ffi::SQLITE_DENY
        }
        Err(_) => ffi::SQLITE_DENY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_trusted_code_may_touch_reserved_objects() {
        for code in [ffi::SQLITE_READ, ffi::SQLITE_INSERT, ffi::SQLITE_DELETE] {
            assert!(decide_trusted(code, Some("_tenantd_hooks"), Some("secret"), None).is_ok());
        }
    }

    #[test]
    fn triggers_and_views_may_not_touch_reserved_objects() {
        for (code, a1, a2) in [
            (ffi::SQLITE_READ, Some("_tenantd_hooks"), Some("secret")),
            (ffi::SQLITE_INSERT, Some("_TENANTD_meta"), None),
            (ffi::SQLITE_UPDATE, Some("_tenantd_hooks"), Some("scheme")),
            (ffi::SQLITE_DELETE, Some("_tenantd_events"), None),
        ] {
            let err = decide_trusted(code, a1, a2, Some("steal")).unwrap_err();
            assert!(err.contains("`steal`"), "{err}");
        }
        assert!(decide_trusted(ffi::SQLITE_INSERT, Some("loot"), None, Some("steal")).is_ok());
        assert!(decide_trusted(ffi::SQLITE_READ, Some("orders"), Some("id"), Some("v")).is_ok());
    }
}
