-- shape_router 0.1: catalog, SQL API, and the DDL guard.
\echo Use "CREATE EXTENSION shape_router" to load this file. \quit

-- Shape ids come from here; the functions below take them with the owner's rights.
CREATE SEQUENCE shape_router.shape_id_seq;

-- The catalog the output plugin reads through the historic snapshot, hence
-- user_catalog_table. Column order is fixed: src/pg/shape_router_pg.h names it.
-- Only the functions of this extension write it (nobody else holds a privilege).
CREATE TABLE shape_router.shape_catalog (
    shape_id      bigint       NOT NULL,
    relid         oid          NOT NULL,
    where_columns int2[]       NOT NULL,  -- attnums the WHERE reads (sorted)
    columns       int2[],                 -- projected attnums (sorted); NULL: all columns
    created_at    timestamptz  NOT NULL,
    registered_by oid          NOT NULL,
    program       bytea,                  -- compiled WHERE for the core's VM; NULL: every row
    fallback_exprs pg_node_tree,          -- planned sub-expressions the VM hands to the executor
    -- the WHERE's cover: {alternatives, atoms of each, then key and attnum * 256 + type tag
    -- of each atom}, src/pg/shape_catalog.c; NULL: a scan shape
    index_cover   int8[],
    -- The WHERE itself is where_source, deparsed at registration (NULL: every row), whose
    -- column names map to attnums through where_names (the names of where_columns then, in
    -- the same order): the shapes view and explain_shape analyse it again, naming columns
    -- as they are named now. A major upgrade (pg_upgrade) carries rows over unchanged, but
    -- programs and covers are only read by the major that made them: a row from another
    -- major is rebuilt from its text.
    server_major  integer      NOT NULL,
    where_source  text,
    where_names   text[],
    -- type and collation of each of where_columns when the WHERE was analysed, in pairs: an
    -- ALTER TABLE that changes either is refused (the program was compiled for them)
    where_types   oid[],
    CONSTRAINT shape_catalog_pkey PRIMARY KEY (shape_id)
) WITH (user_catalog_table = true);
CREATE INDEX shape_catalog_relid_idx ON shape_router.shape_catalog (relid);
REVOKE ALL ON shape_router.shape_catalog FROM PUBLIC;

-- The expressions covers are indexed on (expr = c, expr IN (...), expr not a plain
-- column): the decoder evaluates them on each row of relid to key it under the virtual
-- column attnum (4096 and up, a hash of the text). Written at registration, before the
-- shape's row, once per expression; never deleted (an expression no shape's cover uses
-- is not evaluated). Decoded like shape_catalog, hence user_catalog_table.
CREATE TABLE shape_router.index_expressions (
    relid         oid          NOT NULL,
    attnum        int2         NOT NULL,
    expr          text         NOT NULL,  -- nodeToString of the planned expression
    server_major  integer      NOT NULL,  -- other majors' trees are not read
    CONSTRAINT index_expressions_pkey PRIMARY KEY (relid, attnum, expr)
) WITH (user_catalog_table = true);
REVOKE ALL ON shape_router.index_expressions FROM PUBLIC;
-- Every role may call the functions and read the shapes view (they check privileges themselves).
GRANT USAGE ON SCHEMA shape_router TO PUBLIC;
REVOKE ALL ON shape_router.shape_id_seq FROM PUBLIC;

