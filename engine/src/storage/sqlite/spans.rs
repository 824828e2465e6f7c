//! The span database: the engine's own copy of its spans.
//!
//! A separate SQLite file beside the queues' (`<name>.spans.db`), with its own
//! connections, so span writes never wait for (or delay) message commits.
//! Spans are telemetry: the file runs `synchronous=NORMAL` and a power cut may
//! lose the last second of them; a process crash loses nothing committed.
//!
//! Writes come in batches from the span exporter's thread and take one
//! transaction each: one row per batch (encoded by [`span_batch`]) and one
//! integer key row per distinct correlation, message and trace id (see the
//! migrations). Reads use their own connection on the WAL snapshot.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, params};

use crate::storage::span_batch::{self, KeyKind, key_id};
use crate::storage::{FlowSummaryRow, Result, SpanBatch, SpanKey, SpanRecord, StorageError};

use super::backend;

const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/sqlite-spans/0001_spans.sql"),
    include_str!("../../../migrations/sqlite-spans/0002_compact_batches.sql"),
];

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

    /// Stores a batch in one transaction: one row for the batch, one key
    /// row per distinct key in it.
    pub(crate) fn record(&self, batch: &SpanBatch) -> Result<()> {
        let mut conn = self.inner.writer.lock().expect("span writer lock");
        let tx = conn
            .transaction()
            .map_err(|e| backend("begin a span batch", e))?;
        tx.prepare_cached(
            "INSERT INTO span_batches (last_start_us, n_spans, spans, format) VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                batch.last_start_us(),
                batch.n_spans() as i64,
                batch.blob(),
                span_batch::FORMAT
            ])
        })
        .map_err(|e| backend("store a span batch", e))?;
        let batch_id = tx.last_insert_rowid();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO span_key_ids (key, batch_id) VALUES (?1, ?2)",
                )
                .map_err(|e| backend("prepare the span key insert", e))?;
            for key in batch.keys() {
                insert
                    .execute(params![key, batch_id])
                    .map_err(|e| backend("store a span key", e))?;
            }
        }
        tx.commit().map_err(|e| backend("commit a span batch", e))
    }

    pub(crate) async fn spans(&self, key: SpanKey, n_max: u32) -> Result<Vec<SpanRecord>> {
        self.read(move |conn| {
            // A message id is also looked up as a correlation id (its own,
            // by default).
            let (kinds, id): (&[KeyKind], &str) = match &key {
                SpanKey::Correlation(id) => (&[KeyKind::Correlation], id),
                SpanKey::Trace(id) => (&[KeyKind::Trace], id),
                SpanKey::Message(id) => (&[KeyKind::Message, KeyKind::Correlation], id),
            };
            let ids: Vec<i64> = kinds.iter().map(|k| key_id(*k, id)).collect();
            let texts: Vec<String> = kinds
                .iter()
                .map(|k| format!("{}:{id}", k.prefix()))
                .collect();
            let wanted = |s: &SpanRecord| match &key {
                SpanKey::Correlation(id) => s.correlation_id.as_deref() == Some(id.as_str()),
                SpanKey::Trace(id) => &s.trace_id == id,
                SpanKey::Message(id) => s.message_id.as_deref() == Some(id.as_str()),
            };
            let mut stmt = conn
                .prepare_cached(
                    "SELECT b.id, b.format, b.spans FROM span_batches b
                     WHERE b.id IN (SELECT batch_id FROM span_key_ids WHERE key IN (?1, ?2)
                                    UNION SELECT batch_id FROM span_keys WHERE key IN (?3, ?4))
                     ORDER BY b.id",
                )
                .map_err(|e| backend("query spans", e))?;
            let rows = stmt
                .query_map(
                    params![
                        ids[0],
                        ids.get(1).unwrap_or(&ids[0]),
                        texts[0],
                        texts.get(1).unwrap_or(&texts[0])
                    ],
                    |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, Vec<u8>>(2)?,
                        ))
                    },
                )
                .map_err(|e| backend("query spans", e))?;
            let mut found = Vec::new();
            for row in rows {
                let (batch_id, format, blob) = row.map_err(|e| backend("read a span batch", e))?;
                let batch = decode(batch_id, format, &blob)?;
                found.extend(batch.into_iter().filter(|s| wanted(s)));
            }
            found.sort_by_key(|s| s.start_us);
            found.truncate(n_max as usize);
            Ok(found)
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
                .prepare_cached("SELECT id, format, spans FROM span_batches ORDER BY id DESC")
                .map_err(|e| backend("query recent flows", e))?;
            let mut rows = stmt
                .query([])
                .map_err(|e| backend("query recent flows", e))?;
            let mut recent: Vec<SpanRecord> = Vec::new();
            while let Some(row) = rows.next().map_err(|e| backend("read recent flows", e))? {
                let batch_id: i64 = row.get(0).map_err(|e| backend("read recent flows", e))?;
                let format: i64 = row.get(1).map_err(|e| backend("read recent flows", e))?;
                let blob: Vec<u8> = row.get(2).map_err(|e| backend("read recent flows", e))?;
                let mut batch = decode(batch_id, format, &blob)?;
                batch.sort_by_key(|s| std::cmp::Reverse(s.start_us));
                let room = window_spans as usize - recent.len();
                recent.extend(batch.into_iter().take(room));
                if recent.len() >= window_spans as usize {
                    break;
                }
            }
            let mut flows: HashMap<String, FlowSummaryRow> = HashMap::new();
            for span in recent {
                let Some(correlation_id) = span.correlation_id.clone() else {
                    continue;
                };
                let end_us = span.start_us + span.duration_us;
                let flow = flows
                    .entry(correlation_id.clone())
                    .or_insert_with(|| FlowSummaryRow {
                        correlation_id,
                        first_us: span.start_us,
                        last_us: end_us,
                        n_spans: 0,
                        n_errors: 0,
                        n_dead_lettered: 0,
                        queues: Vec::new(),
                    });
                flow.first_us = flow.first_us.min(span.start_us);
                flow.last_us = flow.last_us.max(end_us);
                flow.n_spans += 1;
                flow.n_errors += u64::from(span.status == "error");
                flow.n_dead_lettered += u64::from(span.operation.as_deref() == Some("dead_letter"));
                if let Some(queue) = span.queue
                    && !flow.queues.contains(&queue)
                {
                    flow.queues.push(queue);
                }
            }
            let mut flows: Vec<FlowSummaryRow> = flows.into_values().collect();
            for flow in &mut flows {
                flow.queues.sort();
            }
            flows.sort_by(|a, b| {
                b.last_us
                    .cmp(&a.last_us)
                    .then(a.correlation_id.cmp(&b.correlation_id))
            });
            flows.truncate(n_max as usize);
            Ok(flows)
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
            // Newest first: the first batch that would take the total over
            // `rows_max` (or is too old) marks where deleting starts.
            let mut keep_from = None;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT id, n_spans, last_start_us FROM span_batches ORDER BY id DESC",
                    )
                    .map_err(|e| backend("count spans", e))?;
                let mut rows = stmt.query([]).map_err(|e| backend("count spans", e))?;
                let mut total = 0u64;
                let mut newest_kept = None;
                while let Some(row) = rows.next().map_err(|e| backend("count spans", e))? {
                    let id: i64 = row.get(0).map_err(|e| backend("count spans", e))?;
                    let n: i64 = row.get(1).map_err(|e| backend("count spans", e))?;
                    let last_start_us: i64 = row.get(2).map_err(|e| backend("count spans", e))?;
                    total += n as u64;
                    if total > rows_max || last_start_us < before_us {
                        keep_from = Some(newest_kept.unwrap_or(id + 1));
                        break;
                    }
                    newest_kept = Some(id);
                }
            }
            let Some(keep_from) = keep_from else {
                return Ok(0);
            };
            let n_deleted: i64 = tx
                .query_row(
                    "SELECT coalesce(sum(n_spans), 0) FROM span_batches WHERE id < ?1",
                    params![keep_from],
                    |row| row.get(0),
                )
                .map_err(|e| backend("count old spans", e))?;
            tx.execute("DELETE FROM span_batches WHERE id < ?1", params![keep_from])
                .map_err(|e| backend("prune spans", e))?;
            // The key tables are ordered by key, not batch: a full scan, once
            // per retention pass.
            for table in ["span_key_ids", "span_keys"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE batch_id < ?1"),
                    params![keep_from],
                )
                .map_err(|e| backend("prune span keys", e))?;
            }
            tx.commit().map_err(|e| backend("commit pruned spans", e))?;
            Ok(n_deleted as u64)
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

