-- Queues, their messages, and idempotency keys.
-- Numbered migrations are never edited once released; add a new file instead.

CREATE TABLE queues (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    settings    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

-- One row per message not yet acked. `seq` is never reused (AUTOINCREMENT),
-- so a lease token (seq, attempt) can never match a later message.
-- state: 0 ready, 1 leased, 2 scheduled (retry), 3 parked (dead, no DLQ).
-- visible_at: ready/scheduled -> first time it may be delivered;
--             leased -> the lease's end (an expired lease is visible again).
CREATE TABLE messages (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
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
    -- Store-wide number of the current lease, never reused: a lease token
    -- names it, so a token can never match a later lease, even after the
    -- attempt count was reset by dead-lettering or a redrive.
    lease_gen     INTEGER NOT NULL DEFAULT 0
);

-- No index serves the claim path: the writer keeps each queue's delivery
-- order in memory (storage/sqlite/index.rs), so a send, lease and ack each
-- touch one row and no index page.
-- TTL sweeps touch only messages that have a TTL.
CREATE INDEX messages_expiry ON messages (queue_id, expires_at) WHERE expires_at IS NOT NULL;
-- Dead letters, by where they sit and by where they came from.
CREATE INDEX messages_dead_queue ON messages (queue_id, seq) WHERE dead_reason IS NOT NULL;
CREATE INDEX messages_dead_origin ON messages (dead_origin, seq) WHERE dead_reason IS NOT NULL;

CREATE TABLE dedup (
    queue_id    INTEGER NOT NULL,
    key         TEXT    NOT NULL,
    message_id  BLOB    NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (queue_id, key)
) WITHOUT ROWID;
CREATE INDEX dedup_expiry ON dedup (expires_at);
