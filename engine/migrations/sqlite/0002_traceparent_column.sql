-- Each message's W3C traceparent as 25 bytes (trace id, span id, flags),
-- apart from its envelope's JSON text, so that sends and deliveries do not
-- escape, parse and hex-decode it as text. Messages stored before this
-- keep theirs in the envelope, where the queue module still reads it.
ALTER TABLE messages ADD COLUMN traceparent BLOB;
