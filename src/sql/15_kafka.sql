--------------------------------------------------------------------------
-- Kafka targets: each record is one message to a topic
--------------------------------------------------------------------------

-- librdkafka settings a Kafka function may carry. Anything else is refused:
-- some settings run programs or load libraries in the server
-- (sasl.kerberos.kinit.cmd, plugin.library.paths), and pg_streams sets
-- bootstrap.servers, enable.idempotence, acks, message.timeout.ms (Timeout)
-- and the queue limits (memory) itself.
CREATE FUNCTION streams._kafka_allowed_settings() RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT ARRAY['client.id', 'client.rack', 'security.protocol', 'sasl.mechanism', 'sasl.mechanisms',
                 'sasl.username', 'sasl.password', 'ssl.ca.location', 'ssl.ca.pem', 'ssl.certificate.location',
                 'ssl.certificate.pem', 'ssl.key.location', 'ssl.key.pem', 'ssl.key.password',
                 'ssl.endpoint.identification.algorithm', 'enable.ssl.certificate.verification',
                 'ssl.cipher.suites', 'compression.type', 'compression.codec', 'compression.level', 'linger.ms',
                 'queue.buffering.max.ms', 'batch.num.messages', 'batch.size', 'message.max.bytes',
                 'request.timeout.ms', 'socket.timeout.ms', 'socket.keepalive.enable', 'retry.backoff.ms',
                 'reconnect.backoff.ms', 'reconnect.backoff.max.ms', 'connections.max.idle.ms',
                 'max.in.flight.requests.per.connection', 'partitioner', 'broker.address.family',
                 'topic.metadata.refresh.interval.ms', 'metadata.max.age.ms', 'api.version.request',
                 'broker.version.fallback']
$$;

-- Settings kept like HTTP secrets: stored apart, shown by name only.
CREATE FUNCTION streams._kafka_secret_settings() RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT ARRAY['sasl.password', 'ssl.key.password', 'ssl.key.pem']
$$;

-- The host and port of each of a bootstrap.servers list ("host:port,...",
-- optionally "scheme://host:port", IPv6 in brackets); NULL when one is not
-- of that form.
CREATE FUNCTION streams._kafka_brokers(servers text, OUT host text, OUT port integer)
RETURNS SETOF record LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT lower(m[1]), m[2]::integer
    FROM unnest(string_to_array(servers, ',')) s,
         LATERAL (SELECT regexp_match(btrim(s), '^(?:[a-zA-Z_]+://)?(\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9_.-]+):([0-9]{1,5})$') m) x
$$;

