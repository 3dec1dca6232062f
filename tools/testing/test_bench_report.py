#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host tests of bench_report.py: ratios and targets from BENCH lines, the
files it writes, and a refusal when a run is missing."""

import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_report  # noqa: E402


def run(bench, per_s, p99_ns, **extra):
    r = {
        "bench": bench,
        "ops": extra.pop("ops", 100),
        "secs": 1.0,
        "per_s": per_s,
        "lat_ns": {"samples": 100, "p50": p99_ns // 2, "p99": p99_ns, "max": p99_ns,
                   "cdf": [[p99_ns // 2, 0.5], [p99_ns, 1.0]]},
    }
    r.update(extra)
    return "BENCH " + json.dumps(r)


def log(speedup8=1.0, flushes8=200, restarts=20):
    lines = ["[    1.0] boot noise", run("write_flush", 1000.0, 2000_000)]
    for w in (1, 2, 4, 8):
        per_s = 400.0 * (speedup8 if w == 8 else 1.0)
        f = flushes8 if w == 8 else 200
        lines.append(run("inserts", per_s, 4000_000, writers=w, members=2, flushes=f))
    lines.append(run("restart", 50.0, 3000_000, ops=20,
                     option_write_ns={"samples": 20, "p50": 1000_000, "p99": 2000_000,
                                      "max": 2000_000, "cdf": [[2000_000, 1.0]]},
                     module={"restarts": restarts, "restart_latency_ns_p50": 200_000,
                             "restart_latency_ns_p99": 400_000,
                             "restart_latency_ns_max": 500_000}))
    lines.append(run("discard", 500.0, 10_000_000, ops=2048, ranges=2, module_secs=4.096,
                     module_per_s=500.0, blkdiscard_per_s=600.0))
    lines.append("BENCH " + json.dumps({"bench": "memory", "buckets": 1000, "bucket_bytes": 1000,
                                        "keys": 100, "btree_bytes": 6000}))
    for label, ms, buckets, keys in (("buckets_small", 20.0, 16384, 0), ("buckets_1m", 400.0, 4194304, 0),
                                     ("keys_small", 10.0, 200000, 1000),
                                     ("keys_large", 900.0, 200000, 100000),
                                     ("keys_cached", 950.0, 200000, 100000), ("replay", 50.0, 200000, 3000)):
        cached = label == "keys_cached"
        lines.append("BENCH " + json.dumps({
            "bench": "register", "label": label, "register_ms": ms, "unregister_ms": 5.0,
            "members": 4 if label.startswith("buckets") else 2, "buckets": buckets, "keys": keys,
            "replayed": 2000 if label == "replay" else 0, "replay_ms": 40 if label == "replay" else 0,
            "memory_bucket_bytes": buckets,
            "memory_btree_bytes": 1100000 if cached else keys * 50,
            "btree_cache_bytes": 1000000 if cached else keys * 45,
            "btree_cache_size_bytes": 1048576 if cached else 64 << 20}))
    lines.append("BENCH " + json.dumps({"bench": "fastpath", "iterations": 1000,
                                        "fastpath_ns": 500_000, "baseline_ns": 200_000}))
    # Durable inserts by one writer, the replay's baseline: not one of the
    # 1..8 writer runs.
    lines.append(run("inserts", 100.0, 9000_000, writers=1, members=2, flushes=200,
                     label="replay_baseline"))
    # A kernel message after the object, on the same console line.
    lines.append("BENCH " + json.dumps({"bench": "replay_1108", "prioritised_ms": 1200,
                                        "all_free_ms": 1000}) + "[    6.6] bkalloc: volume x")
    return "\r\n".join(lines) + "\r\n"


class Report(unittest.TestCase):
    def report(self, text):
        d = tempfile.mkdtemp()
        p = Path(d) / "serial.log"
        p.write_text(text)
        out = Path(d) / "results"
        r = subprocess.run([sys.executable, str(HERE / "bench_report.py"), str(out), str(p)],
                           capture_output=True, text=True)
        return r, out

    def test_ratios_targets_and_files(self):
        r, out = self.report(log())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.rstrip().endswith(f"results: {out}"), r.stdout)
        res = {x["name"]: x for x in json.loads((out / "results.json").read_text())}
        for x in res.values():
            self.assertEqual(set(x), {"name", "value", "unit", "baseline", "ratio", "target", "met"})
        one = res["inserts_per_s_1_writers"]
        self.assertEqual((one["value"], one["baseline"], one["ratio"], one["met"]), (400.0, 1000.0, 0.4, False))
        self.assertEqual(res["insert_scaling_8_writers"]["ratio"], 1.0)
        self.assertFalse(res["insert_scaling_8_writers"]["met"])
        # 200 flushes over 2 members for 100 inserts: one per insert each.
        self.assertEqual(res["flushes_per_insert_8_writers"]["value"], 1.0)
        self.assertFalse(res["flushes_per_insert_8_writers"]["met"])
        self.assertEqual(res["insert_p99_latency_1_writer"]["ratio"], 2.0)
        self.assertTrue(res["insert_p99_latency_1_writer"]["met"])
        m = res["restart_p99_module"]
        self.assertEqual((m["value"], m["target"], m["met"]), (400.0, "<= 1000 us", True))
        rp = res["replay_1108_prioritised_discards"]
        self.assertEqual((rp["value"], rp["baseline"], rp["ratio"], rp["met"]), (1200, 1000, 1.2, True))
        w = res["restart_p99_write_to_return"]
        self.assertEqual((w["value"], w["baseline"], w["ratio"], w["met"]), (3000.0, 2000.0, 1.5, True))
        d = res["discard_buckets_per_s"]
        self.assertEqual((d["value"], d["baseline"], d["ratio"], d["met"]), (500.0, 600.0, 0.833, True))
        m = res["memory_per_bucket"]
        self.assertEqual((m["value"], m["target"], m["met"]), (1.0, "<= 1.5 bytes", True))
        k = res["memory_per_key"]
        self.assertEqual((k["value"], k["ratio"], k["met"]), (60.0, 1.5, True))
        b = res["register_4x1048576_buckets"]
        self.assertEqual((b["value"], b["baseline"], b["ratio"], b["met"]), (400.0, 20.0, 20.0, True))
        self.assertEqual(res["memory_per_bucket_at_scale"]["value"], 1.0)
        k = res["register_100000_keys"]
        self.assertEqual((k["value"], k["target"], k["met"]), (900.0, "<= 2000 ms", True))
        self.assertEqual(res["memory_per_key_at_100000_keys"]["ratio"], 1.25)
        c = res["memory_btree_at_100000_keys_cache_1_mib"]
        self.assertEqual((c["value"], c["baseline"], c["ratio"], c["met"]), (1100000, 1048576, 1.049, True))
        f = res["fastpath_alloc_release"]
        self.assertEqual((f["value"], f["baseline"], f["ratio"], f["met"]), (500.0, 200.0, 2.5, True))
        r = res["replay_keys_per_s"]
        self.assertEqual((r["value"], r["baseline"], r["ratio"], r["met"]), (50000.0, 100.0, 500.0, True))
        for f in ("latency-cdf.svg", "throughput.svg", "results.txt", "runs.json"):
            self.assertTrue((out / f).stat().st_size > 0, f)
        self.assertIn("<polyline", (out / "latency-cdf.svg").read_text())
        # The replay's one-writer baseline is in neither plot.
        self.assertEqual((out / "latency-cdf.svg").read_text().count(">1 writer(s)<"), 1)

    def test_replay_repeats_give_medians_and_the_fastpath_its_parts(self):
        text = log().replace('"prioritised_ms": 1200, "all_free_ms": 1000',
                             '"prioritised_ms": [1500, 1200, 9000], "all_free_ms": [1000, 800, 1100, 950]')
        text = text.replace('"baseline_ns": 200000}',
                            '"baseline_ns": 200000, "locks_ns": 100000, "placement_ns": 250000}')
        r, out = self.report(text)
        self.assertEqual(r.returncode, 0, r.stderr)
        res = {x["name"]: x for x in json.loads((out / "results.json").read_text())}
        rp = res["replay_1108_prioritised_discards"]
        self.assertEqual((rp["value"], rp["baseline"], rp["ratio"]), (1500, 950, 1.579))
        self.assertIn("fastpath per alloc+release: 500 ns = two lock round trips 100 ns + "
                      "request build and placement 200 ns + open, commit and release 200 ns "
                      "(baseline mutex+counter 200 ns)", r.stdout)

    def test_restart_parts_give_the_true_p99_and_their_line(self):
        def pct(p50, p99):
            return {"samples": 20, "p50": p50, "p99": p99, "max": p99, "cdf": [[p99, 1.0]]}

        parts = {"option_lock": pct(2_000, 9_000), "option_superblock": pct(900_000, 1_800_000),
                 "wake": pct(100_000, 700_000), "lock": pct(5_000, 60_000),
                 "rebuild": pct(3_000, 8_000), "restart": pct(120_000, 950_000)}
        text = log().replace('"restart_latency_ns_max": 500000}',
                             '"restart_latency_ns_max": 500000}, "parts": ' + json.dumps(parts))
        r, out = self.report(text)
        self.assertEqual(r.returncode, 0, r.stderr)
        res = {x["name"]: x for x in json.loads((out / "results.json").read_text())}
        # The samples' p99, not the histogram's 400 us.
        m = res["restart_p99_module"]
        self.assertEqual((m["value"], m["met"]), (950.0, True))
        self.assertIn("restart parts, p50/p99 us over 20 trials: option write: lock 2/9, "
                      "superblocks 900/1800; then wake 100/700, lock 5/60, rebuild 3/8 = "
                      "restart 120/950", r.stdout)
        self.assertIn("restart parts", (out / "results.txt").read_text())

    def test_discard_rounds_give_the_median_ratio(self):
        extra = [run("discard", 500.0, 10_000_000, ops=2048, ranges=2, module_secs=4.096,
                     module_per_s=m, blkdiscard_per_s=b) for m, b in ((100.0, 1000.0), (900.0, 1000.0))]
        r, out = self.report(log() + "\r\n".join(extra) + "\r\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        res = {x["name"]: x for x in json.loads((out / "results.json").read_text())}
        d = res["discard_buckets_per_s"]
        # Ratios 0.1, 0.833 and 0.9: the middle one, with its own baseline.
        self.assertEqual((d["value"], d["baseline"], d["ratio"]), (500.0, 600.0, 0.833))

    def test_insert_runs_with_cpu_give_the_limits_line(self):
        r, _ = self.report(log(flushes8=40).replace('"flushes": 40}', '"flushes": 40, "cpu_busy": 0.97}')
                           .replace('"flushes": 200}', '"flushes": 200, "cpu_busy": 0.5}'))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("inserts by writers: 1: 400/s, 100 flushes/s/member, CPU 50%; "
                      "2: 400/s, 100 flushes/s/member, CPU 50%; 4: 400/s, 100 flushes/s/member, "
                      "CPU 50%; 8: 400/s, 20 flushes/s/member, CPU 97%", r.stdout)
        # Without the CPU share (an older tool), no line.
        r, _ = self.report(log())
        self.assertNotIn("inserts by writers", r.stdout)

    def test_group_commit_would_meet_its_targets(self):
        r, out = self.report(log(speedup8=3.5, flushes8=40))
        self.assertEqual(r.returncode, 0, r.stderr)
        res = {x["name"]: x for x in json.loads((out / "results.json").read_text())}
        self.assertTrue(res["insert_scaling_8_writers"]["met"])
        self.assertEqual(res["flushes_per_insert_8_writers"]["value"], 0.2)
        self.assertTrue(res["flushes_per_insert_8_writers"]["met"])

    def test_restarts_the_module_did_not_count_are_an_error(self):
        r, _ = self.report(log(restarts=19))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("counted 19 restarts", r.stderr)

    def test_a_missing_run_is_an_error(self):
        text = "\n".join(l for l in log().splitlines() if '"writers": 4' not in l)
        r, out = self.report(text)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("inserts by 1, 2, 4 and 8", r.stderr)
        text = "\n".join(l for l in log().splitlines() if "replay_1108" not in l)
        r, out = self.report(text)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("replay_1108", r.stderr)
        self.assertFalse((out / "results.json").exists())
        text = "\n".join(l for l in log().splitlines() if '"keys_large"' not in l)
        r, out = self.report(text)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("got ['buckets_1m', 'buckets_small', 'keys_cached', 'keys_small', 'replay'] and 1", r.stderr)
        text = "\n".join(l for l in log().splitlines() if '"replay_baseline"' not in l)
        r, out = self.report(text)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("and 0", r.stderr)
        text = log().replace('"replayed": 2000', '"replayed": 0')
        r, out = self.report(text)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("the replay register run has no replayed", r.stderr)
        text = "\n".join(l for l in log().splitlines() if '"discard"' not in l)
        r, out = self.report(text)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("a discard run", r.stderr)


if __name__ == "__main__":
    unittest.main()
