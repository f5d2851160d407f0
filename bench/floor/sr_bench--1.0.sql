\echo Use "CREATE EXTENSION sr_bench" to load this file. \quit
CREATE FUNCTION bench_rusage(OUT user_us bigint, OUT system_us bigint, OUT max_rss_kb bigint)
RETURNS record AS 'MODULE_PATHNAME', 'bench_rusage' LANGUAGE C VOLATILE;
