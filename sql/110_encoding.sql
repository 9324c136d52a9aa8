-- A database whose encoding is not UTF-8: records are text in the database
-- encoding, like any text (so the stored records parse as JSON, and every
-- client receives them in its own encoding), while SizeBytes counts UTF-8
-- bytes, as DynamoDB does.

SELECT current_database() AS regress_db \gset
CREATE DATABASE regress_pgs_latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
\c regress_pgs_latin1
\encoding UTF8
SHOW server_encoding;
CREATE EXTENSION pg_streams;
CREATE TABLE enc ("clé" text PRIMARY KEY, doc jsonb, tags text[], note varchar(10));
-- (waits for the new database's capture worker)
SELECT streams.enable_stream('enc', 'NEW_IMAGE', 1) IS NOT NULL AS enabled;
SELECT 'init' FROM pg_create_logical_replication_slot('regress_slot', 'pg_streams');

INSERT INTO enc VALUES ('é', '{"naïve": "été"}', '{ü,ß}', 'ÀÉÎÕÜ');

-- Keys: clé (4) + é (2) = 6. NewImage: 6 + doc (3 + M: 3 + naïve (6) + été (5)
-- + 1 = 15) + tags (4 + L: 3 + (2 + 1) * 2 = 9) + note (4 + 10) = 51. Total 57.
SELECT substring(data FROM '"Keys":(.*),"SequenceNumber"') AS images,
       data::jsonb->'dynamodb'->'SizeBytes' AS size_bytes
FROM pg_logical_slot_get_changes('regress_slot', NULL, NULL);

-- The capture worker stores the same text; get_records parses it.
DO $$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '30 s';
BEGIN
    WHILE NOT EXISTS (SELECT 1 FROM streams.record) AND clock_timestamp() < deadline LOOP
        COMMIT;
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SELECT g->'Records'->0->'dynamodb'->'NewImage' AS new_image, g->'Records'->0->'dynamodb'->'SizeBytes' AS size_bytes
FROM (SELECT streams.list_streams('enc')->'Streams'->0->>'StreamArn' AS arn) s,
     streams.get_records(streams.get_shard_iterator(s.arn,
         streams.describe_stream(s.arn)->'StreamDescription'->'Shards'->0->>'ShardId', 'TRIM_HORIZON')) AS g;

SELECT pg_drop_replication_slot('regress_slot');
\c :regress_db
DROP DATABASE regress_pgs_latin1;
