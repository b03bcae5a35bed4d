-- convguard store schema for PostgreSQL, version 1: the logical schema of
-- src/store/schema/001_initial.sql in PostgreSQL's types.
--
-- Run by the migration runner (src/store/pg_store.cc) inside one transaction, under an
-- advisory lock, which also records the version in convguard_store and in
-- schema_migrations. Never edit a released file: add NNN_name.sql with the next number
-- (the same number as SQLite's file of the same change). Column meanings: docs/store.md.
--
-- Differences from SQLite, and why:
--   - keys and times are TEXT COLLATE "C": SQLite compares text bytewise, and an export
--     (ordered by key) must be the same bytes from either store whatever the database's
--     locale; ISO 8601 times compare correctly bytewise;
--   - REAL is DOUBLE PRECISION (PostgreSQL's REAL has 24 bits) and INTEGER is BIGINT;
--   - row ids are identity columns (SQLite's AUTOINCREMENT).

CREATE TABLE stacks (
  id          TEXT COLLATE "C" PRIMARY KEY NOT NULL,
  fingerprint TEXT NOT NULL,
  emulated    SMALLINT NOT NULL CHECK (emulated IN (0, 1)),
  first_seen  TEXT COLLATE "C" NOT NULL,  -- UTC ISO 8601
  last_seen   TEXT COLLATE "C" NOT NULL
);

CREATE TABLE verdicts (
  stack_id       TEXT COLLATE "C" NOT NULL REFERENCES stacks (id),
  problem        TEXT COLLATE "C" NOT NULL,
  algorithm      TEXT COLLATE "C" NOT NULL,
  kind           TEXT COLLATE "C" NOT NULL,
  time_ms_min    DOUBLE PRECISION,  -- NULL when not a finite number
  time_ms_median DOUBLE PRECISION,
  crash_signal   BIGINT NOT NULL,
  exit_code      BIGINT NOT NULL,
  message        TEXT NOT NULL,
  check_method   TEXT NOT NULL,
  max_abs_error  DOUBLE PRECISION,
  max_rel_error  DOUBLE PRECISION,
  mismatches     BIGINT NOT NULL,
  non_finite     BIGINT NOT NULL,
  implementation TEXT NOT NULL,
  attempts       BIGINT NOT NULL,
  deadline_ms    DOUBLE PRECISION,
  elapsed_ms     DOUBLE PRECISION,
  tool_version   TEXT NOT NULL,
  recorded_at    TEXT NOT NULL,
  repro          TEXT NOT NULL,
  emulated       SMALLINT NOT NULL CHECK (emulated IN (0, 1)),
  record         TEXT NOT NULL,     -- the Verdict as JSON: authoritative
  stored_at      TEXT NOT NULL,
  PRIMARY KEY (stack_id, problem, algorithm)
);
CREATE INDEX verdicts_by_kind ON verdicts (kind, stack_id);
CREATE INDEX verdicts_by_problem ON verdicts (problem);

CREATE TABLE attempts (
  id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  stack_id       TEXT COLLATE "C" NOT NULL REFERENCES stacks (id),
  problem        TEXT COLLATE "C" NOT NULL,
  algorithm      TEXT COLLATE "C" NOT NULL,
  attempt_number BIGINT NOT NULL,
  outcome        TEXT NOT NULL,
  deadline_ms    DOUBLE PRECISION,  -- NULL when not a number
  elapsed_ms     DOUBLE PRECISION,
  worker_pid     BIGINT NOT NULL,
  started_at     TEXT NOT NULL,
  detail         TEXT NOT NULL,
  stored_at      TEXT NOT NULL
);
CREATE INDEX attempts_by_key ON attempts (stack_id, problem, algorithm, id);

CREATE TABLE claims (
  stack_id   TEXT COLLATE "C" NOT NULL,
  problem    TEXT COLLATE "C" NOT NULL,
  algorithm  TEXT COLLATE "C" NOT NULL,
  owner      TEXT COLLATE "C" NOT NULL,
  claimed_at DOUBLE PRECISION NOT NULL,  -- Unix time in seconds (wall clock, shared by hosts)
  PRIMARY KEY (stack_id, problem, algorithm)
);
CREATE INDEX claims_by_owner ON claims (owner);
