--------------------------------------------------------------------------
-- Targets (Lambda: CreateFunction, GetFunction, ListFunctions,
-- UpdateFunctionConfiguration, DeleteFunction)
--------------------------------------------------------------------------

-- A registered target. kind 'sql': a function handler(event jsonb) returning
-- jsonb, json or void, run as the owner of the mapping that invokes it. The
-- handler is kept by its qualified name and argument types (as regprocedure
-- shows it with search_path = pg_catalog), not by OID: pg_upgrade gives
-- functions new OIDs and refuses tables with regprocedure columns. It is
-- found again by that name (streams._handler_oid) only while it belongs to
-- handler_owner (its owner when the target was created), the target's owner
-- or a superuser: a function of the same name created by another role after
-- the handler was dropped is not called.
-- kind 'http': an endpoint receiving the event as a JSON POST.
-- kind 'kafka': a Kafka topic receiving each record as a message (15_kafka.sql).
CREATE TABLE streams.function (
    function_id     integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    function_name   text        NOT NULL UNIQUE,
    function_arn    text        NOT NULL UNIQUE,
    kind            text        NOT NULL CHECK (kind IN ('sql', 'http', 'kafka')),
    handler         text,
    handler_owner   regrole,
    url             text,
    http_headers    jsonb,                 -- non-secret extra headers
    verify_tls      boolean,
    ca_file         text,
    max_concurrency integer,               -- requests in flight across mappings; NULL: no cap
    kafka_bootstrap text,                  -- kafka: bootstrap.servers
    kafka_topic     text,                  -- kafka: the topic
    kafka_settings  jsonb,                 -- kafka: non-secret librdkafka settings
    timeout_seconds integer     NOT NULL CHECK (timeout_seconds BETWEEN 1 AND 900),
    description     text        NOT NULL DEFAULT '',
    owner           regrole     NOT NULL,
    last_modified   timestamptz NOT NULL
);
REVOKE ALL ON streams.function FROM PUBLIC;

-- Secrets of HTTP targets, apart so that no view or function shows them.
-- No foreign key: a parallel pg_restore may load this table before
-- streams.function; delete_function deletes the row with its function.
CREATE TABLE streams.function_secret (
    function_id    integer PRIMARY KEY,
    secret_headers jsonb,
    signing_secret text,
    kafka_secrets  jsonb                   -- kafka: sasl.password, ssl.key.password, ...
);
REVOKE ALL ON streams.function_secret FROM PUBLIC;

