-- Writes sent whole, each behind a check that refuses them when its premise is false.

-- A record whose owner knows the run's row as its own last write left it sends the writes
-- in one message with this check first: it locks the row and refuses it (SQLSTATE SGK01)
-- unless the owner, the fencing token and the last event's seq are still those known. Any
-- other write to the row moves one of them, so a passed check means the row is as known.
-- It returns the time the record's writes carry: the caller's, or the server's receipt of
-- the message (every statement of the message sees the same statement_timestamp()).
CREATE FUNCTION {schema}.held_as_known(op text, holder text, token bigint, seq bigint, at float8)
RETURNS float8 LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM {schema}.runs AS r WHERE r.operation_id = op AND r.owner = holder
        AND r.fencing_token = token AND r.last_seq = seq FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % is not as its owner last wrote it', op USING ERRCODE = 'SGK01';
    END IF;
    RETURN COALESCE(at, extract(epoch FROM statement_timestamp())::float8);
END
$$;

-- A create sends its run, this check, then the run's steps and first event in one message:
-- it refuses (SQLSTATE SGK02) unless the run now holds the creator's token, i.e. the run's
-- INSERT just before it inserted a row rather than meeting an existing run. The creator
-- then reads the existing run instead. It returns the time of the create, as above.
CREATE FUNCTION {schema}.created_here(op text, token text, at float8)
RETURNS float8 LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM {schema}.runs AS r WHERE r.operation_id = op AND r.create_token = token;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % exists already', op USING ERRCODE = 'SGK02';
    END IF;
    RETURN COALESCE(at, extract(epoch FROM statement_timestamp())::float8);
END
$$;
