-- The SQL benchmark's table: 100 keys per tenant, ~100-byte values.
CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT NOT NULL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
INSERT INTO kv(k, v) SELECT i, printf('%.100c', 'v') FROM n;
