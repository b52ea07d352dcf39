# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""
The stateful proxy (core/tm) driven by a route like Kamailio's default KEMI
proxy script: full calls, CANCEL, serial and parallel forking, timeouts,
retransmissions under packet loss, retransmission detection across workers,
failure routes after a reload, bad input, and the tm RPC.

Destinations come from the request: X-Target is the first one ($du),
X-Failover a comma list of the next ones, taken by the failure route in turn.
X-Branches lists more destinations ("uri[ q]", comma separated) that become
branches through KSR.corex.append_branch_uri(_q): parallel forking. A R-URI
user starting with "fork" is looked up in the location table instead (its
contacts become the branches); "serial" loads the R-URI and X-Branches with
t_load_contacts and relays one q group at a time (t_next_contacts).
"""
import concurrent.futures
import json
import os
import re
import subprocess
import threading
import time
import unittest
from pathlib import Path

from ksrtest import (LOCAL4, QUIET, REPO, Server, TcpPeer, UdpPeer, free_port, make_request,
                     make_response, new_branch, parse_via, unique)
from sipua import (NEVER, RING_FOREVER, Loss, ScriptedUas, Uac, answer, full_call, ring_then,
                   route_values, uri_of, uri_params)

ROUTE = r"""
-- a busy loop of `sec` seconds of wall time (CLOCK_MONOTONIC through the FFI; os.clock,
-- CPU time, when the FFI is not there: that one stretches a lot on a loaded machine)
local now = os.clock
do
	local ok, ffi = pcall(require, "ffi")
	if ok then
		pcall(ffi.cdef, "typedef struct { long s; long ns; } tmtest_ts; int clock_gettime(int, tmtest_ts *);")
		local ts = ffi.new("tmtest_ts")
		now = function()
			ffi.C.clock_gettime(1, ts)
			return tonumber(ts.s) + tonumber(ts.ns) / 1e9
		end
	end
end

local function busy(sec)
	local stop = now() + sec
	while now() < stop do end
end

local function note(what)
	KSR.info("TMTEST " .. what .. " cid=" .. (KSR.pv.get("$ci") or "?"))
end

-- X-Branches: "uri[ q], uri[ q], ..." become branches of the destination set
function add_branches()
	local list = KSR.pv.get("$hdr(X-Branches)")
	if list == nil then
		return
	end
	for el in string.gmatch(list, "[^,]+") do
		local uri, q = string.match(el, "^%s*(%S+)%s*(%S*)%s*$")
		if q ~= nil and q ~= "" then
			KSR.corex.append_branch_uri_q(uri, q)
		else
			KSR.corex.append_branch_uri(uri)
		end
	end
end

function ksr_request_route()
	if KSR.is_OPTIONS() and KSR.is_myself_ruri() and KSR.siputils.has_totag() < 0
	   and KSR.pv.get("$hdr(X-Target)") == nil then
		KSR.sl.sl_send_reply(200, "Keepalive")
		return
	end
	if KSR.maxfwd.process_maxfwd(10) < 0 then
		KSR.sl.sl_send_reply(483, "Too Many Hops")
		return
	end
	-- CANCEL: relayed when it is not a retransmission (t_relay answers 481 when nothing matches)
	if KSR.is_CANCEL() then
		local rc = KSR.tm.t_check_trans()
		note("cancel t_check_trans=" .. rc)
		if rc ~= 0 then
			ksr_route_relay()
		end
		return
	end
	ksr_route_withindlg()
	-- retransmissions, also those being handled by another worker right now
	if not KSR.is_ACK() then
		if KSR.tmx.t_precheck_trans() > 0 then
			note("precheck hit")
			KSR.tm.t_check_trans()
			return
		end
		if KSR.tm.t_check_trans() == 0 then
			return
		end
	end
	if KSR.pv.get("$rU") == "slow" then
		busy(0.3)
	end
	if KSR.is_REGISTER() then
		KSR.registrar.save("location", 0)
		return
	end
	local px = KSR.pv.get("$hdr(X-Relay-To-Proxy)")
	if px ~= nil then
		if KSR.tm.t_relay_to_proxy(px) < 0 then
			KSR.sl.sl_send_reply(500, "t_relay_to_proxy failed")
		end
		return
	end
	if KSR.pv.get("$rU") == "busy" then
		KSR.tm.t_newtran()
		KSR.tm.t_reply(486, "Busy Here")
		return
	end
	if KSR.is_INVITE() then
		KSR.rr.record_route()
		KSR.hdr.append("X-Proxy-Mark: request-route\r\n")
	end
	local user = KSR.pv.get("$rU") or ""
	if user:sub(1, 4) == "fork" then
		if KSR.registrar.lookup("location") < 0 then
			KSR.sl.send_reply(404, "Not Found")
			return
		end
	elseif user == "serial" then
		-- serial forking by q: the R-URI (no q: highest) and X-Branches, one q group at a time
		KSR.seturi(KSR.pv.get("$hdr(X-Target)"))
		add_branches()
		KSR.tm.t_load_contacts()
		KSR.tm.t_next_contacts()
		KSR.tm.t_on_failure("ksr_failure_serial")
	else
		local t = KSR.pv.get("$hdr(X-Target)")
		if t ~= nil then
			KSR.setdsturi(t)
		end
		add_branches()
	end
	if user == "lossy" then
		KSR.tm.t_set_fr(10000, 8000)
	end
	ksr_route_relay()
end

function ksr_route_relay()
	if KSR.is_INVITE() and KSR.tm.t_is_set("failure_route") < 0 then
		KSR.tm.t_on_failure("ksr_failure_manage")
	end
	if KSR.is_INVITE() and KSR.pv.get("$hdr(X-Routes)") ~= nil then
		KSR.tm.t_on_branch("ksr_branch_manage")
		KSR.tm.t_on_reply("ksr_onreply_manage")
	end
	if KSR.tm.t_relay() < 0 then
		note("t_relay failed")
		KSR.sl.sl_reply_error()
	end
	KSR.x.exit()
end

function ksr_route_withindlg()
	if KSR.siputils.has_totag() < 0 then
		return
	end
	local lr = KSR.rr.loose_route()
	if lr > 0 then
		ksr_route_relay()
	end
	if KSR.is_ACK() then
		local rc = KSR.tm.t_check_trans()
		note("ack t_check_trans=" .. rc)
		if rc > 0 then
			ksr_route_relay()
		end
		KSR.x.exit()
	end
	KSR.sl.sl_send_reply(404, "Not here")
	KSR.x.exit()
end

