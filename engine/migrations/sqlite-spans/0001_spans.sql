-- Spans the engine keeps of its own flows (telemetry/). A separate database
-- file from the queues, so span writes never queue behind (or slow) message
-- commits.
--
-- Spans are stored as they are exported: one row per export batch holding
-- its spans (JSON, LZ4-compressed: span fields repeat a lot), plus one small
-- key row per distinct correlation id, trace id, and message id (when it
-- differs from the correlation id, as it does not by default) in the batch. A flow query reads the few batches
-- its key points at; writing costs one row per batch and a few key rows per
-- message instead of an indexed row per span. Retention deletes whole
-- batches, oldest first.
CREATE TABLE span_batches (
    id              INTEGER PRIMARY KEY,
    -- Newest span start in the batch (µs since the epoch), for retention.
    last_start_us   INTEGER NOT NULL,
    n_spans         INTEGER NOT NULL,
    spans           BLOB NOT NULL
);

-- `c:<correlation id>`, `m:<message id>`, `t:<trace id>` -> batches.
CREATE TABLE span_keys (
    key             TEXT NOT NULL,
    batch_id        INTEGER NOT NULL,
    PRIMARY KEY (key, batch_id)
) WITHOUT ROWID;
