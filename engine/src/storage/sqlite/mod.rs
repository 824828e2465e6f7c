//! The SQLite backend: one writer thread that group-commits, plus a pool of
//! reader connections.
//!
//! Every write is a job sent to the writer thread. The writer takes all jobs
//! waiting (up to a bound), runs them in one transaction (each inside its own
//! savepoint when it needs atomicity), commits once, and only then answers
//! every caller. With `synchronous=FULL` the commit is on disk before any
//! caller hears "ok" (invariant: nothing acknowledged is lost), and the cost
//! of one fsync is shared by every job of the batch. Readers use their own
//! connections on WAL snapshots, so they never block the writer.
//!
//! A store opened without a path lives in memory (non-durable queues); there
//! the writer's connection is the only one, so reads run as writer jobs.

mod index;
mod queue;
mod spans;
mod sync;
mod wal;

use std::cell::{RefCell, RefMut};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use rusqlite::{Connection, OpenFlags, Statement};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::storage::sqlite::index::{Index, WaiterReply, answer};
use crate::storage::sqlite::sync::Syncer;
use crate::storage::{
    Answered, FlowSummaryRow, Result, SpanBatch, SpanKey, SpanRecord, SpanStore, StorageError,
};

/// How the SQLite store is opened.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// Database file; `None` keeps everything in memory.
    pub path: Option<PathBuf>,
    /// `true`: every commit is fsynced before it is acknowledged
    /// (`synchronous=FULL`). `false`: commits are acknowledged once in the WAL
    /// and fsynced at checkpoints (`synchronous=NORMAL`); a power loss can
    /// lose the last commits, a process crash cannot.
    pub fsync_on_commit: bool,
    /// Most jobs the writer folds into one transaction.
    pub writer_batch_jobs_max: usize,
    /// Most jobs waiting for the writer before senders wait.
    pub writer_queue_jobs_max: usize,
    /// Most reader connections.
    pub readers_max: usize,
    /// Size the WAL file is cut back to when it restarts after a checkpoint
    /// (`journal_size_limit`); up to this much is kept for commits to
    /// overwrite. The writer restarts the log at half of it (`wal.rs`).
    pub wal_bytes_max: u64,
    /// Also keep the engine's spans, in a database beside this one
    /// (`spans.rs`).
    pub keep_spans: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            path: None,
            fsync_on_commit: true,
            writer_batch_jobs_max: 4096,
            writer_queue_jobs_max: 65_536,
            readers_max: 4,
            wal_bytes_max: 64 * 1024 * 1024,
            keep_spans: false,
        }
    }
}

/// A SQLite store: a cheap-clone handle to the writer thread and readers.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.options.path)
            .finish()
    }
}

struct Inner {
    options: SqliteOptions,
    /// The span database, when `options.keep_spans`.
    spans: Option<spans::SpanDb>,
    /// `None` once closed.
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    /// Joined on close so that the last commit is done before `close` returns.
    writer: Mutex<Option<thread::JoinHandle<()>>>,
    /// Idle reader connections (file stores only).
    readers: Mutex<Vec<Connection>>,
    /// Bounds the number of reader connections open at once.
    reader_permits: Semaphore,
    /// Counters shared with the writer thread.
    counters: Arc<WriterCounters>,
    /// Tells the checkpointer thread to stop.
    checkpointer_stop: Arc<AtomicBool>,
    /// Joined on close, so the writer's closing checkpoint is not busy.
    checkpointer: Mutex<Option<thread::JoinHandle<()>>>,
    /// Holds the fsyncs back in tests (file stores that fsync only).
    #[cfg(test)]
    fsync_gate: Option<Arc<sync::Gate>>,
}

/// What the writer has done since the store opened.
#[derive(Debug, Default)]
struct WriterCounters {
    n_transactions: AtomicU64,
    n_jobs: AtomicU64,
    /// Frames in the WAL after the last commit (SQLite's WAL hook).
    wal_frames: AtomicU64,
    /// Times the writer saw the WAL restart from its beginning.
    n_wal_restarts: AtomicU64,
    /// Passes the checkpointer thread finished.
    n_checkpoints: AtomicU64,
    /// Set when the checkpointer could not fsync the database file: the
    /// writer refuses work from then on (`wal.rs`).
    checkpoint_failure: std::sync::OnceLock<String>,
}

/// A snapshot of the writer's counters: how well group commit coalesces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions committed (each one fsync in `fsync_on_commit` mode).
    pub n_transactions: u64,
    /// Jobs (sends, claims, acks, ...) run inside them.
    pub n_jobs: u64,
    /// Times the WAL restarted from its beginning (`wal.rs`).
    pub n_wal_restarts: u64,
}