function ksr_failure_manage()
	local code = KSR.tm.t_get_status_code()
	local idx = KSR.tm.t_get_branch_index()
	note("failure code=" .. code .. " timeout=" .. KSR.tm.t_branch_timeout() .. " replied="
		.. KSR.tm.t_branch_replied() .. " idx=" .. idx .. " canceled=" .. KSR.tm.t_is_canceled()
		.. " rpl=" .. tostring(KSR.pv.get("$T_rpl($rs)") or "none"))
	if KSR.tm.t_is_canceled() > 0 then
		return
	end
	local fr = KSR.pv.get("$hdr(X-FR-Reply)")
	if fr ~= nil then
		KSR.tm.t_reply(tonumber(fr), "From Failure Route")
		return
	end
	if KSR.tm.t_check_status("^(408|480|486|5[0-9][0-9])$") < 0 and KSR.tm.t_branch_timeout() < 0 then
		return
	end
	local list = KSR.pv.get("$hdr(X-Failover)")
	if list == nil then
		return
	end
	local targets = {}
	for t in string.gmatch(list, "[^,%s]+") do
		targets[#targets + 1] = t
	end
	local next = targets[idx + 1]
	if next == nil then
		return
	end
	note("failover to " .. next)
	KSR.setdsturi(next)
	KSR.tm.t_on_failure("ksr_failure_manage")
	KSR.tm.t_relay()
end

function ksr_failure_serial()
	note("serial failure code=" .. KSR.tm.t_get_status_code())
	if KSR.tm.t_is_canceled() > 0 then
		return
	end
	if KSR.tm.t_next_contacts() > 0 then
		KSR.tm.t_on_failure("ksr_failure_serial")
		KSR.tm.t_relay()
	end
end

-- t_on_branch: marks each branch; a branch whose R-URI user is "dropme" is not sent
function ksr_branch_manage()
	note("branch ru=" .. KSR.pv.get("$ru"))
	if KSR.pv.get("$rU") == "dropme" then
		KSR.x.drop()
	end
	KSR.hdr.append("X-Branch-Route: " .. KSR.pv.get("$ru") .. "\r\n")
end

-- t_on_reply: a reply carrying "X-Drop: yes" is not relayed
function ksr_onreply_manage()
	note("onreply " .. KSR.pv.get("$rs"))
	if KSR.pv.get("$hdr(X-Drop)") == "yes" then
		KSR.x.drop()
	end
end

function ksr_reply_route()
	note("reply route " .. (KSR.pv.get("$rs") or "?"))
end
"""

TM_CFG = {"fr_timer": 1000, "fr_inv_timer": 2000, "wt_timer": 1000, "retr_timer1": 250,
          "retr_timer2": 1000, "max_inv_lifetime": 4000, "max_noninv_lifetime": 8000}

PAIRS = [("udp", "udp"), ("tcp", "tcp"), ("udp", "tcp"), ("tcp", "udp")]


def ksrctl(srv, *args):
    exe = os.environ.get("KSRCTL") or str(REPO / "build" / "ksrctl")
    p = subprocess.run([exe, "-s", str(srv.rpc_socket), "--json", *map(str, args)], capture_output=True,
                       text=True, timeout=10, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise AssertionError(f"ksrctl {' '.join(map(str, args))} failed ({p.returncode}): {p.stdout} {p.stderr}")
    return json.loads(p.stdout)


def start_server(testcase_cls, script=ROUTE, tm=None, extra=None, workers=2):
    cfg = {"tm": {**TM_CFG, **(tm or {})}}
    cfg.update(extra or {})
    srv = Server(script=script, config=cfg, workers=workers)
    srv.start()
    return srv


def notes(srv, call_id, what=""):
    """The TMTEST lines the route logged for call_id (in order)."""
    return [m.group(1) for m in re.finditer(r"TMTEST (" + re.escape(what) + r"[^\n]*?) cid=" + re.escape(call_id),
                                            srv.log())]


def wait_notes(srv, call_id, what, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        got = notes(srv, call_id, what)
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


class TmBase(unittest.TestCase):
    """One ksrd with the route above; each test brings its own UAS(es) and UAC."""

    tm = None
    extra = None

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(script=ROUTE, config={"tm": {**TM_CFG, **(cls.tm or {})}, **(cls.extra or {})})
        try:
            cls.srv.start()
        except BaseException:
            cls.srv.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def setUp(self):
        self.peers = []

    def tearDown(self):
        for p in self.peers:
            p.close()

    def uas(self, transport="udp", plan=None, **kw):
        u = ScriptedUas(transport, plan, **kw)
        self.peers.append(u)
        return u

    def uac(self, transport="udp", **kw):
        u = Uac(transport, self.srv.udp, **kw)
        self.peers.append(u)
        return u

    def ruri(self, user="bob"):
        return f"sip:{user}@{LOCAL4}:{self.srv.port}"

    def log_tail(self):
        return "\n--- ksrd log (tail)\n" + self.srv.log()[-3000:]

    def assertFinal(self, call, status, timeout=5.0):
        final = call.wait_final(timeout)
        self.assertIsNotNone(final, f"no final reply for {call.call_id} (got {call.statuses()}){self.log_tail()}")
        self.assertEqual(final.status, status, f"{final.start} (all: {call.statuses()}){self.log_tail()}")
        return final

    def proxy_via_ok(self, msg, transport):
        """The top Via of what reached a UAS is ours, over the expected transport."""
        top = parse_via(msg.vias()[0])
        self.assertEqual((top.host, top.port), (LOCAL4, self.srv.port), top.text)
        self.assertEqual(top.transport.upper(), transport.upper(), top.text)
        self.assertTrue(top.branch.startswith("z9hG4bK"), top.text)
        return top


# ================================================================ call flows

class CallFlowTest(TmBase):

    def _full_call(self, a, b):
        uas = self.uas(b, ring_then(200, after_ms=100))
        uac = self.uac(a)
        call = uac.invite(self.ruri(), headers=[("X-Target", uas.uri)])
        final = self.assertFinal(call, 200)
        codes = call.statuses()
        self.assertIn(100, codes, f"no 100 Trying to the caller: {codes}")
        self.assertIn(180, codes, f"the 180 was not relayed: {codes}")
        self.assertLess(codes.index(180), codes.index(200))
        # the INVITE at the UAS: our Via on top, Record-Route with lr and the caller's ftag
        inv = uas.wait_request("INVITE").msg
        self.proxy_via_ok(inv, b)
        self.assertEqual(len(inv.vias()), 2, inv.vias())
        self.assertEqual(inv.get("Max-Forwards"), "69")
        rr = route_values(inv, "Record-Route")
        self.assertEqual(len(rr), 1 if a == b else 2, rr)
        for r in rr:
            p = uri_params(r)
            self.assertIn("lr", p, r)
            self.assertEqual(p.get("ftag"), call.from_tag, r)
            self.assertIn(f"{LOCAL4}:{self.srv.port}", r)
        if a != b:   # double record-route: the entry facing the UAS first
            self.assertEqual(uri_params(rr[0]).get("transport", "udp").lower(), b, rr)
            self.assertEqual(uri_params(rr[1]).get("transport", "udp").lower(), a, rr)
            self.assertTrue(all("r2" in uri_params(r) for r in rr), rr)
        # the caller's route set is the reversed Record-Route of the 200
        self.assertEqual(route_values(final, "Record-Route"), rr)
        self.assertEqual(len(final.vias()), 1, final.vias())
        call.ack()
        ack = uas.wait_request("ACK", call.call_id)
        self.assertIsNotNone(ack, f"the ACK for the 2xx did not reach the UAS{self.log_tail()}")
        self.assertEqual(ack.msg.ruri, uri_of(uas.contact), "ACK R-URI is not the UAS's Contact")
        self.assertEqual(ack.msg.get_all("Route"), [], "our Route entries were not consumed")
        self.proxy_via_ok(ack.msg, b)
        self.assertEqual(parse_via(ack.msg.vias()[1]).branch, call.ack_branch)
        bye = call.bye()
        self.assertIsNotNone(bye, f"no reply to BYE{self.log_tail()}")
        self.assertEqual(bye.status, 200, bye.start)
        got = uas.wait_request("BYE", call.call_id)
        self.assertIsNotNone(got)
        self.assertEqual(got.msg.get_all("Route"), [])
        self.proxy_via_ok(got.msg, b)
        self.assertEqual(len(uas.invites(call.call_id)), 1)

    def _cancel_ringing(self, a, b):
        uas = self.uas(b, RING_FOREVER)
        uac = self.uac(a)
        call = uac.invite(self.ruri(), headers=[("X-Target", uas.uri)])
        self.assertIsNotNone(call.wait_status(180), f"no 180{self.log_tail()}")
        cr = call.cancel()
        self.assertIsNotNone(cr, f"no reply to CANCEL{self.log_tail()}")
        self.assertEqual(cr.status, 200, cr.start)
        self.assertFinal(call, 487)
        got = uas.wait_request("CANCEL", call.call_id)
        self.assertIsNotNone(got, "the CANCEL did not reach the UAS")
        inv = uas.invites(call.call_id)[0].rec.msg
        # §9.1: same branch, R-URI, Call-ID, From, To and CSeq number as the INVITE
        self.assertEqual(got.msg.ruri, inv.ruri)
        self.assertEqual(got.msg.top_via().branch, inv.top_via().branch)
        for h in ("From", "To", "Call-ID"):
            self.assertEqual(got.msg.get(h), inv.get(h), h)
        self.assertEqual(got.msg.get("CSeq").split()[0], inv.get("CSeq").split()[0])
        # the 487 is acknowledged hop by hop; the caller's ACK is absorbed
        ack = uas.wait_request("ACK", call.call_id)
        self.assertIsNotNone(ack, "the proxy did not ACK the 487")
        # §17.1.1.3: same branch, R-URI, From, Call-ID and CSeq number; the To of the 487
        self.assertEqual(ack.msg.top_via().branch, inv.top_via().branch)
        self.assertEqual(ack.msg.ruri, inv.ruri)
        self.assertEqual(ack.msg.tag("To"), uas.invites(call.call_id)[0].to_tag)
        self.assertEqual(ack.msg.get("CSeq"), inv.get("CSeq").split()[0] + " ACK")
        self.assertEqual(ack.msg.get("From"), inv.get("From"))
        time.sleep(QUIET)
        self.assertEqual(len(uas.requests.select("ACK", call.call_id)), 1,
                         "the caller's ACK for the 487 went through")
        self.assertEqual(len(uas.requests.select("CANCEL", call.call_id)), 1)

    def _serial_failover(self, a, b):
        first, second = self.uas(b, answer(503)), self.uas(b, ring_then(200))
        uac = self.uac(a)
        call, final, bye = full_call(uac, self.ruri(), headers=[("X-Target", first.uri),
                                                                ("X-Failover", second.uri)])
        self.assertIsNotNone(final, f"no final{self.log_tail()}")
        self.assertEqual(final.status, 200, f"{final.start} {call.statuses()}{self.log_tail()}")
        self.assertNotIn(503, call.statuses(), "the 503 went upstream")
        self.assertIsNotNone(first.wait_request("ACK", call.call_id), "the 503 was not ACKed")
        self.assertEqual(len(second.invites(call.call_id)), 1)
        # record_route() of the request route holds for branches the failure route adds
        inv1, inv2 = first.invites(call.call_id)[0].rec.msg, second.invites(call.call_id)[0].rec.msg
        self.assertEqual(len(route_values(inv1, "Record-Route")), 1 if a == b else 2)
        self.assertEqual(inv1.get_all("X-Proxy-Mark"), ["request-route"])
        self.assertEqual(inv2.get_all("X-Proxy-Mark"), ["request-route"],
                         "the failover branch lost the header added in the request route")
        self.assertEqual(route_values(inv2, "Record-Route"), route_values(inv1, "Record-Route"),
                         "the failover branch lost the Record-Route")
        self.assertEqual(bye.status if bye else None, 200)
        self.assertIsNotNone(second.wait_request("BYE", call.call_id), "BYE did not reach the second UAS")
        self.assertEqual(first.requests.select("BYE", call.call_id), [])
        fr = notes(self.srv, call.call_id, "failure")
        self.assertTrue(fr and "code=503" in fr[0], fr)
        self.assertIn("rpl=503", fr[0], "$T_rpl($rs) in the failure route")

    def _timeout_failover(self, a, b):
        silent, second = self.uas(b, NEVER), self.uas(b, ring_then(200))
        uac = self.uac(a)
        t0 = time.monotonic()
        call = uac.invite(self.ruri(), headers=[("X-Target", silent.uri), ("X-Failover", second.uri)])
        got = second.wait_request("INVITE", call.call_id, timeout=4)
        took = time.monotonic() - t0
        self.assertIsNotNone(got, f"no failover after the timeout{self.log_tail()}")
        self.assertGreaterEqual(took, 0.9, "fr_timer (1000 ms) cut short")
        self.assertLess(took, 1.8, "fr_timer (1000 ms) took far too long")
        self.assertFinal(call, 200)
        call.ack()
        fr = notes(self.srv, call.call_id, "failure")
        self.assertTrue(fr and "code=408" in fr[0] and "timeout=1" in fr[0], fr)
        if b == "udp":   # Timer A retransmitted the INVITE to the silent one
            self.assertGreaterEqual(len(silent.requests.select("INVITE", call.call_id)), 2)


for _a, _b in PAIRS:
    for _name in ("full_call", "cancel_ringing", "serial_failover", "timeout_failover"):
        def _t(self, f=_name, a=_a, b=_b):
            getattr(self, "_" + f)(a, b)
        _t.__name__ = f"test_{_name}_{_a}_to_{_b}"
        setattr(CallFlowTest, _t.__name__, _t)


class ForkTest(TmBase):
    """Parallel forking (KSR.corex.append_branch_uri, registrar lookup) and serial forking by q."""

    def fork(self, plans, transport="udp", uac_transport="udp"):
        uases = [self.uas(transport, p) for p in plans]
        uac = self.uac(uac_transport)
        call = uac.invite(self.ruri(), headers=[("X-Target", uases[0].uri),
                                                ("X-Branches", ", ".join(u.uri for u in uases[1:]))])
        return uases, call

    def register(self, user, uases):
        with UdpPeer() as p:
            hdrs = [("Contact", f"<sip:{user}@{u.host}:{u.port};transport={u.transport}>;q=0.{9 - i}")
                    for i, u in enumerate(uases)] + [("Expires", "60")]
            req = make_request("REGISTER", f"sip:{LOCAL4}", p.via(), headers=hdrs,
                               to=f"<sip:{user}@{LOCAL4}>", frm=f"<sip:{user}@{LOCAL4}>;tag=reg")
            r = p.request(self.srv.udp, req)
        self.assertIsNotNone(r, "REGISTER not answered")
        self.assertEqual(r.status, 200, r.start)

    def check_one_answers(self, uases, call, winner):
        self.assertFinal(call, 200)
        call.ack()
        for i, u in enumerate(uases):
            self.assertEqual(len(u.invites(call.call_id)), 1, f"UAS {i} did not get the INVITE{self.log_tail()}")
            rr = route_values(u.invites(call.call_id)[0].rec.msg, "Record-Route")
            self.assertTrue(rr, f"UAS {i}: no Record-Route on its branch")
        for i, u in enumerate(uases):
            if i == winner:
                continue
            got = u.wait_request("CANCEL", call.call_id)
            self.assertIsNotNone(got, f"UAS {i} was not canceled{self.log_tail()}")
            inv = u.invites(call.call_id)[0].rec.msg
            self.assertEqual(got.msg.top_via().branch, inv.top_via().branch)
            self.assertIsNotNone(u.wait_request("ACK", call.call_id), f"UAS {i}: its 487 was not ACKed")
        self.assertEqual(uases[winner].requests.select("CANCEL", call.call_id), [])
        self.assertIsNotNone(uases[winner].wait_request("ACK", call.call_id))
        # the 487s of the canceled branches stay below the proxy
        time.sleep(QUIET)
        self.assertNotIn(487, call.statuses())
        bye = call.bye()
        self.assertEqual(bye.status if bye else None, 200)
        self.assertIsNotNone(uases[winner].wait_request("BYE", call.call_id))

    def test_parallel_one_answers_others_canceled(self):
        for a, b in (("udp", "udp"), ("tcp", "tcp"), ("udp", "tcp")):
            with self.subTest(caller=a, callees=b):
                uases, call = self.fork([RING_FOREVER, ring_then(200, after_ms=300), RING_FOREVER], b, a)
                self.check_one_answers(uases, call, 1)

    def test_parallel_through_location_lookup(self):
        uases = [self.uas("udp", p) for p in (RING_FOREVER, RING_FOREVER, ring_then(200, after_ms=300))]
        user = unique("fork")
        self.register(user, uases)
        uac = self.uac("udp")
        call = uac.invite(self.ruri(user))
        self.check_one_answers(uases, call, 2)
        for i, u in enumerate(uases):
            self.assertEqual(u.invites(call.call_id)[0].rec.msg.ruri, f"sip:{user}@{u.host}:{u.port};transport=udp")

    def test_6xx_cancels_the_others(self):
        uases, call = self.fork([RING_FOREVER, ring_then(603, after_ms=300), RING_FOREVER])
        t0 = time.monotonic()
        self.assertFinal(call, 603)
        self.assertLess(time.monotonic() - t0, 1.5, "the 603 waited for the other branches")
        for i in (0, 2):
            self.assertIsNotNone(uases[i].wait_request("CANCEL", call.call_id),
                                 f"UAS {i} was not canceled after the 603{self.log_tail()}")
        self.assertIsNotNone(uases[1].wait_request("ACK", call.call_id), "the 603 was not ACKed")
        time.sleep(QUIET)
        self.assertEqual(call.statuses().count(603), 1)
        self.assertNotIn(487, call.statuses())

    def test_401_challenges_aggregated(self):
        plans = [answer(401, headers=[("WWW-Authenticate", f'Digest realm="realm{i}", nonce="n{i}"')],
                        after_ms=100 * i) for i in (1, 2)]
        uases, call = self.fork(plans)
        final = self.assertFinal(call, 401)
        auth = final.get_all("WWW-Authenticate")
        realms = sorted(re.search(r'realm="([^"]+)"', a).group(1) for a in auth)
        self.assertEqual(realms, ["realm1", "realm2"], auth)
        for u in uases:
            self.assertIsNotNone(u.wait_request("ACK", call.call_id))

    def test_407_and_401_aggregated(self):
        plans = [answer(401, headers=[("WWW-Authenticate", 'Digest realm="www", nonce="n1"')]),
                 answer(407, after_ms=100, headers=[("Proxy-Authenticate", 'Digest realm="proxy", nonce="n2"')])]
        uases, call = self.fork(plans)
        final = call.wait_final()
        self.assertIsNotNone(final)
        self.assertIn(final.status, (401, 407))
        self.assertEqual(len(final.get_all("WWW-Authenticate")), 1, final.headers)
        self.assertEqual(len(final.get_all("Proxy-Authenticate")), 1, final.headers)

    def test_best_response_prefers_4xx_over_5xx(self):
        """§16.7: among 503 and 486 the 486 goes upstream."""
        uases, call = self.fork([answer(503, after_ms=50), answer(486, after_ms=150)])
        self.assertFinal(call, 486)

    def test_best_response_prefers_3xx(self):
        uases, call = self.fork([answer(486, after_ms=50), answer(302, after_ms=150, headers=[
            ("Contact", "<sip:elsewhere@127.0.0.1:9>")])])
        final = self.assertFinal(call, 302)
        self.assertEqual(final.get("Contact"), "<sip:elsewhere@127.0.0.1:9>")

    def test_serial_forking_by_q(self):
        first = self.uas("udp", answer(503))
        b, c = self.uas("udp", answer(480, after_ms=100)), self.uas("udp", ring_then(200, after_ms=200))
        late = self.uas("udp", ring_then(200))
        uac = self.uac("udp")
        t0 = time.monotonic()
        call = uac.invite(self.ruri("serial"), headers=[
            ("X-Target", uri_of(first.contact) + ";transport=udp"),
            ("X-Branches", f"{late.uri} 0.1, {b.uri} 0.5, {c.uri} 0.5")])
        self.assertFinal(call, 200)
        call.ack()
        inv_a = first.invites(call.call_id)
        self.assertEqual(len(inv_a), 1, f"the R-URI (highest q) was not tried{self.log_tail()}")
        for u in (b, c):
            got = u.invites(call.call_id)
            self.assertEqual(len(got), 1, "the q=0.5 group was not forked in parallel")
            self.assertGreater(got[0].rec.at, inv_a[0].rec.at + 0.0)
            self.assertIsNotNone(first.wait_request("ACK", call.call_id))
        self.assertEqual(late.invites(call.call_id), [], "the q=0.1 contact was tried although q=0.5 answered")
        fr = notes(self.srv, call.call_id, "serial failure")
        self.assertEqual(fr, ["serial failure code=503"], fr)


# ================================================================ timers, bad input

class TimerTest(TmBase):

    def test_never_answers_408(self):
        for t in ("udp", "tcp"):
            with self.subTest(transport=t):
                silent = self.uas(t, NEVER)
                uac = self.uac("udp")
                t0 = time.monotonic()
                call = uac.invite(self.ruri(), headers=[("X-Target", silent.uri)])
                self.assertFinal(call, 408, timeout=4)
                took = time.monotonic() - t0
                self.assertGreaterEqual(took, 0.9)
                self.assertLess(took, 1.8)
                fr = notes(self.srv, call.call_id, "failure")
                self.assertTrue(fr and "timeout=1" in fr[0] and "replied=-1" in fr[0], fr)

    def test_timer_c_after_180(self):
        """fr_inv_timer after a provisional: 408 upstream and CANCEL downstream."""
        uas = self.uas("udp", [(0, 180)])
        uac = self.uac("udp")
        t0 = time.monotonic()
        call = uac.invite(self.ruri(), headers=[("X-Target", uas.uri)])
        self.assertIsNotNone(call.wait_status(180))
        self.assertFinal(call, 408, timeout=5)
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 1.9)
        self.assertLess(took, 3.0)
        self.assertIsNotNone(uas.wait_request("CANCEL", call.call_id), "no CANCEL after Timer C")

    def test_ringing_forever_ends_at_max_inv_lifetime(self):
        uas = self.uas("udp", RING_FOREVER)
        uac = self.uac("udp")
        t0 = time.monotonic()
        call = uac.invite(self.ruri(), headers=[("X-Target", uas.uri)])
        final = call.wait_final(7)
        took = time.monotonic() - t0
        self.assertIsNotNone(final, f"180 forever was never ended{self.log_tail()}")
        self.assertEqual(final.status, 408, final.start)
        self.assertGreaterEqual(took, 3.9, "ended before max_inv_lifetime (4000 ms)")
        self.assertLess(took, 5.0)
        self.assertGreaterEqual(call.statuses().count(180), 3, "the repeated 180s were not relayed")
        self.assertIsNotNone(uas.wait_request("CANCEL", call.call_id), "no CANCEL downstream")

    def test_unreachable_udp(self):
        port = free_port()
        second = self.uas("udp", ring_then(200))
        uac = self.uac("udp")
        t0 = time.monotonic()
        call = uac.invite(self.ruri(), headers=[("X-Target", f"sip:{LOCAL4}:{port};transport=udp"),
                                                ("X-Failover", second.uri)])
        got = second.wait_request("INVITE", call.call_id, timeout=4)
        took = time.monotonic() - t0
        self.assertIsNotNone(got, f"no failover from an unreachable UDP destination{self.log_tail()}")
        fr = notes(self.srv, call.call_id, "failure")
        self.assertTrue(fr, "no failure route")
        print(f"\n  [unreachable UDP] failure route: {fr[0]} after {took * 1000:.0f} ms (fr_timer 1000 ms)")
        # the ICMP port unreachable is known to the transport: a local 503 without waiting fr_timer
        self.assertIn("code=503", fr[0])
        self.assertLess(took, 0.5, "waited for the timer although the port was unreachable")
        self.assertFinal(call, 200)
        call.ack()

    def test_unreachable_tcp_refused(self):
        """A refused TCP connection is known at once: the failure route runs before fr_timer."""
        port = free_port()
        second = self.uas("udp", ring_then(200))
        uac = self.uac("udp")
        t0 = time.monotonic()
        call = uac.invite(self.ruri(), headers=[("X-Target", f"sip:{LOCAL4}:{port};transport=tcp"),
                                                ("X-Failover", second.uri)])
        got = second.wait_request("INVITE", call.call_id, timeout=4)
        took = time.monotonic() - t0
        self.assertIsNotNone(got, f"no failover from a refused TCP destination{self.log_tail()}")
        fr = notes(self.srv, call.call_id, "failure")
        print(f"\n  [refused TCP] failure route: {fr[0] if fr else None} after {took * 1000:.0f} ms (fr_timer 1000 ms)")
        self.assertTrue(fr and "code=503" in fr[0], fr)
        self.assertLess(took, 0.5, "waited for the timer although the connection was refused")
        self.assertFinal(call, 200)
        call.ack()


class BadInputTest(TmBase):

    def test_reply_matching_nothing_forwarded_statelessly(self):
        with UdpPeer() as sender, UdpPeer() as origin:
            req = make_request("OPTIONS", "sip:x@example.com", [
                f"SIP/2.0/UDP {LOCAL4}:{self.srv.port};branch=z9hG4bKt{unique()}",
                origin.via()])
            resp = make_response(req, 200)
            sender.send(resp, self.srv.udp)
            got = origin.recv_msg()
            self.assertIsNotNone(got, f"the unmatched reply was not forwarded{self.log_tail()}")
            self.assertEqual(got.status, 200)
            self.assertEqual(got.vias(), req.vias()[1:])
            self.assertTrue(wait_notes(self.srv, req.get("Call-ID"), "reply route 200"),
                            "ksr_reply_route did not run for it")

    def test_reply_matching_nothing_with_our_branch_shape(self):
        """A reply whose branch looks like one of ours (bucket.label.idx) but matches no cell."""
        with UdpPeer() as sender, UdpPeer() as origin:
            req = make_request("INVITE", "sip:x@example.com", [
                f"SIP/2.0/UDP {LOCAL4}:{self.srv.port};branch=z9hG4bKt1.7fffffff.0", origin.via()])
            sender.send(make_response(req, 200), self.srv.udp)
            got = origin.recv_msg()
            self.assertIsNotNone(got, "not forwarded")
            self.assertEqual(got.status, 200)

    def test_cancel_unknown_481(self):
        for t in ("udp", "tcp"):
            with self.subTest(transport=t):
                peer = UdpPeer() if t == "udp" else TcpPeer(self.srv.tcp)
                with peer:
                    req = make_request("CANCEL", self.ruri(), peer.via(), headers=[("X-Target", "sip:127.0.0.1:9")])
                    r = peer.request(self.srv.udp, req) if t == "udp" else peer.request(req)
                    self.assertIsNotNone(r, f"no answer to an unknown CANCEL{self.log_tail()}")
                    self.assertEqual(r.status, 481, r.start)
                    self.assertEqual(r.top_via().branch, req.top_via().branch)
                    self.assertEqual(r.get("CSeq"), req.get("CSeq"))

    def test_ack_without_transaction_dropped(self):
        uas = self.uas("udp", ring_then(200))
        with UdpPeer() as p:
            req = make_request("ACK", uri_of(uas.contact), p.via(), headers=[("X-Target", uas.uri)],
                               to=f"<sip:bob@{LOCAL4}>;tag=nosuchdialog")
            p.send(req, self.srv.udp)
            self.assertTrue(p.quiet(), "an ACK was answered")
            self.assertIsNone(uas.wait_request("ACK", timeout=QUIET), "the stray ACK was forwarded")
            got = wait_notes(self.srv, req.get("Call-ID"), "ack")
            self.assertEqual(got, ["ack t_check_trans=-1"])

    def test_2xx_retransmitted_after_transaction_ended(self):
        uas = self.uas("udp", ring_then(200))
        uac = self.uac("udp")
        call = uac.invite(self.ruri(), headers=[("X-Target", uas.uri)])
        self.assertFinal(call, 200)
        uas.dialogs[call.call_id]["acked"].set()       # stop the UAS's own retransmissions
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(t["callid"] == call.call_id
                                                  for t in self.srv.rpc("tm.list")):
            time.sleep(0.1)
        self.assertFalse(any(t["callid"] == call.call_id for t in self.srv.rpc("tm.list")),
                         "the INVITE transaction outlived wt_timer")
        n = call.statuses().count(200)
        tx = uas.invites(call.call_id)[0]
        uas.reply_along_via(tx.final, tx.rec)
        got = call.tx.responses.wait(pred=lambda r: r.msg.status == 200, count=n + 1, timeout=2)
        self.assertEqual(len(got), n + 1, f"the late 2xx was not relayed{self.log_tail()}")
        self.assertEqual(len(got[-1].msg.vias()), 1)

    def test_retransmitted_invite_absorbed(self):
        """The caller's INVITE retransmissions get the 100 again and never reach the UAS."""
        uas = self.uas("udp", ring_then(200, after_ms=1500))
        with UdpPeer() as p:
            req = make_request("INVITE", self.ruri(), p.via(), headers=[("X-Target", uas.uri),
                                                                        ("Contact", f"<sip:a@{LOCAL4}:{p.port}>")])
            p.send(req, self.srv.udp)
            self.assertIsNotNone(uas.wait_request("INVITE"))
            p.drain()
            for _ in range(3):
                p.send(req, self.srv.udp)
                r = p.recv_msg()
                self.assertIsNotNone(r, "a retransmission was not answered")
                self.assertIn(r.status, (100, 180))
            time.sleep(0.3)
            self.assertEqual(len(uas.requests.select("INVITE")), 1)


class ReplyUnmatchedOffTest(TmBase):
    extra = {"fwd": {"reply_unmatched": False}}

    def test_reply_matching_nothing_dropped(self):
        with UdpPeer() as sender, UdpPeer() as origin:
            req = make_request("OPTIONS", "sip:x@example.com", [
                f"SIP/2.0/UDP {LOCAL4}:{self.srv.port};branch=z9hG4bKt{unique()}", origin.via()])
            sender.send(make_response(req, 200), self.srv.udp)
            self.assertTrue(origin.quiet(), "forwarded although fwd.reply_unmatched = false")

    def test_matched_replies_still_relayed(self):
        uas = self.uas("udp", ring_then(200))
        uac = self.uac("udp")
        call, final, bye = full_call(uac, self.ruri(), headers=[("X-Target", uas.uri)])
        self.assertEqual(final.status if final else None, 200)
        self.assertEqual(bye.status if bye else None, 200)


class UnmatchedCancelTest(TmBase):
    tm = {"unmatched_cancel": 2}

    def test_unknown_cancel_dropped(self):
        with UdpPeer() as p:
            req = make_request("CANCEL", self.ruri(), p.via())
            p.send(req, self.srv.udp)
            self.assertTrue(p.quiet(), "unmatched_cancel = 2 answered the CANCEL")


class MoreTest(TmBase):
    """CANCEL corner cases, local replies and their retransmissions, forked 2xx, non-INVITE."""

    def test_cancel_before_any_provisional(self):
        """§9.1: no CANCEL downstream before a provisional; the caller still gets a final at once
        (Kamailio's default cancel_b_method 0: a local 487 for the branch)."""
        uas = self.uas("udp", NEVER)
        uac = self.uac("udp")
        call = uac.invite(self.ruri(), headers=[("X-Target", uas.uri)])
        self.assertIsNotNone(uas.wait_request("INVITE", call.call_id))
        self.assertIsNotNone(call.wait_status(100))
        t0 = time.monotonic()
        cr = call.cancel()
        self.assertEqual(cr.status if cr else None, 200)
        final = call.wait_final(3)
        took = time.monotonic() - t0
        self.assertIsNotNone(final, f"no final after the CANCEL{self.log_tail()}")
        self.assertEqual(uas.requests.select("CANCEL", call.call_id), [],
                         "CANCEL sent downstream before any provisional")
        self.assertEqual(final.status, 487, f"{final.start} after {took:.2f} s")
        self.assertLess(took, 0.8, "the caller waited for fr_timer")

    def test_cancel_waits_for_the_provisional(self):
        """§9.1: the CANCEL goes out once the 180 arrives; the UAS answers 487."""
        uas = self.uas("udp", [(400, 180), ("repeat", 1000)])
        uac = self.uac("udp")
        call = uac.invite(self.ruri(), headers=[("X-Target", uas.uri)])
        self.assertIsNotNone(uas.wait_request("INVITE", call.call_id))
        cr = call.cancel()
        self.assertEqual(cr.status if cr else None, 200)
        got = uas.wait_request("CANCEL", call.call_id, timeout=3)
        self.assertIsNotNone(got, f"the CANCEL never went out after the 180{self.log_tail()}")
        inv = uas.invites(call.call_id)[0]
        self.assertGreaterEqual(got.at, inv.first.at + 0.35, "CANCEL sent before the provisional")
        self.assertFinal(call, 487)

    def test_cancel_retransmission_absorbed(self):
        uas = self.uas("udp", RING_FOREVER)
        with UdpPeer() as p:
            br = new_branch()
            inv = make_request("INVITE", self.ruri(), p.via(branch=br), cseq=1,
                               headers=[("X-Target", uas.uri), ("Contact", f"<sip:a@{LOCAL4}:{p.port}>")])
            p.send(inv, self.srv.udp)
            self.assertIsNotNone(uas.wait_request("INVITE", inv.get("Call-ID")))
            time.sleep(0.2)
            p.drain()
            cancel = make_request("CANCEL", self.ruri(), p.via(branch=br), cseq=1, call_id=inv.get("Call-ID"),
                                  frm=inv.get("From"), to=inv.get("To"))
            for _ in range(3):
                p.send(cancel, self.srv.udp)
                time.sleep(0.1)
            got = []
            while True:
                r = p.recv_msg(1.0)
                if r is None:
                    break
                got.append((r.status, r.get("CSeq")))
            self.assertEqual(got.count((200, "1 CANCEL")), 3, got)
            self.assertIn((487, "1 INVITE"), got)
            self.assertEqual(len(uas.requests.select("CANCEL", inv.get("Call-ID"))), 1)

    def test_cancel_after_the_final(self):
        """§16.10: 200 for the CANCEL, nothing pending to cancel downstream."""
        uas = self.uas("udp", ring_then(200))
        uac = self.uac("udp")
        call = uac.invite(self.ruri(), headers=[("X-Target", uas.uri)])
        self.assertFinal(call, 200)
        call.ack()
        cr = call.cancel()
        self.assertEqual(cr.status if cr else None, 200)
        self.assertIsNone(uas.wait_request("CANCEL", call.call_id, timeout=QUIET))

    def test_local_reply_retransmitted_until_ack(self):
        """t_reply 486 over UDP: Timer G resends it until the ACK, which is absorbed; a retransmitted
        INVITE gets it again."""
        with UdpPeer() as p:
            req = make_request("INVITE", self.ruri("busy"), p.via(), headers=[("Contact", f"<sip:a@{LOCAL4}:{p.port}>")])
            p.send(req, self.srv.udp)
            first = p.recv_msg()
            self.assertIsNotNone(first)
            self.assertEqual(first.status, 486)
            t0 = time.monotonic()
            again = p.recv_msg(1.0)    # T1 = 250 ms
            self.assertIsNotNone(again, "the 486 was not retransmitted (Timer G)")
            self.assertEqual(again.status, 486)
            self.assertEqual(again.tag("To"), first.tag("To"))
            self.assertGreater(time.monotonic() - t0, 0.15)
            p.send(req, self.srv.udp)   # a retransmitted INVITE: the 486 again
            r = p.recv_msg()
            self.assertEqual(r.status if r else None, 486)
            ack = make_request("ACK", self.ruri("busy"), req.get("Via"), call_id=req.get("Call-ID"),
                               frm=req.get("From"), to=first.get("To"), cseq=int(req.get("CSeq").split()[0]))
            p.send(ack, self.srv.udp)
            time.sleep(0.1)
            p.drain()
            self.assertTrue(p.quiet(1.2), "the 486 was still retransmitted after the ACK")
            self.assertEqual(wait_notes(self.srv, req.get("Call-ID"), "ack"), ["ack t_check_trans=0"])

    def test_failure_route_replies(self):
        uas = self.uas("udp", answer(503))
        uac = self.uac("udp")
        call = uac.invite(self.ruri(), headers=[("X-Target", uas.uri), ("X-FR-Reply", "480")])
        final = self.assertFinal(call, 480)
        self.assertEqual(final.reason, "From Failure Route")

    def test_two_2xx_from_two_branches_both_relayed(self):
        """RFC 6026: every 2xx of a forked INVITE goes upstream."""
        a, b = self.uas("udp", answer(200, after_ms=100)), self.uas("udp", answer(200, after_ms=100))
        uac = self.uac("udp")
        call = uac.invite(self.ruri(), headers=[("X-Target", a.uri), ("X-Branches", b.uri)])
        got = call.tx.responses.wait(pred=lambda r: r.msg.status == 200, count=2, timeout=3)
        tags = {r.msg.tag("To") for r in got}
        self.assertEqual(len(tags), 2, f"2xx received: {[r.msg.start for r in got]}{self.log_tail()}")

    def test_provisional_100_not_relayed(self):
        uas = self.uas("udp", [(0, 100), (50, 183), (100, 200)])
        uac = self.uac("udp")
        call = uac.invite(self.ruri(), headers=[("X-Target", uas.uri)])
        self.assertFinal(call, 200)
        call.ack()
        time.sleep(0.2)
        self.assertEqual(call.statuses().count(100), 1, call.statuses())
        self.assertIn(183, call.statuses())

    def test_relay_to_proxy_forces_transport(self):
        uas = self.uas("tcp")
        with UdpPeer() as p:
            req = make_request("MESSAGE", self.ruri(), p.via(),
                               headers=[("X-Relay-To-Proxy", f"tcp:{LOCAL4}:{uas.port}")])
            r = p.request(self.srv.udp, req)
            self.assertEqual(r.status if r else None, 200, f"{r and r.start}{self.log_tail()}")
            got = uas.wait_request("MESSAGE", req.get("Call-ID"))
            self.assertIsNotNone(got)
            self.assertEqual(parse_via(got.msg.vias()[0]).transport.upper(), "TCP")

    def test_non_invite_relayed_and_timed_out(self):
        uas, silent = self.uas("udp"), self.uas("udp", other_status=None)
        with UdpPeer() as p:
            req = make_request("MESSAGE", self.ruri(), p.via(), headers=[("X-Target", uas.uri)], body="hi")
            r = p.request(self.srv.udp, req)
            self.assertEqual(r.status if r else None, 200)
            self.assertEqual(len(uas.requests.select("MESSAGE")), 1)
            req = make_request("MESSAGE", self.ruri(), p.via(), headers=[("X-Target", silent.uri)], body="hi")
            t0 = time.monotonic()
            p.send(req, self.srv.udp)
            r = p.recv_msg(3)
            took = time.monotonic() - t0
            self.assertEqual(r.status if r else None, 408)
            self.assertGreaterEqual(took, 0.9)
            self.assertLess(took, 1.8)
            # Timer E: retransmitted to the silent UAS, capped at T2
            self.assertGreaterEqual(len(silent.requests.select("MESSAGE")), 3)


class NamedRoutesTest(TmBase):
    """t_on_branch (edits and drops per branch) and t_on_reply (sees and drops replies)."""

    def test_branch_route_per_branch(self):
        a, b = self.uas("udp", RING_FOREVER), self.uas("udp", ring_then(200, after_ms=200))
        dropped = self.uas("udp", ring_then(200))
        uac = self.uac("udp")
        drop_uri = f"sip:dropme@{LOCAL4}:{dropped.port};transport=udp"
        call = uac.invite(self.ruri(), headers=[("X-Routes", "yes"), ("X-Target", a.uri),
                                                ("X-Branches", f"{b.uri}, {drop_uri}")])
        self.assertFinal(call, 200)
        call.ack()
        for u in (a, b):
            inv = u.invites(call.call_id)
            self.assertEqual(len(inv), 1, f"{u.uri}: no INVITE{self.log_tail()}")
            self.assertEqual(inv[0].rec.msg.get_all("X-Branch-Route"), [inv[0].rec.msg.ruri],
                             "the branch route's edit is not on (only) its branch")
        self.assertIsNone(dropped.wait_request("INVITE", call.call_id, timeout=QUIET),
                          "a branch dropped in the branch route was sent")
        self.assertEqual(len(notes(self.srv, call.call_id, "branch ru=")), 3)

    def test_onreply_route_sees_and_drops(self):
        uas = self.uas("udp", [(0, 183, "Session Progress", [("X-Drop", "yes")]), (50, 180), (100, 200)])
        uac = self.uac("udp")
        call = uac.invite(self.ruri(), headers=[("X-Routes", "yes"), ("X-Target", uas.uri)])
        self.assertFinal(call, 200)
        call.ack()
        time.sleep(0.2)
        self.assertNotIn(183, call.statuses(), "a reply dropped in the onreply route was relayed")
        self.assertIn(180, call.statuses())
        seen = notes(self.srv, call.call_id, "onreply")
        self.assertEqual(seen[:3], ["onreply 183", "onreply 180", "onreply 200"], seen)


# ================================================================ concurrency

class PrecheckTest(TmBase):
    # the busy loop counts CPU time (os.clock): on a loaded machine it takes longer than 300 ms of
    # wall time, and must not run into the script time budget
    extra = {"lua": {"time_budget_ms": 5000}}

    def test_retransmission_on_another_worker_absorbed(self):
        uas = self.uas("udp", ring_then(200, after_ms=200))
        first = UdpPeer()
        others = [UdpPeer() for _ in range(10)]
        try:
            req = make_request("INVITE", self.ruri("slow"), first.via(),
                               headers=[("X-Target", uas.uri), ("Contact", f"<sip:a@{LOCAL4}:{first.port}>")])
            t0 = time.monotonic()
            first.send(req, self.srv.udp)
            time.sleep(0.05)
            for o in others:   # other source ports: SO_REUSEPORT spreads them over the workers
                o.send(req, self.srv.udp)
            got = uas.wait_request("INVITE", timeout=8)
            self.assertIsNotNone(got, f"the INVITE never arrived{self.log_tail()}")
            self.assertGreater(time.monotonic() - t0, 0.28, "the route did not take its 300 ms")
            time.sleep(0.8)
            self.assertEqual(len(uas.requests.select("INVITE")), 1,
                             f"the UAS saw the INVITE more than once{self.log_tail()}")
            hits = notes(self.srv, req.get("Call-ID"), "precheck hit")
            self.assertGreaterEqual(len(hits), 1, "no copy reached another worker during the slow route "
                                    "(or t_precheck_trans did not see it)")
        finally:
            first.close()
            for o in others:
                o.close()


class LossTest(TmBase):
    """200 calls with 20% of the packets the peers send and receive dropped."""
    tm = {"retr_timer1": 100, "retr_timer2": 400, "fr_timer": 5000, "max_inv_lifetime": 30000}

    CALLS = 200
    PARALLEL = 25

    def test_calls_complete_under_loss(self):
        self.calls_under_loss("udp", "udp", self.CALLS)

    def test_tcp_callers_lossy_udp_callee(self):
        """Callers on TCP connections (replies relayed by whichever worker gets them), callee lossy."""
        self.calls_under_loss("tcp", "udp", 100)

    def calls_under_loss(self, a, b, ncalls):
        if True:
            loss_uas, loss_uac = Loss(0.2, seed=11), Loss(0.2, seed=29)
            uas = self.uas(b, ring_then(200, after_ms=20), loss=loss_uas, final_limit=40)
            uac = self.uac(a, loss=loss_uac)
            before = self.srv.rpc("tm.stats")

            def one(i):
                return full_call(uac, self.ruri("lossy"), headers=[("X-Target", uas.uri)], timeout=12)

            t0 = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(self.PARALLEL) as ex:
                results = list(ex.map(one, range(ncalls)))
            took = time.monotonic() - t0
            bad = [(c.call_id, f.status if f else None, b_.status if b_ else None, c.statuses())
                   for c, f, b_ in results if not (f and f.status == 200 and b_ and b_.status == 200)]
            self.assertEqual(bad, [], f"{len(bad)} calls of {ncalls} failed")
            # every call reached the UAS once as a transaction and was ACKed and ended there: the
            # 2xx is resent by the UAS until its ACK comes through the proxy (no loss from here on,
            # so that the wait is bounded)
            loss_uas.rate = loss_uac.rate = 0
            deadline = time.monotonic() + 8
            missing = None
            while time.monotonic() < deadline:
                missing = [c.call_id for c, _, _ in results if not uas.dialogs[c.call_id]["acked"].is_set()]
                if not missing:
                    break
                time.sleep(0.2)
            self.assertEqual(missing, [], "ACKs that never reached the UAS")
            for c, _, _ in results:
                self.assertEqual(len(uas.invites(c.call_id)), 1)
                self.assertTrue(uas.dialogs[c.call_id]["ended"])
            after = self.srv.rpc("tm.stats")
            self.assertGreater(after["retransmissions"], before["retransmissions"])
            self.assertGreater(loss_uas.dropped_in + loss_uas.dropped_out, ncalls // 2)
            # every transaction ends and is freed (wt_timer after the last retransmission)
            deadline = time.monotonic() + 12
            while time.monotonic() < deadline:
                st = self.srv.rpc("tm.stats")
                if st["current"] == 0:
                    break
                time.sleep(0.2)
            self.assertEqual((st["current"], st["waiting"]), (0, 0), "transactions left after the calls")
            self.assertEqual(st["created"], st["freed"])
            print(f"\n  [loss {a}->{b}] {ncalls} calls in {took:.1f} s; dropped uas {loss_uas.dropped_in}/"
                  f"{loss_uas.dropped_out} uac {loss_uac.dropped_in}/{loss_uac.dropped_out}; "
                  f"proxy retransmissions {after['retransmissions'] - before['retransmissions']}")


# ================================================================ reload, RPC

RELOAD_V1 = ROUTE.replace('function ksr_failure_manage()', '''function ksr_failure_manage()
	note("old failure route")
	KSR.tm.t_reply(500, "Old Script")
end

function ksr_failure_unused()''')

RELOAD_V2 = ROUTE.replace('note("failure code="', 'note("new failure route") note("failure code="')


class ReloadTest(unittest.TestCase):

    def test_pending_failure_route_runs_the_new_function(self):
        srv = Server(script=RELOAD_V1, config={"tm": TM_CFG})
        peers = []
        try:
            srv.start()
            first = ScriptedUas("udp", ring_then(503, after_ms=1500))
            second = ScriptedUas("udp", ring_then(200))
            uac = Uac("udp", srv.udp)
            peers += [first, second, uac]
            call = uac.invite(f"sip:bob@{LOCAL4}:{srv.port}",
                              headers=[("X-Target", first.uri), ("X-Failover", second.uri)])
            self.assertIsNotNone(call.wait_status(180), "no 180")
            v2 = srv.dir / "route_v2.lua"
            v2.write_text(RELOAD_V2)
            out = ksrctl(srv, "app_lua.reload", str(v2))
            self.assertNotIn("error", json.dumps(out).lower(), out)
            final = call.wait_final(5)
            self.assertIsNotNone(final, f"no final\n{srv.log()[-3000:]}")
            self.assertEqual(final.status, 200, f"{final.start}: the old failure route ran\n{srv.log()[-3000:]}")
            self.assertTrue(notes(srv, call.call_id, "new failure route"))
            self.assertFalse(notes(srv, call.call_id, "old failure route"))
            self.assertEqual(len(second.invites(call.call_id)), 1)
            call.ack()
        finally:
            for p in peers:
                p.close()
            try:
                if srv.proc:
                    srv.stop()
            finally:
                srv.cleanup()


class RpcTest(TmBase):

    def test_stats_and_list(self):
        s0 = ksrctl(self.srv, "tm.stats")
        for k in ("current", "waiting", "total", "total_local", "rpl_received", "rpl_generated", "rpl_sent",
                  "1xx", "2xx", "3xx", "4xx", "5xx", "6xx", "created", "freed"):
            self.assertIn(k, s0)
        uas = self.uas("udp", ring_then(200, after_ms=800))
        uac = self.uac("udp")
        call = uac.invite(self.ruri(), headers=[("X-Target", uas.uri)])
        self.assertIsNotNone(call.wait_status(180))
        listed = [t for t in ksrctl(self.srv, "tm.list") if t["callid"] == call.call_id]
        self.assertEqual(len(listed), 1, listed)
        t = listed[0]
        self.assertEqual(t["method"], "INVITE")
        self.assertEqual(t["uas_status"], 180)
        self.assertEqual(t["branches"], 1)
        self.assertEqual(t["from_tag"], call.from_tag)
        self.assertEqual(t["cseq"], 1)
        self.assertGreaterEqual(ksrctl(self.srv, "tm.stats")["current"], 1)
        self.assertFinal(call, 200)
        call.ack()
        self.assertEqual(call.bye().status, 200)
        s1 = ksrctl(self.srv, "tm.stats")
        self.assertGreaterEqual(s1["total"] - s0["total"], 2)           # INVITE and BYE
        self.assertGreaterEqual(s1["created"] - s0["created"], 2)
        self.assertGreaterEqual(s1["2xx"] - s0["2xx"], 2)
        self.assertGreaterEqual(s1["1xx"] - s0["1xx"], 2)               # 100 and 180
        self.assertGreaterEqual(s1["rpl_received"] - s0["rpl_received"], 3)
        self.assertGreaterEqual(s1["rpl_sent"] - s0["rpl_sent"], 4)
        self.assertGreaterEqual(s1["rpl_generated"] - s0["rpl_generated"], 1)   # the 100
        deadline = time.monotonic() + 6
        s2 = s1
        while time.monotonic() < deadline:
            s2 = ksrctl(self.srv, "tm.stats")
            if s2["current"] == 0 and s2["waiting"] == 0:
                break
            time.sleep(0.1)
        self.assertEqual((s2["current"], s2["waiting"]), (0, 0), f"transactions left: {ksrctl(self.srv, 'tm.list')}")
        self.assertEqual(s2["created"], s2["freed"])
        self.assertEqual([t for t in ksrctl(self.srv, "tm.list") if t["callid"] == call.call_id], [])

    def test_tm_cancel(self):
        uas = self.uas("udp", RING_FOREVER)
        uac = self.uac("udp")
        call = uac.invite(self.ruri(), headers=[("X-Target", uas.uri)])
        self.assertIsNotNone(call.wait_status(180))
        ksrctl(self.srv, "tm.cancel", call.call_id, "s:1")
        self.assertIsNotNone(uas.wait_request("CANCEL", call.call_id), "tm.cancel sent no CANCEL")
        final = self.assertFinal(call, 487)
        self.assertEqual(final.get("Call-ID"), call.call_id)


if __name__ == "__main__":
    unittest.main()
