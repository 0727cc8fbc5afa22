-- The SQL benchmark's table: 100 keys per tenant, ~100-byte values, and `n`, the number of
-- benchmark writes a row has taken (bench/wrk/hrana.lua increments it; bench/sql.sh sums it to
-- check that every acknowledged write was stored).
CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT NOT NULL, n INTEGER NOT NULL DEFAULT 0);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
INSERT INTO kv(k, v) SELECT i, printf('%.100c', 'v') FROM n;