/// Work for the writer: runs inside the batch transaction and returns what to
/// do once the commit's outcome is known.
struct Job {
    run: JobFn,
    answer: Answered,
}
/// A job's work: runs in the batch transaction, returns how to answer.
type JobFn = Box<dyn FnOnce(&Writer<'_>, &mut Index) -> Completion + Send>;

/// The writer's connection (a `Deref` to it), with the one statement every
/// send runs kept prepared: through the connection's statement cache, its
/// SQL text was hashed twice and its bindings cleared on every send, 6% of
/// the writer's instructions.
pub(super) struct Writer<'c> {
    conn: &'c Connection,
    insert_message: RefCell<Option<Statement<'c>>>,
}

impl<'c> Writer<'c> {
    fn new(conn: &'c Connection) -> Writer<'c> {
        Writer {
            conn,
            insert_message: RefCell::new(None),
        }
    }

    /// The prepared `INSERT` of a message (see `queue.rs`), prepared on
    /// first use.
    pub(super) fn insert_message(&self) -> Result<RefMut<'_, Statement<'c>>> {
        let mut slot = self.insert_message.borrow_mut();
        if slot.is_none() {
            let stmt = self
                .conn
                .prepare(queue::INSERT_MESSAGE)
                .map_err(|e| backend("prepare the message insert", e))?;
            *slot = Some(stmt);
        }
        Ok(RefMut::map(slot, |s| {
            s.as_mut().expect("prepared just above")
        }))
    }
}

impl std::ops::Deref for Writer<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}
/// Called with the commit's error, if any; answers the caller.
type Completion = Box<dyn FnOnce(Option<&str>) + Send>;

const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_queues",
        include_str!("../../../migrations/sqlite/0001_queues.sql"),
    ),
    (
        "0002_traceparent_column",
        include_str!("../../../migrations/sqlite/0002_traceparent_column.sql"),
    ),
    (
        "0003_message_seq_counter",
        include_str!("../../../migrations/sqlite/0003_message_seq_counter.sql"),
    ),
];

