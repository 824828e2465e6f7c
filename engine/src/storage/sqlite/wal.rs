//! Keeping the write-ahead log bounded.
//!
//! Commits append frames to the WAL. A checkpoint copies them into the
//! database file, and the first write transaction after a checkpoint that
//! copied the *whole* log restarts it from its beginning: later commits
//! overwrite pages the file system already holds, and the file is cut back
//! to `wal_bytes_max` (`journal_size_limit`). Appending instead costs the
//! file system a block allocation per page and a journal commit per
//! fdatasync, and memory for the pages it caches.
//!
//! Under steady load a checkpoint from another connection never copies the
//! whole log: the writer appends while it runs. Left to itself the WAL grew
//! to 500 MB in a 3-second benchmark. So the work is split in two:
//! - the checkpointer thread ([`start_checkpointer`]) copies in the
//!   background, never blocking the writer: after every quarter of the
//!   restart size, when the writer asks, or a second after the last commit
//!   when load is light. It fsyncs the database file after each pass;
//! - the writer ([`WalLimit::after_commit`]), once the log holds half of
//!   `wal_bytes_max`, checkpoints the frames the background pass has not
//!   copied yet itself, between two transactions, so that its next
//!   transaction restarts the log. It pays for those few frames and two
//!   fsyncs (the log's, then the database file's: SQLite's order for a safe
//!   restart), once per half `wal_bytes_max` of commits.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::storage::Result;
use crate::storage::sqlite::{SqliteOptions, WriterCounters, backend, open_connection};

/// How often the checkpointer looks at the writer's progress.
const CHECKPOINT_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Longest a committed transaction waits for a checkpoint when load is light.
const CHECKPOINT_INTERVAL_MAX: Duration = Duration::from_secs(1);
/// Fewest frames the log restarts at, however small `wal_bytes_max` is.
const RESTART_FRAMES_MIN: u64 = 16;

/// Frames (pages) in the log after which the writer restarts it.
fn restart_frames(wal_bytes_max: u64, page_size: u64) -> u64 {
    (wal_bytes_max / 2 / page_size.max(1)).max(RESTART_FRAMES_MIN)
}

/// Reads the database's page size.
fn page_size(conn: &Connection) -> Result<u64> {
    conn.query_row("PRAGMA page_size", [], |row| row.get::<_, i64>(0))
        .map(|n| n.max(1) as u64)
        .map_err(|e| backend("read the page size", e))
}

/// The writer's side: watches the log's length and restarts it.
pub(super) struct WalLimit {
    restart_frames: u64,
    /// Log length at which the writer acts next.
    next_at: u64,
    /// Log length after the last commit, to see restarts.
    last_frames: u64,
    /// Set once the writer asked the checkpointer for a pass: the number of
    /// passes it had finished then.
    asked_at_pass: Option<u64>,
    /// Asks the checkpointer for a pass now.
    poke: SyncSender<()>,
    /// The writer runs with `synchronous = OFF` (its fsyncs are the
    /// syncer's), which a checkpoint must not: it would restart the log
    /// before the database file holds its pages.
    sync_off: bool,
}

/// How the writer's own checkpoint went.
#[derive(Debug, PartialEq, Eq)]
enum CatchUp {
    /// The whole log is in the database file: the next transaction
    /// restarts it (unless a reader still uses it).
    Copied,
    /// Another checkpoint was running.
    Busy,
    /// Not all of it could be copied, or an error (logged).
    Failed,
}

/// Makes the channel the writer pokes the checkpointer through.
pub(super) fn poke_channel() -> (SyncSender<()>, Receiver<()>) {
    std::sync::mpsc::sync_channel(1)
}

impl WalLimit {
    /// Starts watching the writer connection's log: SQLite reports its
    /// length after every commit (`sqlite3_wal_hook`). Call after the
    /// connection's pragmas: `wal_autocheckpoint` replaces the hook.
    pub(super) fn watch(
        conn: &mut Connection,
        options: &SqliteOptions,
        counters: &Arc<WriterCounters>,
        poke: SyncSender<()>,
    ) -> Result<WalLimit> {
        let restart_frames = restart_frames(options.wal_bytes_max, page_size(conn)?);
        let frames = counters.clone();
        conn.wal_hook(Some(
            move |_: &mut rusqlite::hooks::Wal, n_frames: std::ffi::c_int| {
                frames
                    .wal_frames
                    .store(n_frames.max(0) as u64, Ordering::Relaxed);
                Ok(())
            },
        ))
        .map_err(|e| backend("watch the WAL", e))?;
        Ok(WalLimit {
            restart_frames,
            next_at: restart_frames,
            last_frames: 0,
            asked_at_pass: None,
            poke,
            sync_off: options.fsync_on_commit,
        })
    }

