-- `messages.seq` without AUTOINCREMENT, which read and rewrote the
-- `sqlite_sequence` row on every insert: 5% of all the instructions of a
-- send, deliver and ack (callgrind). The writer now numbers messages
-- itself and keeps the last number given in `counters`, written once per
-- transaction, so a seq is still never reused: not after the newest
-- message is acked, nor after a restart.
CREATE TABLE counters (
    name   TEXT    PRIMARY KEY,
    value  INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, value)
    SELECT 'message_seq', MAX(
        COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0),
        COALESCE((SELECT MAX(seq) FROM messages), 0));

CREATE TABLE messages_new (
    seq           INTEGER PRIMARY KEY,
    queue_id      INTEGER NOT NULL,
    id            BLOB    NOT NULL,
    state         INTEGER NOT NULL,
    visible_at    INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    enqueued_at   INTEGER NOT NULL,
    expires_at    INTEGER,
    content_type  TEXT    NOT NULL,
    payload       BLOB    NOT NULL,
    envelope      TEXT    NOT NULL,
    last_error    TEXT,
    dead_reason   TEXT,
    dead_origin   TEXT,
    dead_at       INTEGER,
    dead_attempts INTEGER,
    history       TEXT,
    lease_gen     INTEGER NOT NULL DEFAULT 0,
    traceparent   BLOB
);
INSERT INTO messages_new (seq, queue_id, id, state, visible_at, attempts, enqueued_at, expires_at,
                          content_type, payload, envelope, last_error, dead_reason, dead_origin,
                          dead_at, dead_attempts, history, lease_gen, traceparent)
    SELECT seq, queue_id, id, state, visible_at, attempts, enqueued_at, expires_at,
           content_type, payload, envelope, last_error, dead_reason, dead_origin,
           dead_at, dead_attempts, history, lease_gen, traceparent
    FROM messages;
DROP TABLE messages;
ALTER TABLE messages_new RENAME TO messages;
CREATE INDEX messages_expiry ON messages (queue_id, expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX messages_dead_queue ON messages (queue_id, seq) WHERE dead_reason IS NOT NULL;
CREATE INDEX messages_dead_origin ON messages (dead_origin, seq) WHERE dead_reason IS NOT NULL;
