"""Unit tests of bench/lib/cluster_move.py's pure parts: cd bench/lib && python3 -m unittest"""
import json
import unittest
from datetime import datetime, timezone

import cluster_move as cm


class Sizes(unittest.TestCase):
    def test_parse_size(self):
        self.assertEqual(cm.parse_size("1M"), 1 << 20)
        self.assertEqual(cm.parse_size("100MiB"), 100 << 20)
        self.assertEqual(cm.parse_size("1G"), 1 << 30)
        self.assertEqual(cm.parse_size("512k"), 512 << 10)
        self.assertEqual(cm.parse_size("1234"), 1234)

    def test_fill_rows_add_up(self):
        self.assertEqual(cm.fill_rows(1 << 20), [1 << 20])
        self.assertEqual(cm.fill_rows(1000), [1000])
        rows = cm.fill_rows((3 << 20) + 5)
        self.assertEqual(rows, [1 << 20] * 3 + [5])
        self.assertEqual(sum(cm.fill_rows(100 << 20)), 100 << 20)


class Routing(unittest.TestCase):
    def test_slot_matches_haproxy(self):
        # Values read off HAProxy 2.6.12 (docs/CLUSTER.md; crates/cluster/src/slot.rs).
        self.assertEqual(cm.slot_of("acme"), 14910)
        self.assertEqual(cm.slot_of("globex"), 6906)

    def test_owner_override_then_slot(self):
        table = {
            "epoch": 3,
            "ranges": [
                {"from": 0, "to": 8191, "node": "a"},
                {"from": 8192, "to": 16383, "node": "b"},
            ],
            "overrides": {"globex": "c"},
        }
        self.assertEqual(cm.owner(table, "acme"), "b")
        self.assertEqual(cm.owner(table, "globex"), "c")
        del table["overrides"]
        self.assertEqual(cm.owner(table, "globex"), "a")
        self.assertEqual(cm.slot_counts(table), {"a": 8192, "b": 8192})

    def test_owner_of_uncovered_slot_is_an_error(self):
        with self.assertRaises(ValueError):
            cm.owner({"ranges": [{"from": 0, "to": 10, "node": "a"}]}, "acme")


def sample(t0, t1, ok=True, **statuses):
    return {"t0": t0, "t1": t1, "ok": ok, "statuses": statuses or {"202": 1}}


class Analysis(unittest.TestCase):
    def test_percentile_nearest_rank(self):
        self.assertIsNone(cm.percentile([], 50))
        self.assertEqual(cm.percentile([5, 1, 3], 50), 3)
        self.assertEqual(cm.percentile(list(range(1, 101)), 99), 99)
        self.assertEqual(cm.percentile([7], 99), 7)

    def test_pause_is_the_longest_gap_between_acks(self):
        s = [sample(0.0, 0.1), sample(0.1, 0.2), sample(0.2, 2.7), sample(2.7, 2.8)]
        self.assertEqual(cm.pause(s), (2.5, 0.2, 2.7))
        # an unacknowledged write does not end a gap
        s.append(sample(0.3, 1.0, ok=False))
        self.assertEqual(cm.pause(s)[0], 2.5)

    def test_latencies_outside_the_pause_and_status_counts(self):
        s = [
            sample(0.0, 0.01),
            sample(0.01, 0.02),
            # the stalled write: fenced, two 503s, a 421, then acknowledged
            {"t0": 0.02, "t1": 5.02, "ok": True, "statuses": {"503": 2, "421": 1, "202": 1}},
            sample(5.02, 5.05),
        ]
        a = cm.analyse(s, move_start=0.015, move_end=5.5)
        self.assertEqual(a["pause_ms"], 5000.0)
        self.assertEqual(a["write_max_ms"], 5000.0)
        # 10, 10 and 30 ms: the stalled write is inside the pause and left out
        self.assertEqual(a["write_p50_ms"], 10.0)
        self.assertEqual(a["write_p99_ms"], 30.0)
        self.assertEqual((a["status_503"], a["status_421"]), (2, 1))
        self.assertEqual(a["writes_acked"], 4)
        self.assertEqual(a["pause_start_after_move_start_ms"], 5.0)


class ExactlyOnce(unittest.TestCase):
    def test_counts(self):
        b = cm.delivery_body
        acked = {"w0-0": 1, "w0-1": 2, "w0-2": 3, "w0-3": 4}
        stored = [(1, b("w0-0")), (2, b("w0-1")), (5, b("w0-1")), (9, b("w0-3")), (6, b("x"))]
        self.assertEqual(
            cm.check_once(acked, stored),
            {"lost": 1, "twice": 1, "wrong_id": 1, "extra": 1},
        )

    def test_all_present_once(self):
        acked = {f"w1-{i}": i + 1 for i in range(50)}
        stored = [(i + 1, cm.delivery_body(f"w1-{i}")) for i in range(50)]
        self.assertEqual(
            cm.check_once(acked, stored),
            {"lost": 0, "twice": 0, "wrong_id": 0, "extra": 0},
        )


class Phases(unittest.TestCase):
    def line(self, ts, msg, tenant="mv-1g"):
        return json.dumps({"timestamp": ts, "level": "INFO",
                           "fields": {"message": msg, "tenant": tenant}})

    def test_phases_from_node_logs(self):
        start = datetime(2026, 12, 1, 19, 0, 0, tzinfo=timezone.utc).timestamp()
        lines = [
            "token key: /x/token.key",
            self.line("2026-12-01T19:00:00.010000Z", "tenant fenced for a move"),
            self.line("2026-12-01T19:00:00.020000Z", "tenant fenced for a move", "other"),
            self.line("2026-12-01T19:00:02.010000Z", "snapshot taken for a move"),
            self.line("2026-12-01T19:00:05.010000Z", "tenant imported"),
            self.line("2026-12-01T19:00:05.030000Z", "tenant moved away"),
        ]
        p = cm.move_phases(lines, "mv-1g", start, start + 5.1)
        self.assertEqual(p, {
            "start_to_fenced_ms": 10.0,
            "fenced_to_snapshot_ms": 2000.0,
            "snapshot_to_imported_ms": 3000.0,
            "imported_to_committed_ms": 20.0,
            "committed_to_end_ms": 70.0,
        })

    def test_a_missing_step_leaves_its_phases_out(self):
        lines = [self.line("2026-12-01T19:00:00.010000Z", "tenant fenced for a move")]
        p = cm.move_phases(lines, "mv-1g", 0, 1)
        self.assertEqual(list(p), ["start_to_fenced_ms"])


if __name__ == "__main__":
    unittest.main()
