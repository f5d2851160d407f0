-- Differential test of the bytecode gate against PostgreSQL itself.
-- Random WHERE clauses over every native type plus arrays, jsonb and numeric
-- (fallbacks), on random rows full of NULLs and edge values; each (clause, row)
-- pair's result from shape_router.evaluate_shape (the plugin's program) must equal
-- PostgreSQL's own evaluation of the clause on that row: true / false / null, or
-- the same error. Two seeds per run: a fixed one and one that changes daily.
-- Output is seed-independent unless something mismatches; then each failing pair
-- is printed as SQL to paste into psql.
SET client_min_messages = warning;
CREATE TYPE diff_mood AS ENUM ('sad', 'ok', 'happy');   -- present in rows, never usable in a WHERE
CREATE TABLE diff_t (
  id int PRIMARY KEY, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, n numeric, b bool,
  t text, vc varchar(20), c char(5), d date, ts timestamp, tz timestamptz, u uuid,
  arr int[], j jsonb, mood diff_mood);
ALTER TABLE diff_t ALTER COLUMN t SET STORAGE EXTERNAL;   -- long values are TOASTed out of line
ALTER TABLE diff_t REPLICA IDENTITY FULL;

-- Edge values per column kind, as SQL literals.
CREATE TABLE diff_pool (kind text, lit text);
INSERT INTO diff_pool SELECT 'int', v FROM unnest(ARRAY['0', '1', '-1', '2', '3', '7', '42', '-32768', '32767',
  '2147483647', '-2147483648', '9223372036854775807', '-9223372036854775808', '100000']) v;
INSERT INTO diff_pool SELECT 'float', v FROM unnest(ARRAY['0', '-0', '1.5', '-2.25', '0.1', '1e300', '-1e-300',
  '''NaN''', '''Infinity''', '''-Infinity''', '3', '42']) v;
INSERT INTO diff_pool SELECT 'numeric', v FROM unnest(ARRAY['0', '1.0', '1.00', '-3.5', '12345678901234567890.5',
  '''NaN''', '0.000001', '2']) v;
INSERT INTO diff_pool SELECT 'text', v FROM unnest(ARRAY['''''', '''a''', '''ab''', '''abc''', '''b''', '''B''',
  '''é''', '''☃x''', '''日本''', '''a b''', '''a%b''', '''a_c''', '''a\b''', '''zz''', '''abc   ''']) v;
INSERT INTO diff_pool SELECT 'date', v FROM unnest(ARRAY['''2026-03-08''', '''2026-11-01''', '''2000-02-29''',
  '''infinity''', '''-infinity''', '''1970-01-01''']) v;
INSERT INTO diff_pool SELECT 'ts', v FROM unnest(ARRAY['''2026-03-08 02:30:00''', '''2026-11-01 01:30:00''',
  '''2026-03-08 10:00:00''', '''infinity''', '''-infinity''', '''1999-12-31 23:59:59.999999''']) v;
INSERT INTO diff_pool SELECT 'tz', v FROM unnest(ARRAY['''2026-03-08 02:30:00-08''', '''2026-11-01 01:30:00 PST8PDT''',
  '''2026-11-01 08:30:00+00''', '''infinity''', '''-infinity''', '''2026-03-08 10:00:00+00''']) v;
INSERT INTO diff_pool SELECT 'uuid', v FROM unnest(ARRAY['''00000000-0000-0000-0000-000000000000''',
  '''a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11''', '''ffffffff-ffff-ffff-ffff-ffffffffffff''']) v;

CREATE FUNCTION diff_pick(k text) RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT lit FROM diff_pool WHERE kind = k ORDER BY random() LIMIT 1 $$;

