-- Format 2 of span batches (span_codec.rs: a string table and varints,
-- no JSON, no LZ4) and integer keys: `kind << 62 | the id's first 62 bits`
-- (a UUID v7's timestamp and counter, so new keys append to the index;
-- other ids hash). Integer keys are a quarter of the text keys' size and
-- compare in one instruction. A key may stand for more than one id: a
-- lookup reads its batches and keeps the spans that match exactly.
--
-- Batches written before this migration keep format 1 and their text keys
-- in `span_keys` until retention removes them.
ALTER TABLE span_batches ADD COLUMN format INTEGER NOT NULL DEFAULT 1;

CREATE TABLE span_key_ids (
    key             INTEGER NOT NULL,
    batch_id        INTEGER NOT NULL,
    PRIMARY KEY (key, batch_id)
) WITHOUT ROWID;