impl SqliteStore {
    /// Opens (creating if needed) the store and migrates it to the latest
    /// schema.
    pub fn open(options: SqliteOptions) -> Result<SqliteStore> {
        let mut conn = open_connection(options.path.as_deref(), &options, true)?;
        migrate(&conn)?;
        let index = Index::load(&conn)?;
        let (jobs_tx, jobs_rx) = mpsc::channel(options.writer_queue_jobs_max);
        let batch_max = options.writer_batch_jobs_max;
        let counters = Arc::new(WriterCounters::default());
        let (poke, poked) = wal::poke_channel();
        let wal_limit = match &options.path {
            Some(_) => Some(wal::WalLimit::watch(&mut conn, &options, &counters, poke)?),
            None => None,
        };
        let writer_counters = counters.clone();
        let syncer = match (&options.path, options.fsync_on_commit) {
            (Some(path), true) => {
                let mut wal_path = path.clone().into_os_string();
                wal_path.push("-wal");
                Some(Syncer::start(PathBuf::from(wal_path))?)
            }
            _ => None,
        };
        #[cfg(test)]
        let fsync_gate = syncer.as_ref().map(Syncer::gate);
        let writer = thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || {
                run_writer(
                    conn,
                    index,
                    jobs_rx,
                    batch_max,
                    &writer_counters,
                    syncer,
                    wal_limit,
                )
            })
            .map_err(|e| backend("start the writer thread", e))?;
        let checkpointer_stop = Arc::new(AtomicBool::new(false));
        let checkpointer = match &options.path {
            Some(path) => Some(wal::start_checkpointer(
                path.clone(),
                &options,
                counters.clone(),
                poked,
                checkpointer_stop.clone(),
            )?),
            None => None,
        };
        let readers_max = if options.path.is_some() {
            options.readers_max
        } else {
            0
        };
        let spans = match options.keep_spans {
            true => Some(spans::SpanDb::open(options.path.as_deref())?),
            false => None,
        };
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                spans,
                reader_permits: Semaphore::new(readers_max),
                options,
                jobs: Mutex::new(Some(jobs_tx)),
                writer: Mutex::new(Some(writer)),
                readers: Mutex::new(Vec::new()),
                counters,
                checkpointer_stop,
                checkpointer: Mutex::new(checkpointer),
                #[cfg(test)]
                fsync_gate,
            }),
        })
    }

    /// Transactions and jobs run by the writer so far.
    pub fn writer_stats(&self) -> WriterStats {
        WriterStats {
            n_transactions: self.inner.counters.n_transactions.load(Ordering::Relaxed),
            n_jobs: self.inner.counters.n_jobs.load(Ordering::Relaxed),
            n_wal_restarts: self.inner.counters.n_wal_restarts.load(Ordering::Relaxed),
        }
    }

    /// Stops the writer after the jobs already sent and waits for it.
    pub async fn close(&self) {
        self.inner.checkpointer_stop.store(true, Ordering::Relaxed);
        let checkpointer = self
            .inner
            .checkpointer
            .lock()
            .expect("checkpointer lock")
            .take();
        if let Some(checkpointer) = checkpointer {
            let _ = tokio::task::spawn_blocking(move || checkpointer.join()).await;
        }
        let sender = self.inner.jobs.lock().expect("jobs lock").take();
        drop(sender);
        let writer = self.inner.writer.lock().expect("writer lock").take();
        if let Some(writer) = writer {
            // Joining blocks; do it off the async threads.
            let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        }
        self.inner.readers.lock().expect("readers lock").clear();
    }

    /// Runs `f` on the writer inside the next batch transaction. `f` must
    /// leave no partial change behind when it fails (single-statement work);
    /// use [`SqliteStore::write_atomic`] otherwise.
    async fn write<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Writer<'_>, &mut Index) -> Result<R> + Send + 'static,
    {
        self.submit(f, false, Answered::WhenDurable).await
    }

    /// Like [`SqliteStore::write`], but `f` runs inside a savepoint that is
    /// rolled back when it fails, so a failing job never affects the others
    /// of its batch. `f` must change the index only after its last fallible
    /// database operation.
    async fn write_atomic<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Writer<'_>, &mut Index) -> Result<R> + Send + 'static,
    {
        self.submit(f, true, Answered::WhenDurable).await
    }

    /// Like [`SqliteStore::write`], but the caller is answered as soon as
    /// the batch commits, before its fsync ([`Answered::AtCommit`]).
    async fn write_at_commit<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Writer<'_>, &mut Index) -> Result<R> + Send + 'static,
    {
        self.submit(f, false, Answered::AtCommit).await
    }

    async fn submit<R, F>(&self, f: F, atomic: bool, answer: Answered) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Writer<'_>, &mut Index) -> Result<R> + Send + 'static,
    {
        let (reply_tx, reply_rx) = oneshot::channel::<Result<R>>();
        let job = Job {
            run: Box::new(move |conn: &Writer<'_>, index: &mut Index| {
                run_job(conn, index, f, atomic, reply_tx)
            }),
            answer,
        };
        let sender = self
            .inner
            .jobs
            .lock()
            .expect("jobs lock")
            .clone()
            .ok_or(StorageError::Closed)?;
        sender.send(job).await.map_err(|_| StorageError::Closed)?;
        reply_rx.await.map_err(|_| StorageError::Closed)?
    }

    /// Runs `f` on a reader connection (a WAL snapshot), or on the writer for
    /// an in-memory store.
    async fn read<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        if self.inner.options.path.is_none() {
            return self.write(move |conn, _| f(conn)).await;
        }
        let _permit = self
            .inner
            .reader_permits
            .acquire()
            .await
            .map_err(|_| StorageError::Closed)?;
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = store.take_reader()?;
            let result = f(&conn);
            store.inner.readers.lock().expect("readers lock").push(conn);
            result
        })
        .await
        .map_err(|e| backend("run a read", e))?
    }

    fn take_reader(&self) -> Result<Connection> {
        if let Some(conn) = self.inner.readers.lock().expect("readers lock").pop() {
            return Ok(conn);
        }
        open_connection(
            self.inner.options.path.as_deref(),
            &self.inner.options,
            false,
        )
    }

    fn options(&self) -> &SqliteOptions {
        &self.inner.options
    }
}

