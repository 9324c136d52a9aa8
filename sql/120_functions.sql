-- Targets (Lambda CreateFunction, GetFunction, ListFunctions,
-- UpdateFunctionConfiguration, DeleteFunction) for SQL handlers: response
-- shape, defaults, every validation error and ownership. Errors are shown by
-- pgs_try as "SQLSTATE DETAIL: message" (DETAIL names the AWS exception).
-- LastModified and Owner vary from run to run: they are checked, then left out.

-- A function document without the varying keys.
CREATE FUNCTION fn_doc(doc jsonb) RETURNS text
LANGUAGE sql AS $$ SELECT jsonb_pretty(doc - 'LastModified' - 'Owner') $$;

-- Handlers: the three accepted return types, and wrong ones.
CREATE FUNCTION fn_h_jsonb(event jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT NULL::jsonb $$;
CREATE FUNCTION fn_h_json(event jsonb) RETURNS json LANGUAGE sql AS $$ SELECT NULL::json $$;
CREATE FUNCTION fn_h_void(event jsonb) RETURNS void LANGUAGE sql AS $$ SELECT $$;
CREATE FUNCTION fn_h_text(event jsonb) RETURNS text LANGUAGE sql AS $$ SELECT NULL::text $$;
CREATE FUNCTION fn_h_json_arg(event json) RETURNS jsonb LANGUAGE sql AS $$ SELECT NULL::jsonb $$;
CREATE FUNCTION fn_h_two_args(event jsonb, n int) RETURNS jsonb LANGUAGE sql AS $$ SELECT NULL::jsonb $$;
CREATE FUNCTION fn_h_no_args() RETURNS jsonb LANGUAGE sql AS $$ SELECT NULL::jsonb $$;
CREATE FUNCTION fn_h_setof(event jsonb) RETURNS SETOF jsonb LANGUAGE sql AS $$ SELECT NULL::jsonb $$;
CREATE PROCEDURE fn_h_proc(event jsonb) LANGUAGE sql AS $$ SELECT 1 $$;
CREATE AGGREGATE fn_h_agg(jsonb) (SFUNC = jsonb_concat, STYPE = jsonb);
CREATE FUNCTION fn_h_dropped(event jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT NULL::jsonb $$;
CREATE FUNCTION fn_h_private(event jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT NULL::jsonb $$;
REVOKE EXECUTE ON FUNCTION fn_h_private(jsonb) FROM PUBLIC;

-- Nothing registered yet.
SELECT streams.list_functions();

-- create_function: the defaults (Timeout 3, empty Description).
SELECT streams.create_function('fn-a', 'fn_h_jsonb(jsonb)') AS doc \gset
SELECT fn_doc(:'doc');
SELECT array_agg(k ORDER BY k) AS keys FROM jsonb_object_keys(:'doc'::jsonb) AS k;
SELECT :'doc'::jsonb->>'LastModified' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$' AS last_modified_format,
       abs(extract(epoch FROM (:'doc'::jsonb->>'LastModified')::timestamptz - now())) < 60 AS last_modified_now,
       :'doc'::jsonb->>'Owner' = current_user AS owner_is_caller;
-- Every argument; json and void handlers; the largest timeout and the
-- longest name; names and ARNs.
SELECT fn_doc(streams.create_function('fn_B', 'fn_h_json(jsonb)', 900, 'returns json'));
SELECT fn_doc(streams.create_function(function_name => 'fn_void', handler => 'fn_h_void(jsonb)', timeout => 1,
                                      description => NULL));
SELECT streams.create_function(repeat('x', 62) || '-9', 'fn_h_jsonb(jsonb)')->>'FunctionName' AS longest_name;

-- get_function: by name, by ARN, by ARN with :$LATEST.
SELECT jsonb_object_keys(streams.get_function('fn-a')) AS get_keys;
SELECT fn_doc(streams.get_function('fn-a')->'Configuration');
SELECT streams.get_function('arn:aws:lambda:us-east-1:000000000000:function:fn_B')->'Configuration'->>'FunctionName' AS by_arn;
SELECT streams.get_function('arn:aws:lambda:us-east-1:000000000000:function:fn_B:$LATEST')->'Configuration'->>'FunctionName' AS by_arn_latest;
SELECT (streams.get_function('fn-a')->'Configuration') - 'LastModified' = :'doc'::jsonb - 'LastModified' AS get_equals_create;

-- list_functions: every function, by name.
SELECT f->>'FunctionName' AS name, f->>'Timeout' AS timeout, f->>'Handler' AS handler, f->>'State' AS state
FROM jsonb_array_elements(streams.list_functions()->'Functions') AS f;
SELECT jsonb_object_keys(streams.list_functions()) AS list_keys;

-- create_function errors.
SELECT pgs_try($$SELECT streams.create_function(NULL, 'fn_h_jsonb(jsonb)')$$) AS null_name;
SELECT pgs_try($$SELECT streams.create_function('', 'fn_h_jsonb(jsonb)')$$) AS empty_name;
SELECT pgs_try($$SELECT streams.create_function('has space', 'fn_h_jsonb(jsonb)')$$) AS bad_name;
SELECT pgs_try($$SELECT streams.create_function('a:b', 'fn_h_jsonb(jsonb)')$$) AS colon_name;
SELECT pgs_try($$SELECT streams.create_function('fn.dot', 'fn_h_jsonb(jsonb)')$$) AS dot_name;
SELECT pgs_try($$SELECT streams.create_function('é', 'fn_h_jsonb(jsonb)')$$) AS non_ascii_name;
SELECT pgs_try(format('SELECT streams.create_function(%L, %L)', repeat('x', 65), 'fn_h_jsonb(jsonb)')) AS name_65;
SELECT pgs_try($$SELECT streams.create_function('fn-t', 'fn_h_jsonb(jsonb)', 0)$$) AS timeout_0;
SELECT pgs_try($$SELECT streams.create_function('fn-t', 'fn_h_jsonb(jsonb)', 901)$$) AS timeout_901;
SELECT pgs_try($$SELECT streams.create_function('fn-t', 'fn_h_jsonb(jsonb)', -1)$$) AS timeout_negative;
SELECT pgs_try($$SELECT streams.create_function('fn-t', NULL)$$) AS null_handler;
SELECT pgs_try($$SELECT streams.create_function('fn-t', 'fn_h_text(jsonb)')$$) AS returns_text;
SELECT streams.create_function('fn-json', 'fn_h_json_arg(json)')->>'Handler' AS takes_json;
SELECT streams.delete_function('fn-json');
SELECT pgs_try($$SELECT streams.create_function('fn-t', 0::regprocedure)$$) AS oid_zero;
SELECT pgs_try($$SELECT streams.create_function('fn-t', 4294967295::oid::regprocedure)$$) AS no_such_oid;
SELECT pgs_try($$SELECT streams.create_function('fn-t', 'fn_h_two_args(jsonb, int)')$$) AS two_args;
SELECT pgs_try($$SELECT streams.create_function('fn-t', 'fn_h_no_args()')$$) AS no_args;
SELECT pgs_try($$SELECT streams.create_function('fn-t', 'fn_h_setof(jsonb)')$$) AS returns_set;
SELECT pgs_try($$SELECT streams.create_function('fn-t', 'fn_h_proc(jsonb)')$$) AS procedure;
SELECT pgs_try($$SELECT streams.create_function('fn-t', 'fn_h_agg(jsonb)')$$) AS aggregate;
SELECT pgs_try($$SELECT streams.create_function('fn-t', 'fn_h_nosuch(jsonb)')$$) AS no_such_handler;
SELECT pgs_try($$SELECT streams.create_function('fn-t', 'fn_h_jsonb(jsonb)', NULL)$$) AS timeout_null;
SELECT pgs_try($$SELECT streams.create_function('fn-a', 'fn_h_json(jsonb)')$$) AS duplicate_name;
-- None of them registered anything.
SELECT string_agg(f->>'FunctionName', ', ' ORDER BY f->>'FunctionName') AS registered
FROM jsonb_array_elements(streams.list_functions()->'Functions') AS f;
-- Names are case-sensitive, as on AWS: 'FN-A' is another function.
SELECT streams.create_function('FN-A', 'fn_h_json(jsonb)')->>'FunctionArn' AS other_case;
SELECT streams.delete_function('FN-A');
SELECT streams.get_function('fn-a')->'Configuration'->>'Handler' AS fn_a_unchanged;

-- get_function, delete_function, update_function_configuration of an unknown function.
SELECT pgs_try($$SELECT streams.get_function('nosuch')$$) AS get_unknown;
SELECT pgs_try($$SELECT streams.get_function('arn:aws:lambda:us-east-1:000000000000:function:nosuch')$$) AS get_unknown_arn;
SELECT pgs_try($$SELECT streams.get_function(NULL)$$) AS get_null;
SELECT pgs_try($$SELECT streams.delete_function('nosuch')$$) AS delete_unknown;
SELECT pgs_try($$SELECT streams.update_function_configuration('nosuch', '{"Timeout": 5}')$$) AS update_unknown;

-- update_function_configuration.
SELECT fn_doc(streams.update_function_configuration('fn-a', '{"Timeout": 30, "Description": "thirty"}'));
SELECT fn_doc(streams.update_function_configuration('arn:aws:lambda:us-east-1:000000000000:function:fn-a', '{"Description": ""}'));
SELECT fn_doc(streams.update_function_configuration('fn-a', '{}'));
SELECT (streams.get_function('fn-a')->'Configuration'->>'LastModified')::timestamptz
       > (:'doc'::jsonb->>'LastModified')::timestamptz AS last_modified_advanced;
SELECT pgs_try($$SELECT streams.update_function_configuration('fn-a', '{"Timeout": 0}')$$) AS timeout_0;
SELECT pgs_try($$SELECT streams.update_function_configuration('fn-a', '{"Timeout": 901}')$$) AS timeout_901;
SELECT pgs_try($$SELECT streams.update_function_configuration('fn-a', '{"Timeout": -1}')$$) AS timeout_negative;
SELECT pgs_try($$SELECT streams.update_function_configuration('fn-a', '{"Timeout": "10"}')$$) AS timeout_string;
SELECT pgs_try($$SELECT streams.update_function_configuration('fn-a', '{"Timeout": 1.5}')$$) AS timeout_fraction;
SELECT pgs_try($$SELECT streams.update_function_configuration('fn-a', '{"Timeout": null}')$$) AS timeout_null;
SELECT pgs_try($$SELECT streams.update_function_configuration('fn-a', '{"Description": 5}')$$) AS description_number;
SELECT pgs_try($$SELECT streams.update_function_configuration('fn-a', '{"Handler": "fn_h_json(jsonb)"}')$$) AS handler_key;
SELECT pgs_try($$SELECT streams.update_function_configuration('fn-a', '{"timeout": 5}')$$) AS lowercase_key;
SELECT pgs_try($$SELECT streams.update_function_configuration('fn-a', '[]')$$) AS not_an_object;
SELECT pgs_try($$SELECT streams.update_function_configuration('fn-a', NULL)$$) AS null_request;
-- The failed updates changed nothing.
SELECT fn_doc(streams.get_function('fn-a')->'Configuration');

-- State: Failed once the handler is gone.
SELECT streams.create_function('fn-dropped', 'fn_h_dropped(jsonb)')->>'State' AS state_before;
DROP FUNCTION fn_h_dropped(jsonb);
SELECT streams.get_function('fn-dropped')->'Configuration'->>'State' AS state_after;

-- Ownership: another role may read, may register its own functions (with a
-- handler it may execute), and may not change or delete others' functions.
CREATE ROLE regress_fn_other;
SET ROLE regress_fn_other;
SELECT streams.get_function('fn-a')->'Configuration'->>'FunctionName' AS other_get;
SELECT jsonb_array_length(streams.list_functions()->'Functions') AS other_list;
SELECT pgs_try($$SELECT streams.update_function_configuration('fn-a', '{"Timeout": 5}')$$) AS other_update;
SELECT pgs_try($$SELECT streams.delete_function('fn-a')$$) AS other_delete;
SELECT pgs_try($$SELECT streams.create_function('fn-private', 'fn_h_private(jsonb)')$$) AS other_no_execute;
SELECT fn_doc(streams.create_function('fn-other', 'fn_h_jsonb(jsonb)', 5));
SELECT streams.get_function('fn-other')->'Configuration'->>'Owner' AS owner;
SELECT fn_doc(streams.update_function_configuration('fn-other', '{"Timeout": 6}'));
SELECT pgs_try($$SELECT streams._function_arn('x')$$) AS internal_helper;
-- The tables are readable (pg_dump reads them as the role that runs it), but
-- a role sees its own functions only, and no secrets.
SELECT array_agg(function_name ORDER BY function_name) AS function_rows_seen FROM streams.function;
SELECT count(*) AS secret_rows_seen FROM streams.function_secret;
RESET ROLE;
SELECT streams.get_function('fn-a')->'Configuration'->>'Timeout' AS timeout_unchanged;
-- A superuser may change and delete anyone's function.
SELECT streams.update_function_configuration('fn-other', '{"Description": "by superuser"}')->>'Description' AS description;
SELECT streams.delete_function('fn-other');

-- delete_function: by name and by ARN; then it is gone.
SELECT streams.delete_function('fn-a');
SELECT streams.delete_function('arn:aws:lambda:us-east-1:000000000000:function:fn_B');
SELECT pgs_try($$SELECT streams.get_function('fn-a')$$) AS get_deleted;
SELECT pgs_try($$SELECT streams.delete_function('fn-a')$$) AS delete_deleted;
-- A name can be registered again after deletion.
SELECT streams.create_function('fn-a', 'fn_h_void(jsonb)')->>'Handler' AS recreated;

-- Clean up: no functions, roles or handlers left for later files.
SELECT streams.delete_function(f->>'FunctionName')
FROM jsonb_array_elements(streams.list_functions()->'Functions') AS f;
SELECT streams.list_functions();
DROP ROLE regress_fn_other;
DROP FUNCTION fn_doc(jsonb), fn_h_jsonb(jsonb), fn_h_json(jsonb), fn_h_void(jsonb), fn_h_text(jsonb),
    fn_h_json_arg(json), fn_h_two_args(jsonb, int), fn_h_no_args(), fn_h_setof(jsonb), fn_h_private(jsonb);
DROP PROCEDURE fn_h_proc(jsonb);
DROP AGGREGATE fn_h_agg(jsonb);
