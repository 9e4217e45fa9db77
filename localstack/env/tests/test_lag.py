"""ReplicaLag as lag.py measures it, against scripted answers of the two servers: never less than what a
promotion could lose."""

import time
import unittest
from unittest import mock

import helpers  # noqa: F401

from drillenv import lag


class Server:
    def __init__(self, port):
        self.port = port


PRIMARY, STANDBY = Server(1), Server(2)


class Backing:
    def __init__(self):
        self.caught_up = {}


def answers(primary, standby):
    """psql stand-in: `primary` answers the source's query, `standby` the standby's ('' = unreachable)."""
    return lambda port, sql, check=True: primary if port == PRIMARY.port else standby


class LagTest(unittest.TestCase):
    def measure(self, backing, primary, standby, interval=1.0):
        with mock.patch.object(lag.postgres, "psql", answers(primary, standby)):
            return lag.measure(backing, "replica", STANDBY, PRIMARY, interval)

    def test_a_standby_that_replayed_everything_lags_zero_and_is_remembered(self):
        backing = Backing()
        before = time.time()
        self.assertEqual(self.measure(backing, "t|0/3000060", f"t|0/3000060|{before - 600}|t"), 0.0)
        self.assertGreaterEqual(backing.caught_up["replica"], before)

    def test_a_streaming_standby_behind_lags_since_its_last_replayed_commit(self):
        replayed = time.time() - 1.5
        lag_s = self.measure(Backing(), "t|0/3000100", f"t|0/3000060|{replayed}|t")
        self.assertAlmostEqual(lag_s, 1.5, delta=0.2)

    def test_a_dead_primary_makes_the_lag_grow_from_the_later_of_last_replay_and_last_caught_up(self):
        backing = Backing()
        backing.caught_up["replica"] = time.time() - 3.0
        replayed = time.time() - 10.0  # an idle primary: its last commit is old, but it was caught up 3 s ago
        lag_s = self.measure(backing, "", f"t|0/3000060|{replayed}|f", interval=1.0)
        self.assertAlmostEqual(lag_s, 3.0 + 1.0, delta=0.2)

    def test_a_standby_cut_off_while_the_primary_writes_adds_the_publishing_interval(self):
        replayed = time.time() - 2.0
        lag_s = self.measure(Backing(), "t|0/3000100", f"t|0/3000060|{replayed}|f", interval=1.0)
        self.assertAlmostEqual(lag_s, 3.0, delta=0.2)

    def test_nothing_to_go_by_or_no_standby_gives_no_datapoint(self):
        self.assertIsNone(self.measure(Backing(), "", "t|0/3000060||f"))
        self.assertIsNone(self.measure(Backing(), "t|0/3000100", ""))
        self.assertIsNone(self.measure(Backing(), "t|0/3000100", "f|||f"))

    def test_lsns_compare_as_numbers(self):
        self.assertLess(lag.lsn("0/FFFFFFFF"), lag.lsn("1/0"))
        self.assertEqual(lag.lsn("16/B374D848"), (0x16 << 32) + 0xB374D848)


if __name__ == "__main__":
    unittest.main()
