-- streams.test_event_pattern: every vector of test/data/event-patterns.jsonl
-- (a copy of shared/testdata/event-patterns.jsonl), then the errors.

-- The vectors, one JSON object a line (Python wrote Infinity for 2.0e422 in
-- two "pattern" values; those vectors carry pattern_text).
CREATE TEMP TABLE ep AS
SELECT n, regexp_replace(line, ', Infinity\]', ', null]', 'g')::jsonb AS v
FROM unnest(string_to_array(rtrim(pg_read_file('../../test/data/event-patterns.jsonl'), E'\n'), E'\n'))
     WITH ORDINALITY AS l(line, n);

CREATE FUNCTION pg_temp.verdict(pattern text, event text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF event IS NULL THEN
        -- An invalid pattern is refused whatever the event.
        event := '{}';
    END IF;
    RETURN CASE WHEN streams.test_event_pattern(pattern, event) THEN 'match' ELSE 'no match' END;
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN 'invalid';
END $$;

CREATE TEMP TABLE results AS
SELECT n, v->>'name' AS name,
       CASE WHEN (v->>'invalid')::boolean THEN 'invalid'
            WHEN (v->>'match')::boolean THEN 'match' ELSE 'no match' END AS expected,
       pg_temp.verdict(coalesce(v->>'pattern_text', (v->'pattern')::text),
                       coalesce(v->>'event_text', (v->'event')::text)) AS got
FROM ep;

SELECT count(*) AS vectors, count(*) FILTER (WHERE expected = got) AS as_expected FROM results;
SELECT expected, count(*) FROM results GROUP BY expected ORDER BY expected;
-- Mismatches (none expected).
SELECT n, name, expected, got FROM results WHERE expected IS DISTINCT FROM got ORDER BY n;

-- DynamoDB records: typed values, N values are strings, numeric on
-- ApproximateCreationDateTime, top-level fields.
\set rec '{"eventID":"1","eventName":"MODIFY","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"us-east-1","dynamodb":{"ApproximateCreationDateTime":1795341393.0,"Keys":{"id":{"N":"101"}},"NewImage":{"id":{"N":"101"},"status":{"S":"PAID"}},"OldImage":{"id":{"N":"101"},"status":{"S":"NEW"}},"SequenceNumber":"1","SizeBytes":52,"StreamViewType":"NEW_AND_OLD_IMAGES"},"eventSourceARN":"arn:aws:dynamodb:us-east-1:000000000000:table/public.t/stream/x"}'
SELECT p AS pattern, streams.test_event_pattern(p, :'rec') AS matches
FROM (VALUES ('{"eventName":["MODIFY"],"dynamodb":{"NewImage":{"status":{"S":["PAID"]}},"OldImage":{"status":{"S":[{"anything-but":["PAID"]}]}}}}'),
             ('{"dynamodb":{"NewImage":{"status":["PAID"]}}}'),
             ('{"dynamodb":{"Keys":{"id":{"N":["101"]}}}}'),
             ('{"dynamodb":{"Keys":{"id":{"N":[101]}}}}'),
             ('{"dynamodb":{"Keys":{"id":{"N":[{"numeric":[">",100]}]}}}}'),
             ('{"dynamodb":{"ApproximateCreationDateTime":[{"numeric":[">",0]}]}}'),
             ('{"eventSource":["aws:dynamodb"],"eventSourceARN":[{"suffix":"/stream/x"}]}'),
             ('{"dynamodb.NewImage.status.S":[{"prefix":{"equals-ignore-case":"pa"}}]}'),
             ('{"$or":[{"eventName":["INSERT"]},{"dynamodb":{"OldImage":{"status":{"S":["NEW"]}}}}]}')) AS t(p);

-- Errors: SQLSTATE, DETAIL (the AWS exception), message and HINT.
CREATE FUNCTION pg_temp.err(pattern text, event text DEFAULT '{}') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    state text; msg text; detail text; hint text;
BEGIN
    PERFORM streams.test_event_pattern(pattern, event);
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL,
                            hint = PG_EXCEPTION_HINT;
    RETURN format('%s %s: %s (%s)', state, detail, msg, hint);
END $$;
SELECT pg_temp.err(p) AS error
FROM (VALUES ('{"eventName":"INSERT"}'), ('"single-string"'), ('null'), ('[{"eventName": ["INSERT"]}]'), (''),
             ('[{"eventName": ["INSERT"=123}]'), ('{"eventSource":[]}'), ('{}'), ('{"a":{}}'),
             ('{"a":[{"wildcard":"x**y"}]}'), ('{"a":[{"wildcard":"x\\y"}]}'),
             ('{"a":[{"numeric":["=",1e400]}]}'), ('{"a":[{"numeric":[">",5,"<",5]}]}'),
             ('{"a":[{"numeric":["<",1,">",0]}]}'), ('{"$or":[{"a":["x"]}]}'), ('{"d":{"$or":[{"a":["x"]},["y"]]}}'),
             ('{"a":[{"EXISTS":true}]}'), ('{"a":[{"exists":"yes"}]}'), ('{"a":[{"prefix":["x"]}]}'),
             ('{"a":[{"anything-but":["x",1]}]}'), ('{"a":[{"anything-but":{"prefix":""}}]}'),
             ('{"a":[{"cidr":"10.0.0.0/33"}]}'), ('{"a":[{"prefix":"x","suffix":"y"}]}')
     ) AS t(p);
-- 10 $or of 2 branches: 1024 combinations.
SELECT pg_temp.err('{' || string_agg(format('"k%s": {"$or": [{"a": ["1"]}, {"b": ["2"]}]}', i), ', ') || '}') AS or_1024
FROM generate_series(0, 9) i;
SELECT pg_temp.err('{' || string_agg(format('"k%s": {"$or": [{"a": ["1"]}, {"b": ["2"]}]}', i), ', ') || '}') AS or_512
FROM generate_series(0, 8) i;
-- Deep nesting and huge input are errors, not crashes.
SELECT pg_temp.err('{"a":' || repeat('[', 1000) || '"x"' || repeat(']', 1000) || '}') AS deep_pattern;
SELECT pg_temp.err('{"a":' || repeat('[', 100000) || '"x"' || repeat(']', 100000) || '}') AS huge_pattern;
SELECT pg_temp.err('{"a":["x"]}', '{"b":' || repeat('[', 100000) || repeat(']', 100000) || '}') AS deep_event;
SELECT pg_temp.err('{"a":["x"]}', '{"a":') AS truncated_event;
SELECT pg_temp.err('{"a":["x"]}', '["x"]') AS event_not_an_object;
SELECT streams.test_event_pattern(NULL, '{}') IS NULL AS null_in_null_out;

-- Every role may call it; it is IMMUTABLE and PARALLEL SAFE.
SELECT p.provolatile, p.proparallel, has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
FROM pg_proc p WHERE p.oid = 'streams.test_event_pattern(text, text)'::regprocedure;
