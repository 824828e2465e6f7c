-- Spans the engine keeps of its own flows (telemetry/): one row per finished
-- span. A separate database file from the queues, so span writes never
-- queue behind (or slow) message commits. Retention prunes by age and count.
--
-- Only one index on the (large, write-heavy) span table: its correlation id.
-- A message id or a trace id is first resolved to correlation ids through
-- the two small lookup tables, which get a row per message and per trace,
-- not per span.
CREATE TABLE spans (
    id              INTEGER PRIMARY KEY,
    trace_id        TEXT NOT NULL,
    span_id         TEXT NOT NULL,
    parent_span_id  TEXT,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    start_us        INTEGER NOT NULL,
    duration_us     INTEGER NOT NULL,
    status          TEXT NOT NULL,
    status_message  TEXT,
    operation       TEXT,
    queue           TEXT,
    message_id      TEXT,
    correlation_id  TEXT NOT NULL,
    causation_id    TEXT,
    attempt         INTEGER,
    outcome         TEXT,
    attributes      TEXT NOT NULL,
    links           TEXT NOT NULL
);
CREATE INDEX spans_by_correlation ON spans (correlation_id);

-- message id -> correlation id; `span_row` is the first span's row, for pruning.
CREATE TABLE span_messages (
    message_id      TEXT NOT NULL,
    correlation_id  TEXT NOT NULL,
    span_row        INTEGER NOT NULL,
    PRIMARY KEY (message_id, correlation_id)
) WITHOUT ROWID;

-- trace id -> correlation id.
CREATE TABLE span_traces (
    trace_id        TEXT NOT NULL,
    correlation_id  TEXT NOT NULL,
    span_row        INTEGER NOT NULL,
    PRIMARY KEY (trace_id, correlation_id)
) WITHOUT ROWID;
