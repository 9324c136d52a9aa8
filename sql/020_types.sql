-- PostgreSQL values as DynamoDB attribute values: text-like -> S; integers,
-- numeric, floats -> N in DynamoDB's canonical text (plain digits, no
-- exponent, no leading or trailing zeros, no -0), unless DynamoDB cannot hold
-- the number (then S with PostgreSQL's text); bool -> BOOL; bytea -> B (base64); NULL -> NULL;
-- json/jsonb -> M/L/scalars; arrays -> L; composites -> M; everything else
-- -> S through the type's output function.
--
-- The plugin formats values in the decoding session: fix the settings that
-- change the text of dates, times and floats.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
SET extra_float_digits = 1;

CREATE EXTENSION citext;
CREATE TYPE ty_mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE ty_point AS (x int, label text);
CREATE TYPE ty_box AS (corner ty_point, tags text[], extra jsonb);
CREATE DOMAIN ty_posint AS int CHECK (VALUE > 0);
CREATE DOMAIN ty_code AS varchar(5);

CREATE TABLE ty (
    id int PRIMARY KEY,
    c_text text, c_varchar varchar(10), c_char char(4), c_name name, c_citext citext,
    c_int2 int2, c_int4 int4, c_int8 int8, c_oid oid, c_numeric numeric, c_float4 float4, c_float8 float8,
    c_bool bool, c_bytea bytea, c_json json, c_jsonb jsonb,
    c_int_arr int[], c_text_arr text[], c_comp ty_point, c_nested ty_box, c_comp_arr ty_point[],
    c_enum ty_mood, c_date date, c_time time, c_timetz timetz, c_ts timestamp, c_tstz timestamptz,
    c_interval interval, c_inet inet, c_cidr cidr, c_uuid uuid, c_dom_int ty_posint, c_dom_text ty_code,
    c_range int4range, c_bit bit(4)
);
SELECT pgs_mask(streams.enable_stream('ty', 'NEW_IMAGE', 1)::text);
SELECT 'init' FROM pg_create_logical_replication_slot('regress_slot', 'pg_streams');

-- One row with every column set.
INSERT INTO ty VALUES (1,
    'hello', 'varchar', 'ab', 'a_name', 'CiText',
    -32768, 2147483647, -9223372036854775808, 4294967295, 123.4500, 1.5, -0.1,
    true, '\xdeadbeef', '{"b": [1, "two", null, false], "a": {"c": 2.50}}', '{"z": [], "y": {}, "x": -1e3}',
    '{1,NULL,3}', '{{a,NULL},{c,d}}', '(7,seven)', '("(1,one)","{p,q}","{""k"": true}")', '{"(1,a)","(2,)",NULL}',
    'happy', '2024-02-29', '13:14:15.5', '13:14:15+02', '2024-02-29 13:14:15.123456', '2024-02-29 13:14:15+02',
    '1 year 2 mons 3 days 04:05:06.5', '192.168.0.1/24', '10.0.0.0/8', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 5, 'ABC',
    '[1,10)', B'1010');
-- All NULL but the key.
INSERT INTO ty (id) VALUES (2);
-- Text: JSON escapes and UTF-8.
INSERT INTO ty (id, c_text, c_varchar, c_char) VALUES
    (10, E'quote " backslash \\ newline \n tab \t bell \x07 end', 'é€😀', ''),
    (11, '', NULL, 'x');
-- Numbers DynamoDB holds (N), and those it does not (S).
INSERT INTO ty (id, c_numeric) VALUES
    (20, 'NaN'), (21, 'Infinity'), (22, '-Infinity'),
    (23, 1234567890123456789012345678901234567890),      -- 40 significant digits
    (24, 12345678901234567890123456789012345678),        -- 38: the most DynamoDB keeps
    (25, 1.23456789012345678901234567890123456789),      -- 39 significant digits
    (26, 12345678901234567890123456789012345678000),     -- 38 significant digits, then zeros
    (27, 0), (28, -0.000), (29, -123.4500),
    (30, 1e-130), (31, 1e-131), (32, 9.99e125), (33, 1e126),
    (34, 1.5000000000000000000000000000000000000000),    -- 41 digits typed, 2 significant
    (35, 0.0000), (36, 00100.10);
INSERT INTO ty (id, c_float4, c_float8) VALUES
    (40, 'NaN', 'NaN'), (41, 'Infinity', 'Infinity'), (42, '-Infinity', '-Infinity'),
    (43, 3.4e38, 1e300), (44, 1e-40, 1e-300), (45, -0.25, 1.7976931348623157e308), (46, 0, 0.1),
    -- Shortest round-trip digits, written out without an exponent.
    (47, 1e16, 1.5e20), (48, -1.5e-07, 9.007199254740992e15), (49, '-0', '-0');
-- json and jsonb: objects -> M, arrays -> L, scalars -> S/N/BOOL/NULL.
INSERT INTO ty (id, c_json, c_jsonb) VALUES
    (50, '"a string"', '"a string"'),
    (51, '42', '-0.5'),
    (52, 'true', 'false'),
    (53, 'null', 'null'),
    (54, '[]', '{}'),
    (55, '[[1, [2, [3]]], {"k": [{"deep": {"deeper": null}}]}]', '[[1, [2, [3]]], {"k": [{"deep": {"deeper": null}}]}]'),
    (56, '{"dup": 1, "dup": 2}', '{"ключ": "значение", "": "empty key"}'),
    (57, '{"big": 1e200, "nan": "NaN", "long": 1234567890123456789012345678901234567890}', '[1e-131, 1e125]'),
    -- json keeps what jsonb cannot (a NUL character): the value is kept as text.
    (58, '{"nul": "\u0000"}', '{"esc": "\u00e9\n"}'),
    -- Numbers in documents are canonical too.
    (90, '[1.50, -0.0, 1e2, 2.5e-3]', '{"n": [1.50, -0.0, 1e2, 2.5e-3, 0.000]}');
-- Deep nesting is kept whole (checked below).
INSERT INTO ty (id, c_json, c_jsonb) VALUES
    (59, (repeat('[', 300) || '1' || repeat(']', 300))::json, (repeat('{"k": ', 300) || 'true' || repeat('}', 300))::jsonb);
-- Arrays -> L, one level per dimension, NULL elements -> NULL.
INSERT INTO ty (id, c_int_arr, c_text_arr) VALUES
    (60, '{}', '{}'),
    (61, '{NULL}', '{NULL,NULL}'),
    (62, '[2:3]={7,8}', '{{{a,b}},{{c,NULL}}}'),
    (63, '{{1,2,3},{4,5,6}}', '{"with \"quote\"", "with,comma"}');
-- Composites -> M; NULL fields -> NULL; nested composites and arrays of them.
INSERT INTO ty (id, c_comp, c_nested, c_comp_arr) VALUES
    (70, '(,)', '(,,)', '{}'),
    (71, '(-1,"")', '("(2,two)",{},"[1, {\"a\": null}]")', '{{"(1,x)"},{"(2,y)"}}');
-- Other types -> S with their output text.
INSERT INTO ty (id, c_date, c_ts, c_tstz, c_interval, c_inet, c_range, c_enum) VALUES
    (80, 'infinity', '-infinity', 'infinity', '-1 day', '::1', 'empty', 'sad');

CREATE TEMP TABLE rec AS
SELECT c.n, c.data, c.data::jsonb AS r FROM pg_logical_slot_get_changes('regress_slot', NULL, NULL) WITH ORDINALITY AS c(lsn, xid, data, n);

-- The full records of the first rows, as text.
SELECT pgs_mask(data) FROM rec WHERE (r->'dynamodb'->'Keys'->'id'->>'N')::int IN (1, 2, 10, 58) ORDER BY n;

-- Every non-NULL attribute (and the json nulls of row 53), with its size by
-- the rules. pgs_short shows long runs of zeros as 0{count}.
SELECT (r->'dynamodb'->'Keys'->'id'->>'N')::int AS id, e.key AS attribute, pgs_short(e.value::text) AS value,
       pgs_value_size(e.value) AS size
FROM rec, jsonb_each(r->'dynamodb'->'NewImage') AS e
WHERE e.key <> 'id' AND r->'dynamodb'->'Keys'->'id'->>'N' <> '59'
  AND (e.value <> '{"NULL": true}' OR r->'dynamodb'->'Keys'->'id'->>'N' = '53' AND e.key LIKE 'c\_json%')
ORDER BY 1, 2;

-- 300 levels: L = 3 + (N 1 + 1) = 6 at the bottom, + 4 per level;
-- M = 3 + (key 1 + BOOL 1 + 1) = 6 at the bottom, + 5 per level.
SELECT (length(c) - length(replace(c, '{"L":[', ''))) / 6 AS json_levels, pgs_value_size(r->'dynamodb'->'NewImage'->'c_json') AS json_size,
       (length(b) - length(replace(b, '{"M":{"k":', ''))) / 10 AS jsonb_levels, pgs_value_size(r->'dynamodb'->'NewImage'->'c_jsonb') AS jsonb_size,
       c ~ '^\{"L":\[(\{"L":\[)+\{"N":"1"\}(\]\})+$' AS json_shape, b ~ '^\{"M":\{"k":(\{"M":\{"k":)+\{"BOOL":true\}(\}\})+$' AS jsonb_shape
FROM rec, substring(data FROM '"c_json":(\{.*\}),"c_jsonb":') AS c, substring(data FROM '"c_jsonb":(\{.*\}),"c_int_arr":') AS b
WHERE r->'dynamodb'->'Keys'->'id'->>'N' = '59';

-- Every record: all columns present, keys in column order, SizeBytes by the rules.
SELECT count(*) AS records,
       bool_and((SELECT array_agg(k) FROM jsonb_object_keys(r->'dynamodb'->'NewImage') AS k) @>
                (SELECT array_agg(attname::text) FROM pg_attribute WHERE attrelid = 'ty'::regclass AND attnum > 0)) AS all_columns,
       bool_and(data ~ '"NewImage":\{"id":\{"N":"[0-9]+"\},"c_text":.*,"c_range":\{[^}]*\},"c_bit":\{[^}]*\}\},"SequenceNumber"') AS column_order,
       bool_and((r->'dynamodb'->>'SizeBytes')::int = pgs_record_size(r)) AS sizes_match
FROM rec;

-- Every N of every record is DynamoDB's canonical number text.
SELECT count(*) AS numbers,
       count(*) FILTER (WHERE v !~ '^-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?$' OR v = '-0'
                          OR length(regexp_replace(v, '^-?[0.]*|0*$|\.', '', 'g')) > 38) AS not_canonical
FROM (SELECT j.num #>> '{}' AS v FROM rec, jsonb_path_query(r, 'strict $.**.N') AS j(num)
      WHERE jsonb_typeof(j.num) = 'string') AS numbers;

-- A domain over a type that is itself mapped (domain over jsonb, array of a domain).
CREATE DOMAIN ty_doc AS jsonb CHECK (jsonb_typeof(VALUE) = 'object');
CREATE TABLE ty2 (id int PRIMARY KEY, doc ty_doc, codes ty_code[], fs float8[]);
SELECT pgs_mask(streams.enable_stream('ty2', 'NEW_IMAGE', 1)::text);
INSERT INTO ty2 VALUES (1, '{"a": [true]}', '{x,NULL}', '{1e16,-0,NaN,-1.5e-7}');
SELECT pgs_changes('regress_slot');

SELECT pg_drop_replication_slot('regress_slot');
RESET timezone;
RESET datestyle;
RESET intervalstyle;
RESET extra_float_digits;
