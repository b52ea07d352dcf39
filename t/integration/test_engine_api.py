# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""
The ★ functions of KSR (core), KSR.x, KSR.pv and KSR.sl, each called from a
real route on a running ksrd: the effect is checked on the wire (reply status
and reason, what a UAS receives, where a reply goes) or in the server log.

Values come back in the reason phrase as "type:value" items joined by "|"
("nil" for nil). Each request names its case in an X-Case header; replies to
forwarded requests name theirs in the Call-ID ("rc-CASE-...").
"""
import re
import time
import unittest

from ksrtest import (LOCAL4, TIMEOUT, Server, TcpPeer, Uas, UdpPeer, make_request, unique)

ROUTE = r'''
local function enc(v)
	if v == nil then return "nil" end
	return type(v) .. ":" .. tostring(v)
end

local function values(...)
	local out = {}
	for i = 1, select("#", ...) do out[#out + 1] = enc((select(i, ...))) end
	return table.concat(out, "|")
end

local function answer(...)
	KSR.sl.sl_send_reply(200, values(...))
end

-- r(v) collects values (nil included); r() answers with them
local function collect()
	local t, n = {}, 0
	return function(...)
		if select("#", ...) == 0 then return answer(unpack(t, 1, n)) end
		n = n + 1
		t[n] = (...)
	end
end

local function hdr(name) return KSR.pv.get("$hdr(" .. name .. ")") end
local function arg(i) return KSR.pv.get("$hdr(X-Arg)[" .. i .. "]") end

-- identifies the Lua state, so the worker that ran a request
local STATE = tostring({}):match("0x%x+") or tostring({})

-- at load time there is no message: message functions are refused, others work
local load = values(KSR.pv.get("$ru"), KSR.is_method("OPTIONS"), KSR.pv.gete("$ci"), KSR.isflagset(1),
	KSR.sl.sl_send_reply(200, "load"))

-- pseudo-variables that need no message work at load time
KSR.pv.sets("$shv(load_str)", "shared at load")
KSR.pv.seti("$shv(load_int)", 5)
KSR.pv.sets("$var(load_str)", "var at load")
local load_pvs = values(KSR.pv.get("$shv(load_str)"), KSR.pv.get("$shv(load_int)"), KSR.pv.get("$var(load_str)"))

-- a global declared at load time may be assigned in routes; a new one may not
declared_global = 0

local cases = {}

-- ---------------------------------------------------------------- logging
cases.log = function()
	local t = hdr("X-Arg")
	KSR.dbg(t .. "-dbg\n")
	KSR.info(t .. "-info")
	KSR.warn(t .. "-warn")
	KSR.err(t .. "-err")
	KSR.log("crit", t .. "-log-crit")
	KSR.log("info", t .. "-log-info")
	KSR.log("dbg", t .. "-log-dbg")
	KSR.log("nonsense", t .. "-log-nonsense")
	answer(KSR.info(t .. "-ret"))
end

-- ---------------------------------------------------------------- methods
local METHOD_FNS = { "is_INVITE", "is_ACK", "is_BYE", "is_CANCEL", "is_REGISTER", "is_OPTIONS", "is_NOTIFY" }
local LETTERS = "IABCMREPSNOFGUKDTV"
cases.methods = function()
	local fns, letters = {}, {}
	for _, f in ipairs(METHOD_FNS) do
		if KSR[f]() then fns[#fns + 1] = f end
	end
	for i = 1, #LETTERS do
		local l = LETTERS:sub(i, i)
		if KSR.is_method_in(l) then letters[#letters + 1] = l end
	end
	local m = KSR.pv.get("$rm")
	local res = values(table.concat(fns, ","), table.concat(letters, ","), KSR.is_method(m),
		KSR.is_method(m == "OPTIONS" and "INVITE" or "OPTIONS"), KSR.is_method_in(LETTERS),
		KSR.is_method_in(""), KSR.is_method_in("X" .. LETTERS:gsub(letters[1] or "", "")))
	if KSR.is_ACK() then
		KSR.info("ACK methods: " .. res)
	else
		KSR.sl.sl_send_reply(200, res)
	end
end
cases.is_method_other = function()
	answer(KSR.is_method("FOO"), KSR.is_method("BAR"), KSR.is_method_in(LETTERS), KSR.is_OPTIONS())
end

-- ---------------------------------------------------------------- transport
cases.transport = function()
	answer(KSR.is_WS(), KSR.is_UDP(), KSR.is_TCP(), KSR.pv.get("$pr"), KSR.pv.get("$proto"))
end

-- ---------------------------------------------------------------- myself
cases.myself = function()
	local r = collect()
	for i = 0, KSR.pv.get("$hdrc(X-Arg)") - 1 do r(KSR.is_myself(arg(i))) end
	r()
end
cases.myself_msg = function()
	answer(KSR.is_myself_ruri(), KSR.is_myself_furi(), KSR.is_myself_srcip())
end

-- ---------------------------------------------------------------- flags
cases.flags = function()
	local r = collect()
	r(KSR.isflagset(3))
	r(KSR.setflag(3))
	r(KSR.isflagset(3))
	r(KSR.isflagset(4))
	r(KSR.setflag(0))
	r(KSR.pv.get("$mf"))
	r(KSR.resetflag(3))
	r(KSR.isflagset(3))
	r(KSR.pv.get("$mf"))
	r(KSR.setflag(32))
	r(KSR.setflag(-1))
	r(KSR.isflagset(31))
	r()
end
cases.bflags = function()
	answer(KSR.isbflagset(2), KSR.setbflag(2), KSR.isbflagset(2), KSR.isbflagset(1), KSR.pv.get("$bf"),
		KSR.isflagset(2), KSR.setbflag(40))
end
-- flags live with the message: the next message starts without them
cases.flag_fresh = function()
	local before = KSR.isflagset(7)
	KSR.setflag(7)
	local bbefore = KSR.isbflagset(7)
	KSR.setbflag(7)
	answer(STATE, before, bbefore)
end

-- ---------------------------------------------------------------- R-URI, $du, forwarding
cases.seturi = function()
	local ok = KSR.seturi(hdr("X-Arg"))
	KSR.pv.sets("$var(seturi_ret)", tostring(ok))
	local ru = KSR.pv.get("$ru")
	local rc = KSR.forward()
	KSR.info("seturi " .. values(ok, ru, rc))
end
cases.seturi_bad = function()
	local before = KSR.pv.get("$ru")
	answer(KSR.seturi("this is not a uri"), KSR.pv.get("$ru") == before)
end
cases.setdsturi = function()
	local before = KSR.isdsturiset()
	local ok = KSR.setdsturi(hdr("X-Dest"))
	KSR.info("setdsturi " .. values(before, ok, KSR.isdsturiset(), KSR.pv.get("$du"), KSR.pv.get("$ru"),
		KSR.forward()))
end
cases.dsturi_values = function()
	local r = collect()
	r(KSR.isdsturiset())
	r(KSR.pv.get("$du"))
	r(KSR.setdsturi("sip:192.0.2.7:5099;transport=tcp"))
	r(KSR.isdsturiset())
	r(KSR.pv.get("$du"))
	r(KSR.pv.get("$dd"))
	r(KSR.pv.get("$dp"))
	r(KSR.pv.get("$dP"))
	r(KSR.setdsturi("not a uri at all"))
	r(KSR.pv.unset("$du"))
	r(KSR.isdsturiset())
	r()
end
cases.force_rport = function()
	if hdr("X-Arg") == "yes" then KSR.force_rport() end
	KSR.sl.sl_send_reply(200, "rport " .. tostring(hdr("X-Arg")))
end
cases.no_connect = function()
	local ok = KSR.set_reply_no_connect()
	KSR.sl.sl_send_reply(200, values(ok))
end

-- ---------------------------------------------------------------- KSR.x, drop
cases.exit = function()
	KSR.sl.sl_send_reply(200, "before exit")
	KSR.x.exit()
	KSR.sl.sl_send_reply(500, "after exit")
end
cases.exit_silent = function()
	KSR.info(hdr("X-Arg") .. " before exit")
	KSR.x.exit()
	KSR.info(hdr("X-Arg") .. " after exit")
end
cases.exit_pcall = function()
	-- KEMI quirk kept for compatibility: a pcall swallows the exit
	local ok = pcall(KSR.x.exit)
	answer("continued", ok)
end
cases.drop = function()
	KSR.info(hdr("X-Arg") .. " before drop")
	KSR.x.drop()
	KSR.sl.sl_send_reply(500, "after drop")
end
cases.set_drop = function()
	KSR.set_drop()
	KSR.info(hdr("X-Arg") .. " after set_drop")
	KSR.x.exit()
end
cases.set_drop_then_reply = function()
	KSR.set_drop()
	KSR.sl.sl_send_reply(200, "still running after set_drop")
end

-- ---------------------------------------------------------------- KSR.sl
cases.sl = function()
	local r1 = KSR.sl.sl_send_reply(99, "too low")
	local r2 = KSR.sl.sl_send_reply(700, "too high")
	local r3 = KSR.sl.sl_send_reply(202, "Accepted " .. values(r1, r2))
	KSR.info(hdr("X-Arg") .. " sl_send_reply returned " .. enc(r3))
end
cases.send_reply = function()
	local r1 = KSR.sl.send_reply(42, "bad code")
	local r2 = KSR.sl.send_reply(486, "Busy Here " .. values(r1))
	KSR.info(hdr("X-Arg") .. " send_reply returned " .. enc(r2))
end
cases.reply_error = function()
	local r = KSR.sl.sl_reply_error()
	KSR.info(hdr("X-Arg") .. " sl_reply_error returned " .. enc(r))
end
cases.ack_reply = function()
	KSR.info(hdr("X-Arg") .. " ack reply " .. values(KSR.sl.sl_send_reply(200, "to an ACK")))
end

-- ---------------------------------------------------------------- KSR.pv
cases.pv_msg = function()
	answer(KSR.pv.get("$ru"), KSR.pv.get("$rU"), KSR.pv.get("$rd"), KSR.pv.get("$rp"), KSR.pv.get("$rz"),
		KSR.pv.get("$fu"), KSR.pv.get("$fU"), KSR.pv.get("$fd"), KSR.pv.get("$fn"), KSR.pv.get("$ft"),
		KSR.pv.get("$tu"), KSR.pv.get("$tU"), KSR.pv.get("$td"), KSR.pv.get("$tt"),
		KSR.pv.get("$ci"), KSR.pv.get("$cs"), KSR.pv.get("$csb"), KSR.pv.get("$rm"), KSR.pv.get("$ua"),
		KSR.pv.get("$rs"), KSR.pv.get("$rr"), KSR.pv.get("$mt"), KSR.pv.get("$du"))
end
cases.pv_net = function()
	answer(KSR.pv.get("$si"), KSR.pv.get("$sp"), KSR.pv.get("$Ri"), KSR.pv.get("$Rp"), KSR.pv.get("$pr"),
		KSR.pv.get("$proto"), KSR.pv.get("$su"), KSR.pv.get("$sas"), KSR.pv.get("$conid") ~= nil,
		KSR.pv.get("$Ru"))
end
cases.pv_hdr = function()
	answer(KSR.pv.get("$hdr(X-Multi)"), KSR.pv.get("$hdr(x-multi)"), KSR.pv.get("$hdr(X-Multi)[0]"),
		KSR.pv.get("$hdr(X-Multi)[1]"), KSR.pv.get("$hdr(X-Multi)[-1]"), KSR.pv.get("$hdr(X-Multi)[7]"),
		KSR.pv.get("$hdrc(X-Multi)"), KSR.pv.get("$hdr(X-Absent)"), KSR.pv.get("$hdrc(X-Absent)"),
		KSR.pv.get("$ct"), KSR.pv.get("$ctu"), KSR.pv.get("$au"), KSR.pv.get("$ar"))
end
cases.pv_body = function()
	local mb = KSR.pv.get("$mb")
	answer((KSR.pv.get("$rb"):gsub("\r\n", "~")), KSR.pv.get("$bs"), KSR.pv.get("$cl"), KSR.pv.get("$cT"), KSR.pv.get("$ml"),
		#mb == KSR.pv.get("$ml"), mb:sub(1, 8))
end
cases.pv_rp = function()
	answer(KSR.pv.get("$rp"), KSR.pv.get("$rd"))
end
cases.pv_time = function()
	answer(KSR.pv.get("$Ts"), KSR.pv.get("$TS"), KSR.pv.get("$mi"))
end
cases.pv_null = function()
	-- $tt and $du are null here, $ci is not
	answer(KSR.pv.get("$tt"), KSR.pv.getw("$tt"), KSR.pv.gete("$tt"), KSR.pv.getw("$ci") == KSR.pv.get("$ci"),
		KSR.pv.gete("$cs"), KSR.pv.getw("$cs"), KSR.pv.is_null("$tt"), KSR.pv.is_null("$ci"),
		KSR.pv.is_null("$du"), KSR.pv.gete("$du"), KSR.pv.getw("$du"))
end
cases.pv_write = function()
	local r = collect()
	r(KSR.pv.sets("$var(s)", "text value"))
	r(KSR.pv.get("$var(s)"))
	r(KSR.pv.seti("$var(i)", 42))
	r(KSR.pv.get("$var(i)"))
	r(KSR.pv.sets("$var(s)", "7"))
	r(KSR.pv.get("$var(s)"))
	r(KSR.pv.unset("$var(s)"))
	r(KSR.pv.is_null("$var(s)"))
	r(KSR.pv.get("$var(s)"))
	r(KSR.pv.getw("$var(s)"))
	r(KSR.pv.sets("$avp(a)", "avp text"))
	r(KSR.pv.get("$avp(a)"))
	r(KSR.pv.unset("$avp(a)"))
	r(KSR.pv.is_null("$avp(a)"))
	r(KSR.pv.is_null("$var(never_set_here)"))
	r()
end
cases.pv_write_ruri = function()
	local r = collect()
	r(KSR.pv.sets("$rU", "carol"))
	r(KSR.pv.get("$ru"))
	r(KSR.pv.sets("$rd", "example.org"))
	r(KSR.pv.sets("$rp", "5070"))
	r(KSR.pv.get("$ru"))
	r(KSR.pv.get("$rp"))
	r(KSR.pv.sets("$ru", "sip:dave@example.net;x=1"))
	r(KSR.pv.get("$rU"))
	r(KSR.pv.get("$rd"))
	r(KSR.pv.get("$ou"))
	r(KSR.pv.get("$oU"))
	r(KSR.pv.seti("$mf", 5))
	r(KSR.isflagset(2))
	r(KSR.isflagset(1))
	r()
end
cases.pv_write_ruri_password = function()
	local r = collect()
	r(KSR.pv.sets("$rd", "example.org"))
	r(KSR.pv.get("$ru"))
	r(KSR.pv.sets("$rU", "carol"))
	r(KSR.pv.get("$ru"))
	r()
end
cases.pv_write_ruri_fwd = function()
	-- R-URI user written through $rU, then forwarded: the UAS sees it
	KSR.pv.sets("$rU", hdr("X-Arg"))
	KSR.pv.sets("$du", hdr("X-Dest"))
	KSR.forward()
end
cases.pv_readonly = function()
	answer(KSR.pv.sets("$ci", "other"), KSR.pv.get("$ci") == hdr("Call-ID"), KSR.pv.seti("$si", 1),
		KSR.pv.unset("$rm"), KSR.pv.get("$rm"))
end
cases.pv_unknown = function()
	answer(KSR.pv.get("$nosuchpv"), KSR.pv.gete("$nosuchpv"), KSR.pv.getw("$hdr(unclosed"),
		KSR.pv.is_null("$nosuchpv"), KSR.pv.sets("$nosuch(x)", "v"), KSR.pv.get("ru"),
		KSR.pv.seti("$another_unknown", 1), KSR.pv.get("$ci") ~= nil)
end
cases.var_inc = function()
	local name = "$var(" .. hdr("X-Arg") .. ")"
	local n = (KSR.pv.get(name) or 0) + 1
	KSR.pv.seti(name, n)
	answer(STATE, KSR.pv.get(name))
end
cases.avp_msg = function()
	local before = KSR.pv.get("$avp(per_msg)")
	KSR.pv.sets("$avp(per_msg)", hdr("X-Arg"))
	answer(STATE, before, KSR.pv.get("$avp(per_msg)"))
end
cases.shv_set = function()
	answer(STATE, KSR.pv.sets("$shv(" .. hdr("X-Arg") .. ")", hdr("X-Value")))
end
cases.shv_get = function()
	answer(STATE, KSR.pv.get("$shv(" .. hdr("X-Arg") .. ")"))
end
cases.shv_int = function()
	answer(KSR.pv.seti("$shv(int_" .. hdr("X-Arg") .. ")", -17), KSR.pv.get("$shv(int_" .. hdr("X-Arg") .. ")"))
end

-- ---------------------------------------------------------------- engine behaviour
cases.arity = function()
	answer(KSR.sl.sl_send_reply(200), KSR.is_method(), KSR.pv.get(), KSR.setflag(), KSR.seturi(),
		KSR.pv.sets("$var(x)"), KSR.is_myself())
end
cases.load_time = function() KSR.sl.sl_send_reply(200, load) end
cases.load_pvs = function() KSR.sl.sl_send_reply(200, load_pvs) end
cases.load_pvs_later = function() answer(KSR.pv.get("$shv(load_str)"), KSR.pv.get("$shv(load_int)")) end
cases.global_declared = function()
	declared_global = declared_global + 1
	answer(declared_global > 0)
end
cases.global_new = function()
	undeclared_thing = 1
	KSR.sl.sl_send_reply(200, "assigned")
end
cases.onsend = function()
	KSR.pv.sets("$var(onsend_ci)", "")
	local rc = KSR.forward_uri(hdr("X-Dest"))
	KSR.sl.sl_send_reply(299, values(rc, KSR.pv.get("$var(onsend_ci)") == KSR.pv.get("$ci")))
end

-- replies to forwarded requests: the case is in the Call-ID (rc-CASE-...)
local rcases = {}
rcases.reqonly = function()
	local r = values(KSR.seturi("sip:x@example.com"), KSR.isdsturiset(), KSR.sl.sl_send_reply(200, "x"),
		KSR.forward(), KSR.setdsturi("sip:192.0.2.1"), KSR.force_rport(), KSR.sl.sl_reply_error())
	KSR.hdr.append("X-Reply-Route: " .. r .. "\r\n")
end
rcases.msg = function()
	local r = values(KSR.is_method("OPTIONS"), KSR.is_method("INVITE"), KSR.is_OPTIONS(), KSR.is_method_in("O"),
		KSR.pv.get("$rs"), KSR.pv.get("$rr"), KSR.pv.get("$rm"), KSR.pv.get("$ru"), KSR.pv.get("$mt"),
		KSR.setflag(1), KSR.isflagset(1))
	KSR.hdr.append("X-Reply-Route: " .. r .. "\r\n")
end
rcases.drop = function()
	KSR.info(KSR.pv.get("$ci") .. " reply route drop")
	KSR.x.drop()
	KSR.hdr.append("X-Reply-Route: not dropped\r\n")
end
rcases.setdrop = function()
	KSR.set_drop()
	KSR.info(KSR.pv.get("$ci") .. " reply route after set_drop")
end
rcases.exit = function()
	KSR.x.exit()
	KSR.hdr.append("X-Reply-Route: not exited\r\n")
end
rcases.pass = function() end

function ksr_request_route()
	local case = KSR.pv.get("$hdr(X-Case)")
	if case == nil then
		local ci = KSR.pv.get("$ci")
		if ci:match("^rc%-") then
			KSR.forward_uri(hdr("X-Dest"))
			return
		end
		if KSR.is_OPTIONS() then KSR.sl.sl_send_reply(200, "OK") end
		return
	end
	local f = cases[case]
	if not f then
		KSR.sl.sl_send_reply(404, "no case " .. case)
		return
	end
	f()
end

function ksr_reply_route()
	local case = (KSR.pv.get("$ci") or ""):match("^rc%-([%w_]+)%-")
	if case and rcases[case] then rcases[case]() end
end

function ksr_onsend_route()
	KSR.pv.sets("$var(onsend_ci)", KSR.pv.get("$ci"))
	KSR.info("onsend route for " .. KSR.pv.get("$ci") .. " ru=" .. tostring(KSR.pv.get("$ru")))
	local how = KSR.pv.get("$hdr(X-Onsend)")
	if how == "drop" then
		KSR.x.drop()
	elseif how == "set_drop" then
		KSR.set_drop()
	end
end
'''


def split_values(reason):
    return reason.split("|") if reason else []


class EngineApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(script=ROUTE, log_level="dbg")
        cls.srv.start()
        cls.uas = Uas()

    @classmethod
    def tearDownClass(cls):
        cls.uas.close()
        cls.srv.close()

    def setUp(self):
        self.uas.drain()
        self.assertTrue(self.srv.alive(), "ksrd is not running")

    # -- helpers
    def request(self, case, method="OPTIONS", ruri=None, headers=(), peer=None, call_id=None, **kw):
        hdrs = ([("X-Case", case)] if case else []) + list(headers)
        p = peer or UdpPeer()
        msg = make_request(method, ruri or self.srv.uri(), p.via(), headers=hdrs, call_id=call_id, **kw)
        return p, msg

    def ask(self, case, *args, expect_reply=True, **kw):
        """Sends a request naming the case; returns the reply whose Call-ID matches (or None)."""
        own = "peer" not in kw or kw["peer"] is None
        p, msg = self.request(case, *args, **kw)
        try:
            if isinstance(p, TcpPeer):
                p.send(msg)
            else:
                p.send(msg, self.srv.udp)
            r = self.recv_matching(p, msg, TIMEOUT if expect_reply else 1.0)
            if expect_reply:
                self.assertIsNotNone(r, f"no reply to case {case}\n{self.srv.log()[-3000:]}")
            return r
        finally:
            if own:
                p.close()

    @staticmethod
    def recv_matching(p, msg, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r = p.recv_msg(left)
            if r is None:
                return None
            if r.get("Call-ID") == msg.get("Call-ID"):
                return r

    def values(self, case, *args, status=200, **kw):
        r = self.ask(case, *args, **kw)
        self.assertEqual(r.status, status, f"case {case}: {r.start}\n{self.srv.log()[-2000:]}")
        return split_values(r.reason)

    def log_has(self, pattern, timeout=3.0):
        m = self.srv.wait_log(pattern, timeout)
        self.assertIsNotNone(m, f"log never matched {pattern!r}\n--- log tail\n{self.srv.log()[-3000:]}")
        return m

    def script_errors(self):
        return self.srv.stats().get("app_lua.script_errors")

    # ---------------------------------------------------------------- logging

    def test_log_functions(self):
        tok = unique("tok")
        r = self.ask("log", headers=[("X-Arg", tok)])
        cid = r.get("Call-ID")
        self.log_has(rf"DEBUG: SCRIPT \[{re.escape(cid)}\] {tok}-dbg\n")
        self.log_has(rf"INFO: SCRIPT \[{re.escape(cid)}\] {tok}-info\n")
        self.log_has(rf"WARNING: SCRIPT \[{re.escape(cid)}\] {tok}-warn\n")
        self.log_has(rf"ERROR: SCRIPT \[{re.escape(cid)}\] {tok}-err\n")
        self.log_has(rf"CRIT: SCRIPT \[{re.escape(cid)}\] {tok}-log-crit\n")
        self.log_has(rf"INFO: SCRIPT \[{re.escape(cid)}\] {tok}-log-info\n")
        self.log_has(rf"DEBUG: SCRIPT \[{re.escape(cid)}\] {tok}-log-dbg\n")
        # an unknown level name logs at ERROR
        self.log_has(rf"ERROR: SCRIPT \[{re.escape(cid)}\] {tok}-log-nonsense\n")
        # "\n" at the end of the text does not make an empty line
        self.assertNotIn(f"{tok}-dbg\n\n", self.srv.log())

    def test_log_level_respected(self):
        tok = unique("tok")
        with Server(script=ROUTE, log_level="info") as srv, UdpPeer() as p:
            msg = make_request("OPTIONS", srv.uri(), p.via(), headers=[("X-Case", "log"), ("X-Arg", tok)])
            self.assertIsNotNone(p.request(srv.udp, msg))
            self.assertIsNotNone(srv.wait_log(rf"{tok}-ret"), srv.log())
            log = srv.log()
            self.assertIn(f"{tok}-info", log)
            self.assertIn(f"{tok}-err", log)
            self.assertNotIn(f"{tok}-dbg", log, "KSR.dbg logged at level info")
            self.assertNotIn(f"{tok}-log-dbg", log, "KSR.log('dbg', ...) logged at level info")

    # ---------------------------------------------------------------- methods

    METHODS = {
        # method: (is_* function true, is_method_in letter)
        "INVITE": ("is_INVITE", "I"), "ACK": ("is_ACK", "A"), "BYE": ("is_BYE", "B"),
        "CANCEL": ("is_CANCEL", "C"), "REGISTER": ("is_REGISTER", "R"), "OPTIONS": ("is_OPTIONS", "O"),
        "NOTIFY": ("is_NOTIFY", "N"), "MESSAGE": ("", "M"), "PUBLISH": ("", "E"), "PRACK": ("", "P"),
        "SUBSCRIBE": ("", "S"), "REFER": ("", "F"), "UPDATE": ("", "U"), "INFO": ("", ""),
    }

    def test_is_method_functions_and_letters(self):
        for method, (fn, letter) in self.METHODS.items():
            with self.subTest(method=method):
                if method == "ACK":
                    tok = unique("ack")
                    p, msg = self.request("methods", "ACK", call_id=tok + "@ksrtest")
                    with p:
                        p.send(msg, self.srv.udp)
                        m = self.log_has(rf"\[{tok}@ksrtest\] ACK methods: (.*)\n")
                    vals = split_values(m.group(1))
                else:
                    vals = self.values("methods", method)
                want_fns = f"string:{fn}" if fn else "string:"
                self.assertEqual(vals[0], want_fns, f"{method}: is_* functions that said true")
                self.assertEqual(vals[1], f"string:{letter}", f"{method}: is_method_in letters that matched")
                self.assertEqual(vals[2], "boolean:true", f"is_method('{method}')")
                self.assertEqual(vals[3], "boolean:false", "is_method of another method")
                self.assertEqual(vals[4], "boolean:" + ("true" if letter else "false"), "is_method_in(all letters)")
                self.assertEqual(vals[5], "boolean:false", "is_method_in('')")
                self.assertEqual(vals[6], "boolean:false", "is_method_in(all other letters)")

    def test_is_method_unknown_method(self):
        vals = self.values("is_method_other", "FOO")
        self.assertEqual(vals, ["boolean:true", "boolean:false", "boolean:false", "boolean:false"])

    def test_is_ws_and_transport(self):
        self.assertEqual(self.values("transport"),
                         ["boolean:false", "boolean:true", "boolean:false", "string:udp", "string:udp"])
        with TcpPeer(self.srv.tcp) as t:
            vals = self.values("transport", peer=t)
        self.assertEqual(vals, ["boolean:false", "boolean:false", "boolean:true", "string:tcp", "string:tcp"])

    # ---------------------------------------------------------------- myself

    def test_is_myself(self):
        port = self.srv.port
        uris = [f"sip:127.0.0.1:{port}", f"sip:bob@127.0.0.1:{port};transport=udp", f"sip:192.0.2.1:{port}",
                "sip:127.0.0.1:1", "tel:+123456", "not a uri"]
        vals = self.values("myself", headers=[("X-Arg", u) for u in uris])
        self.assertEqual(vals, ["boolean:true", "boolean:true", "boolean:false", "boolean:false",
                                "boolean:false", "boolean:false"])

    def test_is_myself_ruri_furi_srcip(self):
        port = self.srv.port
        mine = f"sip:127.0.0.1:{port}"
        # R-URI ours, From foreign, source ours
        self.assertEqual(self.values("myself_msg", ruri=mine), ["boolean:true", "boolean:false", "boolean:true"])
        # R-URI foreign, From ours
        vals = self.values("myself_msg", ruri="sip:bob@192.0.2.10:5060",
                           frm=f"<sip:alice@127.0.0.1:{port}>;tag={unique()}")
        self.assertEqual(vals, ["boolean:false", "boolean:true", "boolean:true"])
        # source 127.0.0.2: not one of our addresses
        with UdpPeer("127.0.0.2") as p:
            vals = self.values("myself_msg", ruri=mine, peer=p)
        self.assertEqual(vals, ["boolean:true", "boolean:false", "boolean:false"])

    # ---------------------------------------------------------------- flags

    def test_message_flags(self):
        self.assertEqual(self.values("flags"), [
            "boolean:false", "boolean:true", "boolean:true", "boolean:false", "boolean:true",
            "number:9", "boolean:true", "boolean:false", "number:1",
            "boolean:false", "boolean:false", "boolean:false"])

    def test_branch_flags(self):
        self.assertEqual(self.values("bflags"), ["boolean:false", "boolean:true", "boolean:true", "boolean:false",
                                                 "number:4", "boolean:false", "boolean:false"])

    def test_flags_do_not_outlive_the_message(self):
        with UdpPeer() as p:
            first = self.values("flag_fresh", peer=p)
            second = self.values("flag_fresh", peer=p)
        self.assertEqual(first[0], second[0], "same socket, same worker expected")
        self.assertEqual(first[1:], ["boolean:false", "boolean:false"])
        self.assertEqual(second[1:], ["boolean:false", "boolean:false"], "flags carried over to the next message")

    # ---------------------------------------------------------------- R-URI, $du

    def test_seturi_then_forward(self):
        target = f"sip:newuser@127.0.0.1:{self.uas.port};transport=udp"
        r = self.ask("seturi", ruri="sip:olduser@example.com", headers=[("X-Arg", target)])
        self.assertEqual(r.status, 200, "the UAS's 200 relayed back")
        rec = self.uas.wait_request()
        self.assertIsNotNone(rec, f"nothing forwarded\n{self.srv.log()[-2000:]}")
        self.assertEqual(rec.msg.ruri, target, "R-URI at the UAS")
        self.assertEqual(rec.msg.get("Call-ID"), r.get("Call-ID"))
        self.assertEqual(len(rec.msg.vias()), 2, "ksrd's Via on top of the client's")
        self.log_has(rf"seturi boolean:true\|string:{re.escape(target)}\|number:1")

    def test_seturi_invalid(self):
        r = self.ask("seturi_bad")
        self.assertEqual(split_values(r.reason), ["boolean:false", "boolean:true"])
        self.log_has(r"KSR\.seturi: not a valid URI: 'this is not a uri'")

    def test_setdsturi_then_forward(self):
        dest = f"sip:127.0.0.1:{self.uas.port};transport=udp"
        ruri = "sip:bob@example.com"
        r = self.ask("setdsturi", ruri=ruri, headers=[("X-Dest", dest)])
        self.assertEqual(r.status, 200)
        rec = self.uas.wait_request()
        self.assertIsNotNone(rec, f"nothing forwarded to $du\n{self.srv.log()[-2000:]}")
        self.assertEqual(rec.msg.ruri, ruri, "setdsturi must not change the R-URI")
        self.log_has(rf"setdsturi boolean:false\|boolean:true\|boolean:true\|string:{re.escape(dest)}\|"
                     rf"string:{re.escape(ruri)}\|number:1")

    def test_dsturi_values(self):
        self.assertEqual(self.values("dsturi_values"), [
            "boolean:false", "nil", "boolean:true", "boolean:true", "string:sip:192.0.2.7:5099;transport=tcp",
            "string:192.0.2.7", "number:5099", "string:tcp", "boolean:false", "boolean:true", "boolean:false"])

    def test_force_rport(self):
        """Via without rport, sent-by naming another port: the reply goes there unless force_rport()."""
        with UdpPeer() as a, UdpPeer() as b:
            via = a.via(rport=False, port=b.port)
            for arg, to, other in (("no", b, a), ("yes", a, b)):
                msg = make_request("OPTIONS", self.srv.uri(), via.replace("z9hG4bK", "z9hG4bK" + arg),
                                   headers=[("X-Case", "force_rport"), ("X-Arg", arg)])
                a.send(msg, self.srv.udp)
                r = self.recv_matching(to, msg)
                self.assertIsNotNone(r, f"force_rport={arg}: reply not at the expected port")
                self.assertEqual(r.reason, f"rport {arg}")
                v = r.top_via()
                if arg == "yes":
                    self.assertEqual(v.params.get("rport"), str(a.port), f"rport in {v.text}")
                    self.assertEqual(v.params.get("received"), LOCAL4)
                else:
                    self.assertNotIn("rport", v.params)
                self.assertTrue(other.quiet(0.3), "reply also sent to the other port")

    def test_set_reply_no_connect_over_existing_connection(self):
        with TcpPeer(self.srv.tcp) as t:
            self.assertEqual(self.values("no_connect", peer=t), ["boolean:true"])
        # and over UDP (no connection involved) it is harmless
        self.assertEqual(self.values("no_connect"), ["boolean:true"])

    # ---------------------------------------------------------------- KSR.x and drop

    def test_exit_stops_the_route(self):
        with UdpPeer() as p:
            r = self.ask("exit", peer=p)
            self.assertEqual((r.status, r.reason), (200, "before exit"))
            self.assertTrue(p.quiet(), "something was sent after KSR.x.exit()")

    def test_exit_is_not_an_error(self):
        errors = self.script_errors()
        tok = unique("ex")
        with UdpPeer() as p:
            r = self.ask("exit_silent", peer=p, headers=[("X-Arg", tok)], expect_reply=False)
            self.assertIsNone(r, "KSR.x.exit() without a reply must not answer (no 500)")
        self.log_has(rf"{tok} before exit")
        self.assertNotIn(f"{tok} after exit", self.srv.log())
        self.assertEqual(self.script_errors(), errors, "KSR.x.exit() counted as a script error")

    def test_exit_inside_pcall_is_swallowed(self):
        self.assertEqual(self.values("exit_pcall"), ["string:continued", "boolean:false"])

    def test_drop_in_request_route(self):
        tok = unique("dr")
        r = self.ask("drop", headers=[("X-Arg", tok)], expect_reply=False)
        self.assertIsNone(r, f"KSR.x.drop() still answered: {r and r.start}")
        self.log_has(rf"{tok} before drop")

    def test_set_drop_lets_the_script_run_on(self):
        tok = unique("sd")
        r = self.ask("set_drop", headers=[("X-Arg", tok)], expect_reply=False)
        self.assertIsNone(r)
        self.log_has(rf"{tok} after set_drop")
        r = self.ask("set_drop_then_reply")
        self.assertEqual(r.reason, "still running after set_drop")

    # ---------------------------------------------------------------- KSR.sl

    def test_sl_send_reply(self):
        tok = unique("sl")
        r = self.ask("sl", headers=[("X-Arg", tok)])
        self.assertEqual(r.status, 202)
        self.assertEqual(r.reason, "Accepted number:-1|number:-1", "codes outside 100..699 refused")
        self.assertIsNotNone(r.tag("To"), "a final reply has a To tag")
        self.log_has(rf"{tok} sl_send_reply returned number:1")

    def test_send_reply(self):
        tok = unique("sr")
        r = self.ask("send_reply", headers=[("X-Arg", tok)])
        self.assertEqual((r.status, r.reason), (486, "Busy Here number:-1"))
        self.log_has(rf"{tok} send_reply returned number:1")

    def test_sl_reply_error_without_error(self):
        tok = unique("re")
        r = self.ask("reply_error", headers=[("X-Arg", tok)])
        self.assertEqual((r.status, r.reason), (500, "Server Internal Error"))
        self.log_has(rf"{tok} sl_reply_error returned number:1")

    def test_no_reply_to_ack(self):
        tok = unique("ak")
        r = self.ask("ack_reply", "ACK", headers=[("X-Arg", tok)], expect_reply=False)
        self.assertIsNone(r, "an ACK was answered")
        self.log_has(rf"{tok} ack reply number:-1")

    # ---------------------------------------------------------------- KSR.pv reads

    def test_pv_message_values(self):
        p = UdpPeer()
        with p:
            msg = make_request("OPTIONS", "sip:bob@example.com:5070;transport=udp", p.via(),
                               frm=f'"Alice A" <sip:alice@client.example>;tag=ft123',
                               to='"Bob" <sip:bob@example.com>', cseq=4711,
                               headers=[("X-Case", "pv_msg"), ("User-Agent", "ksrtest-ua/1")])
            r = p.request(self.srv.udp, msg)
        self.assertIsNotNone(r)
        self.assertEqual(split_values(r.reason), [
            "string:sip:bob@example.com:5070;transport=udp", "string:bob", "string:example.com", "string:5070",
            "string:sip", "string:sip:alice@client.example", "string:alice", "string:client.example",
            'string:"Alice A"', "string:ft123", "string:sip:bob@example.com", "string:bob", "string:example.com",
            "nil", f"string:{msg.get('Call-ID')}", "number:4711", "string:4711 OPTIONS", "string:OPTIONS",
            "string:ksrtest-ua/1", "nil", "nil", "number:1", "nil"])

    def test_pv_network_values(self):
        with UdpPeer() as p:
            vals = self.values("pv_net", peer=p)
            port = p.port
        self.assertEqual(vals[:6] + vals[7:9], [
            "string:127.0.0.1", f"number:{port}", "string:127.0.0.1", f"number:{self.srv.port}", "string:udp",
            "string:udp", f"string:udp:127.0.0.1:{port}", "boolean:false"])
        with TcpPeer(self.srv.tcp) as t:
            vals = self.values("pv_net", peer=t)
            port = t.port
        self.assertEqual(vals[1], f"number:{port}")
        self.assertEqual(vals[4:6], ["string:tcp", "string:tcp"])
        self.assertEqual(vals[7], f"string:tcp:127.0.0.1:{port}")
        self.assertEqual(vals[8], "boolean:true", "$conid over TCP")

    def test_pv_source_uri(self):
        """$su as Kamailio gives it: sip:IP:PORT, ;transport=X only when not UDP."""
        with UdpPeer() as p:
            vals = self.values("pv_net", peer=p)
            port = p.port
        self.assertEqual(vals[6], f"string:sip:127.0.0.1:{port}")
        with TcpPeer(self.srv.tcp) as t:
            vals = self.values("pv_net", peer=t)
            port = t.port
        self.assertEqual(vals[6], f"string:sip:127.0.0.1:{port};transport=tcp")


    def test_pv_receive_uri(self):
        """$Ru as Kamailio gives it: sip:IP:PORT, ;transport=X only when not UDP ($Rut adds it always)."""
        with TcpPeer(self.srv.tcp) as t:
            vals = self.values("pv_net", peer=t)
        self.assertEqual(vals[9], f"string:sip:127.0.0.1:{self.srv.port};transport=tcp")
        vals = self.values("pv_net")
        self.assertEqual(vals[9], f"string:sip:127.0.0.1:{self.srv.port}")

    def test_pv_rp_default_port(self):
        """Kamailio's $rp is 5060 (5061 for TLS) when the R-URI has no port."""
        self.assertEqual(self.values("pv_rp", ruri="sip:bob@example.com"), ["string:5060", "string:example.com"])

    def test_pv_headers(self):
        vals = self.values("pv_hdr", headers=[
            ("X-Multi", "one"), ("X-Other", "x"), ("X-Multi", "two"), ("x-multi", "three"),
            ("Contact", "<sip:alice@192.0.2.5:5062>;expires=60"),
            ("Authorization", 'Digest username="alice", realm="example.com", nonce="n", uri="sip:x", '
                              'response="0123456789abcdef0123456789abcdef"')])
        self.assertEqual(vals, [
            "string:one", "string:one", "string:one", "string:two", "string:three", "nil", "number:3", "nil",
            "number:0", "string:<sip:alice@192.0.2.5:5062>;expires=60", "string:sip:alice@192.0.2.5:5062",
            "string:alice", "string:example.com"])

    def test_pv_body(self):
        body = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
        vals = self.values("pv_body", "MESSAGE", body=body, headers=[("Content-Type", "application/sdp")])
        self.assertEqual(vals[:4], ["string:" + body.replace("\r\n", "~"), f"number:{len(body)}",
                                    f"number:{len(body)}", "string:application/sdp"])
        self.assertTrue(vals[4].startswith("number:"))
        self.assertEqual(vals[5:], ["boolean:true", "string:MESSAGE "])

    def test_pv_time_and_msg_id(self):
        before = int(time.time())
        a = self.values("pv_time")
        b = self.values("pv_time")
        after = int(time.time())
        for vals in (a, b):
            ts, now = int(vals[0].split(":")[1]), int(vals[1].split(":")[1])
            self.assertTrue(before - 1 <= ts <= after + 1, f"$Ts {ts} not in [{before}, {after}]")
            self.assertTrue(before - 1 <= now <= after + 1, f"$TS {now}")
        self.assertTrue(a[2].startswith("number:") and b[2].startswith("number:"))

    def test_pv_null_forms(self):
        self.assertEqual(self.values("pv_null", cseq=12), [
            "nil", "string:<null>", "string:", "boolean:true", "number:12", "number:12",
            "boolean:true", "boolean:false", "boolean:true", "string:", "string:<null>"])

    # ---------------------------------------------------------------- KSR.pv writes

    def test_pv_sets_seti_unset_is_null(self):
        self.assertEqual(self.values("pv_write"), [
            "boolean:true", "string:text value", "boolean:true", "number:42", "boolean:true", "string:7",
            "boolean:true", "boolean:true", "nil", "string:<null>", "boolean:true", "string:avp text",
            "boolean:true", "boolean:true", "boolean:true"])

    def test_pv_write_ruri_parts(self):
        vals = self.values("pv_write_ruri", ruri="sip:bob@example.com;transport=udp")
        self.assertEqual(vals, [
            "boolean:true", "string:sip:carol@example.com;transport=udp", "boolean:true", "boolean:true",
            "string:sip:carol@example.org:5070;transport=udp", "string:5070", "boolean:true", "string:dave",
            "string:example.net", "string:sip:bob@example.com;transport=udp", "string:bob", "boolean:true",
            "boolean:true", "boolean:false"])

    def test_pv_write_ruri_password(self):
        """As in Kamailio, a new host or a new user keeps the R-URI's password."""
        vals = self.values("pv_write_ruri_password", ruri="sip:bob:secret@example.com")
        self.assertEqual(vals, ["boolean:true", "string:sip:bob:secret@example.org", "boolean:true",
                                "string:sip:carol:secret@example.org"])

    def test_pv_written_ruri_reaches_the_uas(self):
        dest = f"sip:127.0.0.1:{self.uas.port};transport=udp"
        r = self.ask("pv_write_ruri_fwd", ruri="sip:bob@example.com",
                     headers=[("X-Arg", "written-user"), ("X-Dest", dest)])
        self.assertEqual(r.status, 200)
        rec = self.uas.wait_request()
        self.assertIsNotNone(rec, self.srv.log()[-2000:])
        self.assertEqual(rec.msg.ruri, "sip:written-user@example.com")

    def test_pv_read_only(self):
        vals = self.values("pv_readonly")
        self.assertEqual(vals, ["boolean:false", "boolean:true", "boolean:false", "boolean:false",
                                "string:OPTIONS"])
        self.log_has(r"cannot assign pseudo-variable '\$ci'")

    def test_pv_unknown_name(self):
        r = self.ask("pv_unknown")
        self.assertEqual(split_values(r.reason), [
            "nil", "string:", "string:<null>", "boolean:true", "boolean:false", "nil", "boolean:false",
            "boolean:true"])
        cid = re.escape(r.get("Call-ID"))
        self.log_has(rf"\[{cid}\] unknown pseudo-variable '\$nosuchpv'")
        self.log_has(rf"\[{cid}\] unknown pseudo-variable '\$hdr\(unclosed'")
        self.log_has(rf"\[{cid}\] unknown pseudo-variable '\$nosuch\(x\)'")
        self.log_has(rf"\[{cid}\] unknown pseudo-variable 'ru'")
        self.log_has(rf"\[{cid}\] unknown pseudo-variable '\$another_unknown'")
        self.assertTrue(self.srv.alive())
        self.assertEqual(self.ask("transport").status, 200, "still serving")

    def test_var_persists_per_worker(self):
        """$var(x) keeps its value from one message to the next in a worker; each worker has its own."""
        name = unique("cnt")
        seen = {}
        deadline = time.monotonic() + 10
        i = 0
        while (len(seen) < 2 or min(len(v) for v in seen.values()) < 3) and time.monotonic() < deadline:
            with UdpPeer() as p:
                for _ in range(2):
                    state, n = self.values("var_inc", peer=p, headers=[("X-Arg", name)])
                    seen.setdefault(state, []).append(int(n.split(":")[1]))
            i += 1
        self.assertGreaterEqual(len(seen), 2, f"requests from {i} sockets all reached one worker")
        for state, counts in seen.items():
            self.assertEqual(counts, list(range(1, len(counts) + 1)),
                             f"$var counter of worker {state} (all: {seen})")

    def test_avp_lives_with_the_message(self):
        with UdpPeer() as p:
            a = self.values("avp_msg", peer=p, headers=[("X-Arg", "first")])
            b = self.values("avp_msg", peer=p, headers=[("X-Arg", "second")])
        self.assertEqual(a[0], b[0], "same socket, same worker expected")
        self.assertEqual(a[1:], ["nil", "string:first"])
        self.assertEqual(b[1:], ["nil", "string:second"], "$avp survived into the next message")

    def test_shv_is_shared_by_workers(self):
        name, value = unique("shv"), unique("val")
        with UdpPeer() as p:
            setter, ok = self.values("shv_set", peer=p, headers=[("X-Arg", name), ("X-Value", value)])
        self.assertEqual(ok, "boolean:true")
        states = set()
        for _ in range(40):
            with UdpPeer() as p:
                state, got = self.values("shv_get", peer=p, headers=[("X-Arg", name)])
            self.assertEqual(got, f"string:{value}", f"$shv({name}) read by worker {state}")
            states.add(state)
            if states - {setter}:
                break
        self.assertTrue(states - {setter}, "never reached a worker other than the one that set $shv")
        self.assertEqual(self.values("shv_int", headers=[("X-Arg", name)]), ["boolean:true", "number:-17"])

    # ---------------------------------------------------------------- engine behaviour

    def test_wrong_arity(self):
        r = self.ask("arity")
        self.assertEqual(split_values(r.reason), [
            "number:-1", "boolean:false", "nil", "boolean:false", "boolean:false", "boolean:false", "boolean:false"])
        for fn, n in (("KSR.sl.sl_send_reply", 2), ("KSR.is_method", 1), ("KSR.pv.get", 1), ("KSR.setflag", 1),
                      ("KSR.seturi", 1), ("KSR.pv.sets", 2), ("KSR.is_myself", 1)):
            self.log_has(rf"{re.escape(fn)}: expected {n} argument\(s\)")

    def test_load_time_calls(self):
        """At load time there is no message: pv.get works (nil), message functions are refused."""
        self.assertEqual(self.values("load_time"),
                         ["nil", "boolean:false", "string:", "boolean:false", "number:-1"])
        self.log_has(r"KSR\.is_method is not allowed in a load-time route")

    def test_load_time_pvs_seen_later(self):
        """$shv set at load time is there for every worker's routes."""
        for _ in range(4):
            self.assertEqual(self.values("load_pvs_later"), ["string:shared at load", "number:5"])

    def test_load_time_pv_reads(self):
        """At load time (no message) $shv and $var read back what was just written."""
        self.assertEqual(self.values("load_pvs"), ["string:shared at load", "number:5", "string:var at load"])

    def test_declared_global_assignable(self):
        self.assertEqual(self.values("global_declared"), ["boolean:true"])

    def test_undeclared_global_is_an_error(self):
        errors = self.script_errors()
        r = self.ask("global_new")
        self.assertEqual((r.status, r.reason), (500, "Server Internal Error"))
        self.log_has(rf"\[{re.escape(r.get('Call-ID'))}\] error in ksr_request_route: .*undeclared global "
                     r"'undeclared_thing'")
        self.assertEqual(self.script_errors(), errors + 1)

    # ---------------------------------------------------------------- reply route

    def forward_via_ksrd(self, rcase, peer=None, method="OPTIONS"):
        """A request forwarded by ksrd to the UAS; returns (request sent, reply received or None)."""
        p = peer or UdpPeer()
        try:
            msg = make_request(method, f"sip:uas@127.0.0.1:{self.uas.port}", p.via(),
                               call_id=f"rc-{rcase}-{unique()}",
                               headers=[("X-Dest", f"sip:127.0.0.1:{self.uas.port};transport=udp")])
            p.send(msg, self.srv.udp)
            return msg, self.recv_matching(p, msg)
        finally:
            if peer is None:
                p.close()

    def test_request_only_functions_refused_in_reply_route(self):
        msg, r = self.forward_via_ksrd("reqonly")
        self.assertIsNotNone(r, f"the reply was not relayed\n{self.srv.log()[-2000:]}")
        self.assertIsNotNone(self.uas.wait_request(), "request not forwarded")
        self.assertEqual(split_values(r.get("X-Reply-Route")), [
            "boolean:false", "boolean:false", "number:-1", "number:-1", "boolean:false", "boolean:false",
            "number:-1"])
        for fn in ("KSR.seturi", "KSR.isdsturiset", "KSR.sl.sl_send_reply", "KSR.forward", "KSR.setdsturi",
                   "KSR.force_rport", "KSR.sl.sl_reply_error"):
            self.log_has(rf"{re.escape(fn)} is not allowed in a reply route")
        self.assertTrue(self.srv.alive())

    def test_message_functions_in_reply_route(self):
        msg, r = self.forward_via_ksrd("msg")
        self.assertIsNotNone(r, self.srv.log()[-2000:])
        self.assertEqual(split_values(r.get("X-Reply-Route")), [
            "boolean:true", "boolean:false", "boolean:true", "boolean:true", "number:200", "string:OK",
            "string:OPTIONS", "nil", "number:2", "boolean:true", "boolean:true"])

    def test_drop_in_reply_route(self):
        with UdpPeer() as p:
            msg, r = self.forward_via_ksrd("drop", peer=p)
            self.assertIsNone(r, f"KSR.x.drop() in ksr_reply_route: the reply was still relayed: {r}")
        self.assertIsNotNone(self.uas.wait_request(), "request not forwarded")
        self.log_has(rf"{re.escape(msg.get('Call-ID'))} reply route drop")

    def test_set_drop_in_reply_route(self):
        msg, r = self.forward_via_ksrd("setdrop")
        self.assertIsNone(r, f"KSR.set_drop() in ksr_reply_route: the reply was still relayed: {r}")
        self.log_has(rf"{re.escape(msg.get('Call-ID'))} reply route after set_drop")

    def test_exit_in_reply_route_still_relays(self):
        msg, r = self.forward_via_ksrd("exit")
        self.assertIsNotNone(r, "KSR.x.exit() in the reply route is not a drop")
        self.assertIsNone(r.get("X-Reply-Route"), "the reply route ran on after KSR.x.exit()")

    # ---------------------------------------------------------------- onsend route

    def test_onsend_result_seen_by_request_route(self):
        dest = f"sip:127.0.0.1:{self.uas.port};transport=udp"
        with UdpPeer() as p:
            msg = make_request("OPTIONS", "sip:bob@example.com", p.via(),
                               headers=[("X-Case", "onsend"), ("X-Dest", dest)])
            p.send(msg, self.srv.udp)
            got = {}
            deadline = time.monotonic() + TIMEOUT
            while len(got) < 2 and time.monotonic() < deadline:
                x = self.recv_matching(p, msg, deadline - time.monotonic())
                if x:
                    got[x.status] = x
        self.assertIn(299, got, "the request route's own reply")
        self.assertEqual(split_values(got[299].reason), ["number:1", "boolean:true"],
                         "forward_uri's result, and whether ksr_onsend_route ran during it")
        self.assertIn(200, got, "the UAS's reply relayed")
        rec = self.uas.wait_request()
        self.assertIsNotNone(rec, "the request was not forwarded")
        self.assertEqual(rec.msg.get("Call-ID"), msg.get("Call-ID"))
        self.log_has(rf"onsend route for {re.escape(msg.get('Call-ID'))} ru=sip:bob@example.com")

    def test_drop_in_onsend_stops_the_send(self):
        for how in ("drop", "set_drop"):
            with self.subTest(how=how):
                self.uas.drain()
                dest = f"sip:127.0.0.1:{self.uas.port};transport=udp"
                r = self.ask("onsend", ruri="sip:bob@example.com", headers=[("X-Dest", dest), ("X-Onsend", how)])
                self.assertEqual(r.status, 299)
                self.assertEqual(split_values(r.reason), ["number:-1", "boolean:true"],
                                 "forward_uri returns -1 when the onsend route drops")
                self.assertTrue(self.uas.no_request(), f"KSR.{how} in ksr_onsend_route: the request still left")


if __name__ == "__main__":
    unittest.main()
