# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""
Script errors are not fatal (DESIGN.md, "Lua boundary"): a request whose route
raises an error, loops forever or allocates without bound is answered
500 Server Internal Error, the error is logged with the Call-ID, the
app_lua:script_errors counter rises, and the worker goes on serving.
"""
import os
import re
import selectors
import subprocess
import time
import unittest
from pathlib import Path

from ksrtest import REPO, Server, Uas, UdpPeer, make_request, unique

ROUTE = r'''
local STATE = tostring({}):match("0x%x+") or tostring({})

local function loop_plain()
	while true do end
end

local function loop_counting()
	local i = 0
	while true do i = i + 1 end
end

local function loop_calling_ksr()
	local n = 0
	while true do
		if KSR.pv.get("$rU") then n = n + 1 end
		KSR.isflagset(1)
	end
end

local function loop_swallowing_errors()
	-- catches the budget error and carries on: must still be stopped
	while true do
		pcall(function() while true do end end)
	end
end

local function alloc_strings()
	local t = {}
	local i = 0
	while true do
		i = i + 1
		t[i] = string.rep("x", 4096) .. i
	end
end

local function alloc_table()
	local t = {}
	for i = 1, 1e9 do t[i] = i end
end

local function alloc_one_huge()
	local s = string.rep("y", 64 * 1024 * 1024)
	KSR.sl.sl_send_reply(200, "allocated " .. #s)
end

local function raise()
	error("deliberate failure in the route")
end

local branches = {
	loop = loop_plain,
	loopcount = loop_counting,
	loopksr = loop_calling_ksr,
	looppcall = loop_swallowing_errors,
	allocstr = alloc_strings,
	alloctable = alloc_table,
	allochuge = alloc_one_huge,
	raise = raise,
	nilcall = function() KSR.no_such_function("x") end,
	badarith = function() local t = nil; return t + 1 end,
	afterreply = function() KSR.sl.sl_send_reply(202, "replied first"); error("error after the reply") end,
	forward = function() KSR.forward_uri(KSR.pv.get("$hdr(X-Dest)")) end,
}

function ksr_request_route()
	local f = branches[KSR.pv.get("$rU") or ""]
	if f then return f() end
	if not KSR.is_ACK() then KSR.sl.sl_send_reply(200, "OK " .. STATE) end
end

function ksr_reply_route()
	if KSR.pv.get("$hdr(X-Reply-Error)") or (KSR.pv.get("$ci") or ""):match("^replyerr") then
		error("deliberate failure in the reply route")
	end
end
'''

CONFIG = {"lua": {"time_budget_ms": 200, "mem_budget_mb": 16}}


def ksrctl_path():
    p = Path(os.environ.get("KSRCTL", "build/ksrctl"))
    return p if p.is_absolute() else REPO / p


class Helpers:
    def send(self, peer, user, method="OPTIONS", **kw):
        msg = make_request(method, f"sip:{user}@127.0.0.1:{self.srv.port}", peer.via(), **kw)
        peer.send(msg, self.srv.udp)
        return msg

    def reply_to(self, peer, msg, timeout=3.0):
        deadline = time.monotonic() + timeout
        while True:
            r = peer.recv_msg(max(0.0, deadline - time.monotonic()))
            if r is None or r.get("Call-ID") == msg.get("Call-ID"):
                return r

    def script_errors_ctl(self):
        """app_lua:script_errors as ksrctl prints it."""
        res = subprocess.run([str(ksrctl_path()), "-s", str(self.srv.rpc_socket), "stats.get_statistics",
                              "app_lua:script_errors"], capture_output=True, text=True, timeout=10)
        self.assertEqual(res.returncode, 0, res.stderr)
        m = re.fullmatch(r"app_lua:script_errors = (\d+)\n", res.stdout)
        self.assertIsNotNone(m, res.stdout)
        return int(m.group(1))

    def assert_500_then_served(self, user, within, log_pattern=None):
        """From one socket (so one worker): user's request gets 500 within `within` s, the next one 200."""
        errors = self.script_errors_ctl()
        with UdpPeer() as p:
            t0 = time.monotonic()
            msg = self.send(p, user)
            r = self.reply_to(p, msg, timeout=within + 3)
            elapsed = time.monotonic() - t0
            self.assertIsNotNone(r, f"{user}: no answer\n{self.srv.log()[-3000:]}")
            self.assertEqual((r.status, r.reason), (500, "Server Internal Error"), user)
            self.assertLess(elapsed, within, f"{user}: the 500 took {elapsed:.2f} s")
            self.assertTrue(p.quiet(0.2), "more than one answer")
            # the same worker serves the next request
            nxt = self.send(p, "ok")
            r2 = self.reply_to(p, nxt)
            self.assertIsNotNone(r2, f"{user}: the worker stopped serving\n{self.srv.log()[-3000:]}")
            self.assertEqual(r2.status, 200)
        self.assertEqual(self.script_errors_ctl(), errors + 1, f"{user}: app_lua:script_errors")
        cid = re.escape(msg.get("Call-ID"))
        pattern = rf"\[{cid}\] .*{log_pattern or ''}"
        self.assertIsNotNone(self.srv.wait_log(pattern), f"log never matched {pattern}\n{self.srv.log()[-3000:]}")
        return elapsed

    def assert_all_workers_serve(self):
        states = set()
        for _ in range(24):
            with UdpPeer() as p:
                msg = self.send(p, "ok")
                r = self.reply_to(p, msg)
                self.assertIsNotNone(r, f"no answer\n{self.srv.log()[-3000:]}")
                self.assertEqual(r.status, 200)
                states.add(r.reason)
            if len(states) >= 2:
                break
        self.assertGreaterEqual(len(states), 2, f"answers came from one worker only: {states}")


