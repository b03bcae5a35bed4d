-- convguard store schema, version 1.
--
-- Run by the migration runner (src/store/sqlite_store.cc) inside one transaction, which
-- also records the version in PRAGMA user_version and in schema_migrations and sets
-- PRAGMA application_id to convguard's marker. Never edit a released file: add
-- NNN_name.sql with the next number instead. Column meanings: docs/store.md.

-- A stack: what executes problems. `fingerprint` is the StackFingerprint as JSON (see
-- src/store/json_records.h), exactly as first recorded; `id` is its Id().
CREATE TABLE stacks (
  id          TEXT PRIMARY KEY NOT NULL,
  fingerprint TEXT NOT NULL,
  emulated    INTEGER NOT NULL CHECK (emulated IN (0, 1)),
  first_seen  TEXT NOT NULL,  -- UTC ISO 8601
  last_seen   TEXT NOT NULL
);

-- The current verdict of each (stack, problem, algorithm). `record` is the whole Verdict
-- as JSON and is what the store reads back; the other columns are a queryable copy of
-- its fields. A replaced verdict moves to `attempts` (outcome 'superseded').
CREATE TABLE verdicts (
  stack_id       TEXT NOT NULL REFERENCES stacks (id),
  problem        TEXT NOT NULL,
  algorithm      TEXT NOT NULL,
  kind           TEXT NOT NULL,     -- VerdictName: 'OK', 'HANG', ...
  time_ms_min    REAL,              -- NULL when not a finite number
  time_ms_median REAL,
  crash_signal   INTEGER NOT NULL,
  exit_code      INTEGER NOT NULL,
  message        TEXT NOT NULL,
  check_method   TEXT NOT NULL,     -- Verdict::check ("check" is an SQL keyword)
  max_abs_error  REAL,
  max_rel_error  REAL,
  mismatches     INTEGER NOT NULL,
  non_finite     INTEGER NOT NULL,
  implementation TEXT NOT NULL,
  attempts       INTEGER NOT NULL,
  deadline_ms    REAL,
  elapsed_ms     REAL,
  tool_version   TEXT NOT NULL,
  recorded_at    TEXT NOT NULL,
  repro          TEXT NOT NULL,
  emulated       INTEGER NOT NULL CHECK (emulated IN (0, 1)),
  record         TEXT NOT NULL,     -- the Verdict as JSON: authoritative
  stored_at      TEXT NOT NULL,     -- UTC ISO 8601, when this row was written
  PRIMARY KEY (stack_id, problem, algorithm)
);
CREATE INDEX verdicts_by_kind ON verdicts (kind, stack_id);
CREATE INDEX verdicts_by_problem ON verdicts (problem);

-- History: every probe attempt (AddAttempt), every verdict that was replaced
-- (outcome 'superseded', detail = the old Verdict as JSON) and every claim taken over
-- from a dead or stale owner (outcome 'abandoned'). Rows are only ever appended.
CREATE TABLE attempts (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  stack_id       TEXT NOT NULL REFERENCES stacks (id),
  problem        TEXT NOT NULL,
  algorithm      TEXT NOT NULL,
  attempt_number INTEGER NOT NULL,
  outcome        TEXT NOT NULL,
  deadline_ms    REAL,              -- NULL when not a number
  elapsed_ms     REAL,
  worker_pid     INTEGER NOT NULL,
  started_at     TEXT NOT NULL,
  detail         TEXT NOT NULL,
  stored_at      TEXT NOT NULL
);
CREATE INDEX attempts_by_key ON attempts (stack_id, problem, algorithm, id);

-- Work in progress: who is probing which key, since when. Not tied to stacks: a claim
-- is taken before anything about the probe is known.
CREATE TABLE claims (
  stack_id   TEXT NOT NULL,
  problem    TEXT NOT NULL,
  algorithm  TEXT NOT NULL,
  owner      TEXT NOT NULL,
  claimed_at REAL NOT NULL,         -- Unix time in seconds (wall clock, shared by hosts)
  PRIMARY KEY (stack_id, problem, algorithm)
);
CREATE INDEX claims_by_owner ON claims (owner);
