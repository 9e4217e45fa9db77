"""The latency profile: parsing (with errors that name the field), p50 and seeded sampling, the log."""

import json
import math
import os
import statistics
import tempfile
import unittest

from helpers import REPO

from drillenv import delays

PROFILE = os.path.join(REPO, "drills", "profiles", "aws-typical.yaml")


def write(text):
    f = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    f.write(text)
    f.close()
    return f.name


class ProfileTest(unittest.TestCase):
    def test_the_shipped_profile_covers_every_operation_with_p50_at_most_p95(self):
        profile = delays.load_profile(PROFILE)
        self.assertEqual(set(profile), set(delays.OPERATIONS))
        for name, (p50, p95) in profile.items():
            self.assertLessEqual(p50, p95, name)

    def test_every_figure_of_the_shipped_profile_has_a_comment_above_it(self):
        with open(PROFILE) as f:
            lines = f.read().splitlines()
        for operation in delays.OPERATIONS:
            at = next(i for i, line in enumerate(lines) if line.strip().startswith(operation + ":"))
            self.assertTrue(lines[at - 1].strip().startswith("#"), f"{operation} has no source comment")

    def test_durations_use_drctls_units(self):
        self.assertEqual(delays.parse_duration("1m30s", "x"), 90)
        self.assertEqual(delays.parse_duration("250ms", "x"), 0.25)
        self.assertEqual(delays.parse_duration("2h", "x"), 7200)
        with self.assertRaisesRegex(ValueError, r"operations.route53.change.p50: `soon` is not a duration"):
            delays.parse_duration("soon", "operations.route53.change.p50")

    def test_bad_profiles_are_refused_naming_the_file_and_field(self):
        full = {name: "{p50: 1s, p95: 2s}" for name in delays.OPERATIONS}
        cases = {
            "missing": ({k: v for k, v in full.items() if k != "kube.pod_ready"}, "no figures for kube.pod_ready"),
            "inverted": (dict(full, **{"route53.change": "{p50: 2m, p95: 1m}"}),
                         "operations.route53.change: p50 must be positive and at most p95"),
            "p99": (dict(full, **{"route53.change": "{p50: 1s, p99: 2s}"}),
                    "operations.route53.change: give exactly p50 and p95"),
            "unit": (dict(full, **{"route53.change": "{p50: 1 sec, p95: 2s}"}),
                     "operations.route53.change.p50: `1 sec` is not a duration"),
        }
        for case, (operations, message) in cases.items():
            path = write("name: t\noperations:\n" + "".join(f"  {k}: {v}\n" for k, v in operations.items()))
            with self.subTest(case), self.assertRaises(ValueError) as raised:
                delays.load_profile(path)
            self.assertIn(path, str(raised.exception))
            self.assertIn(message, str(raised.exception))


class DelaysTest(unittest.TestCase):
    def config(self, **extra):
        log = tempfile.NamedTemporaryFile(delete=False).name
        profile = {"route53.change": [60.0, 120.0], "kube.pod_ready": [15.0, 60.0]}
        return dict({"profile": profile, "time_scale": 0.02, "seed": None, "delays_log": log}, **extra)

    def test_without_a_profile_nothing_waits_and_nothing_is_logged(self):
        d = delays.Delays({})
        self.assertIsNone(d.figure("route53.change"))
        self.assertAlmostEqual(d.due("route53.change", "z"), __import__("time").time(), delta=0.05)

    def test_p50_times_the_scale_is_applied_and_logged(self):
        config = self.config()
        d = delays.Delays(config)
        start = __import__("time").time()
        end = d.due("route53.change", "Z1 1 change(s)")
        self.assertAlmostEqual(end - start, 1.2, delta=0.05)
        with open(config["delays_log"]) as f:
            (line,) = [json.loads(x) for x in f]
        self.assertEqual((line["operation"], line["resource"], line["delay_s"], line["profile_s"], line["scale"],
                          line["sampled"]), ("route53.change", "Z1 1 change(s)", 1.2, 60.0, 0.02, False))
        self.assertRegex(line["start"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertRegex(line["end"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def test_a_seed_samples_a_lognormal_fitted_to_p50_and_p95_reproducibly(self):
        first = [delays.Delays(self.config(seed=7)).figure("route53.change") for _ in range(1)]
        d, again = delays.Delays(self.config(seed=7)), delays.Delays(self.config(seed=7))
        draws = [d.figure("route53.change") for _ in range(4000)]
        self.assertEqual(draws[:50], [again.figure("route53.change") for _ in range(50)])
        self.assertEqual(first[0], draws[0])
        self.assertNotEqual(draws[:50], [delays.Delays(self.config(seed=8)).figure("route53.change")] * 50)
        ordered = sorted(draws)
        self.assertAlmostEqual(statistics.median(draws), 60.0, delta=60.0 * 0.06)
        self.assertAlmostEqual(ordered[int(0.95 * len(ordered))], 120.0, delta=120.0 * 0.08)
        self.assertTrue(all(x > 0 and math.isfinite(x) for x in draws))


if __name__ == "__main__":
    unittest.main()
