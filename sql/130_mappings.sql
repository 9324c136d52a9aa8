-- Event source mappings (Lambda CreateEventSourceMapping & co.): response
-- shape and defaults, every validation error, update states, list filters,
-- deletion and ownership. Errors are shown by pgs_try as
-- "SQLSTATE DETAIL: message" (DETAIL names the AWS exception).
--
-- Background workers run here: a dispatcher may move a mapping from Creating
-- to Enabled (or Disabled) at any time. State is therefore only shown in the
-- responses of create, update and delete, which compute it; no rows are ever
-- written to the streamed tables, so nothing is delivered.

CREATE TABLE esm_t (id int PRIMARY KEY, v text);
CREATE TABLE esm_u (id int PRIMARY KEY);
CREATE TABLE esm_nostream (id int PRIMARY KEY);
CREATE TABLE esm_dest (id bigserial, record jsonb);       -- an OnFailure destination
CREATE TABLE esm_dest_text (record text);                  -- "record" is not jsonb
CREATE TABLE esm_dest_none (payload jsonb);                -- no "record" column
CREATE VIEW esm_dest_view AS SELECT * FROM esm_dest;
SELECT streams.enable_stream('esm_t', 'NEW_AND_OLD_IMAGES', 1) IS NOT NULL AS enabled;
SELECT streams.enable_stream('esm_u', 'KEYS_ONLY', 2) IS NOT NULL AS enabled;
SELECT pgs_arn('esm_t') AS arn \gset
SELECT pgs_arn('esm_u') AS arn_u \gset

