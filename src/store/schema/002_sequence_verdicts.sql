-- convguard store schema, version 2: sequence verdicts (docs/replay.md).
--
-- Every replay of a sequence of calls in one worker (`convguard replay`) is appended
-- here; rows are never replaced or deleted. `record` is the whole SequenceVerdict as
-- JSON and is what the store reads back; the other columns copy its fields for queries.
CREATE TABLE sequence_verdicts (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  stack_id       TEXT NOT NULL REFERENCES stacks (id),
  digest         TEXT NOT NULL,     -- SequenceDigest of the calls replayed
  source         TEXT NOT NULL,     -- the log or list it came from
  kind           TEXT NOT NULL,     -- 'OK', 'HANG', ...
  calls          INTEGER NOT NULL,
  calls_run      INTEGER NOT NULL,
  failed_at      INTEGER NOT NULL,  -- 0-based; -1 when nothing failed
  failed_problem TEXT NOT NULL,
  minimal_calls  INTEGER NOT NULL,  -- calls of the minimal failing sub-sequence; 0: none
  recorded_at    TEXT NOT NULL,     -- UTC ISO 8601
  record         TEXT NOT NULL,     -- the SequenceVerdict as JSON: authoritative
  stored_at      TEXT NOT NULL
);
CREATE INDEX sequence_verdicts_by_stack ON sequence_verdicts (stack_id, digest, id);
