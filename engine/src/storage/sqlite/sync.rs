//! Making commits durable off the writer's thread.
//!
//! The writer commits without fsync and hands each committed batch here.
//! A small pool of threads fsyncs the WAL file and answers the batches that
//! fsync covers: every batch committed before the fsync started. Two fsyncs
//! may run at once, so a batch committed while an fsync is in flight does
//! not wait for it to end before its own starts: its latency is one fsync,
//! not up to two. Nobody is answered before an fsync that began after their
//! batch was written.
//!
//! An fsync error is final, as in PostgreSQL: after a failed writeback the
//! kernel may drop the dirty pages and report the error only once, so a later
//! fsync that succeeds proves nothing about earlier frames. The batches it
//! covered and every later one are answered with the error, and the writer
//! refuses new work until the store is reopened.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use crate::storage::sqlite::{Committed, backend, finish};
use crate::storage::{Result, StorageError};

/// fsyncs that may run at once.
const SYNC_THREADS: usize = 2;

/// The writer's handle on the fsync threads.
pub(super) struct Syncer {
    shared: Arc<Shared>,
    threads: Vec<thread::JoinHandle<()>>,
}

struct Shared {
    wal_path: PathBuf,
    /// Lets a test hold the fsyncs back.
    #[cfg(test)]
    gate: Arc<Gate>,
    state: Mutex<State>,
    /// Signalled when a batch arrives or the writer closes.
    work: Condvar,
}

#[derive(Default)]
struct State {
    /// Committed batches not yet answered, oldest first, by sequence.
    unanswered: VecDeque<(u64, Committed)>,
    /// Sequence of the last batch committed.
    last_committed: u64,
    /// Highest sequence an fsync already started covers.
    covered: u64,
    closed: bool,
    /// Set by the first failed fsync; from then on nothing is durable.
    failed: Option<String>,
}

impl Syncer {
    /// Starts the fsync threads for the WAL at `wal_path`.
    pub(super) fn start(wal_path: PathBuf) -> Result<Syncer> {
        let shared = Arc::new(Shared {
            wal_path,
            #[cfg(test)]
            gate: Arc::default(),
            state: Mutex::new(State::default()),
            work: Condvar::new(),
        });
        let threads = (0..SYNC_THREADS)
            .map(|_| {
                let shared = shared.clone();
                thread::Builder::new()
                    .name("sqlite-fsync".to_owned())
                    .spawn(move || run(&shared))
            })
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| backend("start the fsync threads", e))?;
        Ok(Syncer { shared, threads })
    }

    /// Hands over a committed batch; its callers are answered once durable.
    pub(super) fn submit(&self, committed: Committed) {
        let mut state = self.shared.state.lock().expect("sync state lock");
        state.last_committed += 1;
        let seq = state.last_committed;
        state.unanswered.push_back((seq, committed));
        drop(state);
        self.shared.work.notify_one();
    }

    /// The error of the first failed fsync, if one failed.
    pub(super) fn failure(&self) -> Option<String> {
        self.shared
            .state
            .lock()
            .expect("sync state lock")
            .failed
            .clone()
    }

    /// The gate that holds this syncer's fsyncs back while a test says so.
    #[cfg(test)]
    pub(super) fn gate(&self) -> Arc<Gate> {
        self.shared.gate.clone()
    }

    /// Answers what is left and stops the threads.
    pub(super) fn close(self) {
        self.shared.state.lock().expect("sync state lock").closed = true;
        self.shared.work.notify_all();
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

fn run(shared: &Shared) {
    // Opened up front: a descriptor opened after a failed writeback would not
    // see the error.
    let mut wal: Option<std::fs::File> = std::fs::File::open(&shared.wal_path).ok();
    loop {
        let upto = {
            let mut state = shared.state.lock().expect("sync state lock");
            while state.last_committed <= state.covered && !state.closed {
                state = shared.work.wait(state).expect("sync state lock");
            }
            if state.last_committed <= state.covered {
                return; // closed, and every batch is covered by a running or finished fsync
            }
            state.covered = state.last_committed;
            state.last_committed
        };
        #[cfg(test)]
        shared.gate.pass();
        let synced = sync(&shared.wal_path, &mut wal)
            .err()
            .map(|e| format!("{e}: {}", source_chain(&e)));
        let (durable, error): (Vec<Committed>, Option<String>) = {
            let mut state = shared.state.lock().expect("sync state lock");
            if let Some(error) = synced {
                tracing::error!(cause = %error, "fsync of the WAL failed; the store refuses writes until reopened");
                state.failed.get_or_insert(error);
            }
            let n = state
                .unanswered
                .iter()
                .take_while(|(seq, _)| *seq <= upto)
                .count();
            let durable = state
                .unanswered
                .drain(..n)
                .map(|(_, committed)| committed)
                .collect();
            (durable, state.failed.clone())
        };
        for committed in durable {
            finish(committed, error.as_deref());
        }
    }
}

/// Holds fsyncs back while closed, so a test can see what a caller hears
/// before its commit is durable.
#[cfg(test)]
#[derive(Default)]
pub(super) struct Gate {
    closed: Mutex<bool>,
    opened: Condvar,
}

#[cfg(test)]
impl Gate {
    pub(super) fn close(&self) {
        *self.closed.lock().expect("gate lock") = true;
    }

    pub(super) fn open(&self) {
        *self.closed.lock().expect("gate lock") = false;
        self.opened.notify_all();
    }

    fn pass(&self) {
        let mut closed = self.closed.lock().expect("gate lock");
        while *closed {
            closed = self.opened.wait(closed).expect("gate lock");
        }
    }
}

fn source_chain(error: &StorageError) -> String {
    let mut chain = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        chain.push(cause.to_string());
        source = cause.source();
    }
    chain.join(": ")
}

fn sync(path: &PathBuf, wal: &mut Option<std::fs::File>) -> Result<()> {
    if wal.is_none() {
        *wal = Some(std::fs::File::open(path).map_err(|e| backend("open the WAL to fsync it", e))?);
    }
    // fdatasync applies to the file, whichever descriptor asks: the frames
    // SQLite wrote through its own descriptor are covered.
    wal.as_ref()
        .expect("opened above")
        .sync_data()
        .map_err(|e| StorageError::Backend {
            op: "fsync the WAL",
            source: Box::new(e),
        })
}
