-- Tumbling windows (TumblingWindowInSeconds): validation on create and
-- update with AWS's texts, the value in the mapping's document, the refusal
-- together with ParallelizationFactor > 1, and the stats view's open
-- windows. Nothing is written to the streamed table, so nothing is
-- delivered and no window opens.

CREATE TABLE win_t (id int PRIMARY KEY, v text);
SELECT streams.enable_stream('win_t', 'NEW_IMAGE', 1) IS NOT NULL AS enabled;
SELECT pgs_arn('win_t') AS arn \gset
CREATE FUNCTION win_h(event jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT jsonb_build_object('state', event->'state') $$;
SELECT streams.create_function('win-a', 'win_h(jsonb)') IS NOT NULL AS registered;
SELECT streams.create_function('win-b', 'win_h(jsonb)') IS NOT NULL AS registered;

SELECT jsonb_build_object('EventSourceArn', :'arn', 'FunctionName', 'win-a', 'StartingPosition', 'LATEST') AS base \gset
CREATE FUNCTION win_try(sql text) RETURNS text
LANGUAGE sql AS $$ SELECT regexp_replace(pgs_try(sql), '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'g') $$;

-- Out of range, wrong types: refused on create.
SELECT change, win_try(format('SELECT streams.create_event_source_mapping(%L)', :'base'::jsonb || change::jsonb)) AS error
FROM (VALUES ('{"TumblingWindowInSeconds": -1}'), ('{"TumblingWindowInSeconds": 901}'),
             ('{"TumblingWindowInSeconds": 99999999999}'), ('{"TumblingWindowInSeconds": "60"}'),
             ('{"TumblingWindowInSeconds": 1.5}'), ('{"TumblingWindowInSeconds": null}'),
             ('{"TumblingWindowInSeconds": true}')) AS c(change);

-- A window's state is per shard: not with ParallelizationFactor > 1.
SELECT win_try(format('SELECT streams.create_event_source_mapping(%L)',
       :'base'::jsonb || '{"TumblingWindowInSeconds": 60, "ParallelizationFactor": 2}')) AS error;

-- A Kafka topic returns no state: not with a window, on create or update.
SELECT streams.create_kafka_function('win-k', 'broker1:9092', 'orders') IS NOT NULL AS registered;
SELECT win_try(format('SELECT streams.create_event_source_mapping(%L)',
       jsonb_build_object('EventSourceArn', :'arn', 'FunctionName', 'win-k', 'StartingPosition', 'LATEST',
                          'TumblingWindowInSeconds', 60))) AS error;
SELECT streams.create_event_source_mapping(jsonb_build_object('EventSourceArn', :'arn', 'FunctionName', 'win-k',
       'StartingPosition', 'LATEST', 'MaximumRetryAttempts', 0)) ->>'TumblingWindowInSeconds' AS kafka_without_window;
SELECT uuid AS u_k FROM streams.event_source_mapping WHERE function_name = 'win-k' \gset
SELECT win_try(format('SELECT streams.update_event_source_mapping(%L, %L)', :'u_k', '{"TumblingWindowInSeconds": 5}')) AS error;
SELECT streams.delete_event_source_mapping(:'u_k') IS NOT NULL AS deleted;
SELECT streams.delete_function('win-k');

-- 0..900 are accepted; the document shows the value.
SELECT (streams.create_event_source_mapping(:'base'::jsonb || '{"TumblingWindowInSeconds": 900}')
        ->>'TumblingWindowInSeconds') AS created_900;
SELECT streams.create_event_source_mapping(jsonb_build_object('EventSourceArn', :'arn', 'FunctionName', 'win-b',
       'StartingPosition', 'LATEST')) ->>'TumblingWindowInSeconds' AS default_value;
SELECT uuid AS u_a FROM streams.event_source_mapping WHERE function_name = 'win-a' \gset
SELECT uuid AS u_b FROM streams.event_source_mapping WHERE function_name = 'win-b' \gset

-- Update: the same checks, then 1, 0 (off) and 60.
SELECT change, win_try(format('SELECT streams.update_event_source_mapping(%L, %L)', :'u_b', change)) AS error
FROM (VALUES ('{"TumblingWindowInSeconds": -1}'), ('{"TumblingWindowInSeconds": 901}'),
             ('{"TumblingWindowInSeconds": "1"}'),
             ('{"TumblingWindowInSeconds": 30, "ParallelizationFactor": 3}')) AS c(change);
SELECT streams.update_event_source_mapping(:'u_b', '{"TumblingWindowInSeconds": 1}')->>'TumblingWindowInSeconds' AS one;
SELECT streams.update_event_source_mapping(:'u_b', '{"TumblingWindowInSeconds": 0}')->>'TumblingWindowInSeconds' AS off;
SELECT streams.update_event_source_mapping(:'u_b', '{"TumblingWindowInSeconds": 60}')->>'TumblingWindowInSeconds' AS sixty;
-- A mapping with a window cannot be given ParallelizationFactor > 1 later.
SELECT win_try(format('SELECT streams.update_event_source_mapping(%L, %L)', :'u_a',
       '{"ParallelizationFactor": 2}')) AS error;
SELECT (streams.get_event_source_mapping(:'u_a')->>'TumblingWindowInSeconds') AS still_900;
SELECT function_name, tumbling_window FROM streams.event_source_mapping WHERE function_name LIKE 'win-%' ORDER BY 1;

-- The stats view: no window is open yet.
SELECT function_name, open_windows, oldest_open_window
FROM streams.event_source_mapping_stats WHERE function_name LIKE 'win-%' ORDER BY 1;

SELECT streams.delete_event_source_mapping(:'u_a') IS NOT NULL AS deleted;
SELECT streams.delete_event_source_mapping(:'u_b') IS NOT NULL AS deleted;
SELECT streams.delete_function('win-a'), streams.delete_function('win-b');
SELECT streams.disable_stream('win_t') IS NOT NULL AS disabled;
DROP TABLE win_t;
DROP FUNCTION win_h(jsonb), win_try(text);