/// A stored batch: format 3 or 2 ([`span_batch`]), or format 1 (JSON, LZ4)
/// as written before migration 2.
fn decode(batch_id: i64, format: i64, blob: &[u8]) -> Result<Vec<SpanRecord>> {
    let corrupt = |e: String| StorageError::Corrupt(format!("span batch {batch_id}: {e}"));
    match format {
        1 => {
            let json =
                lz4_flex::decompress_size_prepended(blob).map_err(|e| corrupt(e.to_string()))?;
            serde_json::from_slice(&json).map_err(|e| corrupt(e.to_string()))
        }
        2 | 3 => span_batch::decode(blob).map_err(corrupt),
        other => Err(corrupt(format!("unknown format {other}"))),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn span(correlation: &str, message: &str, trace: &str) -> SpanRecord {
        SpanRecord {
            trace_id: trace.into(),
            span_id: "b7ad6b7169203331".into(),
            name: "send orders".into(),
            kind: "producer".into(),
            start_us: 1_800_000_000_000_000,
            status: "ok".into(),
            correlation_id: Some(correlation.into()),
            message_id: Some(message.into()),
            ..SpanRecord::default()
        }
    }

    #[tokio::test]
    async fn batches_written_before_migration_2_are_still_found() {
        let dir = tempfile::tempdir().unwrap();
        let queue_db = dir.path().join("switchyard.db");
        let old = span("order-7", "m-1", "0af7651916cd43dd8448eb211c80319c");
        {
            // A span database as the first layout wrote it.
            let conn = open(Some(&span_db_path(&queue_db))).unwrap();
            conn.execute_batch(&format!(
                "BEGIN; {}; PRAGMA user_version = 1; COMMIT;",
                MIGRATIONS[0]
            ))
            .unwrap();
            let json = serde_json::to_vec(&vec![old.clone()]).unwrap();
            let blob = lz4_flex::compress_prepend_size(&json);
            conn.execute(
                "INSERT INTO span_batches (id, last_start_us, n_spans, spans) VALUES (1, ?1, 1, ?2)",
                params![old.start_us, blob],
            )
            .unwrap();
            for key in ["c:order-7", "m:m-1", "t:0af7651916cd43dd8448eb211c80319c"] {
                conn.execute(
                    "INSERT INTO span_keys (key, batch_id) VALUES (?1, 1)",
                    params![key],
                )
                .unwrap();
            }
        }
        let db = SpanDb::open(Some(&queue_db)).unwrap();
        let new = span("order-7", "m-2", "1af7651916cd43dd8448eb211c80319c");
        db.record(&SpanBatch::from_records(std::slice::from_ref(&new)).unwrap())
            .unwrap();
        let flow = db
            .spans(SpanKey::Correlation("order-7".into()), 100)
            .await
            .unwrap();
        assert_eq!(flow, vec![old.clone(), new.clone()]);
        let by_message = db.spans(SpanKey::Message("m-1".into()), 100).await.unwrap();
        assert_eq!(by_message, vec![old.clone()]);
        let by_trace = db
            .spans(SpanKey::Trace(new.trace_id.clone()), 100)
            .await
            .unwrap();
        assert_eq!(by_trace, vec![new]);
        assert_eq!(db.prune(i64::MAX, 0).await.unwrap(), 2);
        assert!(
            db.spans(SpanKey::Correlation("order-7".into()), 100)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
