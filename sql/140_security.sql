-- Security between roles (issue 13): regress_sec_app owns a table, its
-- stream and functions; regress_sec_intruder has no grants unless given here.
-- What the dispatcher does is in test/t/005_security.pl; here the SQL-visible
-- decisions: who may map what, read what, see what.
CREATE ROLE regress_sec_app;
CREATE ROLE regress_sec_intruder;
CREATE ROLE regress_sec_member IN ROLE regress_sec_app;
CREATE ROLE regress_sec_bypass BYPASSRLS;
CREATE SCHEMA sec_s AUTHORIZATION regress_sec_app;
CREATE SCHEMA sec_i AUTHORIZATION regress_sec_intruder;
GRANT EXECUTE ON FUNCTION streams.create_http_function(text, text, jsonb),
    streams.create_http_function(text, text, text) TO regress_sec_app;
SET ROLE regress_sec_app;
CREATE TABLE sec_s.t (id int PRIMARY KEY, v text);
SELECT streams.enable_stream('sec_s.t', 'NEW_IMAGE', 1) IS NOT NULL AS enabled;
CREATE FUNCTION sec_s.h(e jsonb) RETURNS void LANGUAGE sql AS $$ SELECT $$;
SELECT streams.create_function('sec-fa', 'sec_s.h(jsonb)')->>'FunctionName' AS app_function;
SET ROLE regress_sec_intruder;
CREATE TABLE sec_i.t (id int PRIMARY KEY);
SELECT streams.enable_stream('sec_i.t', 'KEYS_ONLY', 1) IS NOT NULL AS enabled;
CREATE FUNCTION sec_i.h(e jsonb) RETURNS void LANGUAGE sql AS $$ SELECT $$;
SELECT streams.create_function('sec-fi', 'sec_i.h(jsonb)')->>'FunctionName' AS intruder_function;
RESET ROLE;
SELECT pgs_arn('sec_s.t') AS arn \gset
SELECT pgs_shard(:'arn') AS shard \gset

