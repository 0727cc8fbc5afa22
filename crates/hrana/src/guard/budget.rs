//! The time budget of one request's tenant SQL, and its cancellation when the client is gone.
//!
//! A [`super::Guard`] lives for one HTTP request, so its budget is the request's: one deadline,
//! fixed when the guard is entered, covers every statement run under it (every request of a
//! pipeline, every step of a batch, every statement of `POST /`). The progress handler
//! interrupts the running statement once the deadline passes or the request's [`Cancel`] flag
//! is set, and the executor checks before each statement, so once the budget is spent the later
//! statements fail at once instead of each running for a full budget.
//!
//! The state is per thread: the guard, the executor and SQLite's callbacks run on the same
//! (blocking) thread, as for the denial notes.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A request's cancellation flag: set it (from any thread) and the tenant SQL running for that
/// request is interrupted at its next progress check. Clones share the flag.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the flag: the request's SQL stops at the next check. Never fails.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// True once [`Cancel::cancel`] was called on any clone.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// A guard that sets the flag when dropped unless disarmed: hold it in the request's
    /// future, so a client that disconnects (the future is dropped) stops the request's SQL.
    pub fn on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(Some(self.clone()))
    }
}

/// Sets its [`Cancel`] flag when dropped, unless [`CancelOnDrop::disarm`]ed first.
#[derive(Debug)]
pub struct CancelOnDrop(Option<Cancel>);

impl CancelOnDrop {
    /// The request finished normally: dropping this no longer cancels.
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(flag) = self.0.take() {
            flag.cancel();
        }
    }
}

/// Why the guard interrupted a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interrupt {
    /// The request's time budget is spent.
    Budget(Duration),
    /// The request was cancelled (its client is gone).
    Cancelled,
}

struct Active {
    budget: Duration,
    /// `None`: the budget is too large to represent (never due).
    deadline: Option<Instant>,
    cancel: Cancel,
    interrupted: Option<Interrupt>,
}

thread_local! {
    static ACTIVE: RefCell<Option<Active>> = const { RefCell::new(None) };
}

/// Starts a request's budget on this thread: `budget` from `now`, or sooner if `cancel` is set.
pub(crate) fn start(budget: Duration, cancel: Cancel, now: Instant) {
    ACTIVE.with(|a| {
        *a.borrow_mut() = Some(Active {
            budget,
            deadline: now.checked_add(budget),
            cancel,
            interrupted: None,
        })
    });
}

/// Ends the request's budget on this thread (the guard is gone).
pub(crate) fn clear() {
    ACTIVE.with(|a| *a.borrow_mut() = None);
}

fn due(active: &Active, now: Instant) -> Option<Interrupt> {
    if active.cancel.is_cancelled() {
        Some(Interrupt::Cancelled)
    } else if active.deadline.is_some_and(|d| now >= d) {
        Some(Interrupt::Budget(active.budget))
    } else {
        None
    }
}

/// Before a statement: clears stale notes; `Err` if the request is already over budget or cancelled (the statement
/// must not start). Without a guard on this thread there is no budget.
pub(crate) fn statement_starting(now: Instant) -> Result<(), Interrupt> {
    super::notes::statement_started();
    check(now)
}

fn check(now: Instant) -> Result<(), Interrupt> {
    ACTIVE.with(|a| {
        let mut a = a.borrow_mut();
        let Some(active) = a.as_mut() else {
            return Ok(());
        };
        active.interrupted = None;
        due(active, now).map_or(Ok(()), Err)
    })
}

/// Called by the progress handler: true (interrupt) once over budget or cancelled; records why.
pub(crate) fn should_interrupt(now: Instant) -> bool {
    ACTIVE.with(|a| {
        let mut a = a.borrow_mut();
        let Some(active) = a.as_mut() else {
            return false;
        };
        active.interrupted = due(active, now);
        active.interrupted.is_some()
    })
}

/// Why the guard interrupted the last statement on this thread, if it did.
pub(crate) fn take_interrupt() -> Option<Interrupt> {
    ACTIVE.with(|a| a.borrow_mut().as_mut().and_then(|a| a.interrupted.take()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_deadline_covers_every_statement_of_the_request() {
        let t0 = Instant::now();
        let budget = Duration::from_millis(100);
        start(budget, Cancel::new(), t0);
        assert_eq!(check(t0 + Duration::from_millis(60)), Ok(()));
        assert!(!should_interrupt(t0 + Duration::from_millis(99)));
        assert_eq!(take_interrupt(), None);
        // A second statement does not restart the clock.
        assert_eq!(check(t0 + Duration::from_millis(70)), Ok(()));
        assert!(should_interrupt(t0 + Duration::from_millis(100)));
        assert_eq!(take_interrupt(), Some(Interrupt::Budget(budget)));
        assert_eq!(take_interrupt(), None);
        assert_eq!(
            check(t0 + Duration::from_millis(101)),
            Err(Interrupt::Budget(budget)),
            "later statements fail before they start"
        );
        clear();
        assert_eq!(
            check(t0 + Duration::from_secs(10)),
            Ok(()),
            "no guard, no budget"
        );
        assert!(!should_interrupt(t0 + Duration::from_secs(10)));
    }

    #[test]
    fn cancelling_interrupts_before_the_deadline() {
        let t0 = Instant::now();
        let cancel = Cancel::new();
        start(Duration::from_secs(60), cancel.clone(), t0);
        assert!(!should_interrupt(t0));
        let dropped = cancel.on_drop();
        drop(dropped);
        assert!(should_interrupt(t0));
        assert_eq!(take_interrupt(), Some(Interrupt::Cancelled));
        assert_eq!(check(t0), Err(Interrupt::Cancelled));
        clear();

        let kept = Cancel::new();
        kept.on_drop().disarm();
        assert!(!kept.is_cancelled(), "a disarmed guard does not cancel");
    }
}
