# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""KSR.kx getters from a real route; values come back in the reason phrase as type:value."""
import os
import time
import unittest

from ksrtest import LOCAL4, RouteCase, TcpPeer, make_request, make_response

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

-- at load time there is no message: message getters are refused, the others work
local load_ruri = KSR.kx.get_ruri()
local load_ts = KSR.kx.get_timestamp()

local kx = KSR.kx
local cases = {}
cases.ruri = function()
	answer(kx.get_ruri(), kx.get_ouri(), kx.get_ruser(), kx.get_rhost(), kx.get_nhuri(), kx.get_duri())
end
cases.ruri_changed = function()
	KSR.seturi("sip:carol@example.net:5070;x=1")
	KSR.setdsturi("sip:192.0.2.9:5080")
	answer(kx.get_ruri(), kx.get_ouri(), kx.get_ruser(), kx.get_rhost(), kx.get_nhuri(), kx.get_duri(),
		kx.gete_duri(), kx.getw_duri())
end
cases.from_to = function()
	answer(kx.get_furi(), kx.get_fuser(), kx.get_fhost(), kx.gete_fhost(), kx.get_turi(), kx.get_tuser(),
		kx.get_thost())
end
cases.nulls = function()
	answer(kx.get_ruser(), kx.getw_ruser(), kx.gete_ruser(), kx.get_fuser(), kx.getw_fuser(), kx.gete_fuser(),
		kx.get_tuser(), kx.gete_tuser(), kx.getw_tuser(), kx.get_ua(), kx.gete_ua(), kx.getw_ua(),
		kx.get_duri(), kx.gete_duri(), kx.getw_duri(), kx.get_cturi(), kx.gete_cturi(), kx.getw_cturi(),
		kx.get_body(), kx.gete_body(), kx.getw_body(), kx.get_bodylen(), kx.get_au(), kx.gete_au(),
		kx.getw_au(), kx.get_status(), kx.gets_status(), kx.get_send_sock(), kx.get_send_sock_port())
end
cases.headers = function()
	answer(kx.get_ua(), kx.gete_ua(), kx.get_callid(), kx.get_method(), kx.get_cturi(), kx.get_au(),
		kx.get_body(), kx.get_bodylen(), kx.get_msgtype(), kx.get_msglen() == #kx.get_msgbuf(),
		kx.get_msgbuf():sub(1, 8))
end
cases.thosts = function()
	answer(kx.get_thost(), kx.gete_thost(), kx.getw_thost(), kx.get_fhost(), kx.getw_fhost())
end
cases.source = function()
	answer(kx.get_srcip(), kx.get_srcport(), kx.get_srcuri(), kx.get_srcaddr_sock(), kx.get_proto(),
		kx.get_protoid(), kx.get_conid(), kx.get_rcvip(), kx.get_rcvport(), kx.get_rcvadvip(),
		kx.get_rcvadvport(), kx.get_rcvaddr_sock())
end
cases.send_sock = function()
	KSR.pv.sets("$fs", kx.get_rcvaddr_sock())
	answer(kx.get_send_sock(), kx.get_send_sock_port())
end
cases.nomsg = function()
	answer(kx.ifdef("WITH_AUTH"), kx.ifndef("WITH_AUTH"), kx.get_def("WITH_AUTH"), kx.get_defn("WITH_AUTH"),
		kx.get_env("KSR_KX_TEST_STR"), kx.get_env("KSR_KX_TEST_NOPE"), kx.get_envn("KSR_KX_TEST_NUM"),
		kx.get_envn("KSR_KX_TEST_STR"), kx.get_envn("KSR_KX_TEST_NEG"), kx.get_env(""))
end
cases.time = function() answer(kx.get_timestamp(), load_ts, load_ruri) end
cases.relay = function() KSR.forward_uri(KSR.pv.get("$hdr(X-Dest)")) end

