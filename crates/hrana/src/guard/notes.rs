//! Per-thread notes that carry *why* SQLite refused something from the guard's authorizer to
//! the executor's error messages. SQLite only reports "not authorized"; the authorizer runs
//! synchronously on the thread that prepares the statement, so the executor, on that same
//! thread, reads the note right after the failure. (Why a statement was interrupted is kept
//! with the time budget, in `budget.rs`.)

use std::cell::RefCell;

#[derive(Default)]
struct Notes {
    denial: Option<String>,
}

thread_local! {
    static NOTES: RefCell<Notes> = RefCell::new(Notes::default());
}

/// Marks the start of a statement: clears stale notes.
pub(crate) fn statement_started() {
    NOTES.with(|n| n.borrow_mut().denial = None);
}

/// Forgets every note (the guard is gone).
pub(crate) fn clear() {
    NOTES.with(|n| *n.borrow_mut() = Notes::default());
}

/// Called by the authorizer when it denies.
pub(crate) fn record_denial(reason: String) {
    NOTES.with(|n| n.borrow_mut().denial = Some(reason));
}

/// The reason of the last denial on this thread, if any.
pub(crate) fn take_denial() -> Option<String> {
    NOTES.with(|n| n.borrow_mut().denial.take())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denial_is_taken_once_and_cleared_by_a_new_statement() {
        record_denial("no".into());
        assert_eq!(take_denial().as_deref(), Some("no"));
        assert_eq!(take_denial(), None);
        record_denial("stale".into());
        statement_started();
        assert_eq!(take_denial(), None);
    }
}