    /// Runs after each commit. Once the log is long enough, asks the
    /// checkpointer for a pass; once that pass is done, checkpoints what
    /// it left (the commits made while it ran) so that the next transaction
    /// restarts the log.
    pub(super) fn after_commit(&mut self, conn: &Connection, counters: &WriterCounters) {
        let frames = counters.wal_frames.load(Ordering::Relaxed);
        if frames < self.last_frames {
            counters.n_wal_restarts.fetch_add(1, Ordering::Relaxed);
            self.next_at = self.restart_frames;
            self.asked_at_pass = None;
        }
        self.last_frames = frames;
        if frames < self.next_at {
            return;
        }
        let passes = counters.n_checkpoints.load(Ordering::Relaxed);
        let ready = match self.asked_at_pass {
            None => match self.poke.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) => {
                    self.asked_at_pass = Some(passes);
                    false
                }
                // No checkpointer: the writer copies it all itself.
                Err(TrySendError::Disconnected(())) => true,
            },
            // A checkpointer that takes longer than another half log to
            // finish its pass is not waited for.
            Some(asked) => passes > asked || frames >= self.next_at + self.restart_frames,
        };
        if !ready || self.catch_up(conn) == CatchUp::Busy {
            // Busy: the checkpointer is in a pass; tried again after the
            // next commit, at the cost of a lock attempt.
            return;
        }
        // Otherwise the log grows a little before the next try: a reader
        // holding an old snapshot can keep it from restarting, and every
        // try costs two fsyncs.
        self.next_at = frames + (self.restart_frames / 8).max(1);
        self.asked_at_pass = None;
    }

    fn catch_up(&self, conn: &Connection) -> CatchUp {
        if self.sync_off && conn.execute_batch("PRAGMA synchronous = NORMAL").is_err() {
            return CatchUp::Failed;
        }
        let copied = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
            ))
        });
        if self.sync_off
            && let Err(e) = conn.execute_batch("PRAGMA synchronous = OFF")
        {
            // Still safe: the writer's commits fsync themselves until then.
            tracing::warn!(cause = %e, "the writer could not turn its own fsyncs off again");
        }
        match copied {
            Ok((0, log, done)) if log == done => CatchUp::Copied,
            Ok((1, _, _)) => CatchUp::Busy,
            Ok((_, log, done)) => {
                tracing::debug!(
                    log,
                    done,
                    "the WAL could not be copied whole; it restarts later"
                );
                CatchUp::Failed
            }
            Err(e) => {
                tracing::warn!(cause = %e, "checkpoint failed; the WAL grows until the next one succeeds");
                CatchUp::Failed
            }
        }
    }
}

/// Checkpoints from a thread of its own, so that the writer seldom pays for
/// it (the writer's automatic checkpoints are off). It runs when the writer
/// asks (`poke`), after every quarter of the restart size of new frames, or
/// a second after the last commit when load is light: a checkpoint fsyncs
/// the database file, and frequent ones slow the writer's own fsyncs down.
/// `PASSIVE` never blocks the writer or readers.
pub(super) fn start_checkpointer(
    path: PathBuf,
    options: &SqliteOptions,
    counters: Arc<WriterCounters>,
    poke: Receiver<()>,
    stop: Arc<AtomicBool>,
) -> Result<thread::JoinHandle<()>> {
    let conn = open_connection(Some(&path), options, false)?;
    let database = std::fs::File::open(&path).map_err(|e| backend("open the database file", e))?;
    let every = (restart_frames(options.wal_bytes_max, page_size(&conn)?) / 4).max(1);
    thread::Builder::new()
        .name("sqlite-ckpt".to_owned())
        .spawn(move || {
            let mut checkpointed_at = 0;
            // Log length when the last pass started: it copied up to there.
            let mut copied_to = 0;
            let mut since = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let asked = match poke.recv_timeout(CHECKPOINT_POLL_INTERVAL) {
                    Ok(()) => true,
                    Err(RecvTimeoutError::Timeout) => false,
                    Err(RecvTimeoutError::Disconnected) => {
                        thread::sleep(CHECKPOINT_POLL_INTERVAL);
                        false
                    }
                };
                let committed = counters.n_transactions.load(Ordering::Relaxed);
                let frames = counters.wal_frames.load(Ordering::Relaxed);
                if frames < copied_to {
                    copied_to = 0; // the log restarted
                }
                let due = asked
                    || frames >= copied_to + every
                    || (committed > checkpointed_at && since.elapsed() >= CHECKPOINT_INTERVAL_MAX);
                if !due {
                    continue;
                }
                checkpointed_at = committed;
                copied_to = frames;
                since = Instant::now();
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(cause = %e, "checkpoint failed; the WAL grows until the next one succeeds");
                }
                // Under load SQLite leaves the database file unsynced after
                // a pass (the log grew while it ran), and the writer's next
                // catch-up would pay for writing it all out. An error here is
                // final, as the syncer's are: the pages it reports are
                // already counted as copied, so the writer stops writing
                // before any later commit could restart the log over them.
                if let Err(e) = database.sync_data() {
                    tracing::error!(cause = %e, "fsync of the database file failed after a checkpoint; refusing writes");
                    let _ = counters
                        .checkpoint_failure
                        .set(format!("fsync of the database file after a checkpoint: {e}"));
                    break;
                }
                counters.n_checkpoints.fetch_add(1, Ordering::Relaxed);
            }
        })
        .map_err(|e| backend("start the checkpointer thread", e))
}

#[cfg(test)]
mod tests {
    use super::restart_frames;

    #[test]
    fn the_log_restarts_at_half_its_size_limit_and_never_at_nothing() {
        assert_eq!(restart_frames(64 * 1024 * 1024, 4096), 8192);
        assert_eq!(restart_frames(1024 * 1024, 4096), 128);
        assert_eq!(restart_frames(0, 4096), 16);
        assert_eq!(restart_frames(1024, 0), 512);
    }
}