CREATE FUNCTION shape_router.register_shape(relation regclass,
                                            where_clause text DEFAULT NULL,
                                            columns text[] DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'shape_router_register_shape'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION shape_router.register_shapes(relation regclass,
                                             where_clauses text[],
                                             columns text[] DEFAULT NULL)
RETURNS SETOF bigint
AS 'MODULE_PATHNAME', 'shape_router_register_shapes'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION shape_router.drop_shape(shape_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'shape_router_drop_shape'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

-- The shard i of the plugin option shard=i/n that a shape belongs to:
-- SELECT shape_id FROM shape_router.shapes WHERE shape_router.shard_of(shape_id, 3) = 0;
CREATE FUNCTION shape_router.shard_of(shape_id bigint, shards integer)
RETURNS integer
AS 'MODULE_PATHNAME', 'shape_router_shard_of'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Which shapes of the row's table match this row, evaluated by the same code
-- the plugin runs: SELECT shape_router.matching_shapes(t) FROM todos t WHERE id = 1;
CREATE FUNCTION shape_router.matching_shapes(table_row anyelement)
RETURNS SETOF bigint
AS 'MODULE_PATHNAME', 'shape_router_matching_shapes'
LANGUAGE C STABLE STRICT PARALLEL UNSAFE;

-- One shape on one row: 'true', 'false', 'null' or 'error: <message>', by the
-- same program the plugin runs (why does my row not match?).
CREATE FUNCTION shape_router.evaluate_shape(shape_id bigint, table_row anyelement)
RETURNS text
AS 'MODULE_PATHNAME', 'shape_router_evaluate_shape'
LANGUAGE C STABLE STRICT PARALLEL UNSAFE;

-- How a shape is evaluated and indexed, one line per property.
CREATE FUNCTION shape_router.explain_shape(shape_id bigint)
RETURNS SETOF text
AS 'MODULE_PATHNAME', 'shape_router_explain_shape'
LANGUAGE C STABLE STRICT PARALLEL UNSAFE;

-- Funnel counters of the latest decoding session run in this backend
-- (pg_logical_slot_get_changes / peek_changes). Walsenders log theirs instead:
-- see the GUC shape_router.stats_log_level.
CREATE FUNCTION shape_router.decoding_stats(
    OUT changes_seen bigint,
    OUT relation_gate_passes bigint,
    OUT filter_passes bigint,
    OUT mphf_hits bigint,
    OUT gate_evaluations bigint,
    OUT fallback_evaluations bigint,
    OUT records_emitted bigint,
    OUT errors bigint,
    OUT catalog_changes bigint,
    OUT equality_probes bigint,
    OUT range_probes bigint,
    OUT equality_candidates bigint,
    OUT range_candidates bigint,
    OUT composite_candidates bigint,
    OUT null_candidates bigint,
    OUT complement_candidates bigint,
    OUT always_candidates bigint,
    OUT prefix_candidates bigint,
    OUT element_candidates bigint,
    OUT substring_candidates bigint,
    OUT scan_candidates bigint,
    OUT exact_hits bigint,
    OUT shared_evaluations bigint,
    OUT prefetches bigint,
    OUT lane_runs bigint,
    OUT lane_decisions bigint,
    OUT expression_reuses bigint,
    OUT native_expressions bigint,
    OUT prefetched_keys_reused bigint,
    OUT sieved_values bigint,
    OUT shapes_loaded bigint,
    OUT relations_with_shapes bigint,
    OUT index_keys bigint,
    OUT index_bytes bigint,
    OUT index_overlay_keys bigint,
    OUT index_rebuilds bigint,
    OUT index_background_builds bigint,
    OUT index_longest_pause_us bigint,
    OUT index_range_entries bigint,
    OUT lane_shapes bigint,
    OUT lane_forms bigint,
    OUT warm_start boolean,
    OUT start_cpu_us bigint,
    OUT session_cpu_us bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'shape_router_decoding_stats'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- After pg_upgrade to another major: rewrites the shapes made under the old one as
-- this server makes them (they work before, but each decoding session re-analyses
-- them at its start). Returns the number of shapes rewritten.
CREATE FUNCTION shape_router.upgrade_shapes()
RETURNS bigint
AS 'MODULE_PATHNAME', 'shape_router_upgrade_shapes'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION shape_router.upgrade_shapes() FROM PUBLIC;

-- A shape's WHERE as this server reads it: its text analysed again, with the
-- columns' names of now (the shapes view calls it for every shape with a WHERE).
CREATE FUNCTION shape_router.where_clause_of(shape_id bigint)
RETURNS text
AS 'MODULE_PATHNAME', 'shape_router_where_clause_of'
LANGUAGE C STABLE STRICT PARALLEL UNSAFE;

CREATE VIEW shape_router.shapes AS
SELECT c.shape_id,
       c.relid::pg_catalog.regclass AS relation,
       CASE WHEN c.where_source IS NOT NULL THEN shape_router.where_clause_of(c.shape_id) END AS where_clause,
       CASE WHEN c.columns IS NOT NULL THEN
         ARRAY(SELECT a.attname::text
                 FROM pg_catalog.unnest(c.columns) AS u(attnum)
                 JOIN pg_catalog.pg_attribute a
                   ON a.attrelid = c.relid AND a.attnum = u.attnum
                ORDER BY u.attnum)
       END AS columns,
       c.created_at,
       c.registered_by::pg_catalog.regrole AS role
  FROM shape_router.shape_catalog c;
GRANT SELECT ON shape_router.shapes TO PUBLIC;

-- DROP TABLE drops the table's shapes in the same transaction (the plugin sees
-- the catalog deletes in WAL order); dropping a column a shape uses is refused.
CREATE FUNCTION shape_router.on_sql_drop()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'shape_router_on_sql_drop'
LANGUAGE C;

CREATE EVENT TRIGGER shape_router_sql_drop ON sql_drop
    EXECUTE FUNCTION shape_router.on_sql_drop();

-- ALTER TABLE that retypes a column a shape reads, or weakens the replica
-- identity a shape needs, is refused, naming the shapes.
CREATE FUNCTION shape_router.on_ddl_command_end()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'shape_router_on_ddl_command_end'
LANGUAGE C;

CREATE EVENT TRIGGER shape_router_alter_table ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION shape_router.on_ddl_command_end();

-- DROP EXTENSION shape_router is refused while slots of this database use the plugin.
CREATE FUNCTION shape_router.on_ddl_command_start()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'shape_router_on_ddl_command_start'
LANGUAGE C;

CREATE EVENT TRIGGER shape_router_drop_extension ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION')
    EXECUTE FUNCTION shape_router.on_ddl_command_start();
