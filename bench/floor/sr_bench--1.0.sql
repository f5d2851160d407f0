\echo Use "CREATE EXTENSION sr_bench" to load this file. \quit
CREATE FUNCTION bench_rusage(OUT user_us bigint, OUT system_us bigint, OUT max_rss_kb bigint)
RETURNS record AS 'MODULE_PATHNAME', 'bench_rusage' LANGUAGE C VOLATILE;
CREATE FUNCTION bench_floor_stats(OUT start_cpu_us bigint, OUT session_cpu_us bigint)
RETURNS record AS 'MODULE_PATHNAME', 'bench_floor_stats' LANGUAGE C VOLATILE;
CREATE FUNCTION emit_bench(rel regclass, records int, format text, kind text, batch_bytes int DEFAULT 0,
                           OUT cpu_ns_per_record float8, OUT bytes_per_record float8)
RETURNS record AS 'MODULE_PATHNAME', 'emit_bench' LANGUAGE C VOLATILE;