fn run_job<R, F>(
    conn: &Writer<'_>,
    index: &mut Index,
    f: F,
    atomic: bool,
    reply: oneshot::Sender<Result<R>>,
) -> Completion
where
    R: Send + 'static,
    F: FnOnce(&Writer<'_>, &mut Index) -> Result<R>,
{
    let result = match atomic {
        true => atomically(conn, || f(conn, index)),
        false => f(conn, index),
    };
    Box::new(move |commit_error: Option<&str>| {
        let outcome = match (result, commit_error) {
            (Err(e), _) => Err(e),
            (Ok(_), Some(message)) => Err(backend("commit", message.to_owned())),
            (Ok(value), None) => Ok(value),
        };
        let _ = reply.send(outcome);
    })
}

/// Runs `f`'s writes all or none: inside a savepoint, rolled back when `f`
/// fails, so that a failing job never affects the others of its batch. `f`
/// must change the index only after its last fallible database operation.
/// A savepoint is not free: SQLite copies every page first written inside
/// it to a journal, to undo it.
fn atomically<R>(conn: &Connection, f: impl FnOnce() -> Result<R>) -> Result<R> {
    conn.execute_batch("SAVEPOINT job")
        .map_err(|e| backend("open a savepoint", e))?;
    let result = f();
    let end = match result {
        Ok(_) => "RELEASE job",
        Err(_) => "ROLLBACK TO job; RELEASE job",
    };
    if let Err(e) = conn.execute_batch(end) {
        // The job's index changes may already be applied: undo the whole
        // batch so that the commit fails and the index is reloaded.
        let _ = conn.execute_batch("ROLLBACK");
        return Err(backend("close a savepoint", e));
    }
    result
}

/// A committed batch whose callers wait for it to be durable.
pub(super) struct Committed {
    completions: Vec<Completion>,
    replies: Vec<WaiterReply>,
}

/// The writer loop: one transaction per batch of waiting jobs.
///
/// With a `syncer`, commits are written without fsync and handed to the
/// fsync threads (`sync.rs`), which fsync the WAL and only then answer the batch's
/// callers; meanwhile the writer already runs the next batch. Nobody hears
/// "ok" before the fsync, except the callers of [`Answered::AtCommit`] jobs
/// (leases, the push consumer's settlements), answered right after the
/// commit; the writer never waits for the disk.
fn run_writer(
    conn: Connection,
    mut index: Index,
    mut jobs: mpsc::Receiver<Job>,
    batch_max: usize,
    counters: &WriterCounters,
    syncer: Option<Syncer>,
    mut wal_limit: Option<wal::WalLimit>,
) {
    let writer = Writer::new(&conn);
    let mut batch: Vec<Job> = Vec::with_capacity(batch_max);
    // Set when the index could not be rebuilt: every later job is refused.
    let mut poisoned: Option<String> = None;
    while let Some(first) = jobs.blocking_recv() {
        batch.push(first);
        while batch.len() < batch_max {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Some(failure) = poisoned
            .clone()
            .or_else(|| syncer.as_ref().and_then(Syncer::failure))
            .or_else(|| counters.checkpoint_failure.get().cloned())
        {
            // Dropping the jobs answers every caller with an error; nothing
            // more is written after a failed fsync.
            tracing::error!(cause = %failure, n_jobs = batch.len(), "refusing writes after a failed fsync");
            batch.clear();
            continue;
        }
        counters
            .n_jobs
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let (at_commit, completions) = run_batch(&writer, &mut index, &mut batch);
        let replies = index.take_replies();
        let commit = if conn.is_autocommit() {
            // A job (or SQLite itself, on I/O errors) rolled the batch back.
            Some("the batch transaction was rolled back before its commit".to_owned())
        } else if let Err(e) = index.save_last_seq(&conn) {
            Some(e.to_string())
        } else {
            conn.execute_batch("COMMIT").err().map(|e| e.to_string())
        };
        if let Some(error) = commit {
            let _ = conn.execute_batch("ROLLBACK");
            // The jobs changed the index for writes that are now undone.
            match Index::load(&conn) {
                Ok(mut reloaded) => {
                    reloaded.take_waiters_from(&mut index);
                    index = reloaded;
                }
                Err(e) => {
                    // The index no longer matches the file: refuse all work
                    // rather than deliver from a wrong index.
                    tracing::error!(cause = %e, "sqlite writer could not reload its index; refusing writes");
                    poisoned = Some(e.to_string());
                }
            }
            for completion in at_commit {
                completion(Some(&error));
            }
            finish(
                Committed {
                    completions,
                    replies,
                },
                Some(&error),
            );
            continue;
        }
        counters.n_transactions.fetch_add(1, Ordering::Relaxed);
        #[cfg(test)]
        index.assert_matches(&conn);
        for completion in at_commit {
            completion(None);
        }
        let committed = Committed {
            completions,
            replies,
        };
        match &syncer {
            Some(syncer) => syncer.submit(committed),
            None => finish(committed, None),
        }
        if let Some(wal_limit) = &mut wal_limit {
            wal_limit.after_commit(&conn, counters);
        }
    }
    if let Some(syncer) = syncer {
        // The last batches are answered before the store reports closed.
        syncer.close();
    }
    drop(writer);
    // Channel closed: sync for real from now on, and leave the WAL
    // checkpointed so the file stands alone.
    let _ = conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA wal_checkpoint(TRUNCATE);");
}

/// Answers a batch's callers: producers and other callers first, then the
/// consumers that were served by it.
pub(super) fn finish(committed: Committed, error: Option<&str>) {
    for completion in committed.completions {
        completion(error);
    }
    answer(committed.replies, error);
}

/// Runs a batch's jobs in one transaction; returns the completions of the
/// [`Answered::AtCommit`] jobs and those of the others.
fn run_batch(
    conn: &Writer<'_>,
    index: &mut Index,
    batch: &mut Vec<Job>,
) -> (Vec<Completion>, Vec<Completion>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Dropping the jobs drops their reply channels: every caller of the
        // batch gets an error and nothing was written.
        tracing::error!(cause = %e, n_jobs = batch.len(), "sqlite writer could not begin a transaction");
        batch.clear();
        return (Vec::new(), Vec::new());
    }
    let mut at_commit = Vec::new();
    let mut completions = Vec::with_capacity(batch.len());
    for job in batch.drain(..) {
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back on its own (disk full,
            // I/O error, out of memory): running the rest would commit them
            // one by one outside the batch. Dropping them answers their
            // callers with an error; the commit fails and the index reloads.
            drop(job);
            continue;
        }
        let completion = (job.run)(conn, index);
        match job.answer {
            Answered::AtCommit => at_commit.push(completion),
            Answered::WhenDurable => completions.push(completion),
        }
    }
    (at_commit, completions)
}

fn open_connection(
    path: Option<&Path>,
    options: &SqliteOptions,
    writer: bool,
) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = match path {
        Some(path) => Connection::open_with_flags(path, flags),
        None => Connection::open_in_memory(),
    }
    .map_err(|e| backend("open the database", e))?;
    conn.set_prepared_statement_cache_capacity(64);
    // The writer of a durable file never fsyncs itself: its commits are
    // fsynced by the syncer thread before anyone is answered (`run_writer`).
    // The other connections use NORMAL, under which checkpoints still fsync
    // the WAL before copying it and the database after.
    let synchronous = match (writer, path.is_some(), options.fsync_on_commit) {
        (true, true, true) => "OFF",
        _ => "NORMAL",
    };
    let mut pragmas = format!(
        "PRAGMA busy_timeout = 5000;
         PRAGMA synchronous = {synchronous};
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -32768;"
    );
    if writer && path.is_some() {
        // auto_vacuum only takes effect before the first table exists; on
        // an existing file it is a no-op. It lets drained queues give their
        // pages back (see `maintain`).
        pragmas.push_str(&format!(
            "PRAGMA auto_vacuum = INCREMENTAL;
             PRAGMA journal_mode = WAL;
             PRAGMA journal_size_limit = {};
             PRAGMA wal_autocheckpoint = 0;",
            options.wal_bytes_max
        ));
    }
    conn.execute_batch(&pragmas)
        .map_err(|e| backend("configure the database", e))?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> Result<()> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| backend("read the schema version", e))?;
    for (idx, (name, sql)) in MIGRATIONS.iter().enumerate() {
        let target = idx as i64 + 1;
        if target <= version {
            continue;
        }
        let script = format!("BEGIN; {sql}; PRAGMA user_version = {target}; COMMIT;");
        conn.execute_batch(&script).map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            backend(
                if name.is_empty() {
                    "migrate"
                } else {
                    "apply a migration"
                },
                e,
            )
        })?;
    }
    if version > MIGRATIONS.len() as i64 {
        return Err(StorageError::Corrupt(format!(
            "database schema version {version} is newer than this build knows ({})",
            MIGRATIONS.len()
        )));
    }
    Ok(())
}

