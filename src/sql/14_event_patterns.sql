--------------------------------------------------------------------------
-- Event patterns (FilterCriteria, EventBridge's TestEventPattern)
--------------------------------------------------------------------------

CREATE FUNCTION streams.test_event_pattern(pattern text, event text) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgs_test_event_pattern';
COMMENT ON FUNCTION streams.test_event_pattern(text, text) IS
    'TestEventPattern: whether an event (a JSON object) matches an event pattern, as a FilterCriteria pattern of an event source mapping decides. An invalid pattern raises "Invalid filter pattern definition." (22023), as create_event_source_mapping does.';
GRANT EXECUTE ON FUNCTION streams.test_event_pattern(text, text) TO PUBLIC;

-- NULL when the pattern is valid, else what is wrong and where (the HINT of
-- "Invalid filter pattern definition.").
CREATE FUNCTION streams._filter_pattern_error(pattern text) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgs_filter_pattern_error';
