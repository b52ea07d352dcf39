# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""
A short smoke run of every sipload scenario against a real ksrd with the
bench route scripts (t/bench/routes, the ones t/bench/compare runs on both
servers): each completes, nothing fails, and the JSON report parses. Not a
measure of speed: a couple of seconds at a low rate each.

A scenario whose route needs KSR functions that `ksrd --dump-api` does not
list (a subsystem still being written) is skipped, saying which.
"""
import json
import os
import re
import subprocess
import time
import unittest
from pathlib import Path

from ksrtest import REPO, Server, free_port, ksrd_path, run_ksrd

ROUTES = REPO / "t" / "bench" / "routes"
SCRIPT = {"options": "options.lua", "register": "register.lua", "register-auth": "register-auth.lua",
          "call": "relay.lua", "message": "relay.lua"}


def sipload_path():
    env = os.environ.get("SIPLOAD")
    return Path(env) if env else ksrd_path().parent / "t" / "bench" / "sipload"


def api_functions():
    dump = json.loads(run_ksrd("--dump-api").stdout)
    return {(f["module"] + "." if f["module"] else "") + f["name"] for f in dump["functions"]}


def missing_functions(script):
    """KSR functions the route calls that ksrd does not have."""
    used = set(re.findall(r"KSR\.((?:[a-z_]+\.)?[A-Za-z_0-9]+)\s*\(", script.read_text()))
    return sorted(used - api_functions())


class SiploadSmokeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sipload = sipload_path()
        if not cls.sipload.exists():
            raise unittest.SkipTest(f"{cls.sipload} not built")

    def run_sipload(self, *args, timeout=60):
        r = subprocess.run([str(self.sipload), *map(str, args), "--json"], capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        self.assertIn(r.returncode, (0,), f"sipload {' '.join(map(str, args))}: exit {r.returncode}\n{r.stderr}")
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
        self.assertEqual(len(lines), 1, f"one JSON report expected:\n{r.stdout}")
        return json.loads(lines[0]), r.stderr

    def assertCompleted(self, rep, srv):
        for key in ("started", "completed", "failed", "retransmissions", "rate", "p50_ms", "p90_ms", "p99_ms",
                    "p999_ms"):
            self.assertIn(key, rep)
        self.assertGreater(rep["completed"], 0, f"{rep}\n{srv.log()[-3000:]}")
        self.assertLessEqual(rep["failed"], rep["started"] // 500, f"{rep}\n{srv.log()[-3000:]}")
        self.assertEqual(rep["completed"] + rep["failed"], rep["started"])
        self.assertLessEqual(rep["p50_ms"], rep["p99_ms"])
        self.assertLessEqual(rep["p99_ms"], rep["p999_ms"])

    def scenario(self, name, *extra, transport="udp", rate=300, seconds=2):
        script = ROUTES / SCRIPT[name]
        missing = missing_functions(script)
        if missing:
            self.skipTest(f"{name}: ksrd does not have {', '.join(missing)} yet")
        uas = None
        with Server(script_path=script, workers=2, log_level="warn") as srv:
            args = [name, "-s", f"127.0.0.1:{srv.port}", "--transport", transport, "--rate", rate, "-d", seconds,
                    "--drain", 3, "--sockets", 2, "--users", "5000000-5999999", *extra]
            if name in ("call", "message"):
                port = free_port()
                uas = subprocess.Popen([str(self.sipload), "uas", "--port", str(port), "--threads", "1"],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                time.sleep(0.2)
                args += ["--uas", f"127.0.0.1:{port}"]
            try:
                rep, _ = self.run_sipload(*args)
            finally:
                if uas:
                    uas.terminate()
                    out, _ = uas.communicate(timeout=5)
            self.assertCompleted(rep, srv)
            self.assertEqual(rep["scenario"], name)
            self.assertEqual(rep["transport"], transport)
            if uas:
                counts = json.loads(out.strip().splitlines()[-1])
                # every unit reached the far end through the proxy
                want = "invite" if name == "call" else "other"
                self.assertGreaterEqual(counts[want], rep["completed"])
                if name == "call":
                    self.assertGreaterEqual(counts["bye"], rep["completed"])
                    self.assertGreaterEqual(counts["ack"], rep["completed"])
            return rep

    def test_options(self):
        rep = self.scenario("options")
        self.assertEqual(rep["sent"], rep["started"] + rep["retransmissions"])

    def test_options_tcp(self):
        rep = self.scenario("options", transport="tcp")
        self.assertEqual(rep["retransmissions"], 0, "nothing is retransmitted over TCP")

    def test_register(self):
        self.scenario("register")

    def test_register_auth(self):
        rep = self.scenario("register-auth")
        # two transactions each: the challenge and the authenticated REGISTER
        self.assertGreaterEqual(rep["sent"], 2 * rep["completed"])

    def test_call(self):
        rep = self.scenario("call", rate=100)
        # INVITE, ACK, BYE
        self.assertGreaterEqual(rep["sent"], 3 * rep["completed"])

    def test_call_tcp(self):
        self.scenario("call", transport="tcp", rate=100)

    def test_message(self):
        self.scenario("message")

    def test_ramp(self):
        """--ramp reports a maximum and each step it tried (tiny steps: the logic, not the figure)."""
        rep = self.scenario("options", "--ramp", "--ramp-start", "200", "--ramp-step", "1", "--ramp-max-steps", "2",
                            "--ramp-settle", "0.2", "--drain", "1")
        self.assertIn("max_rate", rep)
        self.assertGreater(rep["max_rate"], 0)
        self.assertTrue(1 <= len(rep["steps"]) <= 2)
        self.assertTrue(rep["steps"][0]["pass"], rep["steps"][0])
        self.assertEqual(rep["steps"][0]["target_rate"], 200)
        if len(rep["steps"]) == 2:  # up by 15 % after a pass
            self.assertAlmostEqual(rep["steps"][1]["target_rate"], 230, delta=1)


if __name__ == "__main__":
    unittest.main()