-- One random row; about 30% NULLs.
CREATE FUNCTION diff_row(rid int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v text[];
  kinds text[] := ARRAY['int', 'int', 'int', 'float', 'float', 'numeric', 'bool', 'text', 'text', 'text',
                        'date', 'ts', 'tz', 'uuid', 'arr', 'json', 'mood'];
  k text;
BEGIN
  FOREACH k IN ARRAY kinds LOOP
    IF random() < 0.3 THEN v := v || 'NULL'::text; CONTINUE; END IF;
    v := v || CASE k
      WHEN 'bool' THEN (random() < 0.5)::text
      WHEN 'arr' THEN (ARRAY['''{}''', '''{1,2}''', '''{3,NULL}''', '''{42}'''])[1 + floor(random() * 4)::int]
      WHEN 'json' THEN (ARRAY['''{"a": 1}''', '''{"a": [1, 2], "b": null}''', '''[]''', '''"s"'''])[1 + floor(random() * 4)::int]
      WHEN 'mood' THEN '''ok'''
      WHEN 'text' THEN CASE WHEN random() < 0.05 THEN 'repeat(''abc'', 1500)' ELSE diff_pick('text') END
      ELSE diff_pick(k) END;
  END LOOP;
  -- int literals may not fit the column: keep the row if the cast works
  BEGIN
    EXECUTE format('INSERT INTO diff_t VALUES (%s, (%s)::int2, (%s)::int4, (%s)::int8, (%s)::float4, (%s)::float8, '
                   '(%s)::numeric, %s, (%s)::text, (%s)::varchar(20), (%s)::char(5), (%s)::date, (%s)::timestamp, '
                   '(%s)::timestamptz, (%s)::uuid, (%s)::int[], (%s)::jsonb, (%s)::diff_mood)',
                   rid, v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13],
                   v[14], v[15], v[16], v[17]);
  EXCEPTION WHEN numeric_value_out_of_range OR string_data_right_truncation THEN
    INSERT INTO diff_t (id) VALUES (rid);
  END;
END $$;

-- A random leaf: mostly what the VM runs natively, some fallbacks.
CREATE FUNCTION diff_leaf() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r float8 := random();
  ops text[] := ARRAY['=', '<>', '<', '<=', '>', '>=', 'IS DISTINCT FROM', 'IS NOT DISTINCT FROM'];
  op text := ops[1 + floor(random() * 8)::int];
  icol text := (ARRAY['i2', 'i4', 'i8'])[1 + floor(random() * 3)::int];
  fcol text := (ARRAY['f4', 'f8'])[1 + floor(random() * 2)::int];
  tcol text := (ARRAY['t', 'vc', 'c'])[1 + floor(random() * 3)::int];
  lst text;
