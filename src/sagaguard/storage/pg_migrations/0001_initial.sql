-- The journal on PostgreSQL, in a schema of its own (written here as {schema}): the same
-- runs, steps, append-only events and alert outbox as the SQLite journal (its schema v4).
-- Payloads are JSON text, exactly as written; times are seconds since the epoch.
-- The hot tables leave room on each page (fillfactor) so that renewing a lease, which
-- touches no indexed column, is a HOT update, and are vacuumed early.

CREATE TABLE {schema}.runs (
    operation_id     text PRIMARY KEY,
    process          text NOT NULL,
    version          text NOT NULL,
    input            text NOT NULL,
    input_hash       text NOT NULL,
    status           text NOT NULL,
    owner            text,
    lease_expires_at double precision,
    fencing_token    bigint NOT NULL,
    created_at       double precision NOT NULL,
    updated_at       double precision NOT NULL,
    reason           text,
    last_seq         bigint NOT NULL DEFAULT 0,
    created_order    bigint GENERATED ALWAYS AS IDENTITY
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02,
        autovacuum_analyze_scale_factor = 0.02);

-- Claims walk only the active runs, oldest first: millions of finished runs cost nothing.
CREATE INDEX runs_active ON {schema}.runs (created_at, created_order)
    WHERE status IN ('running', 'compensating');
CREATE INDEX runs_by_created ON {schema}.runs (created_at, created_order);
CREATE INDEX runs_by_status ON {schema}.runs (status, created_at, created_order);

CREATE TABLE {schema}.steps (
    operation_id          text NOT NULL,
    step_id               text NOT NULL,
    position              integer NOT NULL,
    status                text NOT NULL,
    attempts              integer NOT NULL DEFAULT 0,
    last_attempt_at       double precision,
    idempotency_key       text NOT NULL,
    external_id           text,
    result                text,
    failure_reason        text,
    compensation_attempts integer NOT NULL DEFAULT 0,
    completed_seq         integer,
    external_id_field     text,
    first_attempt_at      double precision,
    unknown_since         double precision,
    verify_attempts       integer NOT NULL DEFAULT 0,
    compensation_first_at double precision,
    kept                  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (operation_id, step_id)
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02,
        autovacuum_analyze_scale_factor = 0.02);

CREATE TABLE {schema}.events (
    operation_id text NOT NULL,
    seq          bigint NOT NULL,
    at           double precision NOT NULL,
    actor        text NOT NULL,
    kind         text NOT NULL,
    step_id      text,
    from_status  text,
    to_status    text,
    reason       text,
    data         text,
    PRIMARY KEY (operation_id, seq)
) WITH (autovacuum_vacuum_insert_scale_factor = 0.05);

-- The audit trail is append-only: no update ever, and no delete while the run exists
-- (only prune removes a finished run's row, and its trail after it).
CREATE FUNCTION {schema}.events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' OR EXISTS (
        SELECT 1 FROM {schema}.runs WHERE runs.operation_id = OLD.operation_id
    ) THEN
        RAISE EXCEPTION 'the event log is append-only';
    END IF;
    RETURN OLD;
END;
$$;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON {schema}.events
    FOR EACH ROW EXECUTE FUNCTION {schema}.events_append_only();

CREATE TABLE {schema}.alerts (
    alert_id        text PRIMARY KEY,
    operation_id    text NOT NULL,
    kind            text NOT NULL,
    payload         text NOT NULL,
    created_at      double precision NOT NULL,
    next_attempt_at double precision NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    delivered_at    double precision,
    last_error      text
) WITH (fillfactor = 80);

CREATE INDEX alerts_due ON {schema}.alerts (next_attempt_at, alert_id)
    WHERE delivered_at IS NULL;
CREATE INDEX alerts_by_run ON {schema}.alerts (operation_id);