CREATE FUNCTION streams._function_arn(function_name text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('arn:aws:lambda:%s:%s:function:%s', current_setting('pg_streams.aws_region'),
                  current_setting('pg_streams.aws_account_id'), function_name)
$$;

-- Lambda's FunctionName accepts a name or an ARN (optionally with :$LATEST).
CREATE FUNCTION streams._function_name_of(name_or_arn text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN name_or_arn ~ '^arn:aws[a-zA-Z-]*:lambda:[^:]*:[0-9]*:function:'
                THEN (regexp_match(name_or_arn, '^arn:aws[a-zA-Z-]*:lambda:[^:]*:[0-9]*:function:([^:]*)(:\$LATEST)?$'))[1]
                ELSE name_or_arn END
$$;

CREATE FUNCTION streams._find_function(name_or_arn text) RETURNS streams.function
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f streams.function;
BEGIN
    SELECT * INTO f FROM streams.function WHERE function_name = streams._function_name_of(name_or_arn);
    IF NOT FOUND THEN
        PERFORM streams._raise('42704', 'ResourceNotFoundException',
            format('Function not found: %s', CASE WHEN name_or_arn LIKE 'arn:%' THEN name_or_arn
                                                  ELSE streams._function_arn(coalesce(name_or_arn, 'null')) END));
    END IF;
    RETURN f;
END $$;

-- The scheme, host and port of a URL: all of it that roles other than its
-- owner see (paths and query strings may hold tokens).
CREATE FUNCTION streams._url_origin(url text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(array_to_string(regexp_match(url, '^([a-zA-Z][a-zA-Z0-9+.-]*://)(?:[^/?#@]*@)?([^/?#]*)'), ''), '')
$$;

-- A function's description (GetFunction's Configuration). HTTP functions:
-- the URL's path and query string, Headers and CaFile are shown only to
-- members of the function's owner; others see the URL's scheme, host and port.
-- The function a SQL target's handler names now, or NULL (dropped, renamed,
-- or owned by a role it may not be trusted from, see streams.function).
CREATE FUNCTION streams._handler_oid(f streams.function) RETURNS oid
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT p.oid FROM pg_proc p
    WHERE p.oid = to_regprocedure(f.handler)
      AND (p.proowner = f.handler_owner OR p.proowner = f.owner
           OR (SELECT r.rolsuper FROM pg_roles r WHERE r.oid = p.proowner))
$$;

CREATE FUNCTION streams._function_doc(f streams.function) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object(
        'FunctionName', f.function_name,
        'FunctionArn', f.function_arn,
        'Runtime', CASE f.kind WHEN 'sql' THEN 'postgresql-sql' ELSE f.kind END,
        'Timeout', f.timeout_seconds,
        'Description', f.description,
        'LastModified', to_char(f.last_modified AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"+0000"'),
        'State', CASE WHEN f.kind <> 'sql' OR streams._handler_oid(f) IS NOT NULL
                      THEN 'Active' ELSE 'Failed' END,
        'Owner', (SELECT rolname FROM pg_roles WHERE oid = f.owner))
    || CASE WHEN f.kind = 'sql' THEN jsonb_build_object('Handler', f.handler)
       -- Kafka functions: settings only to members of the owner, secrets by name only.
       WHEN f.kind = 'kafka' THEN jsonb_build_object('BootstrapServers', f.kafka_bootstrap, 'Topic', f.kafka_topic)
            || CASE WHEN pg_has_role(streams._caller(), f.owner, 'USAGE')
                    THEN jsonb_build_object('Settings', f.kafka_settings) ELSE '{}'::jsonb END
            || jsonb_build_object('SecretSettings', (SELECT coalesce(jsonb_agg(k ORDER BY k), '[]'::jsonb)
                                  FROM streams.function_secret fs, jsonb_object_keys(coalesce(fs.kafka_secrets, '{}')) k
                                  WHERE fs.function_id = f.function_id))
       WHEN pg_has_role(streams._caller(), f.owner, 'USAGE') THEN
            jsonb_build_object('Url', f.url, 'Headers', f.http_headers, 'CaFile', f.ca_file)
       ELSE jsonb_build_object('Url', streams._url_origin(f.url))
       END
    || CASE WHEN f.kind <> 'http' THEN '{}'::jsonb
       ELSE jsonb_build_object('VerifyTls', f.verify_tls, 'MaxConcurrency', f.max_concurrency,
                -- secrets: names only, never values
                'SecretHeaders', (SELECT coalesce(jsonb_agg(k ORDER BY k), '[]'::jsonb)
                                  FROM streams.function_secret fs, jsonb_object_keys(coalesce(fs.secret_headers, '{}')) k
                                  WHERE fs.function_id = f.function_id),
                'Signed', EXISTS (SELECT 1 FROM streams.function_secret fs
                                  WHERE fs.function_id = f.function_id AND fs.signing_secret IS NOT NULL))
       END
$$;

CREATE FUNCTION streams._check_function_name(function_name text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF function_name IS NULL OR function_name !~ '^[a-zA-Z0-9_-]{1,64}$' THEN
        PERFORM streams._raise('22023', 'ValidationException',
            format('1 validation error detected: Value %s at ''functionName'' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]{1,64}',
                   coalesce(quote_literal(function_name), 'null')));
    END IF;
END $$;

CREATE FUNCTION streams._check_timeout(timeout integer) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF timeout IS NULL OR timeout NOT BETWEEN 1 AND 900 THEN
        PERFORM streams._raise('22023', 'ValidationException',
            format('1 validation error detected: Value %s at ''timeout'' failed to satisfy constraint: Member must have value %s',
                   coalesce(quote_literal(timeout::text), 'null'),
                   CASE WHEN timeout > 900 THEN 'less than or equal to 900' ELSE 'greater than or equal to 1' END));
    END IF;
END $$;

-- May the role change or delete function f?
CREATE FUNCTION streams._check_function_owner(f streams.function) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT pg_has_role(streams._caller(), f.owner, 'USAGE') THEN
        PERFORM streams._raise('42501', 'AccessDeniedException',
            format('must be owner of function %s', f.function_name));
    END IF;
END $$;

REVOKE ALL ON FUNCTION streams._function_arn(text), streams._function_name_of(text), streams._url_origin(text),
    streams._handler_oid(streams.function),
    streams._find_function(text), streams._function_doc(streams.function),
    streams._check_function_name(text), streams._check_timeout(integer),
    streams._check_function_owner(streams.function) FROM PUBLIC;

CREATE FUNCTION streams.create_function(function_name text, handler regprocedure,
                                        timeout integer DEFAULT 3, description text DEFAULT '')
RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    caller oid := streams._caller();
    p      pg_proc;
    f      streams.function;
BEGIN
    PERFORM streams._check_function_name(function_name);
    PERFORM streams._check_timeout(timeout);
    IF handler IS NULL THEN
        PERFORM streams._raise('22023', 'InvalidParameterValueException', 'handler must not be null');
    END IF;
    SELECT * INTO p FROM pg_proc WHERE oid = handler;
    IF NOT FOUND THEN
        -- A bare oid (0::regprocedure, or one no function has yet) is refused.
        PERFORM streams._raise('22023', 'InvalidParameterValueException',
            format('handler %s does not exist', handler::oid));
    END IF;
    IF p.prokind <> 'f' OR p.proretset OR p.pronargs <> 1
       OR p.proargtypes[0] NOT IN ('jsonb'::regtype, 'json'::regtype)
       OR p.prorettype NOT IN ('jsonb'::regtype, 'json'::regtype, 'void'::regtype) THEN
        PERFORM streams._raise('22023', 'InvalidParameterValueException',
            format('handler %s must be a function taking one jsonb (or json) argument and returning jsonb, json or void', handler),
            'Define it as CREATE FUNCTION ... (event jsonb) RETURNS jsonb; procedures, aggregates, window and set-returning functions cannot be handlers.');
    END IF;
    IF NOT has_function_privilege(caller, handler, 'EXECUTE') THEN
        PERFORM streams._raise('42501', 'AccessDeniedException', format('permission denied for function %s', handler));
    END IF;
    IF EXISTS (SELECT 1 FROM streams.function fn WHERE fn.function_name = create_function.function_name) THEN
        PERFORM streams._raise('42710', 'ResourceConflictException',
            format('Function already exist: %s', function_name));
    END IF;
    INSERT INTO streams.function (function_name, function_arn, kind, handler, handler_owner, timeout_seconds,
                                  description, owner, last_modified)
    VALUES (function_name, streams._function_arn(function_name), 'sql', handler::text, p.proowner, timeout,
            coalesce(description, ''), caller, clock_timestamp())
    RETURNING * INTO f;
    PERFORM streams._mappings_changed();  -- mappings waiting for a function of this name
    RETURN streams._function_doc(f);
END $$;
COMMENT ON FUNCTION streams.create_function(text, regprocedure, integer, text) IS
    'Registers a SQL function handler(event jsonb) as a target (Lambda CreateFunction); timeout in seconds (1..900).';

CREATE FUNCTION streams.get_function(function_name text) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object('Configuration', streams._function_doc(streams._find_function(function_name)))
$$;
COMMENT ON FUNCTION streams.get_function(text) IS
    'Describes a registered target by name or ARN (Lambda GetFunction).';

CREATE FUNCTION streams.list_functions() RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object('Functions', coalesce(jsonb_agg(streams._function_doc(f) ORDER BY f.function_name),
                                                    '[]'::jsonb))
    FROM streams.function f
$$;
COMMENT ON FUNCTION streams.list_functions() IS 'Lists registered targets (Lambda ListFunctions).';

CREATE FUNCTION streams.update_function_configuration(function_name text, request jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f   streams.function := streams._find_function(function_name);
    key text;
BEGIN
    PERFORM streams._check_function_owner(f);
    IF request IS NULL OR jsonb_typeof(request) <> 'object' THEN
        PERFORM streams._raise('22023', 'ValidationException', 'request must be a JSON object');
    END IF;
    FOR key IN SELECT jsonb_object_keys(request) LOOP
        IF key NOT IN ('Timeout', 'Description') THEN
            PERFORM streams._raise('22023', 'ValidationException',
                format('Unknown parameter in request: "%s", must be one of: Timeout, Description', key));
        END IF;
    END LOOP;
    IF request ? 'Timeout' THEN
        -- Type and range, with AWS's messages (as create_function).
        f.timeout_seconds := streams._int_param(request, 'Timeout', 1, 900);
    END IF;
    IF request ? 'Description' THEN
        IF jsonb_typeof(request->'Description') <> 'string' THEN
            PERFORM streams._raise('22023', 'ValidationException',
                format('Invalid type for parameter Description, value: %s, valid types: string', request->'Description'));
        END IF;
        f.description := request->>'Description';
    END IF;
    UPDATE streams.function SET timeout_seconds = f.timeout_seconds, description = f.description,
                                last_modified = clock_timestamp()
    WHERE function_id = f.function_id
    RETURNING * INTO f;
    PERFORM streams._mappings_changed();
    RETURN streams._function_doc(f);
END $$;
COMMENT ON FUNCTION streams.update_function_configuration(text, jsonb) IS
    'Changes Timeout and/or Description of a target (Lambda UpdateFunctionConfiguration).';

CREATE FUNCTION streams.delete_function(function_name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f streams.function := streams._find_function(function_name);
BEGIN
    PERFORM streams._check_function_owner(f);
    -- As on AWS, mappings to the function stay (their invocations fail until a
    -- function of that name exists again).
    DELETE FROM streams.function WHERE function_id = f.function_id;
    DELETE FROM streams.function_secret WHERE function_id = f.function_id;
    PERFORM streams._mappings_changed();
END $$;
COMMENT ON FUNCTION streams.delete_function(text) IS
    'Deletes a registered target (Lambda DeleteFunction); its event source mappings stay.';
