"""Unit tests of bench/lib/backup_bench.py's pure parts: cd bench/lib && python3 -m unittest
(the moto index test is skipped when moto is not installed)."""
import struct
import unittest

import backup_bench as bb


def frame(lsn, tenant, source, delivery, event_id, ms, ctype, body):
    s = lambda b: struct.pack("<I", len(b)) + b  # noqa: E731
    p = b"\x01" + struct.pack("<Q", lsn) + s(tenant.encode()) + s(source.encode())
    p += (b"\x01" + s(delivery.encode())) if delivery is not None else b"\x00"
    p += struct.pack("<qq", event_id, ms)
    p += (b"\x01" + s(ctype.encode())) if ctype is not None else b"\x00"
    p += s(body)
    return struct.pack("<II", len(p), 0) + p


class Keys(unittest.TestCase):
    def test_log_key(self):
        k = "node1/log/00000000000000000001-00000000000000000042.log.zst"
        self.assertEqual(bb.parse_log_key(k, "node1"), (1, 42))
        self.assertEqual(bb.parse_log_key(k, "node1/"), (1, 42))
        self.assertIsNone(bb.parse_log_key(k, "node2"))
        self.assertIsNone(bb.parse_log_key("node1/log/1-2.log.zst", "node1"))
        self.assertEqual(bb.parse_log_key("log/00000000000000000007-00000000000000000007.log.zst", ""), (7, 7))

    def test_snapshot_key(self):
        sha = "ab" * 32
        k = f"n/tenants/tenant0000001/{1764612345678:016d}-{sha}.db.zst"
        self.assertEqual(bb.parse_snapshot_key(k, "n"), ("tenant0000001", 1764612345678, sha))
        gone = f"n/tenants/acme/{5:016d}-gone.db.zst"
        self.assertEqual(bb.parse_snapshot_key(gone, "n"), ("acme", 5, "gone"))
        self.assertIsNone(bb.parse_snapshot_key(k, "other"))
        self.assertIsNone(bb.parse_snapshot_key("n/tenants/acme/12-x.db.zst", "n"))
        # Keys since the snapshot's log position is in them.
        with_lsn = f"n/tenants/tenant0000001/{1764612345678:016d}-{sha}-{7:020d}.db.zst"
        self.assertEqual(bb.parse_snapshot_key(with_lsn, "n"), ("tenant0000001", 1764612345678, sha))
        self.assertIsNone(bb.parse_snapshot_key(with_lsn.replace(f"-{7:020}", "-7"), "n"))


class Frames(unittest.TestCase):
    def test_decode(self):
        raw = frame(5, "acme", "github", "d-1", 7, 1000, "application/json", b'{"a":1}')
        raw += frame(6, "globex", "rpo", None, 8, 1001, None, b"")
        recs = bb.decode_frames(raw)
        self.assertEqual([r["lsn"] for r in recs], [5, 6])
        self.assertEqual(recs[0]["tenant"], "acme")
        self.assertEqual(recs[0]["delivery_id"], "d-1")
        self.assertEqual(recs[0]["body"], b'{"a":1}')
        self.assertEqual(recs[0]["frame_len"] + recs[1]["frame_len"], len(raw))
        self.assertIsNone(recs[1]["delivery_id"])
        self.assertEqual((recs[1]["event_id"], recs[1]["received_at_ms"], recs[1]["body_len"]), (8, 1001, 0))

    def test_torn_tail_is_left_out(self):
        raw = frame(1, "a", "s", "x", 1, 1, None, b"body")
        self.assertEqual(len(bb.decode_frames(raw + raw[:10])), 1)

    def test_unknown_version(self):
        raw = bytearray(frame(1, "a", "s", "x", 1, 1, None, b"body"))
        raw[8] = 2
        with self.assertRaises(ValueError):
            bb.decode_frames(bytes(raw))


class Stats(unittest.TestCase):
    def test_percentile_nearest_rank(self):
        v = list(range(1, 101))
        self.assertEqual(bb.percentile(v, 50), 50)
        self.assertEqual(bb.percentile(v, 99), 99)
        self.assertEqual(bb.percentile(v, 100), 100)
        self.assertEqual(bb.percentile([3.0], 99), 3.0)
        self.assertIsNone(bb.percentile([], 50))

    def test_dist(self):
        d = bb.dist([4, 1, 3, 2])
        self.assertEqual((d["n"], d["p50"], d["max"], d["mean"]), (4, 2, 4, 2.5))
        self.assertIsNone(bb.dist([])["p99"])

    def test_series_window_and_missing_fields(self):
        s = [{"t": 1, "rss_kb": 10, "fds": 5}, {"t": 2, "rss_kb": 30}, {"t": 3, "rss_kb": 20, "fds": 7}]
        st = bb.series_stats(s, ["rss_kb", "fds"], 2, 3)
        self.assertEqual(st["rss_kb"], {"peak": 30, "mean": 25.0, "n": 2})
        self.assertEqual(st["fds"], {"peak": 7, "mean": 7.0, "n": 1})

    def test_per_hour(self):
        self.assertEqual(bb.per_hour(1000, 180), 20000)
        self.assertIsNone(bb.per_hour(1000, 0))

    def test_metrics_parse(self):
        text = "# HELP x\nprocess_open_fds 17\nfoo{a=\"b\"} 3\ntenantd_backup_rounds_total 2\n"
        self.assertEqual(bb.parse_metrics(text), {"process_open_fds": 17.0, "tenantd_backup_rounds_total": 2.0})


