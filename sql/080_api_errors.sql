-- Every error of the streams API: SQLSTATE, the AWS exception (DETAIL) and
-- the message. pgs_try shows them as "SQLSTATE DETAIL: message". Bad input
-- changes nothing.

CREATE TABLE err_t (id int PRIMARY KEY, v text);
CREATE TABLE err_nopk (id int, v text);
CREATE UNLOGGED TABLE err_unlogged (id int PRIMARY KEY);
CREATE TEMP TABLE err_temp (id int PRIMARY KEY);
CREATE VIEW err_view AS SELECT * FROM err_t;
CREATE MATERIALIZED VIEW err_matview AS SELECT * FROM err_t;
CREATE SEQUENCE err_seq;
CREATE TYPE err_type AS (a int);
SELECT count(*) AS streams_before FROM streams.stream \gset

-- enable_stream
SELECT pgs_try($$SELECT streams.enable_stream(NULL)$$) AS null_table;
SELECT pgs_try($$SELECT streams.enable_stream('err_t', 'FOO')$$) AS bad_view_type;
SELECT pgs_try($$SELECT streams.enable_stream('err_t', 'keys_only')$$) AS lowercase_view_type;
SELECT pgs_try($$SELECT streams.enable_stream('err_t', NULL)$$) AS null_view_type;
SELECT pgs_try($$SELECT streams.enable_stream('err_t', 'KEYS_ONLY', 0)$$) AS zero_shards;
SELECT pgs_try($$SELECT streams.enable_stream('err_t', 'KEYS_ONLY', 257)$$) AS too_many_shards;
SELECT pgs_try($$SELECT streams.enable_stream('err_t', 'KEYS_ONLY', -1)$$) AS negative_shards;
SELECT pgs_try($$SELECT streams.enable_stream('err_t', 'KEYS_ONLY', NULL)$$) AS null_shards;
SELECT pgs_try($$SELECT streams.enable_stream('err_t', 'KEYS_ONLY', 1, '0 seconds')$$) AS zero_retention;
SELECT pgs_try($$SELECT streams.enable_stream('err_t', 'KEYS_ONLY', 1, '0.5 seconds')$$) AS short_retention;
SELECT pgs_try($$SELECT streams.enable_stream('err_t', 'KEYS_ONLY', 1, '-1 hour')$$) AS negative_retention;
SELECT pgs_try($$SELECT streams.enable_stream('err_t', 'KEYS_ONLY', 1, '366 days')$$) AS long_retention;
SELECT pgs_try($$SELECT streams.enable_stream('err_t', 'KEYS_ONLY', 1, NULL)$$) AS null_retention;
SELECT pgs_try($$SELECT streams.enable_stream('err_view')$$) AS a_view;
SELECT pgs_try($$SELECT streams.enable_stream('err_matview')$$) AS a_matview;
SELECT pgs_try($$SELECT streams.enable_stream('err_seq')$$) AS a_sequence;
SELECT pgs_try($$SELECT streams.enable_stream('err_t_pkey')$$) AS an_index;
SELECT pgs_try($$SELECT streams.enable_stream('err_type')$$) AS a_composite_type;
SELECT pgs_try($$SELECT streams.enable_stream('err_unlogged')$$) AS unlogged;
SELECT pgs_try($$SELECT streams.enable_stream('err_temp')$$) AS temporary;
SELECT pgs_try($$SELECT streams.enable_stream('pg_class')$$) AS system_catalog;
SELECT pgs_try($$SELECT streams.enable_stream('streams.segment')$$) AS own_storage;
SELECT pgs_try($$SELECT streams.enable_stream('err_nopk')$$) AS no_primary_key;
SELECT pgs_try($$SELECT streams.enable_stream('no_such_table')$$) AS no_such_table;
SELECT pgs_try($$SELECT streams.enable_stream(4000000000::oid::regclass)$$) AS no_such_oid;
SELECT relreplident AS nopk_identity_unchanged FROM pg_class WHERE oid = 'err_nopk'::regclass;
SELECT pgs_try($$SELECT streams.enable_stream('err_t', 'NEW_IMAGE', 1)$$) AS first_enable;
SELECT pgs_try($$SELECT streams.enable_stream('err_t', 'KEYS_ONLY', 1)$$) AS already_enabled;

-- disable_stream
SELECT pgs_try($$SELECT streams.disable_stream(NULL)$$) AS null_table;
SELECT pgs_try($$SELECT streams.disable_stream('err_nopk')$$) AS no_stream;
SELECT pgs_try($$SELECT streams.disable_stream(4000000000::oid::regclass)$$) AS no_such_oid;

