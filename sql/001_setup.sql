-- Helpers shared by the other test files (they run in the same database),
-- and the environment they rely on.

-- pg_regress created the extension; the capture worker makes its slot soon after.
SELECT extname, extversion, extnamespace::regnamespace FROM pg_extension WHERE extname = 'pg_streams';
SHOW pg_streams.aws_region;
SHOW pg_streams.aws_account_id;

-- Waits up to `timeout` for the capture slot of this database.
CREATE FUNCTION pgs_wait_capture_slot(timeout interval DEFAULT '30 s') RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + timeout;
BEGIN
    LOOP
        IF EXISTS (SELECT 1 FROM pg_replication_slots
                   WHERE slot_name = 'pg_streams_' || (SELECT oid FROM pg_database WHERE datname = current_database())
                     AND plugin = 'pg_streams' AND slot_type = 'logical') THEN
            RETURN true;
        END IF;
        IF clock_timestamp() > deadline THEN
            RETURN false;
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SELECT pgs_wait_capture_slot();

-- The ARN of the newest stream of a table.
CREATE FUNCTION pgs_arn(tbl regclass) RETURNS text
LANGUAGE sql AS $$ SELECT streams.list_streams(tbl)->'Streams'->-1->>'StreamArn' $$;

-- The id of shard n (0-based, in describe_stream order) of a stream.
CREATE FUNCTION pgs_shard(arn text, n integer DEFAULT 0) RETURNS text
LANGUAGE sql AS $$ SELECT streams.describe_stream(arn)->'StreamDescription'->'Shards'->n->>'ShardId' $$;

-- Waits (up to `timeout`) until the capture worker has appended at least
-- `expected` records to a stream; returns how many there are. A procedure
-- that commits between passes: each pass reads with a new snapshot, and no
-- lock on the storage tables is held while waiting (the worker needs an
-- exclusive one to add a storage segment).
CREATE PROCEDURE pgs_wait_records(arn text, expected bigint, INOUT records bigint DEFAULT NULL,
                                  timeout interval DEFAULT '30 s')
LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + timeout;
BEGIN
    LOOP
        SELECT count(*) INTO records FROM streams.record r JOIN streams.stream s USING (stream_id)
        WHERE s.stream_arn = arn;
        EXIT WHEN records >= expected OR clock_timestamp() > deadline;
        COMMIT;
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;

-- The records of a stream as the capture worker stored them (text, in
-- DynamoDB's key order), in shard then sequence order.
CREATE FUNCTION pgs_stored(arn text) RETURNS SETOF text
LANGUAGE sql AS $$
    SELECT r.record FROM streams.record r JOIN streams.stream s USING (stream_id)
    WHERE s.stream_arn = arn ORDER BY r.shard, r.lsn, r.idx
$$;

-- Replaces what differs from run to run by placeholders: eventID, the
-- commit time, the commit LSN of sequence numbers (the change index stays),
-- stream labels (also inside ARNs), shard ids and creation times. Values
-- that do not have the expected form are left as they are, so that they
-- show up in a diff.
CREATE FUNCTION pgs_mask(t text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
           regexp_replace(t,
           '("eventID": ?)"[0-9a-f]{32}"', '\1"<eventID>"', 'g'),
           '("ApproximateCreationDateTime": ?)[0-9]{10}\.0([,}])', '\1<time>\2', 'g'),
           '("SequenceNumber": ?)"1[0-9]{20}([0-9]{10})"', '\1"1<lsn>\2"', 'g'),
           '("(Starting|Ending)SequenceNumber": ?)"1[0-9]{30}"', '\1"<seq>"', 'g'),
           '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}', '<label>', 'g'),
           'shardId-[0-9]{20}-[0-9a-f]{8}', 'shardId-<id>', 'g'),
           '("CreationRequestDateTime": ?)[0-9]{10}(\.[0-9]{1,6})?', '\1<time>', 'g')
$$;

-- Decodes the changes waiting in a slot of plugin pg_streams, masked.
CREATE FUNCTION pgs_changes(slot name) RETURNS SETOF text
LANGUAGE sql AS $$ SELECT pgs_mask(data) FROM pg_logical_slot_get_changes(slot, NULL, NULL) $$;

-- Runs a statement; returns 'ok' or the error as SQLSTATE, DETAIL (the AWS
-- exception) and message, masked.
CREATE FUNCTION pgs_try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    state text; msg text; detail text;
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
    RETURN pgs_mask(format('%s %s: %s', state, coalesce(nullif(detail, ''), '-'), msg));
END $$;

-- Shows runs of 20 or more zeros as 0{count}, to keep long numbers readable.
CREATE FUNCTION pgs_short(t text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    m text[];
BEGIN
    LOOP
        m := regexp_match(t, '0{20,}');
        EXIT WHEN m IS NULL;
        t := regexp_replace(t, '0{20,}', '0{' || length(m[1]) || '}');
    END LOOP;
    RETURN t;
END $$;

-- A second implementation of DynamoDB's item size rules (semantics doc,
-- section 5), written from the rules and not from the C++ code, to check
-- SizeBytes against.
CREATE FUNCTION pgs_number_size(n text) RETURNS integer
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v numeric := n::numeric;
    s text := abs(v)::text;   -- plain decimal, no exponent (like toFixed)
    p0 text;
    p1 text;
    digits text;
