-- What the recovery rules measure a step by, besides its attempt count: when its first
-- attempt started (the retry window), when its outcome became unknown (the settle delay
-- before a "not found" from verify counts), how many verify calls it took, when its first
-- compensation attempt started (the compensation window), and whether a rollback kept it
-- as an irreversible effect.
ALTER TABLE steps ADD COLUMN first_attempt_at REAL;
ALTER TABLE steps ADD COLUMN unknown_since REAL;
ALTER TABLE steps ADD COLUMN verify_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE steps ADD COLUMN compensation_first_at REAL;
ALTER TABLE steps ADD COLUMN kept INTEGER NOT NULL DEFAULT 0;