-- describe_stream, list_streams
SELECT pgs_try($$SELECT streams.describe_stream('arn:aws:dynamodb:us-east-1:000000000000:table/public.nope/stream/2020-01-01T00:00:00.000')$$) AS unknown_arn;
SELECT pgs_try($$SELECT streams.describe_stream(NULL)$$) AS null_arn;
SELECT streams.list_streams('err_nopk') AS no_streams;

-- get_shard_iterator
SELECT pgs_arn('err_t') AS arn \gset
SELECT pgs_shard(:'arn') AS shard \gset
SELECT pgs_try(format($$SELECT streams.get_shard_iterator(%L, %L, 'TRIM_HORIZON')$$, :'arn' || 'x', :'shard')) AS unknown_arn;
SELECT pgs_try(format($$SELECT streams.get_shard_iterator(NULL, %L, 'TRIM_HORIZON')$$, :'shard')) AS null_arn;
SELECT pgs_try(format($$SELECT streams.get_shard_iterator(%L, 'shardId-00000000000000000000-00000000', 'TRIM_HORIZON')$$, :'arn')) AS unknown_shard;
SELECT pgs_try(format($$SELECT streams.get_shard_iterator(%L, NULL, 'TRIM_HORIZON')$$, :'arn')) AS null_shard;
SELECT pgs_try(format($$SELECT streams.get_shard_iterator(%L, %L, 'OLDEST')$$, :'arn', :'shard')) AS bad_type;
SELECT pgs_try(format($$SELECT streams.get_shard_iterator(%L, %L, 'trim_horizon')$$, :'arn', :'shard')) AS lowercase_type;
SELECT pgs_try(format($$SELECT streams.get_shard_iterator(%L, %L, NULL)$$, :'arn', :'shard')) AS null_type;
SELECT pgs_try(format($$SELECT streams.get_shard_iterator(%L, %L, 'AT_SEQUENCE_NUMBER')$$, :'arn', :'shard')) AS missing_seq_at;
SELECT pgs_try(format($$SELECT streams.get_shard_iterator(%L, %L, 'AFTER_SEQUENCE_NUMBER', NULL)$$, :'arn', :'shard')) AS missing_seq_after;
SELECT pgs_try(format($$SELECT streams.get_shard_iterator(%L, %L, 'TRIM_HORIZON', %L)$$, :'arn', :'shard', '1' || repeat('0', 30))) AS extra_seq_trim_horizon;
SELECT pgs_try(format($$SELECT streams.get_shard_iterator(%L, %L, 'LATEST', %L)$$, :'arn', :'shard', '1' || repeat('0', 30))) AS extra_seq_latest;
SELECT seq, pgs_try(format($$SELECT streams.get_shard_iterator(%L, %L, 'AT_SEQUENCE_NUMBER', %L)$$, :'arn', :'shard', seq)) AS malformed
FROM unnest(ARRAY['abc', '', '12345', '2' || repeat('0', 30), '1' || repeat('0', 31), '1' || repeat('0', 29),
                  ' 1' || repeat('0', 30), '1' || repeat('9', 20) || repeat('0', 10),
                  '1' || repeat('0', 20) || '9999999999']) AS seq;
SELECT pgs_try(format($$SELECT streams.get_shard_iterator(%L, %L, 'AT_SEQUENCE_NUMBER', %L)$$, :'arn', :'shard',
                      '1' || repeat('0', 20) || '2147483647')) AS largest_index;

-- get_records
SELECT streams.get_shard_iterator(:'arn', :'shard', 'TRIM_HORIZON') AS it \gset
SELECT stream_id AS sid FROM streams.stream WHERE stream_arn = :'arn' \gset
SELECT it, pgs_try(format($$SELECT streams.get_records(%L)$$, it)) AS bad_iterator
FROM unnest(ARRAY['not an iterator', '', encode('hello', 'base64'), encode('pgs1:1:0:0', 'base64'),
                  encode('pgs2:1:0:0:-1', 'base64'), encode('pgs1:99999999999:0:0:-1', 'base64'),
                  encode('pgs1:1:0:99999999999999999999:-1', 'base64'), encode('pgs1:1:0:0:99999999999', 'base64')]) AS it;