function ksr_request_route()
	local case = KSR.pv.get("$hdr(X-Case)")
	if case == nil then
		if KSR.is_OPTIONS() then KSR.sl.sl_send_reply(200, "OK") end
		return
	end
	cases[case]()
end

function ksr_reply_route()
	if KSR.pv.get("$hdr(X-Reply-Case)") then
		KSR.hdr.append("X-Kx: " .. values(kx.get_status(), kx.gets_status(), kx.get_method(), kx.get_msgtype(),
			kx.get_ruri(), kx.get_ruser(), kx.get_tuser(), kx.get_callid() ~= "") .. "\r\n")
	end
end
'''

ENV = {"KSR_KX_TEST_STR": "hello world", "KSR_KX_TEST_NUM": "42", "KSR_KX_TEST_NEG": "-17"}


class KxTest(RouteCase):
    ROUTE = ROUTE

    @classmethod
    def start_server(cls):
        saved = {k: os.environ.get(k) for k in ENV}
        os.environ.update(ENV)
        try:
            super().start_server()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def request(self, case, ruri=None, headers=(), **kw):
        return make_request("MESSAGE", ruri or self.srv.uri("bob"), self.peer.via(),
                            headers=[("X-Case", case)] + list(headers), **kw)

    def ask(self, case, ruri=None, headers=(), peer=None, **kw):
        peer = peer or self.peer
        req = make_request("MESSAGE", ruri or self.srv.uri("bob"), peer.via(),
                           headers=[("X-Case", case)] + list(headers), **kw)
        reply = peer.request(req) if isinstance(peer, TcpPeer) else peer.request(self.srv.udp, req)
        self.assertIsNotNone(reply, f"no reply for {case}\n{self.srv.log()[-2000:]}")
        self.assertEqual(reply.status, 200, reply.start)
        return reply.reason.split("|")

    def test_ruri(self):
        ruri = f"sip:bob@{LOCAL4}:{self.srv.port};transport=udp"
        self.assertEqual(self.ask("ruri", ruri), [f"string:{ruri}", f"string:{ruri}", "string:bob",
                                                  f"string:{LOCAL4}", f"string:{ruri}", "nil"])

    def test_ruri_after_changes(self):
        ruri = self.srv.uri("bob")
        self.assertEqual(self.ask("ruri_changed", ruri), [
            "string:sip:carol@example.net:5070;x=1", f"string:{ruri}", "string:carol", "string:example.net",
            "string:sip:192.0.2.9:5080", "string:sip:192.0.2.9:5080", "string:sip:192.0.2.9:5080",
            "string:sip:192.0.2.9:5080"])

    def test_from_to(self):
        got = self.ask("from_to", frm='"Alice" <sip:alice@atlanta.example.com;user=phone>;tag=1',
                       to="<sip:bob@biloxi.example.com>")
        self.assertEqual(got, ["string:sip:alice@atlanta.example.com;user=phone", "string:alice",
                               "string:atlanta.example.com", "string:atlanta.example.com",
                               "string:sip:bob@biloxi.example.com", "string:bob", "string:biloxi.example.com"])

    def test_null_modes(self):
        got = self.ask("nulls", self.srv.uri(), frm="<sip:example.com>;tag=1", to="<sip:example.org>")
        self.assertEqual(got, [
            "nil", "string:<null>", "string:",        # R-URI user
            "nil", "string:<null>", "string:",        # From user
            "nil", "string:", "string:<null>",        # To user
            "nil", "string:", "string:<null>",        # User-Agent
            "nil", "string:", "string:<null>",        # $du
            "nil", "string:", "string:<null>",        # Contact URI
            "nil", "string:", "string:<null>", "number:0",  # body
            "nil", "string:", "string:<null>",        # auth user
            "number:-1", "nil",                       # status of a request
            "nil", "number:0"])                       # no forced socket

    def test_hosts_with_null_modes(self):
        got = self.ask("thosts", to="<tel:+15551234567>")
        self.assertEqual(got, ["nil", "string:", "string:<null>", "string:client.invalid",
                               "string:client.invalid"])

    def test_headers_body_buffer(self):
        auth = 'Digest username="alice@example.com", realm="example.com", nonce="n", uri="sip:x", response="r"'
        got = self.ask("headers", headers=[("User-Agent", "kx-test/1.0"), ("Contact", "<sip:alice@192.0.2.4:5062>"),
                                           ("Authorization", auth), ("Content-Type", "text/plain")],
                       body="hello", call_id="kx-call-1@test")
        self.assertEqual(got, ["string:kx-test/1.0", "string:kx-test/1.0", "string:kx-call-1@test",
                               "string:MESSAGE", "string:sip:alice@192.0.2.4:5062", "string:alice",
                               "string:hello", "number:5", "number:1", "boolean:true", "string:MESSAGE "])

    def test_non_digest_credentials_have_no_user(self):
        got = self.ask("nulls", headers=[("Authorization", "Basic YWxpY2U6c2VjcmV0")])
        self.assertEqual(got[22:25], ["nil", "string:", "string:<null>"])

    def test_source_udp(self):
        p = self.peer
        port = self.srv.port
        self.assertEqual(self.ask("source"), [
            f"string:{p.host}", f"number:{p.port}", f"string:sip:{p.host}:{p.port}",
            f"string:udp:{p.host}:{p.port}", "string:udp", "number:1", "number:-1", f"string:{LOCAL4}",
            f"number:{port}", f"string:{LOCAL4}", f"number:{port}", f"string:udp:{LOCAL4}:{port}"])

    def test_source_tcp(self):
        with TcpPeer(self.srv.tcp) as p:
            got = self.ask("source", peer=p)
            port = self.srv.port
            self.assertEqual(got[:6], [f"string:{p.host}", f"number:{p.port}",
                                       f"string:sip:{p.host}:{p.port};transport=tcp",
                                       f"string:tcp:{p.host}:{p.port}", "string:tcp", "number:2"])
            self.assertRegex(got[6], r"^number:[1-9]\d*$")
            self.assertEqual(got[7:], [f"string:{LOCAL4}", f"number:{port}", f"string:{LOCAL4}", f"number:{port}",
                                       f"string:tcp:{LOCAL4}:{port}"])

    def test_forced_send_socket(self):
        self.assertEqual(self.ask("send_sock"), [f"string:udp:{LOCAL4}:{self.srv.port}", f"number:{self.srv.port}"])

    def test_without_message(self):
        self.assertEqual(self.ask("nomsg"), ["boolean:false", "boolean:true", "string:", "number:0",
                                             "string:hello world", "string:", "number:42", "number:0",
                                             "number:-17", "string:"])

    def test_timestamp_and_load_time(self):
        now = time.time()
        ts, load_ts, load_ruri = self.ask("time")
        self.assertTrue(ts.startswith("number:") and abs(int(ts[7:]) - now) < 5, ts)
        self.assertTrue(load_ts.startswith("number:") and abs(int(load_ts[7:]) - now) < 60, load_ts)
        self.assertEqual(load_ruri, "nil")
        self.assertIsNotNone(self.srv.wait_log(r"KSR\.kx\.get_ruri is not allowed in a load-time route"))

    def test_reply_route(self):
        self.uas.status = None
        try:
            self.peer.send(self.request("relay", headers=[("X-Dest", self.uas.uri)]), self.srv.udp)
            got = self.uas.wait_request()
            self.assertIsNotNone(got, self.srv.log()[-2000:])
            self.uas.send_along_via(make_response(got.msg, 202, "Accepted", headers=[("X-Reply-Case", "1")]), got)
        finally:
            self.uas.status = 200
        reply = self.peer.recv_msg()
        self.assertIsNotNone(reply, self.srv.log()[-2000:])
        self.assertEqual(reply.get("X-Kx").split("|"), ["number:202", "string:202", "string:MESSAGE", "number:2",
                                                        "nil", "nil", "string:bob", "boolean:true"])


if __name__ == "__main__":
    unittest.main()