BEGIN
  IF r < 0.16 THEN RETURN format('%s %s %s', icol, op, diff_pick('int'));
  ELSIF r < 0.24 THEN RETURN format('%s %s %s', fcol, op, diff_pick('float'));
  ELSIF r < 0.34 THEN RETURN format('%s %s %s', tcol, op, diff_pick('text'));
  ELSIF r < 0.37 THEN RETURN format('%s %s %s COLLATE "C"', tcol, op, diff_pick('text'));
  ELSIF r < 0.41 THEN RETURN format('d %s %s', op, diff_pick('date'));
  ELSIF r < 0.45 THEN RETURN format('ts %s %s', op, diff_pick('ts'));
  ELSIF r < 0.49 THEN RETURN format('tz %s %s', op, diff_pick('tz'));
  ELSIF r < 0.51 THEN RETURN format('u %s %s', op, diff_pick('uuid'));
  ELSIF r < 0.55 THEN RETURN format('%s %s %s', icol, op, (ARRAY['i2', 'i4', 'i8'])[1 + floor(random() * 3)::int]);
  ELSIF r < 0.57 THEN RETURN format('%s %s %s', fcol, op, (ARRAY['f4', 'f8'])[1 + floor(random() * 2)::int]);
  ELSIF r < 0.59 THEN RETURN format('t %s vc', op);
  ELSIF r < 0.65 THEN
    SELECT string_agg(CASE WHEN random() < 0.1 THEN 'NULL' ELSE diff_pick('int') END, ', ') INTO lst
      FROM generate_series(1, 1 + floor(random() * 6)::int);
    RETURN format('%s %s (%s)', icol, CASE WHEN random() < 0.5 THEN 'IN' ELSE 'NOT IN' END, lst);
  ELSIF r < 0.69 THEN
    SELECT string_agg(CASE WHEN random() < 0.1 THEN 'NULL' ELSE diff_pick('text') END, ', ') INTO lst
      FROM generate_series(1, 1 + floor(random() * 5)::int);
    RETURN format('%s %s (%s)', tcol, CASE WHEN random() < 0.5 THEN 'IN' ELSE 'NOT IN' END, lst);
  ELSIF r < 0.71 THEN
    SELECT string_agg(diff_pick('float'), ', ') INTO lst FROM generate_series(1, 1 + floor(random() * 4)::int);
    RETURN format('%s IN (%s)', fcol, lst);
  ELSIF r < 0.74 THEN RETURN format('%s BETWEEN %s %s AND %s', icol,
                                    CASE WHEN random() < 0.3 THEN 'SYMMETRIC' ELSE '' END, diff_pick('int'), diff_pick('int'));
  ELSIF r < 0.78 THEN RETURN format('%s IS %sNULL', (ARRAY['i4', 'f8', 't', 'c', 'b', 'd', 'u', 'arr', 'j', 'n'])[1 + floor(random() * 10)::int],
                                    CASE WHEN random() < 0.5 THEN 'NOT ' ELSE '' END);
  ELSIF r < 0.80 THEN RETURN 'b';
  ELSIF r < 0.82 THEN RETURN format('b %s %s', op, (random() < 0.5)::text);
  ELSIF r < 0.87 THEN RETURN format('%s %s %s', (ARRAY['t', 'vc'])[1 + floor(random() * 2)::int],
                                    (ARRAY['LIKE', 'NOT LIKE', 'ILIKE'])[1 + floor(random() * 3)::int],
                                    (ARRAY['''a%''', '''ab%''', '''''', '''%''', '''a''', '''a\%%''', '''a_c''', '''é%''', '''日%''', '''abc''', '''a\_%'''])[1 + floor(random() * 11)::int]);
  -- fallbacks: numeric, arithmetic, functions, arrays, jsonb, regex, CASE
  ELSIF r < 0.89 THEN RETURN format('n %s %s', op, diff_pick('numeric'));
  ELSIF r < 0.91 THEN RETURN format('%s + %s > %s', icol, diff_pick('int'), diff_pick('int'));
  ELSIF r < 0.92 THEN RETURN format('10 / %s > 1', icol);
  ELSIF r < 0.93 THEN RETURN format('i8::int4 = %s', diff_pick('int'));
  ELSIF r < 0.94 THEN RETURN format('coalesce(%s, %s) = %s', icol, diff_pick('int'), diff_pick('int'));
  ELSIF r < 0.95 THEN RETURN 'arr @> ARRAY[1]';
  ELSIF r < 0.96 THEN RETURN format('j ? %s', (ARRAY['''a''', '''b''', '''z'''])[1 + floor(random() * 3)::int]);
  ELSIF r < 0.97 THEN RETURN format('t ~ %s', (ARRAY['''^a''', '''b$''', '''(''' ])[1 + floor(random() * 3)::int]);
  ELSIF r < 0.98 THEN RETURN format('CASE WHEN b THEN %s > 0 ELSE %s IS NULL END', icol, tcol);
  ELSIF r < 0.99 THEN RETURN format('length(%s) %s %s', tcol, op, (ARRAY['0', '1', '3', '4500'])[1 + floor(random() * 4)::int]);
  ELSE RETURN format('greatest(i2, i4) %s %s', op, diff_pick('int'));
  END IF;
END $$;