fn backend(
    op: &'static str,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> StorageError {
    StorageError::Backend {
        op,
        source: e.into(),
    }
}

impl SqliteStore {
    fn span_db(&self) -> Result<&spans::SpanDb> {
        self.inner
            .spans
            .as_ref()
            .ok_or_else(|| StorageError::Backend {
                op: "use spans",
                source: "this store was opened without a span database".into(),
            })
    }
}

impl SpanStore for SqliteStore {
    fn record_spans(&self, batch: &SpanBatch) -> Result<()> {
        self.span_db()?.record(batch)
    }
    async fn spans(&self, key: SpanKey, n_max: u32) -> Result<Vec<SpanRecord>> {
        self.span_db()?.spans(key, n_max).await
    }
    async fn recent_flows(&self, n_max: u32, window_spans: u32) -> Result<Vec<FlowSummaryRow>> {
        self.span_db()?.recent_flows(n_max, window_spans).await
    }
    async fn prune_spans(&self, before_us: i64, rows_max: u64) -> Result<u64> {
        self.span_db()?.prune(before_us, rows_max).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::clock::Timestamp;
    use crate::envelope::TraceParent;
    use crate::storage::conformance::{claim_policy, insert_policy, lease_of, message};
    use crate::storage::{
        LeaseRef, NewMessage, QueueId, QueueStore, Settlement, StaleReason, StorageError,
    };

    const T0: Timestamp = Timestamp(1_800_000_000_000);

    /// A store in a file under `dir`, with one queue `q`.
    async fn file_store_with_queue(dir: &tempfile::TempDir) -> (SqliteStore, QueueId) {
        let store = SqliteStore::open(SqliteOptions {
            path: Some(dir.path().join("store.db")),
            ..SqliteOptions::default()
        })
        .expect("open");
        let q = store
            .create_queue("q".to_owned(), "{}".to_owned(), T0)
            .await
            .expect("create")
            .id;
        (store, q)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_seq_is_never_given_twice_even_after_its_message_is_gone_and_a_restart() {
        // Goal: the writer numbers messages itself (no AUTOINCREMENT) and
        // keeps its counter in the table: acking the newest messages and
        // reopening the store does not hand their seqs out again, so a
        // stale lease token can never name a later message.
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, q) = file_store_with_queue(&dir).await;
        let sent = store
            .insert(q, vec![message("a"), message("b")], insert_policy(T0))
            .await
            .expect("send");
        assert_eq!(sent.inserted.len(), 2);
        let claimed = store.claim(q, 2, claim_policy(T0, 1000)).await.unwrap();
        let seqs: Vec<i64> = claimed.deliveries.iter().map(|m| m.seq).collect();
        let acks = claimed
            .deliveries
            .iter()
            .map(|m| (lease_of(q, m), Settlement::Ack))
            .collect();
        let settled = store
            .settle_many(acks, T0, Answered::WhenDurable)
            .await
            .unwrap();
        assert!(settled.iter().all(Result::is_ok), "{settled:?}");
        assert!(
            store.peek(q, 10).await.unwrap().is_empty(),
            "the table is empty"
        );
        store.close().await;

        let store = SqliteStore::open(SqliteOptions {
            path: Some(dir.path().join("store.db")),
            ..SqliteOptions::default()
        })
        .expect("reopen");
        store
            .insert(q, vec![message("c")], insert_policy(T0))
            .await
            .expect("send after the restart");
        let after = store.peek(q, 10).await.unwrap();
        assert_eq!(after.len(), 1);
        assert!(
            after[0].seq > *seqs.iter().max().unwrap(),
            "seqs {seqs:?}, then {}",
            after[0].seq
        );
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_of_the_first_schema_migrates_and_keeps_its_messages() {
        // Goal: migration 2 adds the traceparent column to a store that has
        // messages; they read back unchanged (no traceparent of their own),
        // and new ones keep theirs. Migration 3 numbers new messages past
        // every seq the first schema's AUTOINCREMENT gave, even one whose
        // message is gone.
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.db");
        let old_envelope = r#"{"timestamp":1,"correlation_id":"c","traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}"#;
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!(
                "BEGIN; {}; PRAGMA user_version = 1; COMMIT;",
                MIGRATIONS[0].1
            ))
            .unwrap();
            conn.execute(
                "INSERT INTO queues (id, name, settings, created_at) VALUES (1, 'q', '{}', 0)",
                [],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO messages (queue_id, id, state, visible_at, enqueued_at, content_type, payload, envelope)
                 VALUES (1, ?1, 0, 0, 0, 'text/plain', X'6f6c64', ?2)",
                rusqlite::params![uuid::Uuid::now_v7().as_bytes(), old_envelope],
            )
            .unwrap();
            conn.execute_batch(
                "INSERT INTO messages (seq, queue_id, id, state, visible_at, enqueued_at, content_type, payload, envelope)
                 VALUES (41, 1, X'00', 0, 0, 0, 'text/plain', X'', '{}');
                 DELETE FROM messages WHERE seq = 41;",
            )
            .unwrap();
        }
        let store = SqliteStore::open(SqliteOptions {
            path: Some(path),
            ..SqliteOptions::default()
        })
        .expect("open and migrate");
        let q: QueueId = 1;
        let tp: TraceParent = "00-1af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
            .parse()
            .unwrap();
        let new = NewMessage {
            traceparent: Some(tp),
            ..message("new")
        };
        store.insert(q, vec![new], insert_policy(T0)).await.unwrap();
        let peeked = store.peek(q, 10).await.unwrap();
        let read: Vec<_> = peeked
            .iter()
            .map(|m| {
                (
                    m.seq,
                    m.payload.bytes.as_slice(),
                    m.envelope.as_str(),
                    m.traceparent,
                )
            })
            .collect();
        assert_eq!(
            read,
            vec![
                (1, &b"old"[..], old_envelope, None),
                (42, &b"new"[..], message("x").envelope.as_str(), Some(tp)),
            ]
        );
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lease_is_answered_at_commit_and_a_send_once_durable() {
        // Goal: with the fsyncs held back, a claim and an ack asked to be
        // answered at commit are (see `Answered::AtCommit`), while a send
        // committed in the same or an earlier batch still waits for its fsync.
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, q) = file_store_with_queue(&dir).await;
        store
            .insert(q, vec![message("first")], insert_policy(T0))
            .await
            .expect("first send");
        let gate = store.inner.fsync_gate.clone().expect("a file store fsyncs");
        gate.close();
        let sender = store.clone();
        let send = tokio::spawn(async move {
            sender
                .insert(q, vec![message("second")], insert_policy(T0))
                .await
        });
        // Queued behind the send on the writer's channel: the send commits
        // in this claim's batch or an earlier one.
        while store.writer_stats().n_jobs < 3 {
            tokio::task::yield_now().await;
        }
        let policy = claim_policy(T0, 1000);
        // The timeout only turns a claim that waits for the fsync (a hang,
        // with the gate closed) into a failure.
        let claimed = tokio::time::timeout(Duration::from_secs(10), store.claim(q, 1, policy))
            .await
            .expect("a claim was not answered before its fsync")
            .expect("claim");
        assert_eq!(claimed.deliveries.len(), 1);
        // A push consumer's acks are answered at commit too.
        let lease = lease_of(q, &claimed.deliveries[0]);
        let settled = tokio::time::timeout(
            Duration::from_secs(10),
            store.settle_many(vec![(lease, Settlement::Ack)], T0, Answered::AtCommit),
        )
        .await
        .expect("an ack at commit was not answered before its fsync")
        .expect("settle");
        assert!(settled[0].is_ok(), "{settled:?}");
        assert!(!send.is_finished(), "a send was answered before its fsync");
        gate.open();
        send.await.expect("send task").expect("second send");
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn claims_read_the_rows_the_writer_kept_no_body_for_and_acks_settle_by_runs() {
        // Goal: a claim of more bodies than the writer keeps (its cache is
        // bounded) reads the rest back and delivers every one intact; a batch
        // of acks settles the holding leases together and still names each
        // stale one. (The writer also compares its index with the table
        // after every commit in tests.)
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, q) = file_store_with_queue(&dir).await;
        let mib = 1 << 20;
        let n = index::BODIES_BYTES_MAX / mib + 8;
        let messages: Vec<_> = (0..n)
            .map(|i| {
                let mut m = message("");
                m.payload.bytes = vec![i as u8; mib];
                m
            })
            .collect();
        let ids: Vec<_> = messages.iter().map(|m| m.id).collect();
        store
            .insert(q, messages, insert_policy(T0))
            .await
            .expect("send");
        let claimed = store
            .claim(q, n as u32, claim_policy(T0, 1000))
            .await
            .expect("claim");
        assert_eq!(claimed.deliveries.len(), n);
        for (i, m) in claimed.deliveries.iter().enumerate() {
            assert_eq!(m.id, ids[i], "delivery order");
            assert_eq!(
                m.payload.bytes,
                vec![i as u8; mib],
                "payload of message {i}"
            );
            assert_eq!(
                (m.attempts, m.state),
                (1, crate::storage::MessageState::Leased)
            );
        }
        let mut lease_gens: Vec<_> = claimed.deliveries.iter().map(|m| m.lease_gen).collect();
        lease_gens.dedup();
        assert_eq!(lease_gens.len(), n, "every lease has its own number");

        let lease = |i: usize| lease_of(q, &claimed.deliveries[i]);
        let stale = LeaseRef {
            lease_gen: lease(2).lease_gen + 1_000_000,
            ..lease(2)
        };
        let mut batch = vec![
            (lease(0), Settlement::Ack),
            (lease(1), Settlement::Ack),
            (lease(1), Settlement::Ack),
            (stale, Settlement::Ack),
            (
                lease(3),
                Settlement::Retry {
                    visible_at: Timestamp(T0.0 + 60_000),
                    error: Some("later".to_owned()),
                },
            ),
        ];
        batch.extend(
            (2..n)
                .filter(|&i| i != 3)
                .map(|i| (lease(i), Settlement::Ack)),
        );
        let settled = store
            .settle_many(batch, T0, Answered::WhenDurable)
            .await
            .expect("settle");
        assert_eq!(settled.len(), n + 2);
        assert_eq!(settled[0].as_ref().ok(), Some(&ids[0]));
        assert_eq!(settled[1].as_ref().ok(), Some(&ids[1]));
        assert!(
            matches!(settled[2], Err(StorageError::StaleLease(StaleReason::Gone))),
            "a second ack of the same lease: {:?}",
            settled[2]
        );
        assert!(
            matches!(
                settled[3],
                Err(StorageError::StaleLease(StaleReason::Superseded {
                    current_attempt: 1
                }))
            ),
            "a lease number that is not the current one: {:?}",
            settled[3]
        );
        assert_eq!(settled[4].as_ref().ok(), Some(&ids[3]));
        let acked_rest: Vec<_> = settled[5..]
            .iter()
            .map(|r| *r.as_ref().expect("acked"))
            .collect();
        let expected: Vec<_> = (2..n).filter(|&i| i != 3).map(|i| ids[i]).collect();
        assert_eq!(acked_rest, expected);

        let counts = store.counts(q, "q".to_owned(), T0).await.expect("counts");
        assert_eq!(
            (counts.ready, counts.in_flight, counts.scheduled),
            (0, 0, 1),
            "only the retried message is left"
        );
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acks_after_a_run_the_table_disagrees_with_write_nothing_outside_the_batch() {
        // Goal: when a run of acks finds fewer rows than the index holds
        // leases for, the batch is rolled back, and the acks after it are
        // refused rather than deleted one by one outside the batch.
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, q) = file_store_with_queue(&dir).await;
        let messages: Vec<_> = (0..4).map(|i| message(&format!("m{i}"))).collect();
        store
            .insert(q, messages, insert_policy(T0))
            .await
            .expect("send");
        let claimed = store
            .claim(q, 4, claim_policy(T0, 1000))
            .await
            .expect("claim");
        let lease = |i: usize| lease_of(q, &claimed.deliveries[i]);
        let seq = |i: usize| claimed.deliveries[i].seq;
        // Another connection removes a leased row behind the writer's back.
        let other =
            Connection::open(dir.path().join("store.db")).expect("open a second connection");
        other
            .busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        let rows_left = |seq: i64| -> i64 {
            other
                .query_row(
                    "SELECT count(*) FROM messages WHERE seq = ?1",
                    [seq],
                    |row| row.get(0),
                )
                .expect("count")
        };
        other
            .execute("DELETE FROM messages WHERE seq = ?1", [seq(0)])
            .expect("delete a row");
        // Two runs: seqs 0-1 (one row missing), then seq 3.
        let refused = store
            .settle_many(
                vec![
                    (lease(0), Settlement::Ack),
                    (lease(1), Settlement::Ack),
                    (lease(3), Settlement::Ack),
                ],
                T0,
                Answered::WhenDurable,
            )
            .await
            .expect_err("the batch is rolled back");
        assert!(
            format!("{refused:?}").contains("rolled back before its commit"),
            "the error says the batch was rolled back: {refused:?}"
        );
        assert_eq!(
            (rows_left(seq(1)), rows_left(seq(3))),
            (1, 1),
            "nothing was deleted"
        );
        // The reloaded index agrees with the table: the leases of the rows
        // left still hold, and acking them again settles them.
        let settled = store
            .settle_many(
                vec![(lease(1), Settlement::Ack), (lease(3), Settlement::Ack)],
                T0,
                Answered::WhenDurable,
            )
            .await
            .expect("settle again");
        assert!(settled.iter().all(Result::is_ok), "{settled:?}");
        assert_eq!((rows_left(seq(1)), rows_left(seq(3))), (0, 0));
        store.close().await;
    }
}
