# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""
KSR.corex from a real route: a case per R-URI user, arguments in X-A1..X-A3,
return codes in the reason phrase or, for forwarded cases, in the R-URI user
the UAS sees. The server has a second UDP socket to choose sockets from.
"""
import socket
import tempfile
import unittest
from pathlib import Path

from ksrtest import LOCAL4, RouteCase, UdpPeer, free_port, make_request, parse

ROUTE = r"""
local T = {}
local ARGS, DST = {}, nil
local function hdr(n) return KSR.pv.get("$hdr(" .. n .. ")") end
local function rc(v) KSR.sl.sl_send_reply(200, "rc=" .. tostring(v)) end
local function fwd(v)
    KSR.setuser("rc" .. tostring(v))
    if KSR.forward_uri(DST) < 0 then KSR.sl.sl_send_reply(500, "no forward") end
end
local function A() return ARGS[1] end
local function B() return ARGS[2] end
local function C() return ARGS[3] end
local X = KSR.corex

T.ruser = function() rc(X.has_ruri_user()) end
T.ruser_after = function()
    KSR.seturi(A())
    rc(X.has_ruri_user())
end
T.ua = function() rc(X.has_user_agent()) end
T.xflags = function()
    local r = { X.isxflagset(63), X.setxflag(63), X.isxflagset(63), X.setxflag(0), X.isxflagset(1),
        X.resetxflag(63), X.isxflagset(63), X.isxflagset(0), X.setxflag(64), X.setxflag(-1),
        X.isxflagset(64) }
    rc(table.concat(r, ","))
end
T.xflag_set = function() rc(X.setxflag(7)) end
T.xflag_is = function() rc(X.isxflagset(7)) end
T.send_socket = function() fwd(X.set_send_socket(A())) end
T.send_socket_reset = function()
    X.set_send_socket(A())
    fwd(X.set_send_socket(""))
end
T.recv_socket = function()
    local r = X.set_recv_socket(A())
    KSR.sl.sl_send_reply(200, "rc=" .. r .. " Rp=" .. KSR.pv.get("$Rp"))
end
T.send_data = function() rc(X.send_data(A(), B())) end
T.sendx = function() rc(X.sendx(A(), B(), C())) end
T.file = function()
    local w = X.file_write(A(), B())
    rc(w .. ":" .. X.file_read(A()))
end
T.file_read = function() rc("[" .. X.file_read(A()) .. "]") end
T.file_write = function() rc(X.file_write(A(), B())) end

function ksr_request_route()
    local case = KSR.pv.get("$rU") or hdr("X-Case")
    local f = case and T[case]
    if not f then
        KSR.sl.sl_send_reply(200, "no case")
        return
    end
    for i = 1, 3 do ARGS[i] = hdr("X-A" .. i) end
    DST = hdr("X-Dst")
    f()
end

function ksr_reply_route()
    if KSR.pv.get("$fU") == "reply_ruser" then
        KSR.textopsx.include_hf_value("X-Rc", tostring(X.has_ruri_user()))
    end
