-- Retention: finished runs may be pruned, with their steps, events and alerts. The event log
-- stays append-only for every run that exists: an event may be deleted only once its run's
-- row is gone, and only prune removes a run's row (finished runs, nothing undelivered).

DROP TRIGGER events_no_delete;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
WHEN EXISTS (SELECT 1 FROM runs WHERE runs.operation_id = OLD.operation_id)
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only');
END;

-- prune walks the finished runs of a status by their last change, oldest first.
CREATE INDEX runs_by_status_updated ON runs (status, updated_at);
CREATE INDEX alerts_by_run ON alerts (operation_id);
