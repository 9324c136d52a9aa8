--------------------------------------------------------------------------
-- Event source mappings (Lambda: CreateEventSourceMapping & co.)
--------------------------------------------------------------------------

CREATE TABLE streams.event_source_mapping (
    mapping_id             integer     GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid                   uuid        NOT NULL UNIQUE,
    stream_id              integer     NOT NULL,   -- no foreign key: a mapping outlives its stream
    event_source_arn       text        NOT NULL,
    function_name          text        NOT NULL,   -- the function may be deleted and re-created
    batch_size             integer     NOT NULL,
    batching_window        integer     NOT NULL,
    parallelization_factor integer     NOT NULL,
    maximum_retry_attempts integer     NOT NULL,
    maximum_record_age     integer     NOT NULL,
    bisect                 boolean     NOT NULL,
    tumbling_window        integer     NOT NULL,
    response_types         text[]      NOT NULL,
    filter_criteria        jsonb,
    on_failure             text,                   -- Destination as given
    destination_table      regclass,               -- resolved: a table with a jsonb column "record"
    destination_function   text,                   -- or a registered function
    starting_position      text        NOT NULL,
    starting_timestamp     timestamptz,
    enabled                boolean     NOT NULL,
    state                  text        NOT NULL CHECK (state IN
        ('Creating', 'Enabling', 'Enabled', 'Disabling', 'Disabled', 'Updating', 'Deleting')),
    state_reason           text        NOT NULL,
    last_modified          timestamptz NOT NULL,
    last_result            text        NOT NULL DEFAULT 'No records processed',
    owner                  regrole     NOT NULL,
    -- The owners of the functions the mapping was bound to: a function of the
    -- same name registered later by another role is not the mapped function.
    function_owner         regrole     NOT NULL,
    destination_owner      regrole
);

