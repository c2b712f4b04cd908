//! Advisory locks (`pg_advisory_lock` and friends): one table for the
//! server process, so two sessions exclude each other as on PostgreSQL.
//! A lock is re-entrant for its holder (counted), exclusive or shared.
//! Arbor does not make a statement wait for a lock another session holds:
//! `pg_advisory_lock` then fails with 55P03 (`pg_try_advisory_lock` answers
//! false, as on PostgreSQL). Session locks go when the session ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// A lock key: one bigint, or two ints (kept apart as PostgreSQL does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    One(i64),
    Two(i32, i32),
}

#[derive(Default)]
struct Held {
    /// Holder and count of the exclusive lock.
    exclusive: Option<(u64, u64)>,
    /// Count per holder of the shared lock.
    shared: HashMap<u64, u64>,
}

fn table() -> &'static Mutex<HashMap<Key, Held>> {
    static TABLE: std::sync::OnceLock<Mutex<HashMap<Key, Held>>> = std::sync::OnceLock::new();
    TABLE.get_or_init(Default::default)
}

/// One session's handle on the lock table; dropping it releases its locks.
pub(crate) struct Locks {
    id: u64,
    /// Transaction-scoped locks taken (key, shared), released at transaction end.
    xact: Mutex<Vec<(Key, bool)>>,
}

impl Default for Locks {
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Locks { id: NEXT.fetch_add(1, Ordering::Relaxed), xact: Mutex::new(Vec::new()) }
    }
}

fn poisoned() -> Error {
    Error::Unsupported("internal error: advisory lock table poisoned".into())
}

impl Locks {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Take `key`; `Ok(false)` when another session holds it in a conflicting mode.
    pub(crate) fn try_lock(&self, key: Key, shared: bool, xact: bool) -> Result<bool> {
        let mut t = table().lock().map_err(|_| poisoned())?;
        let held = t.entry(key).or_default();
        let taken = if shared {
            match held.exclusive {
                Some((holder, _)) if holder != self.id => false,
                _ => {
                    *held.shared.entry(self.id).or_default() += 1;
                    true
                }
            }
        } else {
            let others_share = held.shared.keys().any(|h| *h != self.id);
            match &mut held.exclusive {
                Some((holder, n)) if *holder == self.id => {
                    *n += 1;
                    true
                }
                Some(_) => false,
                None if others_share => false,
                None => {
                    held.exclusive = Some((self.id, 1));
                    true
                }
            }
        };
        if taken && xact {
            self.xact.lock().map_err(|_| poisoned())?.push((key, shared));
        }
        Ok(taken)
    }

    /// `pg_advisory_lock`: take `key` or fail with 55P03.
    pub(crate) fn lock(&self, key: Key, shared: bool, xact: bool) -> Result<()> {
        if self.try_lock(key, shared, xact)? {
            Ok(())
        } else {
            Err(Error::LockNotAvailable(format!(
                "could not obtain advisory lock {key:?}: another session holds it (Arbor does not wait for advisory locks)"
            )))
        }
    }

    /// Release one hold on `key`; `false` when this session did not hold it.
    pub(crate) fn unlock(&self, key: Key, shared: bool) -> Result<bool> {
        let mut t = table().lock().map_err(|_| poisoned())?;
        let Some(held) = t.get_mut(&key) else { return Ok(false) };
        let released = if shared {
            match held.shared.get_mut(&self.id) {
                Some(n) => {
                    *n -= 1;
                    if *n == 0 {
                        held.shared.remove(&self.id);
                    }
                    true
                }
                None => false,
            }
        } else {
            match &mut held.exclusive {
                Some((holder, n)) if *holder == self.id => {
                    *n -= 1;
                    if *n == 0 {
                        held.exclusive = None;
                    }
                    true
                }
                _ => false,
            }
        };
        if held.exclusive.is_none() && held.shared.is_empty() {
            t.remove(&key);
        }
        Ok(released)
    }

    /// `pg_advisory_unlock_all`: every session-level lock of this session.
    pub(crate) fn unlock_all(&self) -> Result<()> {
        let mut t = table().lock().map_err(|_| poisoned())?;
        t.retain(|_, held| {
            if matches!(held.exclusive, Some((h, _)) if h == self.id) {
                held.exclusive = None;
            }
            held.shared.remove(&self.id);
            held.exclusive.is_some() || !held.shared.is_empty()
        });
        drop(t);
        self.xact.lock().map_err(|_| poisoned())?.clear();
        Ok(())
    }

    /// The end of a transaction: its transaction-scoped locks go.
    pub(crate) fn end_transaction(&self) -> Result<()> {
        let taken = std::mem::take(&mut *self.xact.lock().map_err(|_| poisoned())?);
        for (key, shared) in taken {
            self.unlock(key, shared)?;
        }
        Ok(())
    }
}

impl Drop for Locks {
    fn drop(&mut self) {
        let _ = self.unlock_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_exclude_each_other() {
        let (a, b) = (Locks::new(), Locks::new());
        let k = Key::One(9_000_001);
        assert!(a.try_lock(k, false, false).unwrap());
        assert!(a.try_lock(k, false, false).unwrap(), "re-entrant for its holder");
        assert!(!b.try_lock(k, false, false).unwrap());
        assert!(!b.try_lock(k, true, false).unwrap());
        assert!(matches!(b.lock(k, false, false), Err(Error::LockNotAvailable(_))));
        assert!(!b.unlock(k, false).unwrap(), "b never held it");
        assert!(a.unlock(k, false).unwrap());
        assert!(!b.try_lock(k, false, false).unwrap(), "a still holds it once");
        assert!(a.unlock(k, false).unwrap());
        assert!(!a.unlock(k, false).unwrap());
        assert!(b.try_lock(k, true, false).unwrap());
        assert!(a.try_lock(k, true, false).unwrap(), "shared with shared");
        assert!(!a.try_lock(k, false, false).unwrap());
        drop(b);
        assert!(a.try_lock(k, false, false).unwrap(), "b's locks went with it");
        a.unlock_all().unwrap();
        let c = Locks::new();
        assert!(c.try_lock(Key::Two(1, 2), false, true).unwrap());
        assert!(!a.try_lock(Key::Two(1, 2), false, false).unwrap());
        assert!(a.try_lock(Key::One(1 << 32 | 2), false, false).unwrap(), "two-int keys are apart from bigint keys");
        c.end_transaction().unwrap();
        assert!(a.try_lock(Key::Two(1, 2), false, false).unwrap());
    }
}
