-- Replay: streams.reset_event_source_mapping moves a disabled mapping's
-- position; mappings that can block a shard for ever get a NOTICE.
CREATE TABLE replay_src (id int PRIMARY KEY);
CREATE TABLE replay_seen (n serial, id int);
CREATE FUNCTION replay_h(event jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO replay_seen (id)
    SELECT (r->'dynamodb'->'Keys'->'id'->>'N')::int FROM jsonb_array_elements(event->'Records') r
$$;
-- Waits until a mapping's dispatcher has stopped (State Disabled).
CREATE FUNCTION replay_wait_disabled(u uuid) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. 3000 LOOP
        IF streams.get_event_source_mapping(u)->>'State' = 'Disabled' THEN RETURN 'Disabled'; END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RETURN streams.get_event_source_mapping(u)->>'State';
END $$;
SELECT streams.enable_stream('replay_src', 'KEYS_ONLY', 1) IS NOT NULL AS stream_enabled;
SELECT streams.create_function('replay_h', 'replay_h(jsonb)') IS NOT NULL AS function_created;
-- Unbounded retries, no destination: a NOTICE says what that means.
SELECT streams.create_event_source_mapping(
    '{"EventSourceArn":"replay_src","FunctionName":"replay_h","StartingPosition":"TRIM_HORIZON"}')->>'UUID' AS uuid \gset
INSERT INTO replay_src SELECT generate_series(1, 5);
SELECT streams.wait_for_delivery(:'uuid')->'Records' AS delivered;
SELECT array_agg(id ORDER BY n) AS seen FROM replay_seen;

-- Refused while enabled.
SELECT replace(pgs_try(format($$SELECT streams.reset_event_source_mapping(%L, '{"StartingPosition":"TRIM_HORIZON"}')$$, :'uuid')),
               :'uuid', '<uuid>') AS while_enabled;

-- TRIM_HORIZON: everything again.
SELECT streams.update_event_source_mapping(:'uuid', '{"Enabled": false, "MaximumRetryAttempts": 2}')->>'State' AS state;
SELECT replay_wait_disabled(:'uuid');
SELECT streams.reset_event_source_mapping(:'uuid', '{"StartingPosition":"TRIM_HORIZON"}')->>'StartingPosition' AS reset_to;
SELECT streams.update_event_source_mapping(:'uuid', '{"Enabled": true}')->>'State' AS state;
SELECT streams.wait_for_delivery(:'uuid')->'Records' AS delivered;
SELECT array_agg(id ORDER BY n) AS seen FROM replay_seen;

-- A SequenceNumber per shard: from (and including) the 4th record.
SELECT streams.update_event_source_mapping(:'uuid', '{"Enabled": false}')->>'State' AS state;
SELECT replay_wait_disabled(:'uuid');
SELECT jsonb_build_object('SequenceNumbers', jsonb_build_object(
           streams._shard_id(s, r.shard), r.record::jsonb->'dynamodb'->>'SequenceNumber')) AS pos
  FROM streams.record r JOIN streams.stream s USING (stream_id)
 WHERE s.relid = 'replay_src'::regclass AND (r.record::jsonb->'dynamodb'->'Keys'->'id'->>'N')::int = 4 \gset
SELECT streams.reset_event_source_mapping(:'uuid', :'pos') IS NOT NULL AS reset;
TRUNCATE replay_seen;
SELECT streams.update_event_source_mapping(:'uuid', '{"Enabled": true}')->>'State' AS state;
SELECT streams.wait_for_delivery(:'uuid')->'Records' AS delivered;
SELECT array_agg(id ORDER BY n) AS seen FROM replay_seen;

-- LATEST: what was written while disabled is skipped.
SELECT streams.update_event_source_mapping(:'uuid', '{"Enabled": false}')->>'State' AS state;
SELECT replay_wait_disabled(:'uuid');
INSERT INTO replay_src SELECT generate_series(6, 8);
SELECT streams.reset_event_source_mapping(:'uuid', '{"StartingPosition":"LATEST"}')->>'StartingPosition' AS reset_to;
SELECT streams.update_event_source_mapping(:'uuid', '{"Enabled": true}')->>'State' AS state;
INSERT INTO replay_src VALUES (9);
SELECT streams.wait_for_delivery(:'uuid')->'Records' AS delivered;
SELECT array_agg(id ORDER BY n) AS seen FROM replay_seen;

-- Errors (the mapping disabled again).
SELECT streams.update_event_source_mapping(:'uuid', '{"Enabled": false}')->>'State' AS state;
SELECT replay_wait_disabled(:'uuid');
SELECT pgs_try(format($$SELECT streams.reset_event_source_mapping(%L, %L)$$, :'uuid', p)) AS error
  FROM unnest(ARRAY['[]', '{}', '{"StartingPosition":"FIRST"}', '{"StartingPosition":"AT_TIMESTAMP"}',
                    '{"StartingPosition":"LATEST","StartingPositionTimestamp":1}',
                    '{"StartingPosition":"LATEST","SequenceNumbers":{}}', '{"Position":"LATEST"}',
                    '{"SequenceNumbers":{}}', '{"SequenceNumbers":{"shardId-1":"1"}}']) p;
SELECT regexp_replace(pgs_try(format($$SELECT streams.reset_event_source_mapping(%L, %L)$$, :'uuid',
           jsonb_build_object('SequenceNumbers', jsonb_build_object(
               (SELECT streams.describe_stream(stream_arn)#>>'{StreamDescription,Shards,0,ShardId}'
                  FROM streams.stream WHERE relid = 'replay_src'::regclass), '1' || repeat('0', 30))))),
       'shardId-[0-9]+-[0-9a-f]+', 'shardId-<id>') AS unknown_sequence_number;
SELECT pgs_try($$SELECT streams.reset_event_source_mapping('00000000-0000-0000-0000-000000000000', '{"StartingPosition":"LATEST"}')$$) AS unknown_mapping;
CREATE ROLE replay_other;
SET ROLE replay_other;
SELECT replace(pgs_try(format($$SELECT streams.reset_event_source_mapping(%L, '{"StartingPosition":"LATEST"}')$$, :'uuid')),
               :'uuid', '<uuid>') AS other_role;
RESET ROLE;
DROP ROLE replay_other;

-- With a retry limit or a destination there is no NOTICE.
SELECT streams.update_event_source_mapping(:'uuid', '{"MaximumRetryAttempts": -1}') IS NOT NULL AS updated_unbounded;
SELECT streams.update_event_source_mapping(:'uuid', '{"MaximumRecordAgeInSeconds": 3600}') IS NOT NULL AS updated_bounded;

SELECT streams.delete_event_source_mapping(:'uuid') IS NOT NULL AS deleted;
SELECT streams.delete_function('replay_h');
SELECT streams.disable_stream('replay_src') IS NOT NULL AS disabled;
DROP TABLE replay_src, replay_seen;
DROP FUNCTION replay_h(jsonb), replay_wait_disabled(uuid);