class Rpo(unittest.TestCase):
    def test_webhook(self):
        d, missing = bb.webhook_rpo([("a", 10.0), ("b", 11.0), ("c", 12.0)], {"a": 15.0, "b": 15.5})
        self.assertEqual(d, [5.0, 4.5])
        self.assertEqual(missing, ["c"])

    def test_sql_takes_the_first_snapshot_after_the_ack(self):
        snaps = {"t": [(9000, 9.1), (20000, 20.3), (80000, 80.2)]}
        stored, taken, missing = bb.sql_rpo([("t", 10.0), ("t", 20.0), ("t", 90.0), ("u", 1.0)], snaps)
        self.assertEqual([round(x, 3) for x in stored], [10.3, 60.2])
        self.assertEqual([round(x, 3) for x in taken], [10.0, 60.0])
        self.assertEqual(missing, 2)

    def test_sql_snapshot_taken_at_the_ack_ms_does_not_count(self):
        stored, _, missing = bb.sql_rpo([("t", 20.0)], {"t": [(20000, 20.1)]})
        self.assertEqual((stored, missing), ([], 1))


class Journal(unittest.TestCase):
    def test_stats(self):
        sha = "0" * 64
        lines = [
            f"1.0 PUT b p/tenants/a/{1:016d}-{sha}.db.zst 100",
            f"2.0 PUT b p/tenants/b/{2:016d}-gone.db.zst 0",
            "3.0 PUT b p/log/00000000000000000001-00000000000000000009.log.zst 50",
            f"5.0 PUT b p/tenants/c/{5:016d}-{sha}.db.zst 200",
            f"6.0 DEL b p/tenants/a/{1:016d}-{sha}.db.zst 0",
            "bad line",
        ]
        e = bb.journal_entries(lines)
        self.assertEqual(len(e), 5)
        s = bb.journal_stats(e, "p")
        self.assertEqual((s["snapshot_puts"], s["snapshot_bytes"], s["tombstone_puts"]), (2, 300, 1))
        self.assertEqual((s["log_chunk_puts"], s["log_chunk_bytes"], s["deletes"]), (1, 50, 1))
        self.assertEqual((s["put_span_s"], s["puts_per_s"]), (4.0, 0.8))
        w = bb.journal_stats(e, "p", 2.5, 5.0)
        self.assertEqual((w["snapshot_puts"], w["log_chunk_puts"], w["first_put"]), (1, 1, 3.0))


try:
    from moto.s3 import models as s3m
    from moto.s3 import utils as s3u
except ImportError:  # pragma: no cover
    s3m = None


@unittest.skipIf(s3m is None, "moto is not installed")
class MotoIndex(unittest.TestCase):
    """The indexed prefix listing returns what moto's own scan returns."""

    def test_same_listings(self):
        import random
        from moto.core import DEFAULT_ACCOUNT_ID

        backend = s3m.s3_backends[DEFAULT_ACCOUNT_ID]["global"]
        stock = s3m.S3Backend.list_objects
        backend.create_bucket("bench-index-test", "us-east-1")
        rnd = random.Random(1)
        names = [f"p/tenants/t{rnd.randint(0, 40):03d}/{rnd.randint(0, 10**6):016d}-x.db.zst" for _ in range(300)]
        names += [f"p/log/{i:020d}-{i:020d}.log.zst" for i in range(30)] + ["q/other", "p/tenants"]
        for n in names:
            backend.put_object("bench-index-test", n, b"v")
        backend.put_object("bench-index-test", names[0], b"second version")
        backend.delete_object("bench-index-test", names[1])
        orig = bb.install_index(s3m, s3u)
        try:
            self.assertIs(orig, stock)
            bucket = backend.get_bucket("bench-index-test")
            cases = [("p/", None, None, None), ("p/tenants/", "/", None, None), ("p/tenants/", "/", None, 7),
                     ("p/log/", None, names[-10], None), ("p/tenants/t005/", None, None, 2), ("zzz", None, None, None),
                     ("p/tenants", "/", None, None), ("p/log/", None, None, 5)]
            for prefix, delim, marker, mx in cases:
                a = stock(backend, bucket, prefix, delim, marker, mx)
                b = s3m.S3Backend.list_objects(backend, bucket, prefix, delim, marker, mx)
                self.assertEqual([k.name for k in a[0]], [k.name for k in b[0]], (prefix, delim, marker, mx))
                self.assertEqual(list(a[1]), list(b[1]))
                self.assertEqual(a[2:], b[2:])
            # keys put after the index was built are found too
            backend.put_object("bench-index-test", "p/log/zz-late", b"v")
            b = s3m.S3Backend.list_objects(backend, bucket, "p/log/zz", None, None, None)
            self.assertEqual([k.name for k in b[0]], ["p/log/zz-late"])
        finally:
            s3m.S3Backend.list_objects = stock


if __name__ == "__main__":
    unittest.main()
