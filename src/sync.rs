//! Locks that outlive a panicking holder.

use std::sync::{Mutex, MutexGuard};

/// Lock `m`, taking the data over from a holder that panicked: the state a live server or a
/// registry shares is plain data whose every update is complete, and one failed call must not
/// stop the others.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
