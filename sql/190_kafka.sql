-- Kafka targets (create_kafka_function): the function document, every
-- validation error, secrets (kept apart, shown by name only), get, list,
-- update, delete, use as a mapping target and OnFailure destination, and
-- privileges with two unprivileged roles: one granted EXECUTE on
-- create_kafka_function, one not. Delivery itself: TAP test 040_kafka.
CREATE FUNCTION kafka_doc(doc jsonb) RETURNS text
LANGUAGE sql AS $$ SELECT jsonb_pretty(doc - 'LastModified' - 'Owner') $$;

-- Defaults: Timeout 30, no settings.
SELECT kafka_doc(streams.create_kafka_function('kf-a', 'broker1:9092', 'orders'));
-- Settings, secrets, Timeout and Description; a string literal of options.
SELECT kafka_doc(streams.create_kafka_function('kf-b', ' b1.example.com:9093, [::1]:9094 ', 'orders.v1',
    '{"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "app",
      "sasl.password": "hunter2-secret", "linger.ms": 20, "enable.ssl.certificate.verification": true,
      "Timeout": 60, "Description": "orders to Kafka"}'));
-- The secret is stored apart from the function, and nowhere else.
SELECT f.kafka_settings ? 'sasl.password' AS in_settings, s.kafka_secrets->>'sasl.password' AS secret
FROM streams.function f JOIN streams.function_secret s USING (function_id) WHERE f.function_name = 'kf-b';
SELECT position('hunter2' IN streams.list_functions()::text) AS secret_in_list;
SELECT streams.get_function('kf-b')->'Configuration'->>'Runtime' AS runtime,
       streams.get_function('kf-b')->'Configuration'->'SecretSettings' AS secret_settings;

-- Validation.
SELECT pgs_try($$SELECT streams.create_kafka_function('kf bad', 'b:9092', 't')$$) AS bad_name;
SELECT pgs_try($$SELECT streams.create_kafka_function('kf-c', NULL, 't')$$) AS no_servers;
SELECT pgs_try($$SELECT streams.create_kafka_function('kf-c', 'broker1', 't')$$) AS no_port;
SELECT pgs_try($$SELECT streams.create_kafka_function('kf-c', 'b1:9092,,b2:9092', 't')$$) AS empty_entry;
SELECT pgs_try($$SELECT streams.create_kafka_function('kf-c', 'b1:99999', 't')$$) AS bad_port;
SELECT pgs_try($$SELECT streams.create_kafka_function('kf-c', 'b1:9092', 'a topic')$$) AS bad_topic;
SELECT pgs_try($$SELECT streams.create_kafka_function('kf-c', 'b1:9092', '..')$$) AS dots_topic;
SELECT pgs_try($$SELECT streams.create_kafka_function('kf-c', 'b1:9092', NULL)$$) AS no_topic;
SELECT pgs_try($$SELECT streams.create_kafka_function('kf-c', 'b1:9092', 't', '[]')$$) AS options_not_object;
SELECT pgs_try($$SELECT streams.create_kafka_function('kf-c', 'b1:9092', 't', '{"sasl.password": "x"')$$) AS options_not_json;
SELECT pgs_try($$SELECT streams.create_kafka_function('kf-c', 'b1:9092', 't', '{"acks": "1"}')$$) AS acks;
SELECT pgs_try($$SELECT streams.create_kafka_function('kf-c', 'b1:9092', 't', '{"enable.idempotence": false}')$$) AS idempotence;
SELECT pgs_try($$SELECT streams.create_kafka_function('kf-c', 'b1:9092', 't', '{"sasl.kerberos.kinit.cmd": "sh"}')$$) AS kinit_cmd;
SELECT pgs_try($$SELECT streams.create_kafka_function('kf-c', 'b1:9092', 't', '{"plugin.library.paths": "x"}')$$) AS plugins;
SELECT pgs_try($$SELECT streams.create_kafka_function('kf-c', 'b1:9092', 't', '{"linger.ms": [1]}')$$) AS array_value;
SELECT pgs_try($$SELECT streams.create_kafka_function('kf-c', 'b1:9092', 't', '{"Timeout": 0}')$$) AS timeout_0;
SELECT pgs_try($$SELECT streams.create_kafka_function('kf-c', 'b1:9092', 't', '{"Description": 1}')$$) AS description_type;
SELECT pgs_try($$SELECT streams.create_kafka_function('kf-a', 'b1:9092', 't')$$) AS exists;
SELECT count(*) AS kafka_functions FROM streams.function WHERE kind = 'kafka';

-- Update (Timeout, Description) and invoke.
SELECT kafka_doc(streams.update_function_configuration('kf-a', '{"Timeout": 5, "Description": "short"}'));
SELECT pgs_try($$SELECT streams.invoke('kf-a', '{}')$$) AS invoke_kafka;

-- A mapping to a Kafka function, and one sending failed batches to one.
CREATE TABLE kafka_t (id int PRIMARY KEY);
SELECT streams.enable_stream('kafka_t', 'KEYS_ONLY', 1) IS NOT NULL AS enabled;
SELECT streams.create_event_source_mapping('{"EventSourceArn": "kafka_t", "FunctionName": "kf-a",
    "StartingPosition": "LATEST", "Enabled": false,
    "DestinationConfig": {"OnFailure": {"Destination": "kf-b"}}}') - 'UUID' - 'LastModified' - 'EventSourceArn'
    - 'FunctionArn' - 'StateTransitionReason' - 'EventSourceMappingArn' AS mapping;
-- Its delivery counters (none yet).
SELECT function_name, topic, messages_produced, produce_errors, avg_delivery_latency_ms FROM streams.kafka_stats;

------------------------------------------------------------------------
-- Privileges: not executable by PUBLIC; a role granted EXECUTE registers
-- its own; another role sees no settings of it and cannot use, change or
-- delete it.
------------------------------------------------------------------------
CREATE ROLE regress_kafka_app;
CREATE ROLE regress_kafka_other;
GRANT USAGE ON SCHEMA public TO regress_kafka_app, regress_kafka_other;
SELECT has_function_privilege('public', 'streams.create_kafka_function(text, text, text, jsonb)', 'EXECUTE') AS public_jsonb,
       has_function_privilege('public', 'streams.create_kafka_function(text, text, text, text)', 'EXECUTE') AS public_text;
SET ROLE regress_kafka_other;
SELECT pgs_try($$SELECT streams.create_kafka_function('kf-o', 'b1:9092', 't')$$) AS other_not_granted;
RESET ROLE;
GRANT EXECUTE ON FUNCTION streams.create_kafka_function(text, text, text, jsonb),
    streams.create_kafka_function(text, text, text, text) TO regress_kafka_app;
SET ROLE regress_kafka_app;
SELECT streams.create_kafka_function('kf-app', 'b1:9092', 'app', '{"sasl.password": "app-secret", "client.id": "app"}')->>'Owner' AS app_registers;
SELECT streams.get_function('kf-app')->'Configuration'->'Settings' AS owner_sees_settings;
SELECT count(*) AS app_reads_secret FROM streams.function_secret;
SET ROLE regress_kafka_other;
SELECT streams.get_function('kf-app')->'Configuration' ? 'Settings' AS other_sees_settings,
       streams.get_function('kf-app')->'Configuration'->>'BootstrapServers' AS other_sees_servers;
SELECT pgs_try($$SELECT streams.update_function_configuration('kf-app', '{"Timeout": 9}')$$) AS other_updates;
SELECT pgs_try($$SELECT streams.delete_function('kf-app')$$) AS other_deletes;
RESET ROLE;
GRANT SELECT ON kafka_t TO regress_kafka_other;
SET ROLE regress_kafka_other;
SELECT pgs_try($$SELECT streams.create_event_source_mapping('{"EventSourceArn": "kafka_t", "FunctionName": "kf-app",
    "StartingPosition": "LATEST", "Enabled": false}')$$) AS other_maps;
SELECT pgs_try($$SELECT * FROM streams._kafka_target_config(1)$$) AS other_reads_config;
SELECT pgs_try($$SELECT streams._kafka_note(1, 1, 1, 1, 1, NULL)$$) AS other_writes_stats;
SET ROLE regress_kafka_app;
SELECT streams.delete_function('kf-app');
RESET ROLE;
SELECT count(*) AS secrets_left FROM streams.function_secret s
WHERE NOT EXISTS (SELECT 1 FROM streams.function f WHERE f.function_id = s.function_id);

-- Clean up.
SELECT streams.delete_event_source_mapping(uuid) IS NOT NULL AS deleted FROM streams.event_source_mapping
WHERE function_name = 'kf-a';
SELECT streams.delete_function('kf-a'), streams.delete_function('kf-b');
SELECT streams.disable_stream('kafka_t') IS NOT NULL AS disabled;
REVOKE SELECT ON kafka_t FROM regress_kafka_other;
DROP TABLE kafka_t;
REVOKE USAGE ON SCHEMA public FROM regress_kafka_app, regress_kafka_other;
REVOKE EXECUTE ON FUNCTION streams.create_kafka_function(text, text, text, jsonb),
    streams.create_kafka_function(text, text, text, text) FROM regress_kafka_app;
DROP ROLE regress_kafka_app;
DROP ROLE regress_kafka_other;
