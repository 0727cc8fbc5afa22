#!/usr/bin/env python3
"""Did a write benchmark store what it acknowledged? Sums a scalar query over every *.db under
DIR (recursively; run it after the server has stopped) and compares the sum with the writes wrk
saw succeed: requests - non-2xx - in-band errors, from its RESULT_JSON line.

Prints one JSON object: {"writes_acknowledged", "writes_stored", "files", "write_check"} where
write_check is "ok", or a sentence saying why the run is refused. Exits 1 when refused:
  - no write was acknowledged (the benchmark measured nothing), or
  - fewer writes were stored than acknowledged (writes that changed no bytes, or were lost).
More stored than acknowledged is fine: requests still in flight when wrk stopped.

usage: check_writes.py DIR QUERY RESULT_JSON
  QUERY  e.g. "SELECT total(n) FROM kv" (SQL benchmark) or "SELECT count(*) FROM events"
"""
import json
import os
import sqlite3
import sys


def stored(root, query):
    total = files = 0
    for d, _, names in os.walk(root):
        for name in names:
            # tenantd's node catalog (data/catalog.db) is not a tenant file.
            if not name.endswith(".db") or (d == root and name == "catalog.db"):
                continue
            con = sqlite3.connect(os.path.join(d, name))
            try:
                total += int(con.execute(query).fetchone()[0] or 0)
            finally:
                con.close()
            files += 1
    return total, files


def acknowledged(result):
    r = json.loads(result) if result.strip() else {}
    failed = r.get("non2xx", r.get("err_status", 0)) + r.get("inband_errors", 0)
    return r.get("requests", 0) - failed


def main():
    root, query, result = sys.argv[1], sys.argv[2], sys.argv[3]
    ack = acknowledged(result)
    total, files = stored(root, query)
    if ack <= 0:
        check = "refused: wrk saw no successful write, so the run measured no writes"
    elif total < ack:
        check = (
            f"refused: {ack} writes acknowledged but only {total} stored "
            f"(`{query}` summed over {files} files): writes that changed no bytes, or lost"
        )
    else:
        check = "ok"
    print(json.dumps({"writes_acknowledged": ack, "writes_stored": total, "files": files,
                      "write_check": check}))
    sys.exit(0 if check == "ok" else 1)


main()
