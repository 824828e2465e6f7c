-- Spans the engine keeps of its own flows (telemetry/): one row per finished
-- span. A separate database file from the queues, so span writes never
-- queue behind (or slow) message commits. Retention prunes by age and count.
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
    correlation_id  TEXT,
    causation_id    TEXT,
    attempt         INTEGER,
    outcome         TEXT,
    attributes      TEXT NOT NULL,
    links           TEXT NOT NULL
);
CREATE INDEX spans_by_correlation ON spans (correlation_id) WHERE correlation_id IS NOT NULL;
CREATE INDEX spans_by_trace ON spans (trace_id);
CREATE INDEX spans_by_message ON spans (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX spans_by_start ON spans (start_us);
