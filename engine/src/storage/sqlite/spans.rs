//! The span database: the engine's own copy of its spans.
//!
//! A separate SQLite file beside the queues' (`<name>.spans.db`), with its own
//! connections, so span writes never wait for (or delay) message commits.
//! Spans are telemetry: the file runs `synchronous=NORMAL` and a power cut may
//! lose the last second of them; a process crash loses nothing committed.
//!
//! Writes come in batches from the span exporter's thread and take one
//! transaction each. Reads use their own connection on the WAL snapshot.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};

use crate::storage::{FlowSummaryRow, Result, SpanKey, SpanRecord, StorageError};

use super::backend;

const MIGRATIONS: &[&str] = &[include_str!(
    "../../../migrations/sqlite-spans/0001_spans.sql"
)];

/// Connections to the span database.
#[derive(Clone)]
pub(crate) struct SpanDb {
    inner: Arc<SpanDbInner>,
}

struct SpanDbInner {
    writer: Mutex<Connection>,
    /// `None` in memory, where there is only the writer's connection.
    reader: Option<Mutex<Connection>>,
}

impl SpanDb {
    /// Opens the span database beside `queue_db` (or in memory).
    pub(crate) fn open(queue_db: Option<&Path>) -> Result<SpanDb> {
        let path = queue_db.map(span_db_path);
        let writer = open(path.as_deref())?;
        migrate(&writer)?;
        let reader = match &path {
            Some(path) => Some(Mutex::new(open(Some(path))?)),
            None => None,
        };
        Ok(SpanDb {
            inner: Arc::new(SpanDbInner {
                writer: Mutex::new(writer),
                reader,
            }),
        })
    }

