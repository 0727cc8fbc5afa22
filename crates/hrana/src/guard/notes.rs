//! Per-thread notes that carry *why* SQLite refused something from the guard's callbacks to the
//! executor's error messages. SQLite only reports "not authorized" or "interrupted"; the
//! authorizer and progress handler run synchronously on the thread that prepares or steps the
//! statement, so the executor, on that same thread, reads the note right after the failure.

use std::cell::RefCell;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Notes {
    denial: Option<String>,
    budget_exceeded: Option<Duration>,
    statement_start: Option<Instant>,
}

thread_local! {
    static NOTES: RefCell<Notes> = RefCell::new(Notes::default());
}

/// Marks the start of a statement: the time budget counts from here. Clears stale notes.
pub(crate) fn statement_started(now: Instant) {
    NOTES.with(|n| {
        let mut n = n.borrow_mut();
        n.denial = None;
        n.budget_exceeded = None;
        n.statement_start = Some(now);
    });
}

/// Forgets the statement clock (the guard is gone).
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

/// Called by the progress handler: true (interrupt) once the running statement is over budget.
pub(crate) fn over_budget(budget: Duration, now: Instant) -> bool {
    NOTES.with(|n| {
        let mut n = n.borrow_mut();
        let over = n
            .statement_start
            .is_some_and(|start| now.duration_since(start) >= budget);
        if over {
            n.budget_exceeded = Some(budget);
        }
        over
    })
}

/// The budget that interrupted the last statement on this thread, if any.
pub(crate) fn take_budget_exceeded() -> Option<Duration> {
    NOTES.with(|n| n.borrow_mut().budget_exceeded.take())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_counts_from_statement_start() {
        let t0 = Instant::now();
        statement_started(t0);
        let budget = Duration::from_millis(100);
        assert!(!over_budget(budget, t0 + Duration::from_millis(99)));
        assert_eq!(take_budget_exceeded(), None);
        assert!(over_budget(budget, t0 + Duration::from_millis(100)));
        assert_eq!(take_budget_exceeded(), Some(budget));
        assert_eq!(take_budget_exceeded(), None);
        clear();
        assert!(
            !over_budget(budget, t0 + Duration::from_secs(10)),
            "no statement, no budget"
        );
    }

    #[test]
    fn denial_is_taken_once_and_cleared_by_a_new_statement() {
        record_denial("no".into());
        assert_eq!(take_denial().as_deref(), Some("no"));
        assert_eq!(take_denial(), None);
        record_denial("stale".into());
        statement_started(Instant::now());
        assert_eq!(take_denial(), None);
    }
}