BEGIN
    IF v = 0 THEN
        RETURN 1;
    END IF;
    IF position('.' IN s) > 0 THEN
        p0 := split_part(s, '.', 1);
        p1 := split_part(s, '.', 2);
        IF p0 = '0' THEN
            p0 := '';
            WHILE left(p1, 2) = '00' LOOP
                p1 := substr(p1, 3);
            END LOOP;
        END IF;
        IF length(p0) % 2 = 1 THEN p0 := '0' || p0; END IF;
        IF length(p1) % 2 = 1 THEN p1 := p1 || '0'; END IF;
        digits := p0 || p1;
    ELSE
        digits := s;
    END IF;
    WHILE left(digits, 2) = '00' LOOP
        digits := substr(digits, 3);
    END LOOP;
    WHILE length(digits) >= 2 AND right(digits, 2) = '00' LOOP
        digits := left(digits, -2);
    END LOOP;
    RETURN least(21, (length(digits) + 1) / 2 + 1 + CASE WHEN v < 0 THEN 1 ELSE 0 END);
END $$;

CREATE FUNCTION pgs_value_size(v jsonb) RETURNS integer
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    t text := (SELECT k FROM jsonb_object_keys(v) AS k);
BEGIN
    RETURN CASE t
        WHEN 'S' THEN octet_length(v->>'S')
        WHEN 'N' THEN pgs_number_size(v->>'N')
        WHEN 'B' THEN length(decode(v->>'B', 'base64'))
        WHEN 'BOOL' THEN 1
        WHEN 'NULL' THEN 1
        WHEN 'M' THEN 3 + (SELECT coalesce(sum(octet_length(e.key) + pgs_value_size(e.value) + 1), 0)
                           FROM jsonb_each(v->'M') AS e)
        WHEN 'L' THEN 3 + (SELECT coalesce(sum(pgs_value_size(e) + 1), 0)
                           FROM jsonb_array_elements(v->'L') AS e)
    END;
END $$;

CREATE FUNCTION pgs_map_size(m jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(sum(octet_length(e.key) + pgs_value_size(e.value)), 0)::integer FROM jsonb_each(m) AS e
$$;

-- SizeBytes of a record as the rules compute it.
CREATE FUNCTION pgs_record_size(rec jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT pgs_map_size(rec->'dynamodb'->'Keys') + pgs_map_size(rec->'dynamodb'->'NewImage')
           + pgs_map_size(rec->'dynamodb'->'OldImage')
$$;

-- Decodes the changes waiting in a slot, one row per record: table,
-- transaction (1, 2, ... in commit LSN order within this call), change index,
-- event, Keys, images, SizeBytes and whether it agrees with pgs_record_size.
CREATE FUNCTION pgs_brief(slot name)
RETURNS TABLE (tbl text, xact bigint, idx integer, event text, keys jsonb, new_image jsonb, old_image jsonb,
               size integer, size_ok boolean)
LANGUAGE sql AS $$
    SELECT regexp_replace(r->>'eventSourceARN', '^.*:table/[^.]+\.(.*)/stream/.*$', '\1'),
           dense_rank() OVER (ORDER BY substr(r->'dynamodb'->>'SequenceNumber', 1, 21)),
           right(r->'dynamodb'->>'SequenceNumber', 10)::integer, r->>'eventName',
           r->'dynamodb'->'Keys', r->'dynamodb'->'NewImage', r->'dynamodb'->'OldImage',
           (r->'dynamodb'->>'SizeBytes')::integer, (r->'dynamodb'->>'SizeBytes')::integer = pgs_record_size(r)
    FROM (SELECT c.data::jsonb AS r, c.n
          FROM pg_logical_slot_get_changes(slot, NULL, NULL) WITH ORDINALITY AS c(lsn, xid, data, n)) AS s
    ORDER BY s.n
$$;

-- The helpers themselves.
SELECT pgs_number_size(n) AS size, n
FROM unnest(ARRAY['0', '42', '101', '-1', '0.5', '0.05', '1.05', '123.45', '123.4500', '-0.001',
                  '1000', '10000', '11000', '1e125', '3.4e+38',
                  '12345678901234567890123456789012345678', '-12345678901234567890123456789012345678']) AS n;
SELECT pgs_value_size('{"M":{"a":{"N":"1"},"bb":{"L":[{"BOOL":true},{"NULL":true},{"S":"xyz"}]}}}');
SELECT pgs_value_size('{"B":"Zm9vYmFy"}'), pgs_value_size('{"S":"é€😀"}');
-- The semantics doc's example: 70.
SELECT pgs_record_size('{"dynamodb":{"Keys":{"my_partition_key":{"S":"hello world"}},
    "NewImage":{"binary_key":{"B":"Zm9vYmFy"},"my_partition_key":{"S":"hello world"}}}}');
SELECT pgs_mask('{"eventID":"ab0ed3713569f4655f353e5ef61a88c4","dynamodb":{"ApproximateCreationDateTime":1732550831.0,'
                '"SequenceNumber":"1000000000000266709520000000003"},'
                '"eventSourceARN":"arn:aws:dynamodb:us-east-1:000000000000:table/public.t/stream/2026-11-22T10:40:38.355"}');
SELECT pgs_mask('{"eventID":"AB0ED3713569F4655F353E5EF61A88C4","dynamodb":{"ApproximateCreationDateTime":1732550831,'
                '"SequenceNumber":"100000000000026670952000000003"}}');
SELECT pgs_try('SELECT 1/0'), pgs_try('SELECT 1');
SELECT pgs_short('1' || repeat('0', 125) || '.5'), pgs_short('1' || repeat('0', 19));