    /// Stores a batch in one transaction. Spans without a correlation id
    /// belong to no flow and are not kept.
    pub(crate) fn record(&self, spans: Vec<SpanRecord>) -> Result<()> {
        let mut conn = self.inner.writer.lock().expect("span writer lock");
        let tx = conn
            .transaction()
            .map_err(|e| backend("begin a span batch", e))?;
        {
            // Lookup rows point at the newest span of their key, so pruning
            // (oldest rows first) drops a lookup only with its last span.
            let mut messages: HashMap<(String, String), i64> = HashMap::new();
            let mut traces: HashMap<(String, String), i64> = HashMap::new();
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO spans (trace_id, span_id, parent_span_id, name, kind, start_us,
                         duration_us, status, status_message, operation, queue, message_id,
                         correlation_id, causation_id, attempt, outcome, attributes, links)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                         ?16, ?17, ?18)",
                )
                .map_err(|e| backend("prepare the span insert", e))?;
            for span in spans {
                let Some(correlation_id) = span.correlation_id.clone() else {
                    continue;
                };
                let attributes = serde_json::Value::Object(span.attributes).to_string();
                let links = serde_json::to_string(&span.links).expect("links serialize");
                insert
                    .execute(params![
                        span.trace_id,
                        span.span_id,
                        span.parent_span_id,
                        span.name,
                        span.kind,
                        span.start_us,
                        span.duration_us,
                        span.status,
                        span.status_message,
                        span.operation,
                        span.queue,
                        span.message_id,
                        span.correlation_id,
                        span.causation_id,
                        span.attempt,
                        span.outcome,
                        attributes,
                        links,
                    ])
                    .map_err(|e| backend("store a span", e))?;
                let row = tx.last_insert_rowid();
                if let Some(message_id) = span.message_id {
                    messages.insert((message_id, correlation_id.clone()), row);
                }
                traces.insert((span.trace_id, correlation_id), row);
            }
            for (table, key, rows) in [
                ("span_messages", "message_id", messages),
                ("span_traces", "trace_id", traces),
            ] {
                let mut upsert = tx
                    .prepare_cached(&format!(
                        "INSERT INTO {table} ({key}, correlation_id, span_row) VALUES (?1, ?2, ?3)
                         ON CONFLICT ({key}, correlation_id) DO UPDATE SET span_row = excluded.span_row"
                    ))
                    .map_err(|e| backend("prepare the span lookup upsert", e))?;
                for ((id, correlation_id), row) in rows {
                    upsert
                        .execute(params![id, correlation_id, row])
                        .map_err(|e| backend("store a span lookup", e))?;
                }
            }
        }
        tx.commit().map_err(|e| backend("commit a span batch", e))
    }

    pub(crate) async fn spans(&self, key: SpanKey, n_max: u32) -> Result<Vec<SpanRecord>> {
        self.read(move |conn| {
            // Message and trace ids go through their lookup table to the
            // correlation index, the only index on the span table.
            let (filter, value) = match &key {
                SpanKey::Correlation(id) => ("correlation_id = ?1", id),
                SpanKey::Trace(id) => (
                    "correlation_id IN (SELECT correlation_id FROM span_traces WHERE trace_id = ?1)
                     AND trace_id = ?1",
                    id,
                ),
                SpanKey::Message(id) => (
                    "correlation_id IN
                       (SELECT correlation_id FROM span_messages WHERE message_id = ?1)
                     AND message_id = ?1",
                    id,
                ),
            };
            let sql = format!(
                "SELECT trace_id, span_id, parent_span_id, name, kind, start_us, duration_us,
                        status, status_message, operation, queue, message_id, correlation_id,
                        causation_id, attempt, outcome, attributes, links
                 FROM spans WHERE {filter} ORDER BY start_us, id LIMIT ?2"
            );
            let mut stmt = conn
                .prepare_cached(&sql)
                .map_err(|e| backend("query spans", e))?;
            let rows = stmt
                .query_map(params![value, n_max], read_span)
                .map_err(|e| backend("query spans", e))?;
            let mut spans = Vec::new();
            for row in rows {
                let (mut span, attributes, links) = row.map_err(|e| backend("read a span", e))?;
                span.attributes = match serde_json::from_str(&attributes) {
                    Ok(serde_json::Value::Object(map)) => map,
                    _ => {
                        return Err(StorageError::Corrupt(format!(
                            "span {} has invalid attributes",
                            span.span_id
                        )));
                    }
                };
                span.links = serde_json::from_str(&links).map_err(|_| {
                    StorageError::Corrupt(format!("span {} has invalid links", span.span_id))
                })?;
                spans.push(span);
            }
            Ok(spans)
        })
        .await
    }

    pub(crate) async fn recent_flows(
        &self,
        n_max: u32,
        window_spans: u32,
    ) -> Result<Vec<FlowSummaryRow>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT correlation_id, min(start_us), max(start_us + duration_us), count(*),
                            sum(status = 'error'), sum(operation = 'dead_letter'),
                            group_concat(DISTINCT queue)
                     FROM spans
                     WHERE id > (SELECT coalesce(max(id), 0) FROM spans) - ?1
                       AND correlation_id IS NOT NULL
                     GROUP BY correlation_id
                     ORDER BY max(start_us) DESC
                     LIMIT ?2",
                )
                .map_err(|e| backend("query recent flows", e))?;
            let rows = stmt
                .query_map(params![window_spans, n_max], |row| {
                    let queues: Option<String> = row.get(6)?;
                    let mut queues: Vec<String> = queues
                        .unwrap_or_default()
                        .split(',')
                        .filter(|q| !q.is_empty())
                        .map(str::to_owned)
                        .collect();
                    queues.sort();
                    Ok(FlowSummaryRow {
                        correlation_id: row.get(0)?,
                        first_us: row.get(1)?,
                        last_us: row.get(2)?,
                        n_spans: row.get::<_, i64>(3)? as u64,
                        n_errors: row.get::<_, i64>(4)? as u64,
                        n_dead_lettered: row.get::<_, i64>(5)? as u64,
                        queues,
                    })
                })
                .map_err(|e| backend("query recent flows", e))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(|e| backend("read recent flows", e))
        })
        .await
    }

    pub(crate) async fn prune(&self, before_us: i64, rows_max: u64) -> Result<u64> {
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = db.inner.writer.lock().expect("span writer lock");
            let tx = conn
                .transaction()
                .map_err(|e| backend("begin pruning spans", e))?;
            let max_id: Option<i64> = tx
                .query_row("SELECT max(id) FROM spans", [], |row| row.get(0))
                .map_err(|e| backend("count spans", e))?;
            let Some(max_id) = max_id else {
                return Ok(0);
            };
            // Rows are appended in (roughly) time order: the first young row
            // is found after scanning only the old ones.
            let first_young: Option<i64> = tx
                .query_row(
                    "SELECT id FROM spans WHERE start_us >= ?1 ORDER BY id LIMIT 1",
                    params![before_us],
                    |row| row.get(0),
                )
                .optional()
                .map_err(|e| backend("find old spans", e))?;
            let by_age = first_young.unwrap_or(max_id + 1);
            let by_count = max_id + 1 - rows_max as i64;
            let keep_from = by_age.max(by_count);
            let n_deleted = tx
                .execute("DELETE FROM spans WHERE id < ?1", params![keep_from])
                .map_err(|e| backend("prune spans", e))? as u64;
            if n_deleted > 0 {
                for table in ["span_messages", "span_traces"] {
                    tx.execute(
                        &format!("DELETE FROM {table} WHERE span_row < ?1"),
                        params![keep_from],
                    )
                    .map_err(|e| backend("prune span lookups", e))?;
                }
            }
            tx.commit().map_err(|e| backend("commit pruned spans", e))?;
            Ok(n_deleted)
        })
        .await
        .map_err(|e| backend("prune spans", e))?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.clone();
        tokio::task::spawn_blocking(move || match &db.inner.reader {
            Some(reader) => f(&reader.lock().expect("span reader lock")),
            None => f(&db.inner.writer.lock().expect("span writer lock")),
        })
        .await
        .map_err(|e| backend("read spans", e))?
    }
}

