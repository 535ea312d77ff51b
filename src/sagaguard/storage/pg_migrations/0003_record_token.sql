-- Each record() call writes a token of its own on the run's row. A record whose commit's
-- acknowledgement was lost (the connection went during the commit) is retried, and the
-- retry finds the row: the token tells whether that write is already in, so its
-- transitions are not written a second time.
ALTER TABLE {schema}.runs ADD COLUMN record_token text;