CREATE FUNCTION diff_clause(depth int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r float8 := random();
BEGIN
  IF depth <= 0 OR r < 0.35 THEN RETURN diff_leaf(); END IF;
  IF r < 0.6 THEN RETURN format('(%s AND %s)', diff_clause(depth - 1), diff_clause(depth - 1));
  ELSIF r < 0.8 THEN RETURN format('(%s OR %s)', diff_clause(depth - 1), diff_clause(depth - 1));
  ELSIF r < 0.88 THEN RETURN format('NOT (%s)', diff_clause(depth - 1));
  ELSIF r < 0.93 THEN RETURN format('(%s AND %s AND %s)', diff_clause(depth - 1), diff_clause(depth - 1), diff_clause(depth - 1));
  ELSE RETURN format('(%s) IS %s', diff_clause(depth - 1),
                     (ARRAY['TRUE', 'NOT TRUE', 'FALSE', 'NOT FALSE', 'UNKNOWN', 'NOT UNKNOWN'])[1 + floor(random() * 6)::int]);
  END IF;
END $$;

-- PostgreSQL's own result for a clause on a row, as evaluate_shape spells it.
CREATE FUNCTION diff_oracle(clause text, rid int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE result bool;
BEGIN
  EXECUTE format('SELECT (%s) FROM diff_t WHERE id = $1', clause) INTO result USING rid;
  RETURN coalesce(result::text, 'null');
EXCEPTION WHEN OTHERS THEN
  RETURN 'error: ' || SQLERRM;
END $$;

CREATE TABLE diff_mismatch (seed float8, shape_id bigint, clause text, rid int, ours text, theirs text, row_json text);
CREATE TABLE diff_runs (seed float8, clauses int, skipped int, pairs bigint, fallback_clauses int);

CREATE FUNCTION diff_run(seed float8, n_rows int, n_clauses int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  clause text;
  sid bigint;
  registered int := 0;
  skipped int := 0;
  pairs bigint := 0;
  with_fallback int := 0;
  rec record;
  theirs_all text[];
BEGIN
  PERFORM setseed(seed);
  TRUNCATE diff_t;
  FOR i IN 1..n_rows LOOP PERFORM diff_row(i); END LOOP;
  FOR i IN 1..n_clauses LOOP
    clause := diff_clause(3);
    BEGIN
      sid := shape_router.register_shape('diff_t', clause);
    EXCEPTION WHEN OTHERS THEN
      skipped := skipped + 1;       -- e.g. a constant that fails to fold: refused at registration
      CONTINUE;
    END;
    registered := registered + 1;
    IF EXISTS (SELECT 1 FROM shape_router.shape_catalog WHERE shape_id = sid AND fallback_exprs IS NOT NULL) THEN
      with_fallback := with_fallback + 1;
    END IF;
    -- whole-table oracle in one query when no row errors; per row otherwise
    BEGIN
      EXECUTE format('SELECT array_agg(coalesce((%s)::text, ''null'') ORDER BY id) FROM diff_t', clause) INTO theirs_all;
    EXCEPTION WHEN OTHERS THEN
      theirs_all := NULL;
    END;
    FOR rec IN
      SELECT r.id, shape_router.evaluate_shape(sid, r) AS ours FROM diff_t r ORDER BY r.id
    LOOP
      pairs := pairs + 1;
      IF rec.ours IS DISTINCT FROM coalesce(theirs_all[rec.id], diff_oracle(clause, rec.id)) THEN
        INSERT INTO diff_mismatch
          SELECT seed, sid, clause, rec.id, rec.ours, diff_oracle(clause, rec.id), row_to_json(x)::text
            FROM diff_t x WHERE x.id = rec.id;
      END IF;
    END LOOP;
    PERFORM shape_router.drop_shape(sid);
  END LOOP;
  INSERT INTO diff_runs VALUES (seed, registered, skipped, pairs, with_fallback);
END $$;

-- fixed seed, then today's seed
SELECT diff_run(0.20261120, 220, 500);
SELECT diff_run((extract(doy FROM current_date) + 1000 * extract(year FROM current_date)) / 10000000.0, 220, 500);

SELECT count(*) AS runs, sum(pairs) >= 200000 AS at_least_100k_pairs_per_run,
       bool_and(fallback_clauses > 0 AND fallback_clauses < clauses) AS native_and_fallback_both_exercised,
       bool_and(skipped < clauses / 10) AS few_refused
  FROM diff_runs;
SELECT count(*) AS mismatches FROM diff_mismatch;
-- each mismatch as a reproducer to paste into psql
SELECT format(E'-- seed %s: ours %s, PostgreSQL %s\nINSERT INTO diff_t SELECT * FROM json_populate_record(NULL::diff_t, %L);\n'
              'SELECT shape_router.evaluate_shape(shape_router.register_shape(''diff_t'', %L), r), (%s) FROM diff_t r WHERE id = %s;',
              m.seed, m.ours, m.theirs, m.row_json, m.clause, m.clause, m.rid) AS reproducer
  FROM diff_mismatch m
 ORDER BY m.seed, m.shape_id, m.rid LIMIT 20;

DROP TABLE diff_t, diff_pool, diff_mismatch, diff_runs;
DROP FUNCTION diff_run, diff_oracle, diff_clause, diff_leaf, diff_row, diff_pick;
DROP TYPE diff_mood;
