--------------------------------------------------------------------------
-- HTTP targets
--------------------------------------------------------------------------

-- Whether pg_streams.http_allowed_hosts (empty: any host) lets url's host in.
CREATE FUNCTION streams._http_host_allowed(url text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(current_setting('pg_streams.http_allowed_hosts', true), '') = ''
        OR lower((regexp_match(url, '^https?://(\[[^]]+\]|[^/:?#]+)', 'i'))[1]) = ANY (
               SELECT lower(btrim(h)) FROM unnest(string_to_array(current_setting('pg_streams.http_allowed_hosts'), ',')) h)
$$;

CREATE FUNCTION streams._check_headers(headers jsonb, what text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k text;
BEGIN
    IF headers IS NULL THEN
        RETURN;
    END IF;
    IF jsonb_typeof(headers) <> 'object' THEN
        PERFORM streams._raise('22023', 'InvalidParameterValueException',
            format('%s must be an object of header names to string values', what));
    END IF;
    FOR k IN SELECT jsonb_object_keys(headers) LOOP
        IF k !~ '^[A-Za-z0-9!#$%&''*+.^_`|~-]+$' OR jsonb_typeof(headers->k) <> 'string'
           OR headers->>k ~ '[\r\n]' THEN
            PERFORM streams._raise('22023', 'InvalidParameterValueException',
                format('%s: invalid header %s (a token name and a single-line string value are required)', what, quote_literal(k)));
        END IF;
        IF lower(k) IN ('content-type', 'content-length', 'host', 'idempotency-key', 'transfer-encoding')
           OR lower(k) LIKE 'x-pgs-%' THEN
            PERFORM streams._raise('22023', 'InvalidParameterValueException',
                format('%s: header %s is set by pg_streams', what, k));
        END IF;
    END LOOP;
END $$;

REVOKE ALL ON FUNCTION streams._check_headers(jsonb, text) FROM PUBLIC;

-- Secrets are arguments: no error of create_http_function may show them. Its
-- messages never quote option values or the URL's path and query, and the
-- failing call is not logged as STATEMENT (log_min_error_statement is raised
-- while it runs; errors are reported before it is reset). What is parsed
-- before the call (a literal cast to jsonb that is not JSON) is caught by the
-- text overload below, which parses the options itself.
CREATE FUNCTION streams.create_http_function(function_name text, url text, options jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET log_min_error_statement = panic AS $$
DECLARE
    allowed text[] := ARRAY['Timeout', 'Description', 'Headers', 'SecretHeaders', 'SigningSecret',
                            'VerifyTls', 'CaFile', 'MaxConcurrency'];
    k       text;
    timeout integer := 3;
    f       streams.function;
BEGIN
    PERFORM streams._check_function_name(function_name);
    IF url IS NULL OR url !~* '^https?://[^/?#]' THEN
        PERFORM streams._raise('22023', 'InvalidParameterValueException',
            'url must be an http:// or https:// URL with a host');
    END IF;
    IF url ~ '^[a-zA-Z]+://[^/?#]*@' THEN
        PERFORM streams._raise('22023', 'InvalidParameterValueException',
            'url must not carry credentials; put them in options.SecretHeaders');
    END IF;
    IF url ~ '\s' THEN
        PERFORM streams._raise('22023', 'InvalidParameterValueException', 'url must not contain white space');
    END IF;
    IF NOT streams._http_host_allowed(url) THEN
        PERFORM streams._raise('42501', 'AccessDeniedException',
            format('the host of %s is not in pg_streams.http_allowed_hosts', streams._url_origin(url)));
    END IF;
    IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
        PERFORM streams._raise('22023', 'InvalidParameterValueException', 'options must be a JSON object');
    END IF;
    FOR k IN SELECT jsonb_object_keys(options) LOOP
        IF NOT k = ANY (allowed) THEN
            PERFORM streams._raise('22023', 'ValidationException',
                format('Unknown option "%s", must be one of: %s', k, array_to_string(allowed, ', ')));
        END IF;
    END LOOP;
    IF options ? 'Timeout' THEN
        timeout := streams._int_param(options, 'Timeout', 1, 900);
    END IF;
    PERFORM streams._check_headers(options->'Headers', 'Headers');
    PERFORM streams._check_headers(options->'SecretHeaders', 'SecretHeaders');
    IF options ? 'SigningSecret' AND (jsonb_typeof(options->'SigningSecret') <> 'string'
                                      OR length(options->>'SigningSecret') < 16) THEN
        PERFORM streams._raise('22023', 'InvalidParameterValueException',
            'SigningSecret must be a string of at least 16 characters');
    END IF;
    IF options ? 'VerifyTls' AND jsonb_typeof(options->'VerifyTls') <> 'boolean' THEN
        PERFORM streams._raise('22023', 'InvalidParameterValueException', 'VerifyTls must be true or false');
    END IF;
    IF options ? 'CaFile' AND jsonb_typeof(options->'CaFile') <> 'string' THEN
        PERFORM streams._raise('22023', 'InvalidParameterValueException', 'CaFile must be a file name');
    END IF;
    IF options ? 'MaxConcurrency' THEN
        PERFORM streams._int_param(options, 'MaxConcurrency', 1, 1000);
    END IF;
    IF options ? 'Description' AND jsonb_typeof(options->'Description') <> 'string' THEN
        PERFORM streams._raise('22023', 'InvalidParameterValueException', 'Description must be a string');
    END IF;
    IF EXISTS (SELECT 1 FROM streams.function fn WHERE fn.function_name = create_http_function.function_name) THEN
        PERFORM streams._raise('42710', 'ResourceConflictException', format('Function already exist: %s', function_name));
    END IF;
    INSERT INTO streams.function (function_name, function_arn, kind, url, http_headers, verify_tls, ca_file,
                                  max_concurrency, timeout_seconds, description, owner, last_modified)
    VALUES (function_name, streams._function_arn(function_name), 'http', url, coalesce(options->'Headers', '{}'),
            coalesce((options->>'VerifyTls')::boolean, true), options->>'CaFile',
            (options->>'MaxConcurrency')::integer, timeout,
            coalesce(options->>'Description', ''), streams._caller(), clock_timestamp())
    RETURNING * INTO f;
    IF options ? 'SecretHeaders' OR options ? 'SigningSecret' THEN
        INSERT INTO streams.function_secret VALUES (f.function_id, options->'SecretHeaders', options->>'SigningSecret');
    END IF;
    PERFORM streams._mappings_changed();
    RETURN streams._function_doc(f);
END $$;

-- Options given as text (what a string literal resolves to) as jsonb: text
-- that is not JSON fails with an error that does not quote it (it may hold
-- secrets). Its callers set log_min_error_statement = panic for the same reason.
CREATE FUNCTION streams._secret_options(options text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp SET log_min_error_statement = panic AS $$
BEGIN
    RETURN options::jsonb;
EXCEPTION WHEN OTHERS THEN
    PERFORM streams._raise('22P02', 'InvalidParameterValueException',
        'options must be a JSON object: the text given is not valid JSON (its content is not shown: it may hold secrets)');
END $$;
REVOKE ALL ON FUNCTION streams._secret_options(text) FROM PUBLIC;

-- The same with the options as text (what a string literal resolves to):
-- options that are not JSON fail with an error that does not quote them.
CREATE FUNCTION streams.create_http_function(function_name text, url text, options text)
RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET log_min_error_statement = panic AS $$
BEGIN
    RETURN streams.create_http_function(function_name, url, streams._secret_options(options));
END $$;

-- Data leaves the database: a superuser decides who may do this, by GRANT.
REVOKE ALL ON FUNCTION streams.create_http_function(text, text, jsonb),
    streams.create_http_function(text, text, text) FROM PUBLIC;
COMMENT ON FUNCTION streams.create_http_function(text, text, jsonb) IS
    'Registers an HTTP(S) endpoint as a target. Options: Timeout (1..900 s, default 3), Description, Headers, SecretHeaders, SigningSecret (HMAC-SHA256), VerifyTls (default true), CaFile, MaxConcurrency (1..1000 requests in flight across mappings). Superuser, or a role granted EXECUTE on it.';
COMMENT ON FUNCTION streams.create_http_function(text, text, text) IS
    'create_http_function with the options as JSON text (a string literal calls this one): invalid JSON fails without quoting the options. Grant EXECUTE on both forms.';

-- What a dispatcher needs to call a target (secrets included): worker only.
-- Only the function of that name registered by p_owner (the one the mapping
-- was bound to) is returned.
CREATE FUNCTION streams._target_config(p_name text, p_owner oid,
    OUT kind text, OUT handler bigint, OUT timeout_ms integer, OUT url text, OUT headers text,
    OUT verify_tls boolean, OUT ca_file text, OUT signing_secret text, OUT host_allowed boolean,
    OUT function_id integer, OUT max_concurrency integer)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT f.kind, streams._handler_oid(f)::bigint, f.timeout_seconds * 1000, f.url,
           (SELECT string_agg(key || ': ' || value, E'\n' ORDER BY key)
            FROM jsonb_each_text(coalesce(f.http_headers, '{}') || coalesce(fs.secret_headers, '{}'))),
           f.verify_tls, f.ca_file, fs.signing_secret,
           f.kind <> 'http' OR streams._http_host_allowed(f.url), f.function_id, f.max_concurrency
    FROM streams.function f LEFT JOIN streams.function_secret fs USING (function_id)
    WHERE f.function_name = p_name AND f.owner = p_owner
$$;
REVOKE ALL ON FUNCTION streams._target_config(text, oid), streams._http_host_allowed(text) FROM PUBLIC;
