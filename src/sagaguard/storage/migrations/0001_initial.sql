-- The journal of DESIGN.md section 3: runs, their steps, and an append-only event log.
-- Payload columns (input, result, data) hold JSON text; times are seconds since the epoch.

CREATE TABLE runs (
    operation_id     TEXT PRIMARY KEY,
    process          TEXT NOT NULL,
    version          TEXT NOT NULL,
    input            TEXT NOT NULL,
    input_hash       TEXT NOT NULL,
    status           TEXT NOT NULL,
    owner            TEXT,
    lease_expires_at REAL,
    fencing_token    INTEGER NOT NULL,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    reason           TEXT,
    -- seq of the run's latest event, so appending needs no MAX() over the log
    last_seq         INTEGER NOT NULL DEFAULT 0
);

-- list_runs, newest first (rowid breaks ties in insertion order)
CREATE INDEX runs_by_created ON runs (created_at);
-- list_runs by status, and claim_expired, which walks only the active runs, oldest first.
-- No index holds the lease: renewing it (every record) must not rewrite an index page.
CREATE INDEX runs_by_status ON runs (status, created_at);

CREATE TABLE steps (
    operation_id          TEXT NOT NULL,
    step_id               TEXT NOT NULL,
    position              INTEGER NOT NULL,
    status                TEXT NOT NULL,
    attempts              INTEGER NOT NULL DEFAULT 0,
    last_attempt_at       REAL,
    idempotency_key       TEXT NOT NULL,
    external_id           TEXT,
    result                TEXT,
    failure_reason        TEXT,
    compensation_attempts INTEGER NOT NULL DEFAULT 0,
    completed_seq         INTEGER,
    PRIMARY KEY (operation_id, step_id)
) WITHOUT ROWID;

CREATE TABLE events (
    operation_id TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    at           REAL NOT NULL,
    actor        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    step_id      TEXT,
    from_status  TEXT,
    to_status    TEXT,
    reason       TEXT,
    data         TEXT,
    PRIMARY KEY (operation_id, seq)
) WITHOUT ROWID;

-- The audit trail is append-only: nothing may rewrite or erase it.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only');
END;
