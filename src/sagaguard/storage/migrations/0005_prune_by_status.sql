-- Every write renews the lease and moves updated_at, so an index holding updated_at would be
-- rewritten on every commit. Prune finds its runs through runs_by_status instead.
DROP INDEX IF EXISTS runs_by_status_updated;
