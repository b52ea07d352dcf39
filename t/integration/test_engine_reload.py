# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""
Hot reload of the route script (DESIGN.md, "Hot reload"): app_lua.reload under
load never loses a request and switches every worker; a broken script is
refused with file:line and the old one keeps serving; SIGHUP reloads; modules
the script requires from its own folder are read again.
"""
import collections
import json
import os
import signal
import socket
import subprocess
import threading
import time
import unittest
from pathlib import Path

from ksrtest import REPO, Server, UdpPeer, make_request, unique

SCRIPT = 'function ksr_request_route()\n\tKSR.sl.sl_send_reply(200, "%s")\nend\n'

BROKEN = {
    # name: (script text, line the error must name)
    "syntax": ('function ksr_request_route()\n\tif then\n\t\tKSR.sl.sl_send_reply(200, "X")\nend\n', 2),
    "runtime": ('local t = {}\nlocal n = 1\nlocal boom = t.missing.field\n'
                'function ksr_request_route() KSR.sl.sl_send_reply(200, "X") end\n', 3),
    "error_call": ('\n\nerror("refusing to load")\nfunction ksr_request_route() end\n', 3),
}
NO_ROUTE = 'function ksr_reply_route() end\nlocal x = 1\n'


def ksrctl_path():
    p = Path(os.environ.get("KSRCTL", "build/ksrctl"))
    return p if p.is_absolute() else REPO / p


def ksrctl(srv, *args, timeout=10):
    return subprocess.run([str(ksrctl_path()), "-s", str(srv.rpc_socket), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def replace_file(path, text):
    """Writes text to path atomically, so that a reload never reads half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class UdpLoad:
    """
    Open-loop OPTIONS over UDP from a few sockets at a fixed rate. Every request
    has its own Call-ID (CSeq 1); a reply is matched by Call-ID. A request not
    answered within `resend_after` s is sent again (same bytes: a
    retransmission), and counted.
    """

    def __init__(self, dest, uri, nsocks=4, rate=1500, resend_after=0.5):
        self.dest, self.uri, self.rate, self.resend_after = dest, uri, rate, resend_after
        self.socks = []
        for _ in range(nsocks):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            s.bind(("127.0.0.1", 0))
            s.settimeout(0.1)
            self.socks.append(s)
        self.run_id = unique("L")
        self.sent = {}        # key -> (first send time, last send time, socket index, bytes)
        self.answers = {}     # key -> (reason, time of the first answer)
        self.duplicates = 0
        self.resends = 0
        self.pending = collections.deque()
        self.stop_recv = threading.Event()
        self.bad = []

    def request_bytes(self, key, sock):
        port = sock.getsockname()[1]
        return (f"OPTIONS {self.uri} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{key};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:load@127.0.0.1>;tag={key}\r\nTo: <{self.uri}>\r\n"
                f"Call-ID: {key}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()

    def _recv(self, sock):
        while not self.stop_recv.is_set():
            try:
                data = sock.recv(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            first, _, rest = data.partition(b"\r\n")
            i = rest.find(b"Call-ID: ")
            if i < 0:
                self.bad.append(data[:200])
                continue
            key = rest[i + 9:rest.find(b"\r\n", i)].decode()
            parts = first.decode("latin-1").split(" ", 2)
            reason = f"{parts[1]} {parts[2] if len(parts) > 2 else ''}"
            if key in self.answers:
                self.duplicates += 1
            else:
                self.answers[key] = (reason, now)

    def _resender(self, until):
        while time.monotonic() < until:
            now = time.monotonic()
            while self.pending:
                key = self.pending[0]
                if key in self.answers:
                    self.pending.popleft()
                    continue
                first, last, idx, data = self.sent[key]
                if now - last < self.resend_after:
                    break
                self.pending.popleft()
                self.socks[idx].sendto(data, self.dest)
                self.sent[key] = (first, now, idx, data)
                self.resends += 1
                self.pending.append(key)
            time.sleep(0.05)

    def start(self, duration, drain=3.0):
        """Runs the load for duration s in threads; answers and resends go on for up to drain s more."""
        self.t0 = time.monotonic()
        self.t_end = self.t0 + duration
        self.receivers = [threading.Thread(target=self._recv, args=(s,), daemon=True) for s in self.socks]
        for t in self.receivers:
            t.start()
        self.sender = threading.Thread(target=self._send, args=(duration,), daemon=True)
        self.sender.start()
        self.resender = threading.Thread(target=self._resender, args=(self.t_end + drain,), daemon=True)
        self.resender.start()
        self.drain = drain

    def _send(self, duration):
        n = int(duration * self.rate)
        for i in range(n):
            due = self.t0 + i / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            idx = i % len(self.socks)
            key = f"{self.run_id}-{i}"
            data = self.request_bytes(key, self.socks[idx])
            now = time.monotonic()
            self.sent[key] = (now, now, idx, data)
            self.pending.append(key)
            try:
                self.socks[idx].sendto(data, self.dest)
            except BlockingIOError:
                pass  # the resender sends it again
        self.send_done = time.monotonic()

    def wait(self):
        """Waits for the sender, then until every request is answered or the drain time is over."""
        self.sender.join(self.t_end - time.monotonic() + 30)
        deadline = self.send_done + self.drain
        while len(self.answers) < len(self.sent) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.stop_recv.set()
        self.resender.join(self.drain + 1)
        for t in self.receivers:
            t.join(1)
        for s in self.socks:
            s.close()

    @property
    def unanswered(self):
        return [k for k in self.sent if k not in self.answers]

    @property
    def achieved_rate(self):
        """Requests sent per second over the sending time."""
        return len(self.sent) / (self.send_done - self.t0)


class ReloadUnderLoadTest(unittest.TestCase):
    DURATION = 10.0
    RATE = 1500
    RELOADS = 22

    def test_reload_during_traffic(self):
        with Server(script=SCRIPT % "A") as srv:
            paths = {"A": srv.dir / "route_a.lua", "B": srv.dir / "route_b.lua"}
            for name, p in paths.items():
                p.write_text(SCRIPT % name)
            gen0 = srv.rpc("app_lua.list")["generation"]
            load = UdpLoad(srv.udp, srv.uri(), rate=self.RATE)
            load.start(self.DURATION)
            reloads = []  # (start, end, script now loaded)
            interval = (self.DURATION - 0.5) / self.RELOADS
            for k in range(self.RELOADS):
                due = load.t0 + 0.25 + k * interval
                time.sleep(max(0.0, due - time.monotonic()))
                name = "B" if k % 2 == 0 else "A"
                t_start = time.monotonic()
                res = ksrctl(srv, "--json", "app_lua.reload", paths[name])
                t_end = time.monotonic()
                self.assertEqual(res.returncode, 0, f"reload {k}: {res.stderr}\n{srv.log()[-2000:]}")
                reloads.append((t_start, t_end, name))
            load.wait()
            last = reloads[-1][2]

            # the client really produced the load
            print(f"\n  reload under load: {len(load.sent)} requests at {load.achieved_rate:.0f}/s, "
                  f"{len(reloads)} reloads, {load.resends} retransmissions, {load.duplicates} duplicate answers",
                  flush=True)
            self.assertGreaterEqual(load.achieved_rate, 1000, "the load generator did not reach 1,000 requests/s")
            self.assertGreaterEqual(len(load.sent), int(self.DURATION * 1000))
            self.assertEqual(load.bad, [])
            # none lost
            self.assertEqual(load.unanswered[:10], [],
                             f"{len(load.unanswered)} of {len(load.sent)} requests never answered "
                             f"(after {load.resends} retransmissions)\n{srv.log()[-2000:]}")
            self.assertLess(load.resends, len(load.sent) * 0.01,
                            "more than 1% of the requests had to be retransmitted")
            # every answer from one script or the other
            reasons = collections.Counter(r for r, _ in load.answers.values())
            self.assertEqual(set(reasons), {"200 A", "200 B"}, f"answers: {reasons}")
            # a request sent after reload k returned and answered before reload k+1 began
            # can only have been handled by script k
            bounds = reloads + [(load.t_end + 100, None, None)]
            checked = 0
            wrong = []
            for key, (first, last_send, _, _) in load.sent.items():
                reason, answered = load.answers[key]
                for k in range(len(reloads)):
                    if last_send >= reloads[k][1] and answered < bounds[k + 1][0]:
                        checked += 1
                        if reason != f"200 {reloads[k][2]}":
                            wrong.append((key, k, reason))
                        break
            print(f"  {checked} answers fell between two reloads and were checked against the script loaded",
                  flush=True)
            self.assertEqual(wrong[:10], [], f"{len(wrong)} answers from the old script after a reload")
            self.assertGreater(checked, len(load.sent) // 2, "too few requests fell between reloads")
            # after the last reload only the new script answers
            after = [r for k, (r, _) in load.answers.items() if load.sent[k][1] >= reloads[-1][1]]
            self.assertTrue(after, "no request was sent after the last reload")
            self.assertEqual(set(after), {f"200 {last}"})
            with UdpPeer() as p:
                r = p.request(srv.udp, make_request("OPTIONS", srv.uri(), p.via()))
                self.assertEqual(r.reason, last)
            info = srv.rpc("app_lua.list")
            self.assertEqual(info["generation"], gen0 + self.RELOADS)
            self.assertEqual(info["script"], str(paths[last]))
            stats = srv.stats()
            self.assertEqual(stats.get("app_lua.reloads"), self.RELOADS)
            self.assertEqual(stats.get("app_lua.script_errors"), 0)


class BrokenReloadTest(unittest.TestCase):
    def test_broken_scripts_refused_during_traffic(self):
        with Server(script=SCRIPT % "OLD") as srv:
            before = srv.rpc("app_lua.list")
            errors_before = srv.stats().get("app_lua.reload_errors", 0)
            load = UdpLoad(srv.udp, srv.uri(), nsocks=4, rate=400)
            load.start(3.0)
            time.sleep(0.3)
            cases = dict(BROKEN)
            cases["no_route"] = (NO_ROUTE, None)
            for name, (text, line) in cases.items():
                with self.subTest(broken=name):
                    path = srv.dir / f"broken_{name}.lua"
                    path.write_text(text)
                    res = ksrctl(srv, "app_lua.reload", path)
                    self.assertEqual(res.returncode, 1, f"{name}: ksrctl exit status; stdout {res.stdout!r}")
                    if line is not None:
                        self.assertIn(f"{path.name}:{line}:", res.stderr, f"file:line of the {name} error")
                    else:
                        self.assertIn(str(path), res.stderr)
                        self.assertIn("ksr_request_route", res.stderr)
                    self.assertIn("error 500", res.stderr)
                    time.sleep(0.3)
            # a file that does not exist
            res = ksrctl(srv, "app_lua.reload", srv.dir / "nonexistent.lua")
            self.assertEqual(res.returncode, 1)
            self.assertIn("nonexistent.lua", res.stderr)
            # the same through the current path: the file broken in place, reloaded without a parameter
            replace_file(srv.script_path, BROKEN["syntax"][0])
            res = ksrctl(srv, "app_lua.reload")
            self.assertEqual(res.returncode, 1)
            self.assertIn(f"{srv.script_path.name}:2:", res.stderr)
            load.wait()
            self.assertEqual(load.unanswered, [], "requests lost during refused reloads")
            reasons = collections.Counter(r for r, _ in load.answers.values())
            self.assertEqual(set(reasons), {"200 OLD"}, "the old script must keep answering")
            after = srv.rpc("app_lua.list")
            self.assertEqual(after["generation"], before["generation"])
            self.assertEqual(after["script"], before["script"])
            for w in after["workers"]:
                self.assertEqual(w["generation"], before["generation"], f"worker {w}")
                self.assertFalse(w["last_reload_failed"])
            self.assertEqual(srv.stats().get("app_lua.reload_errors"), errors_before + len(cases) + 2)
            self.assertRegex(srv.log(), r"reload refused: .*broken_syntax\.lua:2:")
            # and a good script is still accepted afterwards
            replace_file(srv.script_path, SCRIPT % "NEW")
            res = ksrctl(srv, "--json", "app_lua.reload")
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertIn(f'"generation":{before["generation"] + 1}', res.stdout.replace(" ", ""))
            with UdpPeer() as p:
                self.assertEqual(p.request(srv.udp, make_request("OPTIONS", srv.uri(), p.via())).reason, "NEW")


VAR_SCRIPT = '''
function ksr_request_route()
	local n = (KSR.pv.get("$var(count)") or 0) + 1
	KSR.pv.seti("$var(count)", n)
	if KSR.pv.get("$rU") == "set" then KSR.pv.sets("$shv(kept)", "shared") end
	KSR.sl.sl_send_reply(200, "%s " .. n .. " " .. tostring(KSR.pv.get("$shv(kept)")))
end
'''


class ReloadKeepsVariablesTest(unittest.TestCase):
    def test_var_and_shv_survive_a_reload(self):
        """$var lives in the worker, $shv in the process: a new script generation sees both."""
        with Server(script=VAR_SCRIPT % "A") as srv, UdpPeer() as p:
            def ask(user="x"):
                return p.request(srv.udp, make_request("OPTIONS", f"sip:{user}@127.0.0.1:{srv.port}", p.via())).reason
            first = ask("set")
            self.assertRegex(first, r"^A \d+ shared$")
            n = int(first.split()[1])
            self.assertEqual(ask(), f"A {n + 1} shared")
            replace_file(srv.script_path, VAR_SCRIPT % "B")
            self.assertEqual(ksrctl(srv, "app_lua.reload").returncode, 0)
            self.assertEqual(ask(), f"B {n + 2} shared", "same socket, same worker: its $var went on counting")


LOOP_AT_LOAD = 'local i = 0\nwhile true do i = i + 1 end\nfunction ksr_request_route() end\n'


class RunawayReloadTest(unittest.TestCase):

    def test_reload_of_a_script_looping_at_load_time(self):
        srv = Server(script=SCRIPT % "OLD", config={"lua": {"time_budget_ms": 200}})
        hung = False
        try:
            srv.start()
            bad = srv.dir / "loop_at_load.lua"
            bad.write_text(LOOP_AT_LOAD)
            proc = subprocess.Popen([str(ksrctl_path()), "-s", str(srv.rpc_socket), "app_lua.reload", str(bad)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                out, err = proc.communicate(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                hung = True
            # SIP traffic goes on meanwhile (the workers do not run the new script)
            self.assertEqual(reasons_from_fresh_sockets(srv, 4), {"OLD": 4})
            self.assertFalse(hung, "app_lua.reload of a script that loops at load time never answered")
            self.assertEqual(proc.returncode, 1)
            self.assertIn("time budget", err)
            self.assertEqual(ksrctl(srv, "core.version", timeout=3).returncode, 0)
            srv.stop()
        finally:
            if hung and srv.proc is not None:
                srv.proc.kill()  # SIGTERM is not handled either while the main thread loops
                srv.proc.wait(5)
                srv._log.close()
                srv.proc = None
            srv.cleanup()


class FileChangedAfterReloadTest(unittest.TestCase):
    def test_file_broken_between_reload_and_worker_switch(self):
        """
        Workers build their new state lazily, before their next callback, from the file. If it was broken
        in between, a worker keeps its old script, says so in app_lua.list, and keeps serving.
        """
        with Server(script=SCRIPT % "A") as srv:
            replace_file(srv.script_path, SCRIPT % "B")
            res = ksrctl(srv, "--json", "app_lua.reload")
            self.assertEqual(res.returncode, 0, res.stderr)
            gen = json.loads(res.stdout)["generation"]
            replace_file(srv.script_path, BROKEN["syntax"][0])  # before any worker saw a message
            answers = reasons_from_fresh_sockets(srv, 10, until_gen=gen)
            self.assertEqual(set(answers), {"A"}, "the old script keeps answering")
            self.assertIsNotNone(srv.wait_log(r"cannot load script generation \d+: .*route\.lua:2:"), srv.log())
            info = srv.rpc("app_lua.list")
            self.assertEqual(info["generation"], gen)
            self.assertTrue(all(w["last_reload_failed"] for w in info["workers"]), info)
            # fixed and reloaded: every worker switches
            replace_file(srv.script_path, SCRIPT % "C")
            self.assertEqual(ksrctl(srv, "app_lua.reload").returncode, 0)
            self.assertEqual(set(reasons_from_fresh_sockets(srv, 10, until_gen=gen + 1)), {"C"})
            self.assertFalse(any(w["last_reload_failed"] for w in srv.rpc("app_lua.list")["workers"]))


def reasons_from_fresh_sockets(srv, n=10, until_gen=None):
    """
    Reason phrases of the answers to OPTIONS from n fresh sockets (the kernel spreads them over the
    workers); with until_gen, goes on (up to 60) until every worker has reached that generation.
    """
    out = collections.Counter()
    i = 0
    while i < n or (until_gen is not None and i < 60 and
                    any(w["generation"] < until_gen for w in srv.rpc("app_lua.list")["workers"])):
        with UdpPeer() as p:
            r = p.request(srv.udp, make_request("OPTIONS", srv.uri(), p.via()))
            out[r.reason if r else None] += 1
        i += 1
    return out


class SighupReloadTest(unittest.TestCase):
    def test_sighup_reloads(self):
        with Server(script=SCRIPT % "A") as srv:
            gen = srv.rpc("app_lua.list")["generation"]
            replace_file(srv.script_path, SCRIPT % "B")
            srv.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 5
            while srv.rpc("app_lua.list")["generation"] != gen + 1:
                self.assertLess(time.monotonic(), deadline, f"SIGHUP did not reload\n{srv.log()[-2000:]}")
                time.sleep(0.05)
            # every request after the generation changed: the new script, in every worker
            self.assertEqual(set(reasons_from_fresh_sockets(srv, 10, until_gen=gen + 1)), {"B"})
            workers = srv.rpc("app_lua.list")["workers"]
            self.assertEqual(len(workers), 2)
            for w in workers:
                self.assertEqual(w["generation"], gen + 1, f"worker {w['worker']} still on the old script")

    def test_sighup_with_broken_script(self):
        with Server(script=SCRIPT % "A") as srv:
            gen = srv.rpc("app_lua.list")["generation"]
            replace_file(srv.script_path, BROKEN["syntax"][0])
            srv.send_signal(signal.SIGHUP)
            m = srv.wait_log(r"SIGHUP reload refused: .*route\.lua:2:")
            self.assertIsNotNone(m, srv.log()[-2000:])
            self.assertTrue(srv.alive())
            self.assertEqual(reasons_from_fresh_sockets(srv), {"A": 10})
            self.assertEqual(srv.rpc("app_lua.list")["generation"], gen)


MODULE_ROUTE = '''
local helper = require "reload_helper"
local nested = require "helpers.nested"
function ksr_request_route()
	KSR.sl.sl_send_reply(200, helper.reason() .. "/" .. nested.tag)
end
'''
HELPER = 'local M = {}\nfunction M.reason() return "%s" end\nreturn M\n'
NESTED = 'return { tag = "%s" }\n'


class RequireReloadTest(unittest.TestCase):
    def test_required_modules_read_again_on_reload(self):
        # the modules must exist before ksrd starts: written next to the script first
        srv = Server(script=MODULE_ROUTE)
        try:
            (srv.dir / "helpers").mkdir()
            (srv.dir / "reload_helper.lua").write_text(HELPER % "v1")
            (srv.dir / "helpers" / "nested.lua").write_text(NESTED % "n1")
            srv.start()
            self.assertEqual(reasons_from_fresh_sockets(srv, 4), {"v1/n1": 4})
            replace_file(srv.dir / "reload_helper.lua", HELPER % "v2")
            replace_file(srv.dir / "helpers" / "nested.lua", NESTED % "n2")
            # nothing changes until the reload
            self.assertEqual(reasons_from_fresh_sockets(srv, 4), {"v1/n1": 4})
            res = ksrctl(srv, "app_lua.reload")
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertEqual(reasons_from_fresh_sockets(srv, 10), {"v2/n2": 10})
            # a module broken in place makes the reload fail with the module's file:line
            replace_file(srv.dir / "reload_helper.lua", "local M = {}\nfunction M.reason( return 1 end\nreturn M\n")
            res = ksrctl(srv, "app_lua.reload")
            self.assertEqual(res.returncode, 1)
            self.assertIn("reload_helper.lua:2:", res.stderr)
            self.assertEqual(reasons_from_fresh_sockets(srv, 4), {"v2/n2": 4})
            srv.stop()
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main()
