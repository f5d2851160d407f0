-- The compiled programs: what runs natively, what falls back to the executor, and program sizes.
CREATE TABLE pg_todos (id bigint PRIMARY KEY, user_id int NOT NULL, status text, priority int2,
                       due date, created timestamptz, score float8, code char(4), ref uuid,
                       done bool, title varchar(100), tags text[], doc jsonb, amount numeric(12,3));
ALTER TABLE pg_todos REPLICA IDENTITY FULL;
CREATE TEMP TABLE clauses (n serial, clause text);
INSERT INTO clauses (clause) VALUES
  ('user_id = 5'),
  ('user_id = 5 AND status IN (''open'', ''new'') AND priority > 3'),
  ('user_id = 1 OR user_id = 2 OR user_id = 3 OR status = ''x'' OR done'),
  ('title LIKE ''abc%'''),
  ('title NOT LIKE ''a\%b'''),
  ('title LIKE ''a_c%'''),
  ('due BETWEEN ''2026-01-01'' AND ''2026-12-31'''),
  ('created >= ''2026-03-29 01:30:00+00'''),
  ('score > 0.5 AND score IS DISTINCT FROM ''NaN'''),
  ('code = ''ab'' AND ref = ''a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'''),
  ('status < ''m'''),
  ('status COLLATE "C" < ''m'''),
  ('NOT done IS NOT FALSE'),
  ('user_id NOT IN (1, 2, NULL)'),
  ('priority = user_id'),
  ('user_id + 1 > 10 AND status = ''open'''),
  ('tags && ARRAY[''a''] OR doc @> ''{"k": 1}'''),
  ('lower(status) = ''open'' AND coalesce(priority, 0) > 2'),
  ('amount >= 1.50 AND amount IN (1.5, 2.000, -3, ''NaN'')');
CREATE TEMP TABLE registered AS
  SELECT c.n, c.clause, shape_router.register_shape('pg_todos', c.clause) AS id FROM clauses c;
SELECT c.n, c.clause, s.line
  FROM registered c, LATERAL shape_router.explain_shape(c.id) WITH ORDINALITY AS s(line, k)
 WHERE s.line NOT LIKE 'shape: %' AND s.line NOT LIKE 'relation: %' AND s.line NOT LIKE 'projects: %'
 ORDER BY c.n, s.k;
-- the issue's size target: a three-term conjunction over int/text columns in <= 64 bytes
SELECT shape_router.register_shape('pg_todos', 'user_id = 5 AND status = ''open'' AND priority > 3') AS s3 \gset
SELECT line FROM shape_router.explain_shape(:s3) AS line WHERE line LIKE 'program:%';
DROP TABLE pg_todos;
