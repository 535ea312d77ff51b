-- Alerts leave through an outbox: each one is inserted in the same transaction as the
-- transition that raised it, so a crash between the commit and the notifier cannot lose it.
-- A notifier that took it marks it delivered; until then a worker retries it.

CREATE TABLE alerts (
    alert_id         TEXT PRIMARY KEY,
    operation_id     TEXT NOT NULL,
    kind             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    created_at       REAL NOT NULL,
    next_attempt_at  REAL NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    delivered_at     REAL,
    last_error       TEXT
) WITHOUT ROWID;

-- claim_due_alerts walks only the undelivered alerts, the earliest due first.
CREATE INDEX alerts_due ON alerts (next_attempt_at) WHERE delivered_at IS NULL;

-- The name of the field in a step's result that holds its external id (payment_id, ...),
-- so a person's resolution can record the id without the saga's code at hand.
ALTER TABLE steps ADD COLUMN external_id_field TEXT;