/// `dir/switchyard.db` keeps its spans in `dir/switchyard.spans.db`.
pub(crate) fn span_db_path(queue_db: &Path) -> PathBuf {
    queue_db.with_extension("spans.db")
}

type SpanRow = (SpanRecord, String, String);

fn read_span(row: &rusqlite::Row<'_>) -> rusqlite::Result<SpanRow> {
    Ok((
        SpanRecord {
            trace_id: row.get(0)?,
            span_id: row.get(1)?,
            parent_span_id: row.get(2)?,
            name: row.get(3)?,
            kind: row.get(4)?,
            start_us: row.get(5)?,
            duration_us: row.get(6)?,
            status: row.get(7)?,
            status_message: row.get(8)?,
            operation: row.get(9)?,
            queue: row.get(10)?,
            message_id: row.get(11)?,
            correlation_id: row.get(12)?,
            causation_id: row.get(13)?,
            attempt: row.get(14)?,
            outcome: row.get(15)?,
            attributes: serde_json::Map::new(),
            links: Vec::new(),
        },
        row.get(16)?,
        row.get(17)?,
    ))
}

fn open(path: Option<&Path>) -> Result<Connection> {
    let conn = match path {
        Some(path) => Connection::open(path),
        None => Connection::open_in_memory(),
    }
    .map_err(|e| backend("open the span database", e))?;
    conn.set_prepared_statement_cache_capacity(16);
    // A large page cache keeps the index pages in memory (without it every
    // batch reads them back); checkpoints every 4000 pages coalesce rewrites.
    let journal = if path.is_some() {
        "PRAGMA journal_mode = WAL; PRAGMA journal_size_limit = 67108864;
         PRAGMA wal_autocheckpoint = 4000;"
    } else {
        ""
    };
    conn.execute_batch(&format!(
        "PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536;
         {journal}"
    ))
    .map_err(|e| backend("configure the span database", e))?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> Result<()> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| backend("read the span schema version", e))?;
    if version > MIGRATIONS.len() as i64 {
        return Err(StorageError::Corrupt(format!(
            "span database schema version {version} is newer than this build knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (idx, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let target = idx + 1;
        conn.execute_batch(&format!(
            "BEGIN; {sql}; PRAGMA user_version = {target}; COMMIT;"
        ))
        .map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            backend("apply a span migration", e)
        })?;
    }
    Ok(())
}