-- One mapping per function and stream (AWS's ResourceConflictException),
-- also under concurrent creates.
CREATE UNIQUE INDEX event_source_mapping_function_stream ON streams.event_source_mapping (stream_id, function_name);

-- Per mapping and shard: the checkpoint, the batch being retried, counters.
CREATE TABLE streams.mapping_shard (
    mapping_id        integer     NOT NULL REFERENCES streams.event_source_mapping ON DELETE CASCADE,
    shard             integer     NOT NULL,
    ck_lsn            bigint      NOT NULL,   -- last processed position (lsn, idx)
    ck_idx            integer     NOT NULL,
    batch_end_lsn     bigint,                 -- end of the batch being retried or bisected
    batch_end_idx     integer,
    pending_lsn       bigint[]    NOT NULL DEFAULT '{}',   -- ends of bisected halves still to run
    pending_idx       integer[]   NOT NULL DEFAULT '{}',   -- (a stack: the last one runs next)
    attempts          integer     NOT NULL DEFAULT 0,      -- invocations of the current batch
    retry_at          timestamptz,
    blocked_since     timestamptz,            -- the current batch has failed since (NULL: it has not)
    -- TumblingWindowInSeconds: the open window (NULL: none), the state its
    -- next invocation gets, whether it was terminated early, and where the
    -- next window may start (the end of the last closed one).
    window_start      timestamptz,
    window_state      jsonb,
    window_early      boolean     NOT NULL DEFAULT false,
    window_floor      timestamptz,
    records_read      bigint      NOT NULL DEFAULT 0,
    records_filtered  bigint      NOT NULL DEFAULT 0,
    records_delivered bigint      NOT NULL DEFAULT 0,
    records_failed    bigint      NOT NULL DEFAULT 0,
    invocations       bigint      NOT NULL DEFAULT 0,
    function_errors   bigint      NOT NULL DEFAULT 0,
    retries           bigint      NOT NULL DEFAULT 0,
    bisects           bigint      NOT NULL DEFAULT 0,
    failed_batches    bigint      NOT NULL DEFAULT 0,      -- sent to the OnFailure destination
    discarded_batches bigint      NOT NULL DEFAULT 0,      -- dropped: no destination configured
    throttles         bigint      NOT NULL DEFAULT 0,      -- HTTP 429 / 503 with Retry-After
    iterator_age_ms   bigint,
    last_invoke_at    timestamptz,
    last_error        text,
    last_error_at     timestamptz,
    PRIMARY KEY (mapping_id, shard)
);

-- A ready OnFailure destination: one row per failed batch. Failure records
-- are written as the mapping's owner, and every row is attributed to the role
-- that wrote it (owner: set by the server, not by the writer).
CREATE TABLE streams.failed_batches (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    failed_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    record      jsonb       NOT NULL,
    owner       regrole     NOT NULL DEFAULT quote_ident(current_user)::regrole
);

REVOKE ALL ON streams.event_source_mapping, streams.mapping_shard, streams.failed_batches FROM PUBLIC;
-- Anyone may add rows (only the record column: the owner is the writer) and
-- read or delete the rows of roles it is a member of; the batches hold table
-- data, so row-level security keeps every role to its own rows.
GRANT INSERT (record), SELECT, DELETE ON streams.failed_batches TO PUBLIC;
ALTER TABLE streams.failed_batches ENABLE ROW LEVEL SECURITY;
CREATE POLICY failed_batches_insert ON streams.failed_batches FOR INSERT
    WITH CHECK (owner = quote_ident(current_user)::regrole);
CREATE POLICY failed_batches_read ON streams.failed_batches FOR SELECT USING (pg_has_role(owner, 'USAGE'));
CREATE POLICY failed_batches_delete ON streams.failed_batches FOR DELETE USING (pg_has_role(owner, 'USAGE'));

CREATE FUNCTION streams._mappings_changed() RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'pgs_mappings_changed';
COMMENT ON FUNCTION streams._mappings_changed() IS
    'Internal: at commit, tells this database''s workers that mappings or targets changed.';
REVOKE ALL ON FUNCTION streams._mappings_changed() FROM PUBLIC;

CREATE FUNCTION streams._esm_raise(sqlstate text, aws_exception text, message text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT streams._raise(sqlstate, aws_exception, message)
$$;

-- Integer parameter: type and range, with AWS's message.
CREATE FUNCTION streams._int_param(request jsonb, key text, lo integer, hi integer) RETURNS integer
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v    jsonb := request->key;
    n    numeric;
    name text := lower(substr(key, 1, 1)) || substr(key, 2);
BEGIN
    IF jsonb_typeof(v) <> 'number' OR (v::text)::numeric <> trunc((v::text)::numeric) THEN
        PERFORM streams._raise('22023', 'ValidationException',
            format('Invalid type for parameter %s, value: %s, valid types: integer', key, v));
    END IF;
    n := (v::text)::numeric;
    IF n < lo OR n > hi THEN
        PERFORM streams._raise('22023', 'ValidationException',
            format('1 validation error detected: Value ''%s'' at ''%s'' failed to satisfy constraint: Member must have value %s',
                   n, name, CASE WHEN n < lo THEN 'greater than or equal to ' || lo
                                 ELSE 'less than or equal to ' || hi END));
    END IF;
    RETURN n::integer;
END $$;

CREATE FUNCTION streams._bool_param(request jsonb, key text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF jsonb_typeof(request->key) <> 'boolean' THEN
        PERFORM streams._raise('22023', 'ValidationException',
            format('Invalid type for parameter %s, value: %s, valid types: boolean', key, request->key));
    END IF;
    RETURN (request->>key)::boolean;
END $$;

-- Resolves EventSourceArn (a stream ARN, or a table name for convenience).
-- rel: the table named by source, resolved with the caller's search_path.
CREATE FUNCTION streams._esm_stream(source text, rel oid) RETURNS streams.stream
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s   streams.stream;
BEGIN
    IF source LIKE 'arn:%' THEN
        SELECT * INTO s FROM streams.stream WHERE stream_arn = source;
    ELSE
        SELECT * INTO s FROM streams.stream WHERE relid = rel AND status = 'ENABLED';
    END IF;
    IF s.stream_id IS NULL THEN
        PERFORM streams._raise('22023', 'InvalidParameterValueException', format('Stream not found: %s', source));
    END IF;
    RETURN s;
END $$;

-- The table a name denotes for the caller (its search_path), or NULL.
CREATE FUNCTION streams._regclass_of(name text) RETURNS oid
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN to_regclass(name)::oid;
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;
END $$;

-- Checks FilterCriteria.Filters (an array): at most 5 filters, each
-- {"Pattern": string of at most 4096 characters} holding a valid pattern.
CREATE FUNCTION streams._check_filters(filters jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f       jsonb;
    i       integer := 0;
    n       integer := jsonb_array_length(filters);
    pattern text;
    problem text;
BEGIN
    IF n > 5 THEN
        PERFORM streams._raise('22023', 'InvalidParameterValueException', 'Invalid filter pattern definition.',
            format('FilterCriteria has %s filters; at most 5 are allowed', n));
    END IF;
    FOR f IN SELECT e FROM jsonb_array_elements(filters) e LOOP
        IF jsonb_typeof(f) IS DISTINCT FROM 'object' OR jsonb_typeof(f->'Pattern') IS DISTINCT FROM 'string'
           OR EXISTS (SELECT 1 FROM jsonb_object_keys(f) k WHERE k <> 'Pattern') THEN
            PERFORM streams._raise('22023', 'InvalidParameterValueException', 'Invalid filter pattern definition.',
                format('Filters[%s] must be {"Pattern": "<pattern as a JSON string>"}', i));
        END IF;
        pattern := f->>'Pattern';
        IF length(pattern) > 4096 THEN
            problem := format('the pattern has %s characters; at most 4096 are allowed', length(pattern));
        ELSE
            problem := streams._filter_pattern_error(pattern);
        END IF;
        IF problem IS NOT NULL THEN
            PERFORM streams._raise('22023', 'InvalidParameterValueException', 'Invalid filter pattern definition.',
                CASE WHEN n > 1 THEN format('Filters[%s].Pattern: %s', i, problem) ELSE problem END);
        END IF;
        i := i + 1;
    END LOOP;
END $$;

-- Applies a create or update request to m; validates every parameter.
-- StartingPosition and StartingPositionTimestamp of a request, with AWS's
-- rules and texts (create_event_source_mapping, reset_event_source_mapping).
CREATE FUNCTION streams._starting_position(request jsonb, OUT starting_position text,
                                           OUT starting_timestamp timestamptz)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v jsonb;
BEGIN
    v := request->'StartingPosition';
    IF v IS NULL OR v = 'null' THEN
        PERFORM streams._raise('22023', 'InvalidParameterValueException',
            '1 validation error detected: Value null at ''startingPosition'' failed to satisfy constraint: Member must not be null.');
    END IF;
    IF jsonb_typeof(v) <> 'string' OR v->>0 NOT IN ('LATEST', 'AT_TIMESTAMP', 'TRIM_HORIZON') THEN
        PERFORM streams._raise('22023', 'ValidationException',
            format('1 validation error detected: Value ''%s'' at ''startingPosition'' failed to satisfy constraint: Member must satisfy enum value set: [LATEST, AT_TIMESTAMP, TRIM_HORIZON]',
                   coalesce(v->>0, v::text)));
    END IF;
    starting_position := v->>0;
    v := request->'StartingPositionTimestamp';
    IF starting_position = 'AT_TIMESTAMP' THEN
        -- AWS refuses AT_TIMESTAMP for DynamoDB streams; pg_streams supports it.
        IF v IS NULL OR v = 'null' THEN
            PERFORM streams._raise('22023', 'InvalidParameterValueException',
                'StartingPositionTimestamp must be provided with StartingPosition AT_TIMESTAMP.');
        END IF;
        BEGIN
            starting_timestamp := CASE jsonb_typeof(v) WHEN 'number' THEN to_timestamp((v::text)::double precision)
                                                       WHEN 'string' THEN (v->>0)::timestamptz END;
        EXCEPTION WHEN OTHERS THEN
            starting_timestamp := NULL;
        END;
        IF starting_timestamp IS NULL OR NOT isfinite(starting_timestamp) THEN
            PERFORM streams._raise('22023', 'InvalidParameterValueException',
                format('Invalid StartingPositionTimestamp: %s (expected epoch seconds or an ISO 8601 timestamp)', v));
        END IF;
    ELSIF v IS NOT NULL AND v <> 'null' THEN
        PERFORM streams._raise('22023', 'InvalidParameterValueException',
            'StartingPositionTimestamp is only allowed with StartingPosition AT_TIMESTAMP.');
    END IF;
END $$;

-- source_rel, dest_rel: EventSourceArn and Destination resolved as tables.
CREATE FUNCTION streams._esm_apply(m streams.event_source_mapping, request jsonb, creating boolean,
                                   source_rel oid, dest_rel oid)
RETURNS streams.event_source_mapping
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    create_keys text[] := ARRAY['EventSourceArn', 'FunctionName', 'Enabled', 'BatchSize',
        'MaximumBatchingWindowInSeconds', 'ParallelizationFactor', 'StartingPosition',
        'StartingPositionTimestamp', 'DestinationConfig', 'MaximumRecordAgeInSeconds',
        'BisectBatchOnFunctionError', 'MaximumRetryAttempts', 'TumblingWindowInSeconds',
        'FunctionResponseTypes', 'FilterCriteria'];
    update_keys text[] := ARRAY['FunctionName', 'Enabled', 'BatchSize', 'MaximumBatchingWindowInSeconds',
        'ParallelizationFactor', 'DestinationConfig', 'MaximumRecordAgeInSeconds',
        'BisectBatchOnFunctionError', 'MaximumRetryAttempts', 'TumblingWindowInSeconds',
        'FunctionResponseTypes', 'FilterCriteria'];
    key   text;
    v     jsonb;
    n     integer;
    dest  text;
    rel   oid;
    fn    streams.function;
    s     streams.stream;
    owner oid := coalesce(m.owner, streams._caller());
BEGIN
    IF request IS NULL OR jsonb_typeof(request) <> 'object' THEN
        PERFORM streams._raise('22023', 'ValidationException', 'request must be a JSON object');
    END IF;
    FOR key IN SELECT jsonb_object_keys(request) LOOP
        IF NOT key = ANY (CASE WHEN creating THEN create_keys ELSE update_keys END) THEN
            PERFORM streams._raise('22023', 'ValidationException',
                format('Unknown parameter in request: "%s", must be one of: %s', key,
                       array_to_string(CASE WHEN creating THEN create_keys ELSE update_keys END, ', ')));
        END IF;
    END LOOP;

    IF creating THEN
        IF request->'EventSourceArn' IS NULL OR jsonb_typeof(request->'EventSourceArn') <> 'string' THEN
            PERFORM streams._raise('22023', 'InvalidParameterValueException', 'Unrecognized event source.');
        END IF;
        s := streams._esm_stream(request->>'EventSourceArn', source_rel);
        PERFORM streams._check_read(s);
        m.stream_id := s.stream_id;
        m.event_source_arn := s.stream_arn;

        SELECT p.starting_position, p.starting_timestamp INTO m.starting_position, m.starting_timestamp
          FROM streams._starting_position(request) AS p;
    END IF;

    IF creating OR request ? 'FunctionName' THEN
        v := request->'FunctionName';
        IF v IS NULL OR v = 'null' THEN
            PERFORM streams._raise('22023', 'InvalidParameterValueException',
                '1 validation error detected: Value null at ''functionName'' failed to satisfy constraint: Member must not be null.');
        END IF;
        IF jsonb_typeof(v) <> 'string' THEN
            PERFORM streams._raise('22023', 'ValidationException',
                format('Invalid type for parameter FunctionName, value: %s, valid types: string', v));
        END IF;
        SELECT * INTO fn FROM streams.function WHERE function_name = streams._function_name_of(v->>0);
        IF NOT FOUND THEN
            PERFORM streams._raise('22023', 'InvalidParameterValueException', 'Function does not exist');
        END IF;
        -- Mapping a stream to a function invokes it (Lambda's invoke
        -- permission): only members of the function's owner may. Data sent to
        -- an HTTP endpoint leaves the database; a SQL function's handler may
        -- be SECURITY DEFINER and must not receive another role's records.
        IF NOT pg_has_role(owner, fn.owner, 'USAGE') THEN
            PERFORM streams._raise('42501', 'AccessDeniedException',
                format('must be a member of role %s, the owner of %sfunction %s, to map streams to it',
                       (SELECT rolname FROM pg_roles WHERE oid = fn.owner),
                       CASE fn.kind WHEN 'http' THEN 'HTTP ' ELSE '' END, fn.function_name));
        END IF;
        m.function_name := fn.function_name;
        m.function_owner := fn.owner;
    END IF;

    IF request ? 'Enabled' THEN
        m.enabled := streams._bool_param(request, 'Enabled');
    END IF;
    IF request ? 'BatchSize' THEN
        m.batch_size := streams._int_param(request, 'BatchSize', 1, 10000);
    END IF;
    IF request ? 'MaximumBatchingWindowInSeconds' THEN
        m.batching_window := streams._int_param(request, 'MaximumBatchingWindowInSeconds', 0, 300);
    END IF;
    IF request ? 'ParallelizationFactor' THEN
        m.parallelization_factor := streams._int_param(request, 'ParallelizationFactor', 1, 10);
    END IF;
    IF request ? 'MaximumRetryAttempts' THEN
        m.maximum_retry_attempts := streams._int_param(request, 'MaximumRetryAttempts', -1, 10000);
    END IF;
    IF request ? 'MaximumRecordAgeInSeconds' THEN
        n := streams._int_param(request, 'MaximumRecordAgeInSeconds', -1, 604800);
        IF n BETWEEN 0 AND 59 THEN
            PERFORM streams._raise('22023', 'InvalidParameterValueException',
                format('MaximumRecordAgeInSeconds must be -1 (unlimited) or between 60 and 604800: values less than 60 and greater than -1 are not allowed, got %s', n));
        END IF;
        m.maximum_record_age := n;
    END IF;
    IF request ? 'BisectBatchOnFunctionError' THEN
        m.bisect := streams._bool_param(request, 'BisectBatchOnFunctionError');
    END IF;
    IF request ? 'TumblingWindowInSeconds' THEN
        m.tumbling_window := streams._int_param(request, 'TumblingWindowInSeconds', 0, 900);
    END IF;
    IF request ? 'FunctionResponseTypes' THEN
        v := request->'FunctionResponseTypes';
        IF jsonb_typeof(v) <> 'array' OR EXISTS (SELECT 1 FROM jsonb_array_elements(v) e WHERE jsonb_typeof(e) <> 'string') THEN
            PERFORM streams._raise('22023', 'ValidationException',
                format('Invalid type for parameter FunctionResponseTypes, value: %s, valid types: list of strings', v));
        END IF;
        IF jsonb_array_length(v) > 1 THEN
            PERFORM streams._raise('22023', 'ValidationException',
                format('1 validation error detected: Value ''%s'' at ''functionResponseTypes'' failed to satisfy constraint: Member must have length less than or equal to 1', v));
        END IF;
        IF EXISTS (SELECT 1 FROM jsonb_array_elements_text(v) e WHERE e <> 'ReportBatchItemFailures') THEN
            PERFORM streams._raise('22023', 'ValidationException',
                format('1 validation error detected: Value ''%s'' at ''functionResponseTypes'' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [ReportBatchItemFailures]]', v));
        END IF;
        m.response_types := ARRAY(SELECT jsonb_array_elements_text(v));
    END IF;
    IF request ? 'FilterCriteria' THEN
        v := request->'FilterCriteria';
        IF v = 'null' OR v = '{}' OR v = '{"Filters":[]}' OR v = '{"Filters":null}' THEN
            m.filter_criteria := NULL;
        ELSIF jsonb_typeof(v) IS DISTINCT FROM 'object' OR jsonb_typeof(v->'Filters') IS DISTINCT FROM 'array'
              OR EXISTS (SELECT 1 FROM jsonb_object_keys(v) k WHERE k <> 'Filters') THEN
            PERFORM streams._raise('22023', 'InvalidParameterValueException', 'Invalid filter pattern definition.',
                'FilterCriteria must be {"Filters": [{"Pattern": "<pattern as a JSON string>"}, ...]}');
        ELSE
            PERFORM streams._check_filters(v->'Filters');
            m.filter_criteria := v;
        END IF;
    END IF;
    IF request ? 'DestinationConfig' THEN
        v := request->'DestinationConfig';
        IF jsonb_typeof(v) <> 'object' THEN
            PERFORM streams._raise('22023', 'ValidationException',
                format('Invalid type for parameter DestinationConfig, value: %s, valid types: object', v));
        END IF;
        IF v ? 'OnSuccess' THEN
            PERFORM streams._raise('22023', 'InvalidParameterValueException',
                'Unsupported DestinationConfig parameter for given event source mapping type.');
        END IF;
        IF EXISTS (SELECT 1 FROM jsonb_object_keys(v) k WHERE k <> 'OnFailure')
           OR (v ? 'OnFailure' AND jsonb_typeof(v->'OnFailure') <> 'object')
           OR EXISTS (SELECT 1 FROM jsonb_object_keys(coalesce(v->'OnFailure', '{}')) k WHERE k <> 'Destination') THEN
            PERFORM streams._raise('22023', 'ValidationException',
                format('Invalid DestinationConfig: %s (expected {"OnFailure": {"Destination": "<table, function name or function ARN>"}})', v));
        END IF;
        v := v->'OnFailure'->'Destination';
        m.on_failure := NULL; m.destination_table := NULL; m.destination_function := NULL;
        m.destination_owner := NULL;
        IF v IS NOT NULL AND v <> 'null' THEN
            IF jsonb_typeof(v) <> 'string' THEN
                PERFORM streams._raise('22023', 'ValidationException',
                    format('Invalid type for parameter DestinationConfig.OnFailure.Destination, value: %s, valid types: string', v));
            END IF;
            dest := v->>0;
            SELECT * INTO fn FROM streams.function WHERE function_name = streams._function_name_of(dest);
            IF FOUND THEN
                IF NOT pg_has_role(owner, fn.owner, 'USAGE') THEN
                    PERFORM streams._raise('42501', 'AccessDeniedException',
                        format('must be a member of role %s, the owner of %sfunction %s, to send failed batches to it',
                               (SELECT rolname FROM pg_roles WHERE oid = fn.owner),
                               CASE fn.kind WHEN 'http' THEN 'HTTP ' ELSE '' END, fn.function_name));
                END IF;
                m.destination_function := fn.function_name;
                m.destination_owner := fn.owner;
            ELSIF dest ~ '^arn:aws[a-zA-Z-]*:lambda:' THEN
                PERFORM streams._raise('22023', 'InvalidParameterValueException',
                    format('The destination function %s does not exist', dest));
            ELSIF dest ~ '^arn:' THEN
                PERFORM streams._raise('22023', 'InvalidParameterValueException',
                    format('Unsupported destination %s: use a table with a jsonb column "record", or a registered function', dest));
            ELSE
                rel := dest_rel;
                IF rel IS NULL OR NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = rel AND relkind IN ('r', 'p')) THEN
                    PERFORM streams._raise('22023', 'InvalidParameterValueException',
                        format('The destination %s is neither a registered function nor a table', dest));
                END IF;
                IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = rel AND attname = 'record'
                                   AND atttypid = 'jsonb'::regtype AND NOT attisdropped AND attnum > 0) THEN
                    PERFORM streams._raise('22023', 'InvalidParameterValueException',
                        format('The destination table %s must have a jsonb column named "record"', rel::regclass));
                END IF;
                IF NOT has_column_privilege(owner, rel, 'record', 'INSERT') THEN
                    PERFORM streams._raise('42501', 'AccessDeniedException',
                        format('permission denied: the mapping owner cannot insert into destination table %s', rel::regclass));
                END IF;
                m.destination_table := rel;
            END IF;
            m.on_failure := dest;
        END IF;
    END IF;

    -- A window's state is per shard: it cannot be split between the lanes
    -- of a shard.
    -- A Kafka topic returns nothing: there is no state to carry.
    IF m.tumbling_window > 0 AND EXISTS (SELECT 1 FROM streams.function f
                                         WHERE f.function_name = m.function_name AND f.owner = m.function_owner
                                           AND f.kind = 'kafka') THEN
        PERFORM streams._raise('22023', 'InvalidParameterValueException',
            format('TumblingWindowInSeconds needs a SQL or HTTP function: %s is a Kafka topic, which returns no state', m.function_name));
    END IF;
    IF m.tumbling_window > 0 AND m.parallelization_factor > 1 THEN
        PERFORM streams._raise('22023', 'InvalidParameterValueException',
            'TumblingWindowInSeconds cannot be used with ParallelizationFactor greater than 1: a window''s state is kept per shard');
    END IF;
    -- Features that come with later versions: refuse rather than ignore.
    IF m.parallelization_factor > 1 THEN
        PERFORM streams._raise('0A000', 'InvalidParameterValueException',
            'ParallelizationFactor greater than 1 is not supported by this version of pg_streams');
    END IF;
    RETURN m;
END $$;

CREATE FUNCTION streams._esm_doc(m streams.event_source_mapping) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object(
        'UUID', m.uuid,
        'StartingPosition', m.starting_position,
        'BatchSize', m.batch_size,
        'MaximumBatchingWindowInSeconds', m.batching_window,
        'ParallelizationFactor', m.parallelization_factor,
        'EventSourceArn', m.event_source_arn,
        'FunctionArn', streams._function_arn(m.function_name),
        'LastModified', extract(epoch FROM m.last_modified),
        'LastProcessingResult', m.last_result,
        'State', m.state,
        'StateTransitionReason', m.state_reason,
        'DestinationConfig', jsonb_build_object('OnFailure', CASE WHEN m.on_failure IS NULL THEN '{}'::jsonb
                                                   ELSE jsonb_build_object('Destination', m.on_failure) END),
        'MaximumRecordAgeInSeconds', m.maximum_record_age,
        'BisectBatchOnFunctionError', m.bisect,
        'MaximumRetryAttempts', m.maximum_retry_attempts,
        'TumblingWindowInSeconds', m.tumbling_window,
        'FunctionResponseTypes', to_jsonb(m.response_types),
        'EventSourceMappingArn', format('arn:aws:lambda:%s:%s:event-source-mapping:%s',
                                        current_setting('pg_streams.aws_region'),
                                        current_setting('pg_streams.aws_account_id'), m.uuid))
        || CASE WHEN m.starting_timestamp IS NULL THEN '{}'::jsonb
                ELSE jsonb_build_object('StartingPositionTimestamp', extract(epoch FROM m.starting_timestamp)) END
        || CASE WHEN m.filter_criteria IS NULL THEN '{}'::jsonb
                ELSE jsonb_build_object('FilterCriteria', m.filter_criteria) END
$$;

CREATE FUNCTION streams._find_esm(p_uuid uuid) RETURNS streams.event_source_mapping
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m streams.event_source_mapping;
BEGIN
    SELECT * INTO m FROM streams.event_source_mapping WHERE uuid = p_uuid;
    IF NOT FOUND THEN
        PERFORM streams._raise('42704', 'ResourceNotFoundException', 'The resource you requested does not exist.');
    END IF;
    RETURN m;
END $$;

CREATE FUNCTION streams._check_esm_owner(m streams.event_source_mapping) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT pg_has_role(streams._caller(), m.owner, 'USAGE') THEN
        PERFORM streams._raise('42501', 'AccessDeniedException',
            format('must be owner of event source mapping %s', m.uuid));
    END IF;
END $$;

-- The checkpoint a new mapping starts from, per shard.
CREATE FUNCTION streams._starting_checkpoint(m streams.event_source_mapping, p_shard integer,
                                             OUT lsn bigint, OUT idx integer)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF m.starting_position = 'TRIM_HORIZON' THEN
        lsn := 0; idx := -1;
    ELSIF m.starting_position = 'LATEST' THEN
        -- After every transaction committed so far, captured or not yet.
        lsn := (pg_current_wal_insert_lsn() - '0/0')::bigint; idx := -1;
    ELSE
        -- AT_TIMESTAMP: after the last record committed before the timestamp;
        -- the dispatcher also skips any later-captured record older than it.
        SELECT u.lsn, u.idx INTO lsn, idx FROM streams.record_batch b
        CROSS JOIN LATERAL unnest(b.lsns, b.idxs, b.arrivals) AS u(lsn, idx, arrival)
        WHERE b.stream_id = m.stream_id AND b.shard = p_shard AND b.arrival < m.starting_timestamp
          AND u.arrival < m.starting_timestamp
        ORDER BY u.lsn DESC, u.idx DESC LIMIT 1;
        IF lsn IS NULL THEN
            lsn := 0; idx := -1;
        END IF;
    END IF;
END $$;

-- Checked by the dispatcher before every batch, as the mapping owner's rights
-- stand now: whether the owner may still read the stream, and whether the
-- functions it was bound to (same name, same owner) still exist and may
-- still be used by it. NULLs: deliver; otherwise the LastProcessingResult
-- and the error to show, and the batch waits (it is not skipped).
CREATE FUNCTION streams._mapping_problem(p_mapping_id integer, OUT result text, OUT error text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m streams.event_source_mapping;
    s streams.stream;
    f streams.function;
BEGIN
    SELECT * INTO m FROM streams.event_source_mapping WHERE mapping_id = p_mapping_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT * INTO s FROM streams.stream WHERE stream_id = m.stream_id;
    IF FOUND THEN
        error := streams._read_problem(s, m.owner);
        IF error IS NOT NULL THEN
            result := 'PROBLEM: Insufficient permissions';
            RETURN;
        END IF;
    END IF;
    SELECT * INTO f FROM streams.function WHERE function_name = m.function_name;
    IF NOT FOUND OR f.owner <> m.function_owner THEN
        result := 'PROBLEM: Function not found';
        error := 'Function not found: ' || streams._function_arn(m.function_name)
                 || CASE WHEN FOUND THEN format(' (the function of that name is now registered by role %s, not by %s, who registered the mapped one)',
                                                (SELECT quote_ident(rolname) FROM pg_roles WHERE oid = f.owner),
                                                coalesce((SELECT quote_ident(rolname) FROM pg_roles WHERE oid = m.function_owner),
                                                         'a dropped role'))
                         ELSE '' END;
        RETURN;
    END IF;
    IF NOT pg_has_role(m.owner, f.owner, 'USAGE') THEN
        result := 'PROBLEM: Insufficient permissions';
        error := format('the mapping owner is no longer a member of role %s, the owner of function %s',
                        (SELECT quote_ident(rolname) FROM pg_roles WHERE oid = f.owner), f.function_name);
        RETURN;
    END IF;
    IF m.destination_function IS NOT NULL THEN
        SELECT * INTO f FROM streams.function WHERE function_name = m.destination_function;
        IF FOUND AND f.owner = m.destination_owner AND NOT pg_has_role(m.owner, f.owner, 'USAGE') THEN
            result := 'PROBLEM: Insufficient permissions';
            error := format('the mapping owner is no longer a member of role %s, the owner of OnFailure function %s',
                            (SELECT quote_ident(rolname) FROM pg_roles WHERE oid = f.owner), f.function_name);
            RETURN;
        END IF;
    END IF;
END $$;
REVOKE ALL ON FUNCTION streams._mapping_problem(integer) FROM PUBLIC;

REVOKE ALL ON FUNCTION streams._esm_raise(text, text, text), streams._int_param(jsonb, text, integer, integer),
    streams._bool_param(jsonb, text), streams._esm_stream(text, oid),
    streams._esm_apply(streams.event_source_mapping, jsonb, boolean, oid, oid), streams._esm_doc(streams.event_source_mapping),
    streams._find_esm(uuid), streams._check_esm_owner(streams.event_source_mapping),
    streams._starting_checkpoint(streams.event_source_mapping, integer) FROM PUBLIC;

-- Resource limit: each enabled mapping runs a background worker, so a role
-- may own at most pg_streams.max_mappings_per_role enabled mappings in this
-- database (superusers are exempt). `except_id`: the mapping being enabled.
CREATE FUNCTION streams._check_mapping_limit(owner oid, except_id integer) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lim integer := coalesce(nullif(current_setting('pg_streams.max_mappings_per_role', true), ''), '-1')::integer;
    n   integer;
BEGIN
    IF lim < 0 OR (SELECT r.rolsuper FROM pg_roles r WHERE r.oid = _check_mapping_limit.owner) THEN
        RETURN;
    END IF;
    -- Concurrent requests of one role are counted one after the other.
    PERFORM pg_advisory_xact_lock(hashtext('pg_streams.max_mappings_per_role'), _check_mapping_limit.owner::integer);
    SELECT count(*) INTO n FROM streams.event_source_mapping e
    WHERE e.owner = _check_mapping_limit.owner AND e.enabled AND e.mapping_id IS DISTINCT FROM except_id;
    IF n >= lim THEN
        PERFORM streams._raise('53400', 'TooManyRequestsException',
            format('Limit exceeded: role %s already has %s enabled event source mappings in this database (pg_streams.max_mappings_per_role = %s)',
                   _check_mapping_limit.owner::regrole, n, lim),
            'Disable or delete one of its mappings, or ask a superuser to raise pg_streams.max_mappings_per_role.');
    END IF;
END $$;
REVOKE ALL ON FUNCTION streams._check_mapping_limit(oid, integer) FROM PUBLIC;

CREATE FUNCTION streams._create_event_source_mapping(request jsonb, source_rel oid, dest_rel oid) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m        streams.event_source_mapping;
    existing uuid;
    cnt      integer;
BEGIN
    m.owner := streams._caller();
    m.batch_size := 100; m.batching_window := 0; m.parallelization_factor := 1;
    m.maximum_retry_attempts := -1; m.maximum_record_age := -1; m.bisect := false;
    m.tumbling_window := 0; m.response_types := '{}'; m.enabled := true;
    m := streams._esm_apply(m, request, true, source_rel, dest_rel);

    SELECT e.uuid INTO existing FROM streams.event_source_mapping e
    WHERE e.stream_id = m.stream_id AND e.function_name = m.function_name;
    IF FOUND THEN
        PERFORM streams._raise('42710', 'ResourceConflictException',
            format('The event source arn (" %s ") and function (" %s ") provided mapping already exists. Please update or delete the existing mapping with UUID %s',
                   m.event_source_arn, m.function_name, existing));
    END IF;

    IF m.enabled THEN PERFORM streams._check_mapping_limit(m.owner, NULL); END IF;
    m.uuid := gen_random_uuid();
    m.state := 'Creating';
    m.state_reason := 'User action';
    m.last_modified := clock_timestamp();
    m.last_result := 'No records processed';
    INSERT INTO streams.event_source_mapping (uuid, stream_id, event_source_arn, function_name, batch_size,
        batching_window, parallelization_factor, maximum_retry_attempts, maximum_record_age, bisect,
        tumbling_window, response_types, filter_criteria, on_failure, destination_table, destination_function,
        starting_position, starting_timestamp, enabled, state, state_reason, last_modified, last_result, owner,
        function_owner, destination_owner)
    VALUES (m.uuid, m.stream_id, m.event_source_arn, m.function_name, m.batch_size, m.batching_window,
        m.parallelization_factor, m.maximum_retry_attempts, m.maximum_record_age, m.bisect, m.tumbling_window,
        m.response_types, m.filter_criteria, m.on_failure, m.destination_table, m.destination_function,
        m.starting_position, m.starting_timestamp, m.enabled, m.state, m.state_reason, m.last_modified,
        m.last_result, m.owner, m.function_owner, m.destination_owner)
    RETURNING * INTO m;
    SELECT shard_count INTO cnt FROM streams.stream WHERE stream_id = m.stream_id;
    INSERT INTO streams.mapping_shard (mapping_id, shard, ck_lsn, ck_idx)
    SELECT m.mapping_id, n, c.lsn, c.idx
    FROM generate_series(0, cnt - 1) AS n, streams._starting_checkpoint(m, n) AS c;
    PERFORM streams._mappings_changed();
    PERFORM streams._esm_blocking_notice(m);
    RETURN streams._esm_doc(m);
END $$;

-- Table names in requests are resolved here, with the caller's search_path.
CREATE FUNCTION streams.create_event_source_mapping(request jsonb) RETURNS jsonb
LANGUAGE sql AS $$
    SELECT streams._create_event_source_mapping(request,
        streams._regclass_of(request->>'EventSourceArn'),
        streams._regclass_of(request#>>'{DestinationConfig,OnFailure,Destination}'))
$$;
COMMENT ON FUNCTION streams.create_event_source_mapping(jsonb) IS
    'Maps a stream to a target (Lambda CreateEventSourceMapping); takes and returns AWS''s documents.';

CREATE FUNCTION streams._update_event_source_mapping(uuid uuid, request jsonb, dest_rel oid) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m        streams.event_source_mapping := streams._find_esm(uuid);
    was      boolean := m.enabled;
    existing uuid;
BEGIN
    PERFORM streams._check_esm_owner(m);
    m := streams._esm_apply(m, request, false, NULL, dest_rel);
    SELECT e.uuid INTO existing FROM streams.event_source_mapping e
    WHERE e.stream_id = m.stream_id AND e.function_name = m.function_name AND e.mapping_id <> m.mapping_id;
    IF FOUND THEN
        PERFORM streams._raise('42710', 'ResourceConflictException',
            format('The event source arn (" %s ") and function (" %s ") provided mapping already exists. Please update or delete the existing mapping with UUID %s',
                   m.event_source_arn, m.function_name, existing));
    END IF;
    IF m.enabled AND NOT was THEN PERFORM streams._check_mapping_limit(m.owner, m.mapping_id); END IF;
    m.state := CASE WHEN was AND NOT m.enabled THEN 'Disabling'
                    WHEN NOT was AND m.enabled THEN 'Enabling'
                    ELSE 'Updating' END;
    m.state_reason := 'User action';
    m.last_modified := clock_timestamp();
    UPDATE streams.event_source_mapping e SET function_name = m.function_name, batch_size = m.batch_size,
        batching_window = m.batching_window, parallelization_factor = m.parallelization_factor,
        maximum_retry_attempts = m.maximum_retry_attempts, maximum_record_age = m.maximum_record_age,
        bisect = m.bisect, tumbling_window = m.tumbling_window, response_types = m.response_types,
        filter_criteria = m.filter_criteria, on_failure = m.on_failure, destination_table = m.destination_table,
        destination_function = m.destination_function, function_owner = m.function_owner,
        destination_owner = m.destination_owner, enabled = m.enabled, state = m.state,
        state_reason = m.state_reason, last_modified = m.last_modified
    WHERE e.mapping_id = m.mapping_id
    RETURNING * INTO m;
    PERFORM streams._mappings_changed();
    PERFORM streams._esm_blocking_notice(m);
    RETURN streams._esm_doc(m);
END $$;

CREATE FUNCTION streams.update_event_source_mapping(uuid uuid, request jsonb) RETURNS jsonb
LANGUAGE sql AS $$
    SELECT streams._update_event_source_mapping(uuid, request,
        streams._regclass_of(request#>>'{DestinationConfig,OnFailure,Destination}'))
$$;
COMMENT ON FUNCTION streams.update_event_source_mapping(uuid, jsonb) IS
    'Changes a mapping (Lambda UpdateEventSourceMapping); Enabled=false pauses it, true resumes it at its checkpoint.';

CREATE FUNCTION streams.get_event_source_mapping(uuid uuid) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT streams._esm_doc(streams._find_esm(uuid))
$$;
COMMENT ON FUNCTION streams.get_event_source_mapping(uuid) IS
    'Describes a mapping (Lambda GetEventSourceMapping).';

CREATE FUNCTION streams._list_event_source_mappings(event_source_arn text, function_name text, source_rel oid)
RETURNS jsonb LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    stream_arn text;
    result     jsonb;
BEGIN
    IF event_source_arn IS NOT NULL THEN
        IF event_source_arn LIKE 'arn:%' THEN
            stream_arn := event_source_arn;
        ELSE
            stream_arn := (streams._esm_stream(event_source_arn, source_rel)).stream_arn;
        END IF;
    END IF;
    SELECT coalesce(jsonb_agg(streams._esm_doc(m) ORDER BY m.mapping_id), '[]'::jsonb) INTO result
    FROM streams.event_source_mapping m
    WHERE (stream_arn IS NULL OR m.event_source_arn = stream_arn)
      AND (_list_event_source_mappings.function_name IS NULL
           OR m.function_name = streams._function_name_of(_list_event_source_mappings.function_name));
    RETURN jsonb_build_object('EventSourceMappings', result);
END $$;

CREATE FUNCTION streams.list_event_source_mappings(event_source_arn text DEFAULT NULL, function_name text DEFAULT NULL)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT streams._list_event_source_mappings(event_source_arn, function_name,
                                               streams._regclass_of(event_source_arn))
$$;
COMMENT ON FUNCTION streams.list_event_source_mappings(text, text) IS
    'Lists mappings, optionally of one stream (ARN or table) and/or one function (Lambda ListEventSourceMappings).';

CREATE FUNCTION streams.delete_event_source_mapping(uuid uuid) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m streams.event_source_mapping := streams._find_esm(uuid);
BEGIN
    PERFORM streams._check_esm_owner(m);
    DELETE FROM streams.event_source_mapping e WHERE e.mapping_id = m.mapping_id;
    m.state := 'Deleting';
    m.state_reason := 'User action';
    PERFORM streams._mappings_changed();
    RETURN streams._esm_doc(m);
END $$;
COMMENT ON FUNCTION streams.delete_event_source_mapping(uuid) IS
    'Deletes a mapping (Lambda DeleteEventSourceMapping); its dispatcher stops at the end of the current batch.';