SELECT pgs_try($$SELECT streams.get_records(NULL)$$) AS null_iterator;
SELECT pgs_try(format($$SELECT streams.get_records(%L)$$, encode(convert_to(format('pgs1:%s:0:0:-1', 999999), 'UTF8'), 'base64'))) AS unknown_stream;
SELECT replace(pgs_try(format($$SELECT streams.get_records(%L)$$, it)), it, '<iterator>') AS shard_out_of_range
FROM encode(convert_to(format('pgs1:%s:1:0:-1', :sid), 'UTF8'), 'base64') AS it;
SELECT pgs_try(format($$SELECT streams.get_records(%L)$$, encode(convert_to(format('pgs1:%s:0:0:-1', :sid), 'UTF8'), 'base64'))) AS forged_but_valid;
SELECT lim, pgs_try(format($$SELECT streams.get_records(%L, %s)$$, :'it', coalesce(lim::text, 'NULL'))) AS bad_limit
FROM unnest(ARRAY[0, -1, 1001, NULL]) AS lim;
SELECT pgs_try(format($$SELECT streams.get_records(%L, 1000)$$, :'it')) AS limit_1000;

-- TRUNCATE of a streamed table is refused; DELETE streams the removals.
INSERT INTO err_t VALUES (1, 'a');
TRUNCATE err_t;
TRUNCATE err_nopk, err_t;
TRUNCATE err_nopk;

-- Permissions: enabling and disabling needs ownership of the table, reading
-- a stream needs SELECT on it.
CREATE ROLE regress_pgs_owner;
CREATE ROLE regress_pgs_reader;
CREATE ROLE regress_pgs_stranger;
CREATE TABLE err_owned (id int PRIMARY KEY);
ALTER TABLE err_owned OWNER TO regress_pgs_owner;
GRANT SELECT ON err_owned TO regress_pgs_reader;
SET ROLE regress_pgs_stranger;
SELECT pgs_try($$SELECT streams.enable_stream('err_owned', 'KEYS_ONLY', 1)$$) AS stranger_enable;
SET ROLE regress_pgs_reader;
SELECT pgs_try($$SELECT streams.enable_stream('err_owned', 'KEYS_ONLY', 1)$$) AS reader_enable;
SET ROLE regress_pgs_owner;
SELECT pgs_try($$SELECT streams.enable_stream('err_owned', 'KEYS_ONLY', 1)$$) AS owner_enable;
-- The stream tables themselves are not readable by others.
SELECT pgs_try($$SELECT count(*) FROM streams.record$$) AS owner_reads_storage;
SELECT pgs_try($$SELECT count(*) FROM streams.record_batch$$) AS owner_reads_packed_storage;
RESET ROLE;
SELECT pgs_arn('err_owned') AS owned_arn \gset
SELECT pgs_shard(:'owned_arn') AS owned_shard \gset
SELECT streams.get_shard_iterator(:'owned_arn', :'owned_shard', 'TRIM_HORIZON') AS owned_it \gset
SET ROLE regress_pgs_stranger;
SELECT pgs_try(format($$SELECT streams.get_shard_iterator(%L, %L, 'TRIM_HORIZON')$$, :'owned_arn', :'owned_shard')) AS stranger_iterator;
SELECT pgs_try(format($$SELECT streams.get_records(%L)$$, :'owned_it')) AS stranger_records;
SELECT pgs_try($$SELECT streams.disable_stream('err_owned')$$) AS stranger_disable;
SET ROLE regress_pgs_reader;
SELECT pgs_try(format($$SELECT streams.get_shard_iterator(%L, %L, 'TRIM_HORIZON')$$, :'owned_arn', :'owned_shard')) AS reader_iterator;
SELECT pgs_try(format($$SELECT streams.get_records(%L)$$, :'owned_it')) AS reader_records;
SELECT pgs_try($$SELECT streams.disable_stream('err_owned')$$) AS reader_disable;
SET ROLE regress_pgs_owner;
SELECT pgs_try(format($$SELECT streams.get_records(%L)$$, :'owned_it')) AS owner_records;
SELECT pgs_try($$SELECT streams.disable_stream('err_owned')$$) AS owner_disable;
SELECT pgs_try($$SELECT streams.disable_stream('err_owned')$$) AS owner_disable_again;
RESET ROLE;
SELECT owner = 'regress_pgs_owner'::regrole AS stream_owner, status FROM streams.stream WHERE stream_arn = :'owned_arn';

-- Nothing changed by the failed calls: two streams were made (err_t and err_owned).
SELECT count(*) - :streams_before AS new_streams FROM streams.stream;

DROP TABLE err_owned;
DROP ROLE regress_pgs_owner, regress_pgs_reader, regress_pgs_stranger;