------------------------------------------------------------------------
-- Mapping a stream to a function takes membership in the function's owner
-- (SQL functions too: a SECURITY DEFINER handler would write the mapper's
-- records as its owner), as target and as OnFailure destination.
------------------------------------------------------------------------
SET ROLE regress_sec_intruder;
SELECT pgs_try($$SELECT streams.create_event_source_mapping('{"EventSourceArn": "sec_i.t", "FunctionName": "sec-fa",
    "StartingPosition": "LATEST", "Enabled": false}')$$) AS map_to_others_function;
SELECT pgs_try($$SELECT streams.create_event_source_mapping('{"EventSourceArn": "sec_i.t", "FunctionName": "sec-fi",
    "StartingPosition": "LATEST", "Enabled": false, "DestinationConfig": {"OnFailure": {"Destination": "sec-fa"}}}')$$)
    AS others_function_as_destination;
SELECT streams.create_event_source_mapping('{"EventSourceArn": "sec_i.t", "FunctionName": "sec-fi",
    "StartingPosition": "LATEST", "Enabled": false}')->>'UUID' AS u_intr \gset
SELECT pgs_try(format('SELECT streams.update_event_source_mapping(%L, %L)', :'u_intr', '{"FunctionName": "sec-fa"}'))
    AS update_to_others_function;
RESET ROLE;
-- A member of the owner may.
SET ROLE regress_sec_member;
SELECT streams.create_event_source_mapping('{"EventSourceArn": "sec_s.t", "FunctionName": "sec-fa",
    "StartingPosition": "LATEST", "Enabled": false}')->>'UUID' AS u_app \gset
RESET ROLE;
-- The mapping is bound to the function's owner as well as its name.
SELECT function_name, function_owner::regrole, owner::regrole FROM streams.event_source_mapping ORDER BY mapping_id;

------------------------------------------------------------------------
-- A mapping whose function was deleted, and re-registered under the same
-- name by another role, does not reach the new function.
------------------------------------------------------------------------
SET ROLE regress_sec_app;
SELECT streams.delete_function('sec-fa');
SET ROLE regress_sec_intruder;
SELECT streams.create_function('sec-fa', 'sec_i.h(jsonb)')->>'Owner' AS intruder_registers_same_name;
RESET ROLE;
SELECT m.mapping_id AS m_app FROM streams.event_source_mapping m WHERE uuid = :'u_app' \gset
SELECT result, pgs_mask(error) AS error FROM streams._mapping_problem(:m_app);
SELECT count(*) AS app_target_rows FROM streams._target_config('sec-fa', 'regress_sec_app'::regrole);
SELECT count(*) AS intruder_target_rows FROM streams._target_config('sec-fa', 'regress_sec_intruder'::regrole);
-- Nor can the mapping be pointed at it by its owner (not a member of intruder).
SET ROLE regress_sec_member;
SELECT pgs_try(format('SELECT streams.update_event_source_mapping(%L, %L)', :'u_app', '{"FunctionName": "sec-fa"}'))
    AS rebind_to_intruders;
SET ROLE regress_sec_intruder;
SELECT streams.delete_function('sec-fa');
SET ROLE regress_sec_app;
SELECT streams.create_function('sec-fa', 'sec_s.h(jsonb)')->>'Owner' AS owner_registers_again;
RESET ROLE;
SELECT result, pgs_mask(error) AS error FROM streams._mapping_problem(:m_app);

------------------------------------------------------------------------
-- Reading a stream takes SELECT on the table and USAGE on its schema, when
-- a mapping is made, before each of its batches and at every read.
------------------------------------------------------------------------
GRANT SELECT ON sec_s.t TO regress_sec_intruder;
SET ROLE regress_sec_intruder;
SELECT pgs_try(format($$SELECT streams.get_shard_iterator(%L, %L, 'TRIM_HORIZON')$$, :'arn', :'shard'))
    AS no_schema_usage;
RESET ROLE;
GRANT USAGE ON SCHEMA sec_s TO regress_sec_intruder;
SET ROLE regress_sec_intruder;
SELECT pgs_try(format($$SELECT streams.get_shard_iterator(%L, %L, 'TRIM_HORIZON')$$, :'arn', :'shard'))
    AS with_select_and_usage;
SELECT streams.create_event_source_mapping('{"EventSourceArn": "sec_s.t", "FunctionName": "sec-fi",
    "StartingPosition": "LATEST", "Enabled": false}')->>'UUID' AS u_read \gset
RESET ROLE;
SELECT m.mapping_id AS m_read FROM streams.event_source_mapping m WHERE uuid = :'u_read' \gset
SELECT result, pgs_mask(error) AS error FROM streams._mapping_problem(:m_read);
REVOKE SELECT ON sec_s.t FROM regress_sec_intruder;
SELECT result, pgs_mask(error) AS error FROM streams._mapping_problem(:m_read);
GRANT SELECT ON sec_s.t TO regress_sec_intruder;
REVOKE USAGE ON SCHEMA sec_s FROM regress_sec_intruder;
SELECT result, pgs_mask(error) AS error FROM streams._mapping_problem(:m_read);
GRANT USAGE ON SCHEMA sec_s TO regress_sec_intruder;
SELECT result, pgs_mask(error) AS error FROM streams._mapping_problem(:m_read);

------------------------------------------------------------------------
-- Row-level security: a stream holds whole rows, so roles the table's
-- policies apply to may not read it (nor map it); its owner, superusers
-- and BYPASSRLS roles may, unless FORCE ROW LEVEL SECURITY binds the owner.
------------------------------------------------------------------------
ALTER TABLE sec_s.t ENABLE ROW LEVEL SECURITY;
CREATE POLICY sec_none ON sec_s.t USING (false);
GRANT SELECT ON sec_s.t TO regress_sec_bypass;
GRANT USAGE ON SCHEMA sec_s TO regress_sec_bypass;
SET ROLE regress_sec_intruder;
SELECT pgs_try(format($$SELECT streams.get_shard_iterator(%L, %L, 'TRIM_HORIZON')$$, :'arn', :'shard')) AS rls_iterator;
SELECT pgs_try($$SELECT streams.create_event_source_mapping('{"EventSourceArn": "sec_s.t", "FunctionName": "sec-fi",
    "StartingPosition": "LATEST", "Enabled": false, "BatchSize": 7}')$$) AS rls_mapping;
SET ROLE regress_sec_app;
SELECT pgs_try(format($$SELECT streams.get_shard_iterator(%L, %L, 'TRIM_HORIZON')$$, :'arn', :'shard')) AS rls_owner;
SET ROLE regress_sec_bypass;
SELECT pgs_try(format($$SELECT streams.get_shard_iterator(%L, %L, 'TRIM_HORIZON')$$, :'arn', :'shard')) AS rls_bypass;
RESET ROLE;
SELECT pgs_try(format($$SELECT streams.get_shard_iterator(%L, %L, 'TRIM_HORIZON')$$, :'arn', :'shard')) AS rls_superuser;
SELECT result, pgs_mask(error) AS error FROM streams._mapping_problem(:m_read);
SELECT result, pgs_mask(error) AS error FROM streams._mapping_problem(:m_app);
ALTER TABLE sec_s.t FORCE ROW LEVEL SECURITY;
SET ROLE regress_sec_app;
SELECT pgs_try(format($$SELECT streams.get_shard_iterator(%L, %L, 'TRIM_HORIZON')$$, :'arn', :'shard')) AS rls_forced_owner;
RESET ROLE;
SELECT result, pgs_mask(error) AS error FROM streams._mapping_problem(:m_app);
ALTER TABLE sec_s.t NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
SELECT result, pgs_mask(error) AS error FROM streams._mapping_problem(:m_read);

------------------------------------------------------------------------
-- HTTP functions: the URL's path and query string, Headers and CaFile are
-- shown to members of the owner only; others see scheme, host and port.
------------------------------------------------------------------------
SET ROLE regress_sec_app;
SELECT streams.create_http_function('sec-http', 'https://hooks.example.com:8443/services/T0/B0/pathtoken?token=querytoken',
    '{"Headers": {"X-Api-Key": "plainheadervalue"}, "SecretHeaders": {"Authorization": "Bearer sup3r-s3cret"},
      "CaFile": "/etc/ssl/sec-ca.pem"}') IS NOT NULL AS created;
SELECT (streams.get_function('sec-http')->'Configuration') - 'LastModified' - 'FunctionArn' AS owner_view;
SET ROLE regress_sec_member;
SELECT (streams.get_function('sec-http')->'Configuration') - 'LastModified' - 'FunctionArn' AS member_view;
SET ROLE regress_sec_intruder;
SELECT (streams.get_function('sec-http')->'Configuration') - 'LastModified' - 'FunctionArn' AS others_view;
SELECT f - 'LastModified' - 'FunctionArn' AS others_list
FROM jsonb_array_elements(streams.list_functions()->'Functions') f WHERE f->>'FunctionName' = 'sec-http';
SELECT streams.list_functions()::text ~ 'token|plainheader|sec-ca|sup3r' AS others_list_leaks;
-- The tables (readable for pg_dump) do not show it either: row-level
-- security keeps functions to members of their owner, secrets to superusers.
SELECT count(*) AS others_function_rows FROM streams.function WHERE function_name = 'sec-http';
SELECT count(*) AS others_secret_rows FROM streams.function_secret;
SET ROLE regress_sec_app;
SELECT url ~ 'pathtoken' AS owner_function_row FROM streams.function WHERE function_name = 'sec-http';
SELECT count(*) AS owner_secret_rows FROM streams.function_secret;
RESET ROLE;

------------------------------------------------------------------------
-- create_http_function errors never quote secrets: options that are not
-- JSON, a bad URL, invalid options.
------------------------------------------------------------------------
SET ROLE regress_sec_app;
SELECT pgs_try($$SELECT streams.create_http_function('sec-h2', 'https://x.example/',
    '{"SecretHeaders": {"Authorization": "Bearer sup3r-s3cret"}')$$) AS not_json;
SELECT pgs_try($$SELECT streams.create_http_function('sec-h2', 'ftp://x.example/?token=sup3r-s3cret')$$) AS bad_url;
SELECT pgs_try($$SELECT streams.create_http_function('sec-h2', 'https://x.example/',
    '{"SigningSecret": "sup3r", "SecretHeaders": {"Authorization": "Bearer sup3r-s3cret"}}')$$) AS short_secret;
SELECT pgs_try($$SELECT streams.create_http_function('sec-h2', 'https://x.example/',
    '{"SecretHeaders": {"Authorization": ["sup3r-s3cret"]}}')$$) AS secret_not_string;
-- jsonb arguments and the two-argument form still work.
SELECT streams.create_http_function('sec-h2', 'https://x.example/',
    jsonb_build_object('SigningSecret', 'sup3r-s3cret-long-enough'))->>'Signed' AS jsonb_form;
SELECT streams.create_http_function('sec-h3', 'https://x.example/')->>'Url' AS two_argument_form;
-- Deleting a function deletes its secrets.
SELECT streams.delete_function('sec-h2');
RESET ROLE;
SELECT count(*) AS orphan_secrets FROM streams.function_secret fs
WHERE NOT EXISTS (SELECT 1 FROM streams.function f WHERE f.function_id = fs.function_id);

------------------------------------------------------------------------
-- streams.failed_batches: rows belong to the role that wrote them, and are
-- visible and deletable only by members of that role.
------------------------------------------------------------------------
SET ROLE regress_sec_intruder;
INSERT INTO streams.failed_batches (record) VALUES ('{"requestContext": {"functionArn": "forged:sec-fa"}}');
SELECT pgs_try($$INSERT INTO streams.failed_batches (record, owner) VALUES ('{}', 'regress_sec_app'::regrole)$$)
    AS forge_owner;
SELECT owner::regrole, record FROM streams.failed_batches;
SET ROLE regress_sec_app;
INSERT INTO streams.failed_batches (record) VALUES ('{"app": true}');
SELECT owner::regrole, record FROM streams.failed_batches;
DELETE FROM streams.failed_batches WHERE record ? 'requestContext';
SET ROLE regress_sec_member;
SELECT owner::regrole, record FROM streams.failed_batches;
RESET ROLE;
SELECT owner::regrole, record FROM streams.failed_batches ORDER BY id;
DELETE FROM streams.failed_batches;

------------------------------------------------------------------------
-- A SQL target keeps its handler by name (pg_upgrade changes function
-- OIDs), but a function of that name created by another role after the
-- handler was dropped is not the handler: it is never called.
------------------------------------------------------------------------
CREATE SCHEMA sec_shared;
GRANT USAGE, CREATE ON SCHEMA sec_shared TO regress_sec_app, regress_sec_intruder;
SET ROLE regress_sec_app;
CREATE FUNCTION sec_shared.h2(e jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"by": "app"}'::jsonb $$;
SELECT streams.create_function('sec-shared', 'sec_shared.h2(jsonb)')->>'Handler' AS handler;
SELECT streams.invoke('sec-shared', '{}') AS app_handler_called;
DROP FUNCTION sec_shared.h2(jsonb);
SET ROLE regress_sec_intruder;
CREATE FUNCTION sec_shared.h2(e jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"by": "intruder"}'::jsonb $$;
GRANT EXECUTE ON FUNCTION sec_shared.h2(jsonb) TO regress_sec_app;
SET ROLE regress_sec_app;
SELECT streams.get_function('sec-shared')->'Configuration'->>'State' AS state_with_intruders_function;
SELECT pgs_try($$SELECT streams.invoke('sec-shared', '{}')$$) AS intruders_function_not_called;
RESET ROLE;
DROP FUNCTION sec_shared.h2(jsonb);
SET ROLE regress_sec_app;
CREATE FUNCTION sec_shared.h2(e jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"by": "app, again"}'::jsonb $$;
SELECT streams.get_function('sec-shared')->'Configuration'->>'State' AS state_created_again;
SELECT streams.invoke('sec-shared', '{}') AS handler_created_again_called;
RESET ROLE;

------------------------------------------------------------------------
-- Clean up.
------------------------------------------------------------------------
DO $$
DECLARE
    m jsonb;
BEGIN
    FOR m IN SELECT jsonb_array_elements(streams.list_event_source_mappings()->'EventSourceMappings') LOOP
        PERFORM streams.delete_event_source_mapping((m->>'UUID')::uuid);
        COMMIT;
    END LOOP;
END $$;
SELECT streams.delete_function(f->>'FunctionName')
FROM jsonb_array_elements(streams.list_functions()->'Functions') AS f;
SELECT streams.disable_stream('sec_s.t') IS NOT NULL AS disabled, streams.disable_stream('sec_i.t') IS NOT NULL AS disabled;
DROP SCHEMA sec_s, sec_i, sec_shared CASCADE;
REVOKE EXECUTE ON FUNCTION streams.create_http_function(text, text, jsonb),
    streams.create_http_function(text, text, text) FROM regress_sec_app;
DROP ROLE regress_sec_member, regress_sec_bypass, regress_sec_app, regress_sec_intruder;