class ScriptErrorsTest(Helpers, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(script=ROUTE, config=CONFIG)
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def setUp(self):
        self.assertTrue(self.srv.alive(), "ksrd is not running")

    # ---------------------------------------------------------------- errors

    def test_error_raised(self):
        self.assert_500_then_served("raise", 1.0, r"error in ksr_request_route: .*route\.lua:\d+: "
                                                  r"deliberate failure in the route")
        # the traceback is logged
        self.assertIn("stack traceback:", self.srv.log())

    def test_call_of_missing_function(self):
        self.assert_500_then_served("nilcall", 1.0, r"attempt to call field 'no_such_function'")

    def test_arithmetic_on_nil(self):
        self.assert_500_then_served("badarith", 1.0, r"attempt to perform arithmetic")

    def test_error_after_the_reply_sends_no_500(self):
        errors = self.script_errors_ctl()
        with UdpPeer() as p:
            msg = self.send(p, "afterreply")
            r = self.reply_to(p, msg)
            self.assertEqual((r.status, r.reason), (202, "replied first"))
            self.assertTrue(p.quiet(0.5), "a 500 after the script had replied")
        self.assertEqual(self.script_errors_ctl(), errors + 1)

    def test_error_on_ack_is_not_answered(self):
        errors = self.script_errors_ctl()
        with UdpPeer() as p:
            self.send(p, "raise", method="ACK")
            self.assertTrue(p.quiet(0.8), "an ACK was answered")
        self.assertEqual(self.script_errors_ctl(), errors + 1)

    def test_error_in_reply_route(self):
        """The reply route's error is counted and logged; the reply is still relayed."""
        errors = self.script_errors_ctl()
        with Uas() as uas, UdpPeer() as p:
            msg = make_request("OPTIONS", f"sip:forward@127.0.0.1:{self.srv.port}", p.via(),
                               call_id=unique("replyerr-"),
                               headers=[("X-Dest", f"sip:127.0.0.1:{uas.port};transport=udp")])
            p.send(msg, self.srv.udp)
            r = self.reply_to(p, msg)
            self.assertIsNotNone(r, f"reply not relayed\n{self.srv.log()[-2000:]}")
            self.assertEqual(r.status, 200)
            self.assertIsNotNone(uas.wait_request())
        self.assertEqual(self.script_errors_ctl(), errors + 1)
        self.assertIsNotNone(self.srv.wait_log(rf"\[{re.escape(msg.get('Call-ID'))}\] error in ksr_reply_route: "
                                               r".*deliberate failure in the reply route"))

    # ---------------------------------------------------------------- time budget

    def test_endless_loop(self):
        elapsed = self.assert_500_then_served("loop", 1.0, r"time budget")
        print(f"\n  while true do end: 500 after {elapsed * 1000:.0f} ms (budget 200 ms)", flush=True)
        self.assert_all_workers_serve()

    def test_endless_counting_loop(self):
        self.assert_500_then_served("loopcount", 1.0, r"time budget")

    def test_endless_loop_calling_ksr(self):
        self.assert_500_then_served("loopksr", 1.0, r"time budget")

    def test_compiled_loop_stopped_again_and_again_on_one_worker(self):
        """The forced stop of a JIT-compiled loop leaves the worker able to be stopped again.

        The stop jumps out of a signal handler; if the worker's signal mask were
        left with the stop signal blocked, the second loop would never end."""
        abandoned = self.srv.stats().get("app_lua.states_abandoned", 0)
        for _ in range(3):
            self.assert_500_then_served("loopcount", 1.0, r"time budget")
        self.assertGreaterEqual(self.srv.stats().get("app_lua.states_abandoned", 0), abandoned + 3,
                                "the loops were not stopped by the forced path")

    def test_endless_loop_swallowing_the_budget_error(self):
        self.assert_500_then_served("looppcall", 1.5, r"time budget")
        self.assert_all_workers_serve()

    def test_other_worker_serves_during_a_loop(self):
        """While one worker is stuck in a loop, requests that reach the other are answered at once."""
        with UdpPeer() as looper:
            lmsg = self.send(looper, "loop")
            time.sleep(0.02)
            peers = [UdpPeer() for _ in range(16)]
            try:
                t0 = time.monotonic()
                for p in peers:
                    self.send(p, "ok")
                fast = 0
                with selectors.DefaultSelector() as sel:
                    for p in peers:
                        sel.register(p.sock, selectors.EVENT_READ, p)
                    while time.monotonic() - t0 < 0.15:
                        for key, _ in sel.select(0.01):
                            sel.unregister(key.fileobj)
                            fast += 1
            finally:
                for p in peers:
                    p.close()
            r = self.reply_to(looper, lmsg)
            self.assertEqual(r.status, 500)
        self.assertGreater(fast, 0, "no request was answered within 150 ms while one worker looped")

    # ---------------------------------------------------------------- counters

    def test_counter_via_rpc_and_ksrctl(self):
        before = self.srv.stats()["app_lua.script_errors"]
        self.assertEqual(self.script_errors_ctl(), before)
        with UdpPeer() as p:
            for _ in range(3):
                msg = self.send(p, "raise")
                self.assertEqual(self.reply_to(p, msg).status, 500)
        self.assertEqual(self.srv.stats()["app_lua.script_errors"], before + 3)
        self.assertEqual(self.script_errors_ctl(), before + 3)


class MemoryBudgetTest(Helpers, unittest.TestCase):
    """Each test on a fresh server: what one memory error leaves behind must not leak into another test."""

    def setUp(self):
        self.srv = Server(script=ROUTE, config=CONFIG)
        self.srv.start()

    def tearDown(self):
        try:
            self.srv.stop()
        finally:
            self.srv.cleanup()

    def test_allocation_loop_strings(self):
        self.assert_500_then_served("allocstr", 2.0, r"not enough memory")
        self.assert_all_workers_serve()

    def test_allocation_loop_table(self):
        self.assert_500_then_served("alloctable", 2.0, r"not enough memory")
        self.assert_all_workers_serve()

    def test_one_huge_allocation(self):
        self.assert_500_then_served("allochuge", 1.0, r"not enough memory")


    def test_repeated_memory_errors_in_one_worker(self):
        """Two allocation loops in a row on one worker, then ordinary requests: 500, 500, 200, 200."""
        got = []
        with UdpPeer() as p:
            for user in ("allocstr", "allocstr", "ok", "ok"):
                msg = self.send(p, user)
                r = self.reply_to(p, msg)
                got.append(r.status if r else None)
        alive = self.srv.alive()
        if not alive:
            self.srv.proc.wait(5)
            self.srv.proc = None  # already gone: tearDown must not fail on it
            self.srv._log.close()
        self.assertEqual(got, [500, 500, 200, 200], f"answers; ksrd alive afterwards: {alive}")
        self.assertTrue(alive, "ksrd died")
        for w in self.srv.rpc("app_lua.list")["workers"]:
            self.assertLess(w["memory"], 8 << 20, f"worker {w['worker']}: {w['memory']} bytes still in use")


class DefaultBudgetTest(unittest.TestCase):
    def test_default_budget_stops_a_loop(self):
        """Without a lua section the default budget (1 s) still stops a loop."""
        with Server(script=ROUTE) as srv, UdpPeer() as p:
            msg = make_request("OPTIONS", f"sip:loop@127.0.0.1:{srv.port}", p.via())
            t0 = time.monotonic()
            p.send(msg, srv.udp)
            r = p.recv_msg(5.0)
            elapsed = time.monotonic() - t0
            self.assertIsNotNone(r, srv.log()[-2000:])
            self.assertEqual(r.status, 500)
            self.assertGreater(elapsed, 0.9, "stopped before the default budget of 1000 ms")
            self.assertLess(elapsed, 3.0)
            r = p.request(srv.udp, make_request("OPTIONS", f"sip:ok@127.0.0.1:{srv.port}", p.via()))
            self.assertEqual(r.status, 200)


if __name__ == "__main__":
    unittest.main()
