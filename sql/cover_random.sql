-- The whole router against PostgreSQL on randomly generated WHERE clauses: the
-- forms users write (equalities, ANDs and ORs of them, IN lists with NULLs,
-- equality AND threshold, one- and two-sided ranges, BETWEEN, ORs of ANDs, NOT
-- over comparisons, ANDs, ORs and IN lists, IS [NOT] NULL, bare and negated
-- bools, expressions over columns (=, IN, ranges, BETWEEN, <>, IS NULL, beside an
-- equality) and LIKE, random nestings of all these)
-- over int2/int4/int8, float4/float8, numeric, date, timestamp, timestamptz,
-- text (the default collation, which is C in the test database, COLLATE "C" and
-- "default", and ICU's order) and bool, with constants that are edge values:
-- NULL, NaN, ±Infinity, -0, numeric scales, int min/max, cross-type and
-- out-of-range constants, date and timestamp infinities, timestamps around
-- Europe/Berlin's 2026 DST changes. A second family of forms (about 40% of the
-- shapes) covers what the index does not reach yet: negations (<>, NOT IN with
-- NULLs, IS [NOT] DISTINCT FROM, NOT (=), <> ALL), IS [NOT] NULL alone and in
-- ANDs and ORs, LIKE prefixes (escapes, multibyte, '%' alone, the empty
-- pattern, patterns longer than an order key) beside non-prefix patterns, ILIKE
-- and NOT LIKE, shapes without a WHERE or with one that folds to true, and
-- int4[] and text[] columns (@>, &&, <@, = ANY, <> ALL), and a char(4) column
-- (padded: 'ab' LIKE 'ab %' holds there) under the prefixes and negations, over rows whose text
-- shares those prefixes and whose arrays are NULL, empty, with NULL elements
-- and duplicates. Registration runs in a subtransaction per shape: a clause
-- register_shape refuses is listed as refused, never silently dropped.
-- Three slots see the same changes: the shapes
-- are registered after the first slot exists (applied mid-stream there, loaded
-- at the start of the third), after the second exists (in four transactions),
-- and between two batches of changes, when some are also dropped.
-- Every routed record (shape, op, move, old and new row) must be the one that
-- PostgreSQL's own evaluation of the WHERE on the logged old and new row gives,
-- for every live (shape, change) pair, in order. Each record is tied to its
-- change by its LSN. Output is aggregates only; a mismatch prints the offending
-- clause, change and records.
SET synchronous_commit = on;
SET timezone = 'Europe/Berlin';
SELECT setseed(0.1618);
CREATE TABLE rr (id int PRIMARY KEY, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, n numeric, d date,
                 ts timestamp, tz timestamptz, t text, tc text COLLATE "C", b bool, pad text, ia int4[], ta text[], cc char(4));
ALTER TABLE rr REPLICA IDENTITY FULL;
-- at_lsn: the WAL insert position after the change (one row per statement below),
-- so the change a decoded record belongs to is the first log entry past its LSN
CREATE TABLE rr_log (seq bigserial PRIMARY KEY, op text, old_row rr, new_row rr, at_lsn pg_lsn);
CREATE INDEX rr_log_lsn ON rr_log (at_lsn);
CREATE FUNCTION rr_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO rr_log (op, old_row, new_row, at_lsn)
  VALUES (TG_OP, CASE WHEN TG_OP <> 'INSERT' THEN OLD END, CASE WHEN TG_OP <> 'DELETE' THEN NEW END,
          pg_current_wal_insert_lsn());
  RETURN NULL;
END $$;
CREATE TRIGGER rr_audit AFTER INSERT OR UPDATE OR DELETE ON rr FOR EACH ROW EXECUTE FUNCTION rr_audit();