end
"""


class CorexTest(RouteCase):
    ROUTE = ROUTE

    @classmethod
    def start_server(cls):
        cls.port2 = free_port()
        cls.CONFIG = f'listen[#listen + 1] = "udp:{LOCAL4}:{cls.port2}"\n'
        super().start_server()

    def request(self, case, *args, headers=(), ruri=None, frm=None):
        hdrs = [(f"X-A{i + 1}", v) for i, v in enumerate(args)] + list(headers)
        with UdpPeer() as p:
            req = make_request("MESSAGE", ruri or self.srv.uri(case), p.via(), headers=hdrs, frm=frm)
            p.send(req, self.srv.udp)
            got = p.recv()
        self.assertIsNotNone(got, f"no reply for {case}\n{self.srv.log()[-2000:]}")
        return parse(got[0]), got[1]

    def rc(self, case, *args, **kw):
        reply, _ = self.request(case, *args, **kw)
        self.assertTrue(reply.reason.startswith("rc="), reply.start)
        return reply.reason[3:]

    def forward(self, case, *args):
        hdrs = [(f"X-A{i + 1}", v) for i, v in enumerate(args)] + [("X-Dst", self.uas.uri)]
        with UdpPeer() as p:
            p.send(make_request("MESSAGE", self.srv.uri(case), p.via(), headers=hdrs), self.srv.udp)
            rec = self.uas.wait_request()
            self.assertIsNotNone(rec, f"UAS got nothing for {case}\n{self.srv.log()[-2000:]}")
            self.assertIsNotNone(p.recv_msg(), "the UAS's reply did not come back")
        return rec.msg.ruri.split(":", 1)[1].split("@")[0][2:], rec

    # -- R-URI user, User-Agent
    def test_has_ruri_user(self):
        self.assertEqual(self.rc("ruser"), "1")
        # a userless R-URI cannot name the case: X-Case does
        self.assertEqual(self.rc("", ruri=f"sip:{LOCAL4}:{self.srv.port}", headers=[("X-Case", "ruser")]), "-1")

    def test_has_ruri_user_current_uri(self):
        self.assertEqual(self.rc("ruser_after", f"sip:{LOCAL4}"), "-1")
        self.assertEqual(self.rc("ruser_after", "sip:bob@example.com"), "1")
        self.assertEqual(self.rc("ruser_after", "tel:+4930123"), "1")

    def test_has_ruri_user_in_reply(self):
        with UdpPeer() as p:
            req = make_request("MESSAGE", self.srv.uri("send_socket"), p.via(),
                               headers=[("X-A1", ""), ("X-Dst", self.uas.uri)],
                               frm="<sip:reply_ruser@client.invalid>;tag=r1")
            p.send(req, self.srv.udp)
            self.assertIsNotNone(self.uas.wait_request())
            reply = p.recv_msg()
        self.assertEqual(reply.get("X-Rc"), "-1")

    def test_has_user_agent(self):
        self.assertEqual(self.rc("ua", headers=[("User-Agent", "softphone 1.0")]), "1")
        self.assertEqual(self.rc("ua"), "-1")
        self.assertEqual(self.rc("ua", headers=[("User-Agent", "")]), "-1")

    # -- extended flags
    def test_xflags(self):
        self.assertEqual(self.rc("xflags"), "-1,1,1,1,-1,1,-1,1,-1,-1,-1")

    def test_xflags_per_message(self):
        self.assertEqual(self.rc("xflag_set"), "1")
        self.assertEqual(self.rc("xflag_is"), "-1")

    # -- sockets
    def test_set_send_socket(self):
        for spec in (f"udp:{LOCAL4}:{self.port2}", f"{LOCAL4}:{self.port2}", f"UDP:{LOCAL4}:{self.port2}"):
            rc, rec = self.forward("send_socket", spec)
            self.assertEqual((spec, rc, rec.src[1]), (spec, "1", self.port2))
            via = rec.msg.top_via()
            self.assertEqual(via.port, self.port2)

    def test_set_send_socket_no_match(self):
        # Kamailio only warns when no socket matches: the request leaves as usual
        rc, rec = self.forward("send_socket", f"udp:{LOCAL4}:1")
        self.assertEqual((rc, rec.src[1]), ("1", self.srv.port))
        self.assertTrue(self.srv.wait_log(r"no local socket matches"))

    def test_set_send_socket_bad_spec(self):
        rc, rec = self.forward("send_socket", f"udp:{LOCAL4}:port")
        self.assertEqual((rc, rec.src[1]), ("-1", self.srv.port))

    def test_set_send_socket_reset(self):
        rc, rec = self.forward("send_socket_reset", f"udp:{LOCAL4}:{self.port2}")
        self.assertEqual((rc, rec.src[1]), ("1", self.srv.port))

    def test_set_recv_socket(self):
        reply, src = self.request("recv_socket", f"udp:{LOCAL4}:{self.port2}")
        self.assertEqual(reply.reason, f"rc=1 Rp={self.port2}")
        self.assertEqual(src, (LOCAL4, self.port2))  # the reply leaves from that socket
        reply, src = self.request("recv_socket", f"[{LOCAL4}")
        self.assertEqual((reply.reason, src), (f"rc=-1 Rp={self.srv.port}", (LOCAL4, self.srv.port)))

    # -- raw sends
    def test_send_data_udp(self):
        with UdpPeer() as target:
            self.assertEqual(self.rc("send_data", f"sip:{LOCAL4}:{target.port}", "raw bytes"), "1")
            got = target.recv()
        self.assertEqual(got[0], b"raw bytes")
        self.assertEqual(got[1][0], LOCAL4)

    def test_send_data_tcp(self):
        with socket.socket() as ls:
            ls.bind((LOCAL4, 0))
            ls.listen(1)
            ls.settimeout(2)
            port = ls.getsockname()[1]
            self.assertEqual(self.rc("send_data", f"sip:{LOCAL4}:{port};transport=tcp", "over tcp"), "1")
            conn, _ = ls.accept()
            with conn:
                conn.settimeout(2)
                data = b""
                while len(data) < 8:
                    chunk = conn.recv(100)
                    if not chunk:
                        break
                    data += chunk
        self.assertEqual(data, b"over tcp")

    def test_sendx(self):
        with UdpPeer() as target:
            rc = self.rc("sendx", f"sip:{LOCAL4}:{target.port}", f"udp:{LOCAL4}:{self.port2}", "from port2")
            got = target.recv()
        self.assertEqual((rc, got[0], got[1][1]), ("1", b"from port2", self.port2))

    def test_send_data_errors(self):
        self.assertEqual(self.rc("send_data", "not a uri", "x"), "-1")
        self.assertEqual(self.rc("send_data", f"sip:{LOCAL4}:5060;transport=sctp", "x"), "-1")
        self.assertEqual(self.rc("send_data", "sip:host.invalid", "x"), "-1")

    # -- files
    def test_file_write_read(self):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "f.txt"
            self.assertEqual(self.rc("file", str(path), "some content"), "1:some content")
            self.assertEqual(path.read_text(), "some content")
            big = "x" * 10000
            path.write_text(big)
            self.assertEqual(self.rc("file_read", str(path)), f"[{big}]")

    def test_file_errors(self):
        with tempfile.TemporaryDirectory() as d:
            missing = Path(d) / "missing"
            self.assertEqual(self.rc("file_read", str(missing)), "[]")  # "" when it cannot be read
            self.assertEqual(self.rc("file_write", str(missing / "sub"), "x"), "-1")
            self.assertEqual(self.rc("file_write", "", "x"), "-1")


if __name__ == "__main__":
    unittest.main()