CREATE FUNCTION esm_h(event jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT NULL::jsonb $$;
SELECT streams.create_function('esm-a', 'esm_h(jsonb)') IS NOT NULL AS registered;
SELECT streams.create_function('esm-b', 'esm_h(jsonb)') IS NOT NULL AS registered;
SELECT streams.create_function('esm-c', 'esm_h(jsonb)') IS NOT NULL AS registered;

-- What varies from run to run: UUIDs (also inside ARNs and messages),
-- LastModified, and (pgs_mask) stream labels.
CREATE FUNCTION esm_mask(t text) RETURNS text
LANGUAGE sql AS $$
    SELECT regexp_replace(regexp_replace(pgs_mask(t),
           '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'g'),
           '("LastModified": )[0-9]+(\.[0-9]+)?', '\1<time>', 'g')
$$;
CREATE FUNCTION esm_show(doc jsonb) RETURNS text
LANGUAGE sql AS $$ SELECT esm_mask(jsonb_pretty(doc)) $$;
CREATE FUNCTION esm_create(req jsonb) RETURNS text
LANGUAGE sql AS $$ SELECT esm_mask(pgs_try(format('SELECT streams.create_event_source_mapping(%L)', req))) $$;
CREATE FUNCTION esm_update(id uuid, req jsonb) RETURNS text
LANGUAGE sql AS $$ SELECT esm_mask(pgs_try(format('SELECT streams.update_event_source_mapping(%L, %L)', id, req))) $$;
-- Mappings as (function, table of the stream), in creation order.
CREATE FUNCTION esm_brief(list jsonb) RETURNS TABLE (function_name text, stream_table text)
LANGUAGE sql AS $$
    SELECT regexp_replace(m->>'FunctionArn', '^.*:function:', ''),
           regexp_replace(m->>'EventSourceArn', '^.*:table/([^/]*)/stream/.*$', '\1')
    FROM jsonb_array_elements(list->'EventSourceMappings') AS m
$$;

-- No mappings yet.
SELECT streams.list_event_source_mappings();

------------------------------------------------------------------------
-- Create with only the required parameters: AWS's defaults.
------------------------------------------------------------------------
SELECT streams.create_event_source_mapping(jsonb_build_object(
    'EventSourceArn', :'arn', 'FunctionName', 'esm-a', 'StartingPosition', 'LATEST')) AS doc \gset
SELECT esm_show(:'doc');
SELECT array_agg(k ORDER BY k) AS keys FROM jsonb_object_keys(:'doc'::jsonb) AS k;
SELECT :'doc'::jsonb->>'UUID' ~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' AS uuid_v4,
       :'doc'::jsonb->>'EventSourceMappingArn'
           = 'arn:aws:lambda:us-east-1:000000000000:event-source-mapping:' || (:'doc'::jsonb->>'UUID') AS mapping_arn,
       :'doc'::jsonb->>'EventSourceArn' = :'arn' AS stream_arn,
       jsonb_typeof(:'doc'::jsonb->'LastModified') AS last_modified_type,
       abs((:'doc'::jsonb->>'LastModified')::numeric - extract(epoch FROM now())) < 60 AS last_modified_now;
SELECT :'doc'::jsonb->>'UUID' AS u_a \gset
-- get returns the same document (State may have moved on already).
SELECT streams.get_event_source_mapping(:'u_a') - 'State' = :'doc'::jsonb - 'State' AS get_equals_create;

------------------------------------------------------------------------
-- EventSourceArn as a table name; FunctionName as an ARN; a second function
-- on the same stream is allowed.
------------------------------------------------------------------------
SELECT streams.create_event_source_mapping('{"EventSourceArn": "esm_t", "FunctionName": "esm-b",
    "StartingPosition": "TRIM_HORIZON", "Enabled": false}') AS doc \gset
SELECT esm_show(:'doc');
SELECT :'doc'::jsonb->>'EventSourceArn' = :'arn' AS table_name_resolved;
SELECT :'doc'::jsonb->>'UUID' AS u_b \gset
SELECT streams.create_event_source_mapping('{"EventSourceArn": "public.esm_u",
    "FunctionName": "arn:aws:lambda:us-east-1:000000000000:function:esm-c",
    "StartingPosition": "LATEST", "Enabled": false}') AS doc \gset
SELECT :'doc'::jsonb->>'EventSourceArn' = :'arn_u' AS qualified_table_name_resolved,
       :'doc'::jsonb->>'FunctionArn' AS function_arn;
SELECT :'doc'::jsonb->>'UUID' AS u_c \gset
-- An ARN with :$LATEST names the function too.
SELECT streams.create_event_source_mapping('{"EventSourceArn": "esm_u",
    "FunctionName": "arn:aws:lambda:us-east-1:000000000000:function:esm-b:$LATEST",
    "StartingPosition": "LATEST", "Enabled": false}') AS doc \gset
SELECT :'doc'::jsonb->>'FunctionArn' AS function_arn;
SELECT streams.delete_event_source_mapping((:'doc'::jsonb->>'UUID')::uuid)->>'State' AS deleted;

------------------------------------------------------------------------
-- Every parameter, at its limits.
------------------------------------------------------------------------
SELECT streams.create_event_source_mapping(jsonb_build_object('EventSourceArn', :'arn_u') || '{
    "FunctionName": "esm-a", "StartingPosition": "TRIM_HORIZON", "Enabled": false,
    "BatchSize": 10000, "MaximumBatchingWindowInSeconds": 300, "ParallelizationFactor": 1,
    "MaximumRetryAttempts": 10000, "MaximumRecordAgeInSeconds": 604800,
    "BisectBatchOnFunctionError": true, "TumblingWindowInSeconds": 0,
    "FunctionResponseTypes": ["ReportBatchItemFailures"],
    "DestinationConfig": {"OnFailure": {"Destination": "streams.failed_batches"}},
    "FilterCriteria": {"Filters": []}}') AS doc \gset
-- FilterCriteria with no filters is left out of the response.
SELECT esm_show(:'doc');
SELECT :'doc'::jsonb->>'UUID' AS u_full \gset
-- The low limits.
SELECT esm_create(jsonb_build_object('EventSourceArn', :'arn', 'FunctionName', 'esm-c') || '{
    "StartingPosition": "LATEST", "Enabled": false, "BatchSize": 1, "MaximumBatchingWindowInSeconds": 0,
    "MaximumRetryAttempts": -1, "MaximumRecordAgeInSeconds": 60, "BisectBatchOnFunctionError": false,
    "FunctionResponseTypes": [], "DestinationConfig": {"OnFailure": {}}, "FilterCriteria": {}}');
SELECT (m->>'BatchSize', m->>'MaximumRetryAttempts', m->>'MaximumRecordAgeInSeconds', m->'DestinationConfig',
        m->'FunctionResponseTypes', m ? 'FilterCriteria') AS low_limits
FROM jsonb_array_elements(streams.list_event_source_mappings(:'arn', 'esm-c')->'EventSourceMappings') AS m;
SELECT streams.delete_event_source_mapping((m->>'UUID')::uuid)->>'State' AS deleted
FROM jsonb_array_elements(streams.list_event_source_mappings(:'arn', 'esm-c')->'EventSourceMappings') AS m;

------------------------------------------------------------------------
-- Create errors. The base request is valid (esm-c on esm_t); each row
-- changes one thing.
------------------------------------------------------------------------
SELECT jsonb_build_object('EventSourceArn', :'arn', 'FunctionName', 'esm-c', 'StartingPosition', 'LATEST',
                          'Enabled', false) AS base \gset
SELECT count(*) AS mappings_before FROM streams.event_source_mapping \gset

-- Integer ranges (AWS's validation message) and types.
SELECT change, esm_create(:'base'::jsonb || change::jsonb) AS error
FROM (VALUES ('{"BatchSize": 0}'), ('{"BatchSize": 10001}'), ('{"BatchSize": -1}'),
             ('{"BatchSize": 99999999999}'),
             ('{"MaximumBatchingWindowInSeconds": -1}'), ('{"MaximumBatchingWindowInSeconds": 301}'),
             ('{"ParallelizationFactor": 0}'), ('{"ParallelizationFactor": 11}'),
             ('{"MaximumRetryAttempts": -2}'), ('{"MaximumRetryAttempts": 10001}'),
             ('{"MaximumRecordAgeInSeconds": -2}'), ('{"MaximumRecordAgeInSeconds": 0}'),
             ('{"MaximumRecordAgeInSeconds": 30}'), ('{"MaximumRecordAgeInSeconds": 59}'),
             ('{"MaximumRecordAgeInSeconds": 604801}'),
             ('{"TumblingWindowInSeconds": -1}'), ('{"TumblingWindowInSeconds": 901}')) AS c(change);
SELECT change, esm_create(:'base'::jsonb || change::jsonb) AS error
FROM (VALUES ('{"BatchSize": "10"}'), ('{"BatchSize": 1.5}'), ('{"BatchSize": true}'), ('{"BatchSize": null}'),
             ('{"BatchSize": [10]}'), ('{"MaximumBatchingWindowInSeconds": "5"}'),
             ('{"ParallelizationFactor": 1.5}'), ('{"MaximumRetryAttempts": "3"}'),
             ('{"MaximumRecordAgeInSeconds": "60"}'), ('{"TumblingWindowInSeconds": {}}'),
             ('{"Enabled": "false"}'), ('{"Enabled": 0}'), ('{"Enabled": null}'),
             ('{"BisectBatchOnFunctionError": "true"}'), ('{"BisectBatchOnFunctionError": 1}')) AS c(change);
-- Values that are valid on AWS but not supported by this version: 0A000.
SELECT change, esm_create(:'base'::jsonb || change::jsonb) AS error
FROM (VALUES ('{"ParallelizationFactor": 2}'), ('{"ParallelizationFactor": 10}')) AS c(change);
-- FunctionResponseTypes, FilterCriteria, DestinationConfig.
SELECT change, esm_create(:'base'::jsonb || change::jsonb) AS error
FROM (VALUES ('{"FunctionResponseTypes": "ReportBatchItemFailures"}'), ('{"FunctionResponseTypes": [1]}'),
             ('{"FunctionResponseTypes": ["Foo"]}'), ('{"FunctionResponseTypes": ["reportbatchitemfailures"]}'),
             ('{"FunctionResponseTypes": ["ReportBatchItemFailures", "ReportBatchItemFailures"]}'),
             ('{"FilterCriteria": "x"}'), ('{"FilterCriteria": {"Filters": "x"}}'), ('{"FilterCriteria": {"Foo": 1}}'),
             ('{"DestinationConfig": {"OnSuccess": {"Destination": "streams.failed_batches"}}}'),
             ('{"DestinationConfig": {"OnSuccess": {}, "OnFailure": {}}}'),
             ('{"DestinationConfig": "streams.failed_batches"}'), ('{"DestinationConfig": {"OnFailure": "x"}}'),
             ('{"DestinationConfig": {"Other": {}}}'), ('{"DestinationConfig": {"OnFailure": {"Type": "table"}}}'),
             ('{"DestinationConfig": {"OnFailure": {"Destination": 5}}}'),
             ('{"DestinationConfig": {"OnFailure": {"Destination": "esm_dest_text"}}}'),
             ('{"DestinationConfig": {"OnFailure": {"Destination": "esm_dest_none"}}}'),
             ('{"DestinationConfig": {"OnFailure": {"Destination": "esm_dest_view"}}}'),
             ('{"DestinationConfig": {"OnFailure": {"Destination": "esm_nosuch"}}}'),
             ('{"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:000000000000:dlq"}}}'),
             ('{"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:lambda:us-east-1:000000000000:function:nosuch"}}}')
     ) AS c(change);
-- Unknown parameters (names are case-sensitive).
SELECT change, esm_create(:'base'::jsonb || change::jsonb) AS error
FROM (VALUES ('{"Foo": 1}'), ('{"batchSize": 10}'), ('{"Topics": ["t"]}')) AS c(change);
-- StartingPosition and StartingPositionTimestamp.
SELECT change, esm_create((:'base'::jsonb - 'StartingPosition') || change::jsonb) AS error
FROM (VALUES ('{}'), ('{"StartingPosition": null}'), ('{"StartingPosition": "invalid"}'),
             ('{"StartingPosition": "latest"}'), ('{"StartingPosition": 1}'),
             ('{"StartingPosition": "AT_TIMESTAMP"}'),
             ('{"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": null}'),
             ('{"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": "not a time"}'),
             ('{"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": "infinity"}'),
             ('{"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": true}'),
             ('{"StartingPosition": "LATEST", "StartingPositionTimestamp": 1704067200}'),
             ('{"StartingPosition": "TRIM_HORIZON", "StartingPositionTimestamp": "2024-01-01T00:00:00Z"}')) AS c(change);
-- EventSourceArn: missing, not a string, unknown stream or table, a table
-- without a stream.
SELECT change, esm_create((:'base'::jsonb - 'EventSourceArn') || change::jsonb) AS error
FROM (VALUES ('{}'), ('{"EventSourceArn": null}'), ('{"EventSourceArn": 5}'),
             ('{"EventSourceArn": "arn:aws:dynamodb:us-east-1:000000000000:table/public.esm_t/stream/2020-01-01T00:00:00.000"}'),
             ('{"EventSourceArn": "arn:aws:sqs:us-east-1:000000000000:queue"}'),
             ('{"EventSourceArn": "esm_nosuch"}'), ('{"EventSourceArn": "esm_nostream"}'),
             ('{"EventSourceArn": ""}')) AS c(change);
-- FunctionName: missing, not a string, unknown.
SELECT change, esm_create((:'base'::jsonb - 'FunctionName') || change::jsonb) AS error
FROM (VALUES ('{}'), ('{"FunctionName": null}'), ('{"FunctionName": 5}'), ('{"FunctionName": "nosuch"}'),
             ('{"FunctionName": "ESM-C"}'),
             ('{"FunctionName": "arn:aws:lambda:us-east-1:000000000000:function:nosuch"}')) AS c(change);
-- Not a request document.
SELECT esm_create(NULL) AS null_request, esm_create('[]') AS array_request, esm_create('"x"') AS string_request;
-- The same function on the same stream: AWS's ResourceConflictException, naming
-- the existing mapping (by stream ARN or table name, function name or ARN).
SELECT replace(pgs_try(format('SELECT streams.create_event_source_mapping(%L)', req)), :'u_a', '<UUID of the esm-a mapping>') AS duplicate
FROM (VALUES (jsonb_build_object('EventSourceArn', :'arn', 'FunctionName', 'esm-a', 'StartingPosition', 'LATEST')),
             ('{"EventSourceArn": "esm_t", "FunctionName": "arn:aws:lambda:us-east-1:000000000000:function:esm-a",
                "StartingPosition": "TRIM_HORIZON", "Enabled": false}'::jsonb)) AS r(req);
-- None of the failed requests made a mapping.
SELECT count(*) - :mappings_before AS new_mappings FROM streams.event_source_mapping;

------------------------------------------------------------------------
-- AT_TIMESTAMP (AWS refuses it for DynamoDB; pg_streams supports it):
-- epoch seconds or an ISO 8601 string.
------------------------------------------------------------------------
SELECT streams.create_event_source_mapping(:'base'::jsonb || '{"StartingPosition": "AT_TIMESTAMP",
    "StartingPositionTimestamp": "2024-01-01T00:00:00Z"}') AS doc \gset
SELECT :'doc'::jsonb->'StartingPosition' AS starting_position,
       :'doc'::jsonb->'StartingPositionTimestamp' AS starting_timestamp;
SELECT streams.get_event_source_mapping((:'doc'::jsonb->>'UUID')::uuid)->'StartingPositionTimestamp' AS get_timestamp;
SELECT streams.delete_event_source_mapping((:'doc'::jsonb->>'UUID')::uuid)->'StartingPositionTimestamp' AS delete_timestamp;
SELECT streams.create_event_source_mapping(:'base'::jsonb || '{"StartingPosition": "AT_TIMESTAMP",
    "StartingPositionTimestamp": 1704067200.5}') AS doc \gset
SELECT :'doc'::jsonb->'StartingPositionTimestamp' AS epoch_timestamp;
SELECT streams.delete_event_source_mapping((:'doc'::jsonb->>'UUID')::uuid)->>'State' AS deleted;

------------------------------------------------------------------------
-- OnFailure destinations: a table with a jsonb column "record" (also
-- streams.failed_batches), a registered function by name or ARN.
------------------------------------------------------------------------
SELECT streams.create_event_source_mapping(:'base'::jsonb ||
    '{"DestinationConfig": {"OnFailure": {"Destination": "esm_dest"}}}') AS doc \gset
SELECT :'doc'::jsonb->'DestinationConfig' AS table_destination;
SELECT :'doc'::jsonb->>'UUID' AS u_dest \gset
SELECT esm_update(:'u_dest', '{"DestinationConfig": {"OnFailure": {"Destination": "public.esm_dest"}}}') AS updated;
SELECT streams.get_event_source_mapping(:'u_dest')->'DestinationConfig' AS qualified_table;
SELECT streams.update_event_source_mapping(:'u_dest', '{"DestinationConfig": {"OnFailure": {"Destination": "esm-b"}}}')->'DestinationConfig' AS function_destination;
SELECT streams.update_event_source_mapping(:'u_dest',
    '{"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:lambda:us-east-1:000000000000:function:esm-b"}}}')->'DestinationConfig' AS function_arn_destination;
SELECT streams.update_event_source_mapping(:'u_dest', '{"DestinationConfig": {"OnFailure": {}}}')->'DestinationConfig' AS cleared;
SELECT streams.update_event_source_mapping(:'u_dest', '{"DestinationConfig": {"OnFailure": {"Destination": "streams.failed_batches"}}}')->'DestinationConfig' AS ready_table;
SELECT streams.update_event_source_mapping(:'u_dest', '{"DestinationConfig": {}}')->'DestinationConfig' AS cleared_again;
SELECT esm_update(:'u_dest', '{"DestinationConfig": {"OnFailure": {"Destination": "esm_dest_none"}}}') AS no_record_column;
SELECT esm_update(:'u_dest', '{"DestinationConfig": {"OnSuccess": {"Destination": "esm_dest"}}}') AS on_success;
SELECT streams.get_event_source_mapping(:'u_dest')->'DestinationConfig' AS unchanged;
SELECT streams.delete_event_source_mapping(:'u_dest')->>'State' AS deleted;

------------------------------------------------------------------------
-- get, update and delete of an unknown UUID.
------------------------------------------------------------------------
SELECT pgs_try($$SELECT streams.get_event_source_mapping('00000000-0000-0000-0000-000000000000')$$) AS get_unknown;
SELECT pgs_try($$SELECT streams.update_event_source_mapping('00000000-0000-0000-0000-000000000000', '{"BatchSize": 1}')$$) AS update_unknown;
SELECT pgs_try($$SELECT streams.delete_event_source_mapping('00000000-0000-0000-0000-000000000000')$$) AS delete_unknown;
SELECT pgs_try($$SELECT streams.get_event_source_mapping(NULL)$$) AS get_null;

------------------------------------------------------------------------
-- Update: the state it returns, the parameters it takes.
------------------------------------------------------------------------
-- esm-b on esm_t was created disabled. A change that leaves it disabled: Updating.
SELECT esm_show(streams.update_event_source_mapping(:'u_b', '{"BatchSize": 50, "MaximumRetryAttempts": 2,
    "MaximumRecordAgeInSeconds": 3600, "BisectBatchOnFunctionError": true,
    "FunctionResponseTypes": ["ReportBatchItemFailures"], "MaximumBatchingWindowInSeconds": 5,
    "DestinationConfig": {"OnFailure": {"Destination": "streams.failed_batches"}}}')) AS updated;
SELECT (streams.update_event_source_mapping(:'u_b', '{"Enabled": false}')->>'LastModified')::numeric
       > (streams.get_event_source_mapping(:'u_a')->>'LastModified')::numeric AS last_modified_advanced;
-- Enabled=true on a disabled mapping: Enabling; Enabled=false: Disabling.
SELECT streams.update_event_source_mapping(:'u_b', '{"Enabled": true}')->>'State' AS enable;
SELECT streams.update_event_source_mapping(:'u_b', '{"Enabled": false}')->>'State' AS disable;
-- Enabled=false on the enabled esm-a mapping: Disabling; Enabled=true: Enabling.
SELECT (d->>'State', d->>'StateTransitionReason') AS disable FROM streams.update_event_source_mapping(:'u_a', '{"Enabled": false}') AS d;
SELECT (d->>'State', d->>'StateTransitionReason') AS enable FROM streams.update_event_source_mapping(:'u_a', '{"Enabled": true}') AS d;
SELECT streams.update_event_source_mapping(:'u_a', '{"BatchSize": 7}')->>'State' AS other_change;
SELECT streams.update_event_source_mapping(:'u_a', '{}')->>'State' AS empty_update;
-- Accepted values at the limits.
SELECT change, esm_update(:'u_b', change::jsonb) AS result
FROM (VALUES ('{"BatchSize": 1}'), ('{"BatchSize": 10000}'), ('{"MaximumBatchingWindowInSeconds": 0}'),
             ('{"MaximumBatchingWindowInSeconds": 300}'), ('{"ParallelizationFactor": 1}'),
             ('{"MaximumRetryAttempts": -1}'), ('{"MaximumRetryAttempts": 0}'), ('{"MaximumRetryAttempts": 10000}'),
             ('{"MaximumRecordAgeInSeconds": -1}'), ('{"MaximumRecordAgeInSeconds": 60}'),
             ('{"MaximumRecordAgeInSeconds": 604800}'), ('{"TumblingWindowInSeconds": 0}'),
             ('{"FunctionResponseTypes": []}'), ('{"FilterCriteria": {"Filters": []}}'),
             ('{"FilterCriteria": null}')) AS c(change);
-- FilterCriteria: stored and returned as given; 5 filters of 4096 characters.
SELECT streams.update_event_source_mapping(:'u_b', '{"FilterCriteria": {"Filters": [
    {"Pattern": "{\"eventName\": [\"INSERT\"]}"},
    {"Pattern": "{\"dynamodb\": {\"NewImage\": {\"status\": {\"S\": [\"PAID\"]}}}}"}]}}')->'FilterCriteria' AS filters;
SELECT streams.get_event_source_mapping(:'u_b')->'FilterCriteria' AS filters_stored;
SELECT length(p) AS pattern_length,
       streams.update_event_source_mapping(:'u_b', jsonb_build_object('FilterCriteria', jsonb_build_object('Filters',
           jsonb_build_array(jsonb_build_object('Pattern', p), jsonb_build_object('Pattern', p), jsonb_build_object('Pattern', p),
                             jsonb_build_object('Pattern', p), jsonb_build_object('Pattern', p)))))
           -> 'FilterCriteria' -> 'Filters' -> 4 ->> 'Pattern' = p AS five_accepted
FROM (SELECT '{"a": ["' || repeat('x', 4096 - 11) || '"]}' AS p) AS t;
-- Refused, and nothing changes (SQLSTATE, DETAIL: message; the HINT says
-- what is wrong and where).
CREATE FUNCTION pg_temp.hint(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    state text; msg text; detail text; hint text;
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RETURN format('%s %s: %s (%s)', state, detail, msg, hint);
END $$;
SELECT change, pg_temp.hint(format('SELECT streams.update_event_source_mapping(%L, %L)', :'u_b', change)) AS error
FROM (VALUES ('{"FilterCriteria": {"Filters": [{"Pattern": "{\"eventName\": \"INSERT\"}"}]}}'),
             ('{"FilterCriteria": {"Filters": [{"Pattern": "{\"eventName\": [\"INSERT\"]}"}, {"Pattern": "{\"eventName\": []}"}]}}'),
             ('{"FilterCriteria": {"Filters": [{"Pattern": "single-string"}]}}'),
             ('{"FilterCriteria": {"Filters": [{"Pattern": "null"}]}}'),
             ('{"FilterCriteria": {"Filters": [{"Pattern": ""}]}}'),
             ('{"FilterCriteria": {"Filters": [{"Pattern": 5}]}}'),
             ('{"FilterCriteria": {"Filters": [{"Pattern": "{\"a\": [\"x\"]}", "Other": 1}]}}'),
             ('{"FilterCriteria": {"Filters": [{}, {}, {}, {}, {}, {}]}}'),
             ('{"FilterCriteria": {"Filters": [], "Other": 1}}')) AS c(change);
SELECT pg_temp.hint(format('SELECT streams.update_event_source_mapping(%L, %L)', :'u_b',
           jsonb_build_object('FilterCriteria', jsonb_build_object('Filters',
               jsonb_build_array(jsonb_build_object('Pattern', '{"a": ["' || repeat('x', 4096 - 10) || '"]}')))))) AS pattern_too_long;
SELECT streams.get_event_source_mapping(:'u_b')->'FilterCriteria'->'Filters'->0->>'Pattern' = '{"a": ["' || repeat('x', 4096 - 11) || '"]}'
    AS unchanged_after_errors;
SELECT streams.update_event_source_mapping(:'u_b', '{"FilterCriteria": {"Filters": []}}') ? 'FilterCriteria' AS filters_cleared;
-- Put the settings of the Updating example back.
SELECT streams.update_event_source_mapping(:'u_b', '{"BatchSize": 50, "MaximumRetryAttempts": 2,
    "MaximumRecordAgeInSeconds": 3600, "MaximumBatchingWindowInSeconds": 5,
    "FunctionResponseTypes": ["ReportBatchItemFailures"]}') - 'LastModified' - 'State' AS doc \gset
-- Update errors: the same checks as create; EventSourceArn and
-- StartingPosition(Timestamp) cannot change.
SELECT change, esm_update(:'u_b', change::jsonb) AS error
FROM (VALUES ('{"BatchSize": 0}'), ('{"BatchSize": 10001}'), ('{"BatchSize": "1"}'),
             ('{"MaximumBatchingWindowInSeconds": -1}'), ('{"MaximumBatchingWindowInSeconds": 301}'),
             ('{"ParallelizationFactor": 0}'), ('{"ParallelizationFactor": 11}'), ('{"ParallelizationFactor": 2}'),
             ('{"MaximumRetryAttempts": -2}'), ('{"MaximumRetryAttempts": 10001}'),
             ('{"MaximumRecordAgeInSeconds": -2}'), ('{"MaximumRecordAgeInSeconds": 30}'),
             ('{"MaximumRecordAgeInSeconds": 604801}'),
             ('{"TumblingWindowInSeconds": -1}'), ('{"TumblingWindowInSeconds": 901}'),
             ('{"FunctionResponseTypes": ["Foo"]}'),
             ('{"FilterCriteria": {"Filters": [{"Pattern": "{}"}]}}'),
             ('{"Enabled": "yes"}'),
             ('{"DestinationConfig": {"OnSuccess": {"Destination": "esm_dest"}}}'),
             ('{"StartingPosition": "TRIM_HORIZON"}'),
             ('{"StartingPositionTimestamp": 1704067200}'),
             ('{"EventSourceArn": "esm_u"}'),
             ('{"FunctionName": null}'), ('{"FunctionName": 5}'), ('{"FunctionName": "nosuch"}'),
             ('[]')) AS c(change);
SELECT esm_update(:'u_b', NULL) AS null_request;
-- Moving esm-b's mapping to esm-a, which already has one on esm_t: conflict.
SELECT replace(pgs_try(format('SELECT streams.update_event_source_mapping(%L, %L)', :'u_b', '{"FunctionName": "esm-a"}')),
               :'u_a', '<UUID of the esm-a mapping>') AS conflict;
-- The failed updates changed nothing.
SELECT streams.get_event_source_mapping(:'u_b') - 'LastModified' - 'State' = :'doc'::jsonb AS unchanged;
-- FunctionName can change (by name or ARN).
SELECT streams.update_event_source_mapping(:'u_b', '{"FunctionName": "esm-c"}')->>'FunctionArn' AS moved;
SELECT streams.update_event_source_mapping(:'u_b', '{"FunctionName": "arn:aws:lambda:us-east-1:000000000000:function:esm-b"}')->>'FunctionArn' AS moved_back;

------------------------------------------------------------------------
-- list_event_source_mappings: all, by stream (ARN or table), by function
-- (name or ARN), both.
------------------------------------------------------------------------
SELECT jsonb_object_keys(streams.list_event_source_mappings()) AS list_keys;
SELECT * FROM esm_brief(streams.list_event_source_mappings());
SELECT * FROM esm_brief(streams.list_event_source_mappings(:'arn'));
SELECT * FROM esm_brief(streams.list_event_source_mappings('esm_u'));
SELECT * FROM esm_brief(streams.list_event_source_mappings(NULL, 'esm-a'));
SELECT * FROM esm_brief(streams.list_event_source_mappings(function_name => 'arn:aws:lambda:us-east-1:000000000000:function:esm-c'));
SELECT * FROM esm_brief(streams.list_event_source_mappings('esm_t', 'esm-b'));
SELECT streams.list_event_source_mappings(:'arn', 'nosuch') AS unknown_function;
SELECT streams.list_event_source_mappings('arn:aws:dynamodb:us-east-1:000000000000:table/public.x/stream/2020-01-01T00:00:00.000') AS unknown_stream;
SELECT pgs_try($$SELECT streams.list_event_source_mappings('esm_nostream')$$) AS table_without_stream;
-- The listed documents are those get returns (State may move on meanwhile).
SELECT bool_and(m - 'State' = streams.get_event_source_mapping((m->>'UUID')::uuid) - 'State') AS same_as_get
FROM jsonb_array_elements(streams.list_event_source_mappings()->'EventSourceMappings') AS m;

------------------------------------------------------------------------
-- event_source_mapping_stats: a row per mapping, nothing read yet.
------------------------------------------------------------------------
SELECT function_name, regexp_replace(event_source_arn, '^.*:table/([^/]*)/stream/.*$', '\1') AS stream_table,
       last_processing_result, records_read, records_delivered, invocations, function_errors, failed_batches,
       backlog, (SELECT count(*) FROM jsonb_object_keys(backlog_per_shard)) AS shards
FROM streams.event_source_mapping_stats ORDER BY 1, 2;

------------------------------------------------------------------------
-- Delete: the document with State Deleting; then the mapping is gone.
------------------------------------------------------------------------
SELECT esm_show(streams.delete_event_source_mapping(:'u_full'));
SELECT pgs_try(format('SELECT streams.get_event_source_mapping(%L)', :'u_full')) AS get_deleted;
SELECT pgs_try(format('SELECT streams.update_event_source_mapping(%L, %L)', :'u_full', '{"BatchSize": 1}')) AS update_deleted;
SELECT pgs_try(format('SELECT streams.delete_event_source_mapping(%L)', :'u_full')) AS delete_deleted;
SELECT count(*) AS listed FROM esm_brief(streams.list_event_source_mappings('esm_u', 'esm-a'));
SELECT count(*) AS shard_rows FROM streams.mapping_shard ms
WHERE NOT EXISTS (SELECT 1 FROM streams.event_source_mapping m WHERE m.mapping_id = ms.mapping_id);

------------------------------------------------------------------------
-- Deleting the function leaves its mappings in place, gettable and listed.
------------------------------------------------------------------------
SELECT streams.delete_function('esm-b');
SELECT streams.get_event_source_mapping(:'u_b')->>'FunctionArn' AS function_arn,
       streams.get_event_source_mapping(:'u_b')->>'BatchSize' AS batch_size;
SELECT * FROM esm_brief(streams.list_event_source_mappings(NULL, 'esm-b'));
-- It can still be updated, but not moved to another missing function.
SELECT streams.update_event_source_mapping(:'u_b', '{"BatchSize": 60}')->>'BatchSize' AS batch_size;
SELECT esm_update(:'u_b', '{"FunctionName": "esm-b"}') AS to_deleted_function;
-- Registering the name again reconnects it.
SELECT streams.create_function('esm-b', 'esm_h(jsonb)') IS NOT NULL AS registered_again;
SELECT streams.update_event_source_mapping(:'u_b', '{"FunctionName": "esm-b"}')->>'FunctionArn' AS function_arn;

------------------------------------------------------------------------
-- Ownership: another role may read mappings but not change or delete
-- those of others; it needs SELECT on the table to map its stream, and
-- INSERT on a destination table (streams.failed_batches accepts anyone).
------------------------------------------------------------------------
CREATE ROLE regress_esm_other;
GRANT SELECT ON esm_u TO regress_esm_other;
SET ROLE regress_esm_other;
SELECT streams.get_event_source_mapping(:'u_a')->>'FunctionArn' AS other_get;
SELECT count(*) AS other_list FROM esm_brief(streams.list_event_source_mappings());
SELECT pgs_try(format('SELECT streams.update_event_source_mapping(%L, %L)', :'u_a', '{"Enabled": false}')) ~
       ('^42501 AccessDeniedException: must be owner of event source mapping ' || :'u_a' || '$') AS other_update_denied;
SELECT esm_update(:'u_a', '{"BatchSize": 1}') AS other_update;
SELECT esm_mask(pgs_try(format('SELECT streams.delete_event_source_mapping(%L)', :'u_a'))) AS other_delete;
SELECT pgs_try($$SELECT streams.delete_function('esm-a')$$) AS other_delete_function;
SELECT pgs_try($$SELECT streams.update_function_configuration('esm-a', '{"Timeout": 9}')$$) AS other_update_function;
-- No SELECT on esm_t.
SELECT esm_create('{"EventSourceArn": "esm_t", "FunctionName": "esm-c", "StartingPosition": "LATEST", "Enabled": false}') AS no_select;
-- Not a member of the owner of esm-b (issue 13: mapping invokes the function).
SELECT esm_create('{"EventSourceArn": "esm_u", "FunctionName": "esm-b", "StartingPosition": "LATEST", "Enabled": false}')
    AS not_function_owner;
SELECT streams.create_function('esm-o', 'esm_h(jsonb)')->>'FunctionName' AS own_function;
-- No INSERT on esm_dest.
SELECT esm_create('{"EventSourceArn": "esm_u", "FunctionName": "esm-o", "StartingPosition": "LATEST", "Enabled": false,
                    "DestinationConfig": {"OnFailure": {"Destination": "esm_dest"}}}') AS no_insert;
-- Its own mapping, with the ready destination table.
SELECT streams.create_event_source_mapping('{"EventSourceArn": "esm_u", "FunctionName": "esm-o",
    "StartingPosition": "LATEST", "Enabled": false,
    "DestinationConfig": {"OnFailure": {"Destination": "streams.failed_batches"}}}') AS doc \gset
SELECT :'doc'::jsonb->>'State' AS state, :'doc'::jsonb->'DestinationConfig' AS destination;
SELECT :'doc'::jsonb->>'UUID' AS u_other \gset
SELECT streams.update_event_source_mapping(:'u_other', '{"BatchSize": 5}')->>'BatchSize' AS own_update;
-- The stats view shows a role its own mappings only.
SELECT function_name FROM streams.event_source_mapping_stats;
-- The table is readable, as list_event_source_mappings shows every mapping
-- (pg_dump reads it as the role that runs it); positions are not.
SELECT pgs_try('SELECT count(*) FROM streams.event_source_mapping') AS mapping_table;
SELECT pgs_try('SELECT count(*) FROM streams.mapping_shard') AS positions_table;
RESET ROLE;
SELECT streams.get_event_source_mapping(:'u_a')->>'BatchSize' AS unchanged_batch_size;
-- A superuser may change and delete anyone's mapping.
SELECT streams.update_event_source_mapping(:'u_other', '{"BatchSize": 6}')->>'BatchSize' AS superuser_update;
SELECT streams.delete_event_source_mapping(:'u_other')->>'State' AS superuser_delete;

------------------------------------------------------------------------
-- Clean up: no mappings, functions, roles or tables left for later files.
------------------------------------------------------------------------
-- One transaction per mapping (workers update mapping rows too).
DO $$
DECLARE
    m jsonb;
BEGIN
    FOR m IN SELECT jsonb_array_elements(streams.list_event_source_mappings()->'EventSourceMappings') LOOP
        PERFORM streams.delete_event_source_mapping((m->>'UUID')::uuid);
        COMMIT;
    END LOOP;
END $$;
SELECT streams.list_event_source_mappings();
SELECT streams.delete_function(f->>'FunctionName')
FROM jsonb_array_elements(streams.list_functions()->'Functions') AS f;
SELECT streams.list_functions();
DROP VIEW esm_dest_view;
DROP TABLE esm_t, esm_u, esm_nostream, esm_dest, esm_dest_text, esm_dest_none;
DROP ROLE regress_esm_other;
DROP FUNCTION esm_h(jsonb), esm_mask(text), esm_show(jsonb), esm_create(jsonb), esm_update(uuid, jsonb),
    esm_brief(jsonb);
