-- Each create_run call writes a token of its own with the run it creates. A create whose
-- commit's acknowledgement was lost (the connection went during the commit) is retried,
-- and the retry finds the run: the token tells whether that run is its own creation.
ALTER TABLE {schema}.runs ADD COLUMN create_token text;
