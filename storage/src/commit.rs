//! Group commit: writers append their WAL records under the engine lock
//! without syncing, then wait here until the log is durable past their
//! record's LSN. The first waiter to find no sync running becomes the
//! leader: it syncs everything appended so far (one `fsync` for every
//! writer that appended meanwhile) and wakes the others; writers that
//! arrive during a sync wait for it and the next leader covers them.
//!
//! A failed sync poisons the log: the page cache may have dropped the dirty
//! pages, so no later sync could prove them durable (PostgreSQL stops for
//! the same reason). Waiters and every later write get the error; the
//! database needs a restart, which replays what did reach the disk.

use std::sync::{Condvar, Mutex, MutexGuard};

use crate::error::{Error, Result};

/// A write's place in the log: durable once [`GroupCommit`] has synced past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct CommitTicket(pub(crate) u64);

#[derive(Default)]
struct CommitState {
    /// Every record up to this LSN is synced.
    durable: u64,
    /// A leader is syncing now.
    syncing: bool,
    /// Why the log is poisoned, once a sync failed.
    failed: Option<String>,
}

#[derive(Default)]
pub(crate) struct GroupCommit {
    state: Mutex<CommitState>,
    synced: Condvar,
}

impl GroupCommit {
    fn lock(&self) -> MutexGuard<'_, CommitState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An error if a sync has failed (writes are refused from then on).
    pub(crate) fn check(&self) -> Result<()> {
        match &self.lock().failed {
            Some(why) => Err(poisoned(why)),
            None => Ok(()),
        }
    }

    /// Refuse every later write: the log holds something the memtables do
    /// not (a committed group that could not be applied); a restart replays it.
    pub(crate) fn poison(&self, why: String) {
        tracing::error!(why, "refusing writes until restart");
        let mut st = self.lock();
        st.failed.get_or_insert(why);
        self.synced.notify_all();
    }

    /// Return once the log is durable up to `ticket`. `sync` makes the log
    /// durable up to the LSN it returns (everything appended when it started).
    pub(crate) fn wait(&self, ticket: CommitTicket, sync: impl Fn() -> Result<u64>) -> Result<()> {
        let mut st = self.lock();
        loop {
            if st.durable >= ticket.0 {
                return Ok(());
            }
            if let Some(why) = &st.failed {
                return Err(poisoned(why));
            }
            if st.syncing {
                st = self.synced.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            st.syncing = true;
            drop(st);
            let result = sync();
            st = self.lock();
            st.syncing = false;
            match result {
                Ok(lsn) => st.durable = st.durable.max(lsn),
                // Closed under the writer (close, DROP DATABASE): nothing to poison.
                Err(Error::Closed) => {
                    self.synced.notify_all();
                    return Err(Error::Closed);
                }
                Err(e) => {
                    tracing::error!(error = %e, "WAL sync failed; refusing writes until restart");
                    st.failed = Some(e.to_string());
                }
            }
            self.synced.notify_all();
        }
    }
}

fn poisoned(why: &str) -> Error {
    Error::Io {
        path: "wal".into(),
        source: std::io::Error::other(format!("an earlier WAL sync failed ({why}); restart the server to recover")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn concurrent_waiters_share_syncs() {
        let commit = Arc::new(GroupCommit::default());
        let appended = Arc::new(AtomicU64::new(0));
        let syncs = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (commit, appended, syncs) = (commit.clone(), appended.clone(), syncs.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let lsn = appended.fetch_add(1, Ordering::SeqCst) + 1;
                        commit
                            .wait(CommitTicket(lsn), || {
                                syncs.fetch_add(1, Ordering::SeqCst);
                                let upto = appended.load(Ordering::SeqCst);
                                std::thread::sleep(std::time::Duration::from_millis(1));
                                Ok(upto)
                            })
                            .unwrap();
                        assert!(commit.lock().durable >= lsn);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let syncs = syncs.load(Ordering::SeqCst);
        assert!(syncs < 800, "{syncs} syncs for 800 writes: nothing was shared");
    }

    #[test]
    fn a_failed_sync_poisons_the_log() {
        let commit = GroupCommit::default();
        assert!(matches!(commit.wait(CommitTicket(1), || Err(Error::Closed)), Err(Error::Closed)));
        assert!(commit.check().is_ok(), "a closed engine is not a failed sync");
        let err = commit.wait(CommitTicket(1), || Err(Error::io("wal", std::io::Error::other("disk gone")))).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(commit.check().is_err());
        assert!(commit.wait(CommitTicket(2), || Ok(2)).is_err());
    }
}