-- Whether pg_streams.kafka_allowed_brokers (empty: any broker) lets every
-- bootstrap server in: an entry "host" allows the host on any port,
-- "host:port" that port only.
CREATE FUNCTION streams._kafka_brokers_allowed(servers text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(current_setting('pg_streams.kafka_allowed_brokers', true), '') = ''
        OR NOT EXISTS (
            SELECT 1 FROM streams._kafka_brokers(servers) b
            WHERE NOT EXISTS (
                SELECT 1 FROM unnest(string_to_array(current_setting('pg_streams.kafka_allowed_brokers'), ',')) a
                WHERE lower(btrim(a)) IN (b.host, b.host || ':' || b.port)))
$$;

-- Secrets are arguments: no error of create_kafka_function quotes option
-- values, and the failing call is not logged as STATEMENT (as
-- create_http_function).
CREATE FUNCTION streams.create_kafka_function(function_name text, bootstrap_servers text, topic text,
                                              options jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET log_min_error_statement = panic AS $$
DECLARE
    k        text;
    timeout  integer := 30;
    settings jsonb := '{}';
    secrets  jsonb := '{}';
    f        streams.function;
BEGIN
    PERFORM streams._check_function_name(function_name);
    IF bootstrap_servers IS NULL OR btrim(bootstrap_servers) = ''
       OR EXISTS (SELECT 1 FROM streams._kafka_brokers(bootstrap_servers) b WHERE b.host IS NULL OR b.port > 65535) THEN
        PERFORM streams._raise('22023', 'InvalidParameterValueException',
            'bootstrap_servers must be a comma-separated list of host:port');
    END IF;
    IF NOT streams._kafka_brokers_allowed(bootstrap_servers) THEN
        PERFORM streams._raise('42501', 'AccessDeniedException',
            format('a broker of %s is not in pg_streams.kafka_allowed_brokers', bootstrap_servers));
    END IF;
    -- Kafka's legal topic names.
    IF topic IS NULL OR topic !~ '^[a-zA-Z0-9._-]{1,249}$' OR topic IN ('.', '..') THEN
        PERFORM streams._raise('22023', 'InvalidParameterValueException',
            'topic must be 1 to 249 characters of a-z, A-Z, 0-9, ".", "_" and "-"');
    END IF;
    IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
        PERFORM streams._raise('22023', 'InvalidParameterValueException', 'options must be a JSON object');
    END IF;
    FOR k IN SELECT jsonb_object_keys(options) LOOP
        IF k = 'Timeout' THEN
            timeout := streams._int_param(options, 'Timeout', 1, 900);
        ELSIF k = 'Description' THEN
            IF jsonb_typeof(options->'Description') <> 'string' THEN
                PERFORM streams._raise('22023', 'InvalidParameterValueException', 'Description must be a string');
            END IF;
        ELSIF k = ANY (streams._kafka_allowed_settings()) THEN
            IF jsonb_typeof(options->k) NOT IN ('string', 'number', 'boolean') THEN
                PERFORM streams._raise('22023', 'InvalidParameterValueException',
                    format('option "%s" must be a string, a number or a boolean', k));
            END IF;
            IF k = ANY (streams._kafka_secret_settings()) THEN
                secrets := secrets || jsonb_build_object(k, options->>k);
            ELSE
                settings := settings || jsonb_build_object(k, options->>k);
            END IF;
        ELSIF k IN ('bootstrap.servers', 'enable.idempotence', 'acks', 'message.timeout.ms',
                    'queue.buffering.max.messages', 'queue.buffering.max.kbytes', 'transactional.id') THEN
            PERFORM streams._raise('22023', 'ValidationException',
                format('option "%s" is set by pg_streams (bootstrap_servers; enable.idempotence=true, acks=all; message.timeout.ms from Timeout; bounded queues)', k));
        ELSE
            PERFORM streams._raise('22023', 'ValidationException',
                format('Unknown option "%s", must be Timeout, Description or a librdkafka setting that pg_streams allows', k),
                format('The librdkafka settings allowed: %s.', array_to_string(streams._kafka_allowed_settings(), ', ')));
        END IF;
    END LOOP;
    IF EXISTS (SELECT 1 FROM streams.function fn WHERE fn.function_name = create_kafka_function.function_name) THEN
        PERFORM streams._raise('42710', 'ResourceConflictException', format('Function already exist: %s', function_name));
    END IF;
    INSERT INTO streams.function (function_name, function_arn, kind, kafka_bootstrap, kafka_topic, kafka_settings,
                                  timeout_seconds, description, owner, last_modified)
    VALUES (function_name, streams._function_arn(function_name), 'kafka', btrim(bootstrap_servers), topic, settings,
            timeout, coalesce(options->>'Description', ''), streams._caller(), clock_timestamp())
    RETURNING * INTO f;
    IF secrets <> '{}' THEN
        INSERT INTO streams.function_secret (function_id, kafka_secrets) VALUES (f.function_id, secrets);
    END IF;
    PERFORM streams._mappings_changed();
    RETURN streams._function_doc(f);
END $$;

-- Options as text (a string literal): invalid JSON fails without quoting it.
CREATE FUNCTION streams.create_kafka_function(function_name text, bootstrap_servers text, topic text, options text)
RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET log_min_error_statement = panic AS $$
BEGIN
    RETURN streams.create_kafka_function(function_name, bootstrap_servers, topic, streams._secret_options(options));
END $$;

-- Data leaves the database: a superuser decides who may do this, by GRANT.
REVOKE ALL ON FUNCTION streams.create_kafka_function(text, text, text, jsonb),
    streams.create_kafka_function(text, text, text, text) FROM PUBLIC;
COMMENT ON FUNCTION streams.create_kafka_function(text, text, text, jsonb) IS
    'Registers a Kafka topic as a target: one message per record (key: the record''s Keys as canonical JSON, value: the record). Options: Timeout (1..900 s, default 30: how long a batch may wait for delivery), Description, and librdkafka settings (security.protocol, sasl.*, ssl.*, compression.type, linger.ms, ...; sasl.password, ssl.key.password and ssl.key.pem are kept as secrets). Superuser, or a role granted EXECUTE on it.';
COMMENT ON FUNCTION streams.create_kafka_function(text, text, text, text) IS
    'create_kafka_function with the options as JSON text (a string literal calls this one): invalid JSON fails without quoting the options. Grant EXECUTE on both forms.';

-- What a dispatcher needs to produce to a Kafka function (secrets
-- included): worker only.
CREATE FUNCTION streams._kafka_target_config(p_function_id integer,
    OUT bootstrap text, OUT topic text, OUT settings text, OUT brokers_allowed boolean)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT f.kafka_bootstrap, f.kafka_topic,
           (coalesce(f.kafka_settings, '{}') || coalesce(fs.kafka_secrets, '{}'))::text,
           streams._kafka_brokers_allowed(f.kafka_bootstrap)
    FROM streams.function f LEFT JOIN streams.function_secret fs USING (function_id)
    WHERE f.function_id = p_function_id AND f.kind = 'kafka'
$$;

-- Delivery to Kafka, per mapping: messages whose delivery the brokers
-- acknowledged, messages that failed, and how long acknowledgements took.
CREATE TABLE streams.kafka_delivery (
    mapping_id        integer PRIMARY KEY REFERENCES streams.event_source_mapping ON DELETE CASCADE,
    messages_produced bigint  NOT NULL DEFAULT 0,
    produce_errors    bigint  NOT NULL DEFAULT 0,
    latency_sum_ms    double precision NOT NULL DEFAULT 0,  -- over messages_produced
    last_latency_ms   double precision,                     -- slowest message of the last batch
    last_error        text,
    last_error_at     timestamptz
);
REVOKE ALL ON streams.kafka_delivery FROM PUBLIC;

CREATE FUNCTION streams._kafka_note(p_mapping_id integer, produced bigint, errors bigint, latency_sum_ms double precision,
                                    last_latency_ms double precision, error text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO streams.kafka_delivery AS d
    SELECT p_mapping_id, produced, errors, latency_sum_ms, last_latency_ms, error,
           CASE WHEN error IS NOT NULL THEN clock_timestamp() END
    WHERE EXISTS (SELECT 1 FROM streams.event_source_mapping WHERE mapping_id = p_mapping_id)
    ON CONFLICT (mapping_id) DO UPDATE SET
        messages_produced = d.messages_produced + excluded.messages_produced,
        produce_errors = d.produce_errors + excluded.produce_errors,
        latency_sum_ms = d.latency_sum_ms + excluded.latency_sum_ms,
        last_latency_ms = coalesce(excluded.last_latency_ms, d.last_latency_ms),
        last_error = coalesce(excluded.last_error, d.last_error),
        last_error_at = coalesce(excluded.last_error_at, d.last_error_at)
$$;

CREATE VIEW streams.kafka_stats AS
SELECT m.uuid, m.function_name, f.kafka_topic AS topic,
       coalesce(d.messages_produced, 0) AS messages_produced,
       coalesce(d.produce_errors, 0)    AS produce_errors,
       CASE WHEN d.messages_produced > 0 THEN d.latency_sum_ms / d.messages_produced END AS avg_delivery_latency_ms,
       d.last_latency_ms                AS last_batch_max_latency_ms,
       d.last_error, d.last_error_at
FROM streams.event_source_mapping m
JOIN streams.function f ON f.function_name = m.function_name AND f.owner = m.function_owner AND f.kind = 'kafka'
LEFT JOIN streams.kafka_delivery d USING (mapping_id)
WHERE pg_has_role(m.owner, 'USAGE');
COMMENT ON VIEW streams.kafka_stats IS
    'Per event source mapping to a Kafka function: messages acknowledged by the brokers, produce errors, average and last-batch delivery latency (ms from produce to acknowledgement), the last produce error. Shows the mappings of roles the current user is a member of.';
GRANT SELECT ON streams.kafka_stats TO PUBLIC;

REVOKE ALL ON FUNCTION streams._kafka_allowed_settings(), streams._kafka_secret_settings(),
    streams._kafka_brokers(text), streams._kafka_brokers_allowed(text), streams._kafka_target_config(integer),
    streams._kafka_note(integer, bigint, bigint, double precision, double precision, text) FROM PUBLIC;
