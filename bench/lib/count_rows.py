#!/usr/bin/env python3
"""Sum the rows of TABLE over every *.db under DIR (recursively) written after MARKER.

Files whose .db and -wal are both older than MARKER still hold only the provisioned template's
rows (zero), so they are skipped; --all counts every file. tenantd's own node files (the
catalog, `catalog.db`, next to `tenants/`) are not tenant files and are left out. Prints: <rows> <files counted> <files>.
usage: count_rows.py DIR TABLE [MARKER] [--all]
"""
import os
import sqlite3
import sys


def main():
    args = [a for a in sys.argv[1:] if a != "--all"]
    every = "--all" in sys.argv[1:]
    root, table = args[0], args[1]
    since = os.stat(args[2]).st_mtime if len(args) > 2 and not every else None
    rows = counted = files = 0
    for d, _, names in os.walk(root):
        for n in names:
            if not n.endswith(".db") or (d == root and n == "catalog.db"):
                continue
            files += 1
            p = os.path.join(d, n)
            if since is not None:
                times = [os.stat(p).st_mtime]
                if os.path.exists(p + "-wal"):
                    times.append(os.stat(p + "-wal").st_mtime)
                if max(times) < since:
                    continue
            c = sqlite3.connect(p)
            rows += c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            c.close()
            counted += 1
    print(rows, counted, files)


main()