-- Value pools, as SQL literals: the constants of the WHEREs and the values of the rows.
CREATE TABLE rr_pool (col text PRIMARY KEY, typ text, lits text[]);
INSERT INTO rr_pool VALUES
  ('i2', 'int2', ARRAY['-32768', '-1', '0', '1', '2', '3', '5', '7', '32767']),
  ('i4', 'int4', ARRAY['-2147483648', '-1', '0', '1', '2', '3', '5', '7', '10', '2147483647']),
  ('i8', 'int8', ARRAY['-9223372036854775808', '-1', '0', '1', '2', '3', '5', '100', '9223372036854775807']),
  ('f4', 'float4', ARRAY['''-Infinity''', '-1.5', '''-0''', '0', '0.1', '0.5', '1', '2.5', '3.4e38', '''Infinity''',
                         '''NaN''']),
  ('f8', 'float8', ARRAY['''-Infinity''', '-1e300', '-2.5', '''-0''', '0', '1e-310', '0.1', '0.5', '1', '2.5',
                         '''Infinity''', '''NaN''']),
  ('n', 'numeric', ARRAY['''-Infinity''', '-12345678901234567890.5', '-1.50', '-1', '0', '0.000', '1', '1.0', '1.00',
                         '1.5', '2', '12345678.9', '''Infinity''', '''NaN''']),
  ('d', 'date', ARRAY['''-infinity''', '''2000-02-29''', '''2026-03-28''', '''2026-03-29''', '''2026-03-30''',
                      '''2026-10-25''', '''2026-10-26''', '''infinity''']),
  ('ts', 'timestamp', ARRAY['''-infinity''', '''2026-03-29 00:00:00''', '''2026-03-29 01:00:00''',
                            '''2026-03-29 01:59:59.999999''', '''2026-03-29 02:00:00''', '''2026-03-29 02:30:00''',
                            '''2026-03-29 03:00:00''', '''2026-10-25 02:00:00''', '''2026-10-25 02:30:00''',
                            '''2026-10-25 03:00:00''', '''infinity''']),
  ('tz', 'timestamptz', ARRAY['''-infinity''', '''2026-03-29 00:59:59+00''', '''2026-03-29 01:00:00+00''',
                              '''2026-03-29 01:59:59''', '''2026-03-29 02:30:00''', '''2026-03-29 03:00:00''',
                              '''2026-10-25 00:30:00+00''', '''2026-10-25 01:30:00+00''', '''2026-10-25 02:30:00''',
                              '''2026-10-25 02:30:00+01''', '''2026-10-25 02:30:00+02''', '''infinity''']),
  ('t', 'text', ARRAY['''''', '''a''', '''A''', '''ab''', '''abc''', '''a b''', '''abcdefgh''', '''abcdefgh1''',
                      '''abcdefgi''', '''b''', '''B''', '''z''', '''é''', '''éa''', '''Éa''', '''e''', '''a%''',
                      '''a%b''', '''a_''', '''a_b''', '''a\''', '''aB''', '''Ab''', '''ba''', '''日本語''']),
  ('tc', 'text', ARRAY['''''', '''a''', '''A''', '''ab''', '''abc''', '''a b''', '''abcdefgh''', '''abcdefgh1''',
                       '''abcdefgi''', '''b''', '''B''', '''z''', '''é''', '''éa''', '''Éa''', '''e''', '''a%''',
                       '''a%b''', '''a_''', '''a_b''', '''a\''', '''aB''', '''Ab''', '''ba''', '''日本語''']),
  -- arrays: NULL comes from rr_val; empty, NULL elements, duplicates, limits
  ('ia', 'int4[]', ARRAY['''{}''', '''{1}''', '''{2}''', '''{1,2}''', '''{2,1,1}''', '''{NULL}''', '''{1,NULL}''',
                         '''{3,5,7}''', '''{-1,0}''', '''{2147483647,-2147483648}''', '''{5,5}''']),
  ('ta', 'text[]', ARRAY['''{}''', '''{a}''', '''{b}''', '''{a,b}''', '''{b,a,a}''', '''{NULL}''', '''{x,NULL}''',
                         '''{"",x}''', '''{é}''', '''{"a b"}''', '''{ab,abc}''', '''{x}''']),
  ('cc', 'char(4)', ARRAY['''''', '''a''', '''ab''', '''ab ''', '''abc''', '''abcd''', '''a b''', '''a%''', '''a_''',
                          '''é''', '''éa''', '''B''']);
CREATE FUNCTION rr_rand(n int) RETURNS int LANGUAGE sql AS $$ SELECT 1 + floor(random() * n)::int $$;
CREATE FUNCTION rr_one(a text[]) RETURNS text LANGUAGE sql AS $$ SELECT a[rr_rand(cardinality(a))] $$;
CREATE FUNCTION rr_pick(c text) RETURNS text LANGUAGE sql AS $$ SELECT rr_one(lits) FROM rr_pool WHERE col = c $$;
CREATE FUNCTION rr_col() RETURNS text LANGUAGE sql AS $$
  SELECT rr_one(ARRAY['i2', 'i4', 'i8', 'f4', 'f8', 'n', 'd', 'ts', 'tz', 't', 'tc']) $$;

-- A constant for a comparison with column c: mostly from c's pool, sometimes NULL,
-- of another type (cross-type operators, out-of-range integers), explicitly cast,
-- or collated.
CREATE FUNCTION rr_lit(c text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r float8 := random();
BEGIN
  IF r < 0.03 THEN RETURN 'NULL'; END IF;
  r := random();
  RETURN CASE
    WHEN c IN ('i2', 'i4') AND r < 0.15 THEN rr_pick(rr_one(ARRAY['i4', 'i8']))
    WHEN c = 'i8' AND r < 0.1 THEN format('(%s)::int2', rr_pick('i2'))
    WHEN c = 'f4' AND r < 0.2 THEN format('(%s)::float4', rr_pick('f4'))
    WHEN c = 'f8' AND r < 0.15 THEN format('(%s)::float4', rr_pick('f4'))
    WHEN c = 'n' AND r < 0.1 THEN rr_pick('i4')
    WHEN c = 'd' AND r < 0.1 THEN format('(%s)::timestamp', rr_pick('ts'))
    WHEN c = 'd' AND r < 0.2 THEN format('(%s)::date', rr_pick('d'))
    WHEN c = 'ts' AND r < 0.1 THEN format('(%s)::date', rr_pick('d'))
    WHEN c = 'tz' AND r < 0.1 THEN format('(%s)::timestamptz', rr_pick('tz'))
    WHEN c IN ('t', 'tc') AND r < 0.15 THEN format('(%s COLLATE "C")', rr_pick(c))
    WHEN c = 't' AND r < 0.2 THEN format('(%s COLLATE "und-x-icu")', rr_pick(c))
    WHEN c = 'tc' AND r < 0.2 THEN format('(%s COLLATE "default")', rr_pick(c))
    ELSE rr_pick(c) END;
END $$;
CREATE FUNCTION rr_cmp(c text, op text) RETURNS text LANGUAGE sql AS $$ SELECT format('%s %s %s', c, op, rr_lit(c)) $$;
CREATE FUNCTION rr_eq(c text) RETURNS text LANGUAGE sql AS $$ SELECT rr_cmp(c, '=') $$;
CREATE FUNCTION rr_range(c text) RETURNS text LANGUAGE sql AS $$ SELECT rr_cmp(c, rr_one(ARRAY['<', '<=', '>', '>='])) $$;
CREATE FUNCTION rr_in(c text) RETURNS text LANGUAGE sql AS $$
  SELECT format('%s IN (%s)', c, string_agg(CASE WHEN random() < 0.12 THEN 'NULL' ELSE rr_pick(c) END, ', '))
    FROM generate_series(1, rr_rand(5)) $$;
-- an equality or a range on a random column
CREATE FUNCTION rr_simple() RETURNS text LANGUAGE sql AS $$
  SELECT CASE WHEN random() < 0.5 THEN rr_eq(rr_col()) ELSE rr_range(rr_col()) END $$;
-- A constant of c's type without a cast through text: the pool's literal cast
-- from unknown (a plain constant), for ARRAY[...] lists.
CREATE FUNCTION rr_typed(c text) RETURNS text LANGUAGE sql AS $$
  SELECT CASE WHEN random() < 0.1 THEN format('NULL::%s', typ) ELSE format('(%s)::%s', rr_one(lits), typ) END
    FROM rr_pool WHERE col = c $$;
-- A negation of one column: <>, NOT IN (NULLs in the list too), IS [NOT] DISTINCT
-- FROM (NULL too), NOT (=), <> ALL (ARRAY[...]).
CREATE FUNCTION rr_neg(c text) RETURNS text LANGUAGE sql AS $$
  SELECT CASE rr_rand(7)
    WHEN 1 THEN rr_cmp(c, '<>')
    WHEN 2 THEN replace(rr_in(c), ' IN (', ' NOT IN (')
    WHEN 3 THEN format('%s IS DISTINCT FROM %s', c, CASE WHEN random() < 0.2 THEN 'NULL' ELSE rr_lit(c) END)
    WHEN 4 THEN format('%s IS NOT DISTINCT FROM %s', c, CASE WHEN random() < 0.2 THEN 'NULL' ELSE rr_lit(c) END)
    WHEN 5 THEN format('NOT (%s)', rr_eq(c))
    WHEN 6 THEN format('%s <> ALL (ARRAY[%s])', c, (SELECT string_agg(rr_typed(c), ', ') FROM generate_series(1, rr_rand(4))))
    ELSE format('NOT (%s)', rr_in(c)) END $$;
-- A LIKE pattern: prefixes (escaped % and _, multibyte, longer than an 8-byte
-- order key, '%' alone) and patterns that are not prefixes.
CREATE FUNCTION rr_pattern() RETURNS text LANGUAGE sql AS $$
  SELECT quote_literal(rr_one(ARRAY['ab%', 'a%', 'a\%%', 'a\_%', '%', '', 'é%', 'éa%', 'É%', '日本%', 'abcdefgh%',
                                    'abcdefgh1%', 'B%', 'a b%', 'a\\%', 'a_%', '%a', 'a%b%', '_b%', 'ab', 'a\%', '%%',
                                    'a%%', 'ab_', 'abc%', 'z%'])) $$;
-- A text leaf that tests a prefix or a pattern.
CREATE FUNCTION rr_prefix() RETURNS text LANGUAGE sql AS $$
  SELECT CASE rr_rand(17)
    WHEN 1 THEN format('t LIKE %s', rr_pattern())
    WHEN 2 THEN format('t LIKE %s', rr_pattern())
    WHEN 3 THEN format('tc LIKE %s', rr_pattern())
    WHEN 4 THEN format('tc LIKE %s', rr_pattern())
    WHEN 5 THEN format('t NOT LIKE %s', rr_pattern())
    WHEN 6 THEN format('%s ILIKE %s', rr_one(ARRAY['t', 'tc']), rr_pattern())
    WHEN 7 THEN format('t LIKE %L ESCAPE ''#''', rr_one(ARRAY['a#%%', 'a#_%', 'ab%', 'a%#%']))
    WHEN 8 THEN format('%s ^@ %L', rr_one(ARRAY['t', 'tc']), rr_one(ARRAY['ab', 'a', '', 'é', 'a%', 'abcdefgh1']))
    WHEN 9 THEN format('starts_with(%s, %L)', rr_one(ARRAY['t', 'tc']), rr_one(ARRAY['ab', 'a_', 'éa']))
    WHEN 10 THEN format('t ~ %L', rr_one(ARRAY['^ab', '^a', 'b$', '^é']))
    WHEN 11 THEN format('t SIMILAR TO %L', rr_one(ARRAY['ab%', 'a_', '(a|b)%']))
    WHEN 12 THEN format('(t COLLATE "und-x-icu") LIKE %s', rr_pattern())
    WHEN 13 THEN format('tc LIKE %s COLLATE "C"', rr_pattern())
    WHEN 14 THEN format('t LIKE %s AND tc LIKE %s', rr_pattern(), rr_pattern())
    ELSE format('cc %s %s', rr_one(ARRAY['LIKE', 'LIKE', 'NOT LIKE', 'ILIKE']),
                rr_one(ARRAY[rr_pattern(), quote_literal(rr_one(ARRAY['ab %', 'ab  ', 'ab', 'a%', 'ab_ ', '% '])) ])) END $$;
-- An array leaf on ia int4[] or ta text[].
CREATE FUNCTION rr_ints() RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(rr_one(ARRAY['-1', '0', '1', '2', '3', '5', '7', '2147483647']), ', ') FROM generate_series(1, rr_rand(3)) $$;
CREATE FUNCTION rr_texts() RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(quote_literal(rr_one(ARRAY['a', 'b', 'x', '', 'é', 'ab', 'a b', 'z'])), ', ') FROM generate_series(1, rr_rand(3)) $$;
CREATE FUNCTION rr_array() RETURNS text LANGUAGE sql AS $$
  SELECT CASE rr_rand(13)
    WHEN 1 THEN format('ia @> ARRAY[%s]', rr_ints())
    WHEN 2 THEN format('%s = ANY (ia)', rr_one(ARRAY['-1', '0', '1', '2', '5', '2147483647', 'NULL']))
    WHEN 3 THEN format('ia && ARRAY[%s]', rr_ints())
    WHEN 4 THEN format('ta @> ARRAY[%s]', rr_texts())
    WHEN 5 THEN format('%L = ANY (ta)', rr_one(ARRAY['a', 'b', 'x', '', 'é', 'ab']))
    WHEN 6 THEN format('ta && ARRAY[%s]', rr_texts())
    WHEN 7 THEN format('ia <@ ARRAY[%s]', rr_ints())
    WHEN 8 THEN format('%s <> ALL (ia)', rr_one(ARRAY['1', '2', '5']))
    WHEN 9 THEN format('ia @> %L', rr_one(ARRAY['{}', '{NULL}', '{1,1}']))
    WHEN 10 THEN format('ta @> %L', rr_one(ARRAY['{}', '{NULL}', '{a,a}']))
    WHEN 11 THEN format('%s = ANY (ia)', rr_one(ARRAY['i4', 'i2']))
    WHEN 12 THEN format('ia = %L', rr_one(ARRAY['{}', '{1,2}', '{NULL}']))
    ELSE format('ta <@ ARRAY[%s]', rr_texts()) END $$;
-- any leaf
CREATE FUNCTION rr_leaf() RETURNS text LANGUAGE plpgsql AS $$
DECLARE r float8 := random(); c text := rr_col();
BEGIN
  RETURN CASE
    WHEN r < 0.45 THEN rr_cmp(c, rr_one(ARRAY['=', '<>', '<', '<=', '>', '>=', 'IS DISTINCT FROM', 'IS NOT DISTINCT FROM']))
    WHEN r < 0.57 THEN rr_in(c)
    WHEN r < 0.65 THEN format('%s IS %sNULL', rr_one(ARRAY[c, c, c, 'ia', 'ta']), rr_one(ARRAY['', 'NOT ']))
    WHEN r < 0.72 THEN rr_one(ARRAY['b', 'NOT b', 'b IS NOT TRUE', 'b IS UNKNOWN'])
    WHEN r < 0.8 THEN format('%s BETWEEN %s AND %s', c, rr_lit(c), rr_lit(c))
    WHEN r < 0.86 THEN rr_neg(c)
    WHEN r < 0.93 THEN rr_prefix()
    ELSE rr_array() END;
END $$;
CREATE FUNCTION rr_tree(depth int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r float8 := random();
BEGIN
  IF depth <= 0 OR r < 0.3 THEN RETURN rr_leaf(); END IF;
  RETURN CASE
    WHEN r < 0.6 THEN format('(%s AND %s)', rr_tree(depth - 1), rr_tree(depth - 1))
    WHEN r < 0.85 THEN format('(%s OR %s)', rr_tree(depth - 1), rr_tree(depth - 1))
    ELSE format('NOT (%s)', rr_tree(depth - 1)) END;
END $$;

-- One random WHERE of the forms users write.
CREATE FUNCTION rr_clause(OUT form text, OUT clause text) LANGUAGE plpgsql AS $$
DECLARE
  r float8 := random();
  c text := rr_col();
  c2 text;
  k int;
BEGIN
  LOOP c2 := rr_col(); EXIT WHEN c2 <> c; END LOOP;
  -- The second family: forms no cover reaches today (or that need none).
  IF random() < 0.4 THEN
    r := random();
    IF r < 0.25 THEN form := 'ii_neg';
      IF random() < 0.1 THEN c := 'cc'; END IF;
      clause := CASE rr_rand(6)
        WHEN 1 THEN rr_neg(c)
        WHEN 2 THEN rr_neg(c)
        WHEN 3 THEN format('%s AND %s', rr_neg(c), rr_eq(c2))          -- status <> 'archived' AND owner = $1
        WHEN 4 THEN format('%s AND %s', rr_eq(c2), rr_neg(c))
        WHEN 5 THEN format('%s OR %s', rr_neg(c), rr_simple())
        ELSE format('%s AND %s', rr_neg(c), rr_neg(c2)) END;
    ELSIF r < 0.4 THEN form := 'ii_null';
      c := rr_one(ARRAY[c, c, c, 'ia', 'ta', 'cc']);
      clause := CASE rr_rand(8)
        WHEN 1 THEN format('%s IS NULL', c)
        WHEN 2 THEN format('%s IS NOT NULL', c)
        WHEN 3 THEN format('%s IS NULL OR %s', c, rr_one(ARRAY[rr_eq(c2), rr_neg(c2), rr_prefix(), rr_array(), rr_range(c2)]))
        WHEN 4 THEN format('%s IS NOT NULL AND %s', c, rr_one(ARRAY[rr_eq(c2), rr_neg(c2), rr_prefix(), rr_array(), rr_range(c2)]))
        WHEN 5 THEN format('%s IS NULL AND %s', c, rr_one(ARRAY[rr_eq(c2), rr_neg(c2), rr_prefix(), rr_array(), rr_range(c2)]))
        WHEN 6 THEN format('%s IS NOT NULL OR %s', c, rr_one(ARRAY[rr_eq(c2), rr_neg(c2), rr_prefix(), rr_array()]))
        WHEN 7 THEN format('%s IS NULL AND %s IS NOT NULL', c, c2)
        ELSE format('NOT (%s IS NULL)', c) END;
    ELSIF r < 0.65 THEN form := 'ii_prefix';
      clause := CASE rr_rand(5)
        WHEN 1 THEN format('%s AND %s', rr_prefix(), rr_eq(c2))
        WHEN 2 THEN format('%s OR %s', rr_prefix(), rr_one(ARRAY[rr_eq(c2), rr_prefix()]))
        ELSE rr_prefix() END;
    ELSIF r < 0.72 THEN form := 'ii_nowhere';
      clause := rr_one(ARRAY[NULL, NULL, 'true', '1 = 1', 'NOT false', 'true OR i4 = 1', 'i4 IS NULL OR true', 'false',
                             '1 = 0']);
    ELSE form := 'ii_array';
      clause := CASE rr_rand(6)
        WHEN 1 THEN format('i4 = %s AND %s', rr_rand(4) - 1, rr_array())   -- env = E AND tags @> ARRAY['t']
        WHEN 2 THEN format('%s OR %s', rr_array(), rr_one(ARRAY[rr_eq(c2), rr_array(), rr_prefix()]))
        WHEN 3 THEN format('%s AND %s', rr_array(), rr_one(ARRAY[rr_neg(c2), rr_array(), rr_range(c2)]))
        ELSE rr_array() END;
    END IF;
    RETURN;
  END IF;
  IF r < 0.11 THEN form := 'eq'; clause := rr_eq(c);
  ELSIF r < 0.18 THEN form := 'and_eq'; clause := format('%s AND %s', rr_eq(c), rr_eq(c2));
  ELSIF r < 0.26 THEN form := 'in';
    clause := CASE WHEN random() < 0.15 THEN replace(rr_in(c), ' IN (', ' NOT IN (') ELSE rr_in(c) END;
  ELSIF r < 0.33 THEN form := 'or_eq';
    clause := format('%s OR %s', rr_eq(c), rr_eq(c2));
    IF random() < 0.3 THEN clause := clause || ' OR ' || rr_eq(rr_col()); END IF;
  ELSIF r < 0.45 THEN form := 'eq_threshold';   -- few keys, many thresholds each
    k := rr_rand(4) - 1;
    c := rr_one(ARRAY['i8', 'f8', 'n', 'd', 'ts', 'tz', 'tc', 'i2']);
    clause := format('i4 = %s AND %s', k,
                     CASE WHEN random() < 0.7 THEN rr_cmp(c, '>=') ELSE rr_range(c) END);
  ELSIF r < 0.57 THEN form := 'range'; clause := rr_range(c);
  ELSIF r < 0.67 THEN form := 'range2';
    clause := CASE rr_rand(5)
      WHEN 1 THEN format('%s AND %s', rr_cmp(c, rr_one(ARRAY['>', '>='])), rr_cmp(c, rr_one(ARRAY['<', '<='])))
      WHEN 2 THEN format('%s BETWEEN %s AND %s', c, rr_lit(c), rr_lit(c))
      WHEN 3 THEN format('%s BETWEEN SYMMETRIC %s AND %s', c, rr_lit(c), rr_lit(c))
      WHEN 4 THEN format('%s NOT BETWEEN %s AND %s', c, rr_lit(c), rr_lit(c))
      ELSE format('%s AND %s AND %s', rr_cmp(c, '>='), rr_cmp(c, '<='), rr_cmp(c, '<>')) END;
  ELSIF r < 0.74 THEN form := 'or_of_ands';
    clause := format('(%s AND %s) OR (%s AND %s)', rr_simple(), rr_simple(), rr_simple(), rr_simple());
    IF random() < 0.3 THEN clause := format('(%s) OR %s', clause, rr_simple()); END IF;
  ELSIF r < 0.82 THEN form := 'not';
    clause := CASE rr_rand(5)
      WHEN 1 THEN format('NOT (%s)', rr_simple())
      WHEN 2 THEN format('NOT (%s AND %s)', rr_simple(), rr_simple())
      WHEN 3 THEN format('NOT (%s OR %s)', rr_simple(), rr_simple())
      WHEN 4 THEN format('NOT (%s)', rr_in(c))
      ELSE format('NOT (%s BETWEEN %s AND %s)', c, rr_lit(c), rr_lit(c)) END;
  ELSIF r < 0.87 THEN form := 'null';
    clause := CASE rr_rand(4)
      WHEN 1 THEN format('%s IS NULL', c)
      WHEN 2 THEN format('%s IS NOT NULL', c)
      WHEN 3 THEN format('%s IS NULL OR %s', c, rr_eq(c))
      ELSE format('%s IS NOT NULL AND %s', c, rr_range(c)) END;
  ELSIF r < 0.90 THEN form := 'bool';
    clause := rr_one(ARRAY['b', 'NOT b', 'b = true', 'b = false', 'b IS TRUE', 'b IS NOT FALSE', 'b IS UNKNOWN',
                           'b AND ' || rr_eq('i4'), 'NOT b OR ' || rr_eq('i4'), rr_eq('i4') || ' AND NOT b']);
  ELSIF r < 0.97 THEN form := 'expression';   -- functions and LIKE: expression, prefix and substring atoms
    clause := CASE rr_rand(18)
      WHEN 1 THEN format('lower(t) = %s', rr_pick('t'))
      WHEN 2 THEN format('t LIKE %L', rr_one(ARRAY['a%', 'ab%', '%b', 'é%', '_', 'abcdefgh%']))
      WHEN 3 THEN format('tc LIKE %L', rr_one(ARRAY['a%', 'ab%', 'abcdefgh_', 'B%']))
      WHEN 4 THEN format('length(t) > %s', rr_rand(4) - 1)
      WHEN 5 THEN format('i4 %% 3 = %s', rr_rand(3) - 1)
      WHEN 6 THEN format('coalesce(i8, -1) = %s', rr_pick('i8'))
      WHEN 7 THEN format('f8 * 2 > %s', rr_pick('f8'))
      WHEN 8 THEN format('i2::int8 + i4 > %s', rr_pick('i4'))
      WHEN 9 THEN format('i4 %% 5 IN (%s, %s)', rr_rand(5) - 1, rr_one(ARRAY['NULL', '-1', '3']))
      WHEN 10 THEN format('abs(i4::int8) BETWEEN %s AND %s', rr_rand(4) - 1, rr_one(ARRAY['1', '3', '2147483648']))
      WHEN 11 THEN format('i2 + 1 %s %s', rr_one(ARRAY['<>', '<', '>=']), rr_pick('i2'))
      WHEN 12 THEN format('d + 1 %s %s', rr_one(ARRAY['=', '>=', '<']), rr_pick('d'))
      WHEN 13 THEN format('date_trunc(''hour'', ts) %s %s', rr_one(ARRAY['=', '<=', '>']), rr_pick('ts'))
      WHEN 14 THEN format('(f8 + 1) IS %sNULL', rr_one(ARRAY['', 'NOT ']))
      WHEN 15 THEN format('i4 = %s AND abs(i8 %% 100) BETWEEN %s AND %s', rr_rand(4) - 1, rr_rand(3) - 1, rr_rand(6))
      WHEN 16 THEN format('i4 %% 3 = %s OR i2 - 1 < %s', rr_rand(3) - 1, rr_pick('i2'))
      WHEN 17 THEN format(rr_one(ARRAY['i4 %% 3 IS DISTINCT FROM %s', 'NOT (i2 + 1 IS DISTINCT FROM %s)']),
                          rr_one(ARRAY['0', '1', 'NULL']))
      ELSE format('%s OR lower(tc) = %s', rr_eq(c), rr_pick('tc')) END;
  ELSE form := 'tree'; clause := rr_tree(3);
  END IF;
END $$;

-- clause NULL: a shape without WHERE. A clause register_shape refuses goes to
-- rr_refused with its error (the output lists them; none is expected).
CREATE TABLE rr_shapes (shape_id bigint PRIMARY KEY, batch text, form text, clause text, reg_after bigint, drop_after bigint);
CREATE TABLE rr_refused (batch text, form text, clause text, sqlstate text, message text);
CREATE FUNCTION rr_register(b text, n int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE f record; after bigint := (SELECT coalesce(max(seq), 0) FROM rr_log); id bigint; st text; msg text;
BEGIN
  FOR i IN 1..n LOOP
    f := rr_clause();
    BEGIN
      id := shape_router.register_shape('rr', f.clause);
      INSERT INTO rr_shapes VALUES (id, b, f.form, f.clause, after, NULL);
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
      INSERT INTO rr_refused VALUES (b, f.form, f.clause, st, msg);
    END;
  END LOOP;
END $$;

-- Random rows and changes. Values: the pools, NULL 15% of the time.
CREATE FUNCTION rr_val(c text) RETURNS text LANGUAGE sql AS $$
  SELECT CASE WHEN random() < 0.15 THEN 'NULL' ELSE format('(%s)::%s', rr_one(lits), typ) END FROM rr_pool WHERE col = c $$;
CREATE FUNCTION rr_insert(k int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('INSERT INTO rr VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %L, %s, %s, %s)', k,
                 rr_val('i2'), rr_val('i4'), rr_val('i8'), rr_val('f4'), rr_val('f8'), rr_val('n'), rr_val('d'),
                 rr_val('ts'), rr_val('tz'), rr_val('t'), rr_val('tc'),
                 CASE WHEN random() < 0.15 THEN 'NULL' ELSE (random() < 0.5)::text END, 'pad' || k,
                 rr_val('ia'), rr_val('ta'), rr_val('cc'));
END $$;
-- a random row's id, independent of the heap's physical order
CREATE FUNCTION rr_some_id() RETURNS int LANGUAGE sql AS $$
  SELECT id FROM rr ORDER BY id OFFSET floor(random() * (SELECT count(*) FROM rr)) LIMIT 1 $$;
-- a column an UPDATE sets: the arrays too
CREATE FUNCTION rr_ucol() RETURNS text LANGUAGE sql AS $$
  SELECT CASE WHEN random() < 0.15 THEN rr_one(ARRAY['ia', 'ta', 'cc']) ELSE rr_col() END $$;
-- an UPDATE of one random row: only the column no WHERE reads, one column, several, the key, or nothing at all
CREATE FUNCTION rr_update() RETURNS void LANGUAGE plpgsql AS $$
DECLARE k int := rr_some_id(); r float8 := random(); sets text;
BEGIN
  sets := CASE
    WHEN r < 0.15 THEN format('pad = pad || %L', 'x')
    WHEN r < 0.5 THEN (SELECT format('%s = %s', c, rr_val(c)) FROM rr_ucol() c)
    WHEN r < 0.85 THEN (SELECT string_agg(format('%s = %s', c, rr_val(c)), ', ' ORDER BY c)
                          FROM (SELECT DISTINCT rr_ucol() c FROM generate_series(1, 2 + rr_rand(4))) s)
    WHEN r < 0.9 THEN format('b = %s', CASE WHEN random() < 0.5 THEN 'NOT b' ELSE 'NULL' END)
    WHEN r < 0.95 THEN 'id = id + 100000'
    ELSE 'i4 = i4' END;
  EXECUTE format('UPDATE rr SET %s WHERE id = %s', sets, k);
END $$;
CREATE FUNCTION rr_delete() RETURNS void LANGUAGE sql AS $$ DELETE FROM rr WHERE id = (SELECT rr_some_id()) $$;
-- n changes in transactions of random size; some subtransactions roll back (their
-- changes and log rows vanish together)
CREATE PROCEDURE rr_changes(n int, first_id int) LANGUAGE plpgsql AS $$
DECLARE next_id int := first_id; r float8;
BEGIN
  FOR i IN 1..n LOOP
    r := random();
    IF r < 0.35 OR NOT EXISTS (SELECT FROM rr) THEN PERFORM rr_insert(next_id); next_id := next_id + 1;
    ELSIF r < 0.85 THEN PERFORM rr_update();
    ELSE PERFORM rr_delete();
    END IF;
    IF random() < 0.03 THEN
      BEGIN
        PERFORM rr_insert(next_id); PERFORM rr_update();
        RAISE EXCEPTION 'roll back';
      EXCEPTION WHEN raise_exception THEN NULL;
      END;
    END IF;
    IF random() < 0.1 THEN COMMIT; END IF;
  END LOOP;
END $$;

-- Shapes: batch a after rr_mid exists (applied mid-stream there, loaded at the
-- start of rr_mixed and rr_bulk), batch b in four transactions after rr_mixed
-- exists (mid-stream there and in rr_mid, loaded at rr_bulk's start); batch c
-- and the drops come between changes, mid-stream for all three.
SELECT 'init' FROM pg_create_logical_replication_slot('rr_mid', 'shape_router');
SELECT rr_register('a', 800);
SELECT 'init' FROM pg_create_logical_replication_slot('rr_mixed', 'shape_router');
DO $$ BEGIN FOR i IN 1..4 LOOP PERFORM rr_register('b', 160); COMMIT; END LOOP; END $$;
SELECT 'init' FROM pg_create_logical_replication_slot('rr_bulk', 'shape_router');
SELECT batch, count(*) FROM rr_shapes GROUP BY 1 ORDER BY 1;
-- The forms registered, and those refused (each with its error: none expected).
SELECT form, count(*) AS shapes FROM rr_shapes GROUP BY 1 ORDER BY 1;
SELECT count(*) AS refused FROM rr_refused;
SELECT form, clause, sqlstate, message FROM rr_refused ORDER BY form, clause LIMIT 10;

-- Indexed or scanned: as the catalog and explain_shape say, as stable assertions.
-- (most_indexed counts the first family: the second's forms become indexed as covers grow.)
SELECT count(*) FILTER (WHERE c.index_cover IS NOT NULL AND s.form NOT LIKE 'ii_%')
         > 0.6 * count(*) FILTER (WHERE s.form NOT LIKE 'ii_%') AS most_indexed,
       count(*) FILTER (WHERE c.index_cover IS NULL) > 0 AS some_scanned,
       count(*) FILTER (WHERE (c.index_cover IS NOT NULL)
                        IS DISTINCT FROM EXISTS (SELECT FROM shape_router.explain_shape(s.shape_id) l
                                                  WHERE l LIKE 'routing: index cover%')) AS explain_disagrees,
       count(*) FILTER (WHERE s.form IN ('eq', 'and_eq', 'or_eq', 'eq_threshold', 'range')
                          AND s.clause NOT LIKE '%NULL%' AND s.clause NOT LIKE '%icu%' AND c.index_cover IS NULL)
         < 0.05 * count(*) FILTER (WHERE s.form IN ('eq', 'and_eq', 'or_eq', 'eq_threshold', 'range')
                                     AND s.clause NOT LIKE '%NULL%' AND s.clause NOT LIKE '%icu%') AS simple_forms_indexed
  FROM rr_shapes s JOIN shape_router.shape_catalog c USING (shape_id);

-- Changes, then shapes dropped and registered mid-stream, then more changes.
CALL rr_changes(260, 1);
DO $$
DECLARE after bigint := (SELECT max(seq) FROM rr_log); s bigint;
BEGIN
  FOR s IN SELECT shape_id FROM (SELECT shape_id FROM rr_shapes ORDER BY shape_id) x ORDER BY random() LIMIT 100 LOOP
    PERFORM shape_router.drop_shape(s);
    UPDATE rr_shapes SET drop_after = after WHERE shape_id = s;
  END LOOP;
END $$;
SELECT rr_register('c', 200);
CALL rr_changes(180, 1000);

-- Expected: PostgreSQL evaluates each shape's WHERE on the old and new row of
-- every change the shape is live for (one query per shape); NULL counts as false,
-- and a shape without WHERE matches every row.
CREATE TABLE rr_eval (shape_id bigint, seq bigint, o bool, nw bool);
CREATE TABLE rr_pairs (pairs bigint);
DO $$
DECLARE s record; total bigint := 0;
BEGIN
  FOR s IN SELECT * FROM rr_shapes ORDER BY shape_id LOOP
    EXECUTE format($q$
      INSERT INTO rr_eval
      SELECT %1$s, seq, o, nw FROM (
        SELECT l.seq,
               l.op <> 'INSERT' AND coalesce((SELECT (%2$s) FROM (SELECT (l.old_row).*) AS rr), false) AS o,
               l.op <> 'DELETE' AND coalesce((SELECT (%2$s) FROM (SELECT (l.new_row).*) AS rr), false) AS nw
          FROM rr_log l WHERE l.seq > %3$s AND l.seq <= %4$s) e
       WHERE o OR nw$q$, s.shape_id, coalesce(s.clause, 'true'), s.reg_after, coalesce(s.drop_after, 9223372036854775807));
    total := total + (SELECT count(*) FROM rr_log l WHERE l.seq > s.reg_after AND l.seq <= coalesce(s.drop_after, 9223372036854775807));
  END LOOP;
  INSERT INTO rr_pairs VALUES (total);
END $$;
CREATE TABLE rr_expected AS
SELECT e.seq, e.shape_id,
       CASE WHEN l.op = 'INSERT' THEN 'insert' WHEN l.op = 'DELETE' THEN 'delete'
            WHEN o AND nw THEN 'update' WHEN nw THEN 'insert' ELSE 'delete' END AS op,
       CASE WHEN l.op = 'UPDATE' AND o <> nw THEN CASE WHEN nw THEN 'in' ELSE 'out' END END AS move,
       CASE WHEN nw THEN l.new_row::text END AS new_row,
       CASE WHEN o THEN l.old_row::text END AS old_row
  FROM rr_eval e JOIN rr_log l USING (seq);

-- Decoded: each record tied to its change through its LSN, its rows read back
-- into the table's type.
CREATE FUNCTION rr_decoded(slot name) RETURNS TABLE (n bigint, seq bigint, shape_id bigint, op text, move text,
                                                     new_row text, old_row text)
LANGUAGE sql AS $$
  SELECT c.ordinality, (SELECT l.seq FROM rr_log l WHERE l.at_lsn > c.lsn ORDER BY l.at_lsn LIMIT 1),
         (j->>'shape')::bigint, j->>'op', j->>'move',
         json_populate_record(NULL::rr, j->'new')::text, json_populate_record(NULL::rr, j->'old')::text
    FROM pg_logical_slot_get_changes(slot, NULL, NULL, 'include-transaction', 'false') WITH ORDINALITY c,
         LATERAL (SELECT c.data::json AS j) x
$$;
-- Each slot's session: every record counted, no error, and the index pruned:
-- fewer program runs than (shape, change) pairs.
CREATE TABLE rr_actual (slot text, n bigint, seq bigint, shape_id bigint, op text, move text, new_row text, old_row text);
CREATE FUNCTION rr_session_ok(s text) RETURNS TABLE (slot text, records_counted bool, no_errors bool,
                                                     index_probed bool, fewer_runs_than_pairs bool)
LANGUAGE sql AS $$
  SELECT s, records_emitted = (SELECT count(*) FROM rr_actual a WHERE a.slot = s), errors = 0,
         equality_probes > 0 AND range_probes > 0, gate_evaluations < (SELECT pairs FROM rr_pairs)
    FROM shape_router.decoding_stats()
$$;
INSERT INTO rr_actual SELECT 'rr_mid', * FROM rr_decoded('rr_mid');
SELECT * FROM rr_session_ok('rr_mid');
INSERT INTO rr_actual SELECT 'rr_mixed', * FROM rr_decoded('rr_mixed');
SELECT * FROM rr_session_ok('rr_mixed');
INSERT INTO rr_actual SELECT 'rr_bulk', * FROM rr_decoded('rr_bulk');
SELECT * FROM rr_session_ok('rr_bulk');

SELECT (SELECT count(*) FROM rr_shapes) AS shapes, (SELECT count(*) FROM rr_shapes WHERE drop_after IS NOT NULL) AS dropped,
       (SELECT pairs FROM rr_pairs) >= 100000 AS pairs_at_least_100000,
       count(*) > 20000 AS many_records, count(DISTINCT shape_id) > 0.7 * (SELECT count(*) FROM rr_shapes) AS most_shapes_reached,
       count(*) FILTER (WHERE move IS NOT NULL) > 1000 AS many_moves
  FROM rr_expected;
-- Each form of the second family matched some changes and missed others (the
-- data exercises it both ways), and some of its UPDATEs moved rows in or out.
SELECT s.form, count(DISTINCT e.shape_id) > 0 AS some_matched,
       bool_or(x.live > x.matched) AS some_missed, count(e.move) > 0 AS some_moves
  FROM rr_shapes s
  JOIN LATERAL (SELECT count(*) AS live, (SELECT count(*) FROM rr_expected e WHERE e.shape_id = s.shape_id) AS matched
                  FROM rr_log l WHERE l.seq > s.reg_after AND l.seq <= coalesce(s.drop_after, 9223372036854775807)) x ON true
  LEFT JOIN rr_expected e ON e.shape_id = s.shape_id
 WHERE s.form LIKE 'ii_%' GROUP BY 1 ORDER BY 1;
-- Per slot: drop records (one per dropped shape), records no change claims, records
-- out of (change, shape) order, and mismatches in both directions: all 0 but drops.
WITH a AS (SELECT * FROM rr_actual WHERE op <> 'drop'),
     ord AS (SELECT slot, (seq, shape_id) <= lag((seq, shape_id)) OVER (PARTITION BY slot ORDER BY n) AS bad FROM a),
     missing AS (SELECT s.slot, e.* FROM (VALUES ('rr_mid'), ('rr_mixed'), ('rr_bulk')) s(slot), rr_expected e
                 EXCEPT ALL SELECT slot, seq, shape_id, op, move, new_row, old_row FROM a),
     extra AS (SELECT slot, seq, shape_id, op, move, new_row, old_row FROM a
               EXCEPT ALL SELECT s.slot, e.* FROM (VALUES ('rr_mid'), ('rr_mixed'), ('rr_bulk')) s(slot), rr_expected e)
SELECT s.slot,
       (SELECT count(*) FROM rr_actual x WHERE x.slot = s.slot AND x.op = 'drop') AS drop_records,
       (SELECT count(*) FROM a WHERE a.slot = s.slot AND a.seq IS NULL) AS unplaced,
       (SELECT count(*) FROM ord WHERE ord.slot = s.slot AND bad) AS out_of_order,
       (SELECT count(*) FROM missing m WHERE m.slot = s.slot) AS missing,
       (SELECT count(*) FROM extra x WHERE x.slot = s.slot) AS extra
  FROM (VALUES ('rr_mid'), ('rr_mixed'), ('rr_bulk')) s(slot) ORDER BY 1;
-- The first mismatches in full (none expected): the clause, the change, what
-- PostgreSQL's evaluation gives and what was decoded.
WITH a AS (SELECT * FROM rr_actual WHERE op <> 'drop'),
     slots AS (SELECT * FROM (VALUES ('rr_mid'), ('rr_mixed'), ('rr_bulk')) s(slot)),
     diff AS (SELECT coalesce(e.slot, x.slot) AS slot, coalesce(e.seq, x.seq) AS seq, coalesce(e.shape_id, x.shape_id) AS shape_id,
                     e.op || coalesce('/' || e.move, '') AS expected, x.op || coalesce('/' || x.move, '') AS got,
                     e.new_row IS DISTINCT FROM x.new_row OR e.old_row IS DISTINCT FROM x.old_row AS rows_differ
                FROM (SELECT slots.slot, rr_expected.* FROM slots, rr_expected) e
                FULL JOIN a x ON x.slot = e.slot AND x.seq = e.seq AND x.shape_id = e.shape_id
               WHERE e.seq IS NULL OR x.seq IS NULL
                  OR (e.op, e.move, e.new_row, e.old_row) IS DISTINCT FROM (x.op, x.move, x.new_row, x.old_row))
SELECT d.slot, d.seq, d.shape_id, coalesce(s.clause, '(no WHERE)') AS clause, l.op, l.old_row, l.new_row, d.expected, d.got, d.rows_differ
  FROM diff d LEFT JOIN rr_shapes s USING (shape_id) LEFT JOIN rr_log l USING (seq)
 ORDER BY d.slot, d.seq, d.shape_id LIMIT 10;

SELECT 'stop' FROM pg_drop_replication_slot('rr_mid');
SELECT 'stop' FROM pg_drop_replication_slot('rr_mixed');
SELECT 'stop' FROM pg_drop_replication_slot('rr_bulk');
DROP PROCEDURE rr_changes(int, int);
DROP FUNCTION rr_decoded(name), rr_session_ok(text), rr_register(text, int), rr_clause(), rr_tree(int), rr_leaf(), rr_simple(), rr_in(text),
  rr_typed(text), rr_neg(text), rr_pattern(), rr_prefix(), rr_ints(), rr_texts(), rr_array(), rr_ucol(),
  rr_range(text), rr_eq(text), rr_cmp(text, text), rr_lit(text), rr_col(), rr_pick(text), rr_one(text[]), rr_rand(int),
  rr_val(text), rr_insert(int), rr_some_id(), rr_update(), rr_delete();
DROP TABLE rr, rr_log, rr_pool, rr_shapes, rr_refused, rr_eval, rr_pairs, rr_expected, rr_actual;
DROP FUNCTION rr_audit();
