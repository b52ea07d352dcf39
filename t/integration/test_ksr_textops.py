# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""
KSR.textops from a real route: each case is a Lua function picked by the
R-URI user. A case either answers with its return code in the reason phrase
("rc=<n>") or forwards the request to a test UAS, whose copy is checked.
"""
import unittest

from ksrtest import RouteCase, TcpPeer, Uas, UdpPeer, make_request

ROUTE = r"""
local T = {}
local ARGS, DST = {}, nil
local function hdr(n) return KSR.pv.get("$hdr(" .. n .. ")") end
local function rc(v) KSR.sl.sl_send_reply(200, "rc=" .. tostring(v)) end
-- forwards to the UAS named in X-Dst, with the return code as the R-URI user
local function fwd(v)
    KSR.setuser("rc" .. tostring(v))
    if KSR.forward_uri(DST) < 0 then KSR.sl.sl_send_reply(500, "no forward") end
end
local function A() return ARGS[1] end
local function B() return ARGS[2] end
local function C() return ARGS[3] end

-- header presence and removal
T.present = function() rc(KSR.textops.is_present_hf(A())) end
T.present_re = function() rc(KSR.textops.is_present_hf_re(A())) end
T.remove = function() fwd(KSR.textops.remove_hf(A())) end
T.remove_rc = function() rc(KSR.textops.remove_hf(A())) end
T.remove_twice = function()
    local first = KSR.textops.remove_hf(A())
    rc(first .. "," .. KSR.textops.remove_hf(A()) .. "," .. KSR.textops.is_present_hf(A()))
end
T.remove_re = function() fwd(KSR.textops.remove_hf_re(A())) end
T.remove_exp = function() fwd(KSR.textops.remove_hf_exp(A(), B())) end
T.remove_idx = function() fwd(KSR.textops.remove_hf_idx(A(), tonumber(B()))) end
-- body
T.has_body = function() rc(KSR.textops.has_body()) end
T.has_body_type = function() rc(KSR.textops.has_body_type(A())) end
T.set_body = function() fwd(KSR.textops.set_body(A(), B())) end
T.set_body_rc = function() rc(KSR.textops.set_body(A(), B())) end
T.set_reply_body = function()
    local r = KSR.textops.set_reply_body(A(), B())
    KSR.sl.sl_send_reply(200, "rc=" .. r)
end
-- search
T.search = function() rc(KSR.textops.search(A())) end
T.search_body = function() rc(KSR.textops.search_body(A())) end
T.search_hf = function() rc(KSR.textops.search_hf(A(), B(), C())) end
T.search_str = function() rc(KSR.textops.search_str(A(), B())) end
T.is_privacy = function() rc(KSR.textops.is_privacy(A())) end
-- replace / subst
T.replace = function() fwd(KSR.textops.replace(A(), B())) end
T.replace_all = function() fwd(KSR.textops.replace_all(A(), B())) end
T.replace_hdrs = function() fwd(KSR.textops.replace_hdrs(A(), B())) end
T.replace_body = function() fwd(KSR.textops.replace_body(A(), B())) end
T.replace_body_all = function() fwd(KSR.textops.replace_body_all(A(), B())) end
T.replace_body_atonce = function() fwd(KSR.textops.replace_body_atonce(A(), B())) end
T.replace_str = function() fwd(KSR.textops.replace_str(A(), B(), C())) end
T.replace_hdrs_str = function() fwd(KSR.textops.replace_hdrs_str(A(), B(), C())) end
T.replace_body_str = function() fwd(KSR.textops.replace_body_str(A(), B(), C())) end
T.search_append = function() fwd(KSR.textops.search_append(A(), B())) end
T.search_append_body = function() fwd(KSR.textops.search_append_body(A(), B())) end
T.subst = function() fwd(KSR.textops.subst(A())) end
T.subst_body = function() fwd(KSR.textops.subst_body(A())) end
T.subst_hf = function() fwd(KSR.textops.subst_hf(A(), B(), C())) end
T.subst_uri = function()
    local r = KSR.textops.subst_uri(A())
    KSR.sl.sl_send_reply(200, "rc=" .. r .. " ru=" .. KSR.pv.get("$ru"))
end
T.subst_user = function()
    local r = KSR.textops.subst_user(A())
    KSR.sl.sl_send_reply(200, "rc=" .. r .. " ru=" .. KSR.pv.get("$ru"))
end
T.subst_pv = function()
    KSR.pv.sets("$var(who)", "carol")
    fwd(KSR.textops.subst(A()))
end
T.chain = function()
    -- edits see earlier edits: the second replace works on the first one's result
    local r1 = KSR.textops.replace_body("one", "two")
    local r2 = KSR.textops.replace_body("two", "three")
    local r3 = KSR.textops.subst_hf("X-A", "/a/b/", "a")
    local r4 = KSR.textops.subst_hf("X-A", "/b/c/", "a")
    fwd(r1 .. r2 .. r3 .. r4)
end
-- strings
T.in_list = function() rc(KSR.textops.in_list(A(), B(), C())) end
T.cmp_str = function() rc(KSR.textops.cmp_str(A(), B())) end
T.cmp_istr = function() rc(KSR.textops.cmp_istr(A(), B())) end
T.starts_with = function() rc(KSR.textops.starts_with(A(), B())) end
T.ends_with = function() rc(KSR.textops.ends_with(A(), B())) end
T.str_find = function() rc(KSR.textops.str_find(A(), B())) end
T.str_ifind = function() rc(KSR.textops.str_ifind(A(), B())) end
T.str_any_in = function() rc(KSR.textops.str_any_in(A(), B())) end
T.str_all_in = function() rc(KSR.textops.str_all_in(A(), B())) end

-- Arguments come in X-A1..X-A3 ("<CRLF>" stands for a line end) and the UAS in
-- X-Dst; those headers are taken out before a case runs, so that a case
-- editing the message does not find its own arguments.
function ksr_request_route()
    local case = KSR.pv.get("$rU")
    local f = case and T[case]
    if not f then
        KSR.sl.sl_send_reply(200, "no case")
        return
    end
    for i = 1, 3 do
        local v = hdr("X-A" .. i)
        ARGS[i] = v and v:gsub("<CRLF>", "\r\n")
    end
    DST = hdr("X-Dst")
    KSR.textops.remove_hf_re("^X-(A[1-3]|Dst)$")
    f()
end

function ksr_reply_route()
    if KSR.pv.get("$fU") == "reply_set_body" then
        KSR.textops.set_body("reply body", "text/x-reply")
    end
end
"""


class TextopsBase(RouteCase):
    """A server running cls.ROUTE and a UDP UAS; helpers to run cases (also used by textopsx)."""
    ROUTE = ROUTE

    def args(self, *a):
        return [(f"X-A{i + 1}", v) for i, v in enumerate(a)]

    def call(self, case, *args, headers=(), body=b"", ctype=None):
        """Runs a case that answers; returns the reply."""
        hdrs = self.args(*args) + list(headers)
        if ctype:
            hdrs.append(("Content-Type", ctype))
        with UdpPeer() as p:
            req = make_request("MESSAGE", self.srv.uri(case), p.via(), headers=hdrs, body=body)
            reply = p.request(self.srv.udp, req)
        self.assertIsNotNone(reply, f"no reply for {case}\n{self.srv.log()[-2000:]}")
        return reply

    def rc(self, case, *args, **kw):
        reply = self.call(case, *args, **kw)
        self.assertEqual(reply.status, 200, reply.start)
        self.assertTrue(reply.reason.startswith("rc="), reply.start)
        return reply.reason[3:]

    def forward(self, case, *args, headers=(), body=b"", ctype=None, peer=None, uas=None, frm=None):
        """Runs a case that forwards; returns (rc, what the UAS received); the UAS's reply is in self.reply."""
        uas = uas or self.uas
        hdrs = self.args(*args) + [("X-Dst", uas.uri)] + list(headers)
        if ctype:
            hdrs.append(("Content-Type", ctype))
        p = peer or UdpPeer()
        try:
            req = make_request("MESSAGE", self.srv.uri(case), p.via(), headers=hdrs, body=body, frm=frm)
            if isinstance(p, TcpPeer):
                p.send(req)
            else:
                p.send(req, self.srv.udp)
            rec = uas.wait_request()
            self.assertIsNotNone(rec, f"UAS got nothing for {case}\n{self.srv.log()[-2000:]}")
            self.reply = p.recv_msg()
            self.assertIsNotNone(self.reply, "the UAS's reply did not come back")
        finally:
            if peer is None:
                p.close()
        user = rec.msg.ruri.split(":", 1)[1].split("@", 1)[0]
        self.assertTrue(user.startswith("rc"), rec.msg.ruri)
        return user[2:], rec

    def assertFramed(self, rec):
        """Content-Length matches the body actually sent."""
        head, _, body = rec.raw.partition(b"\r\n\r\n")
        self.assertEqual(rec.msg.get("Content-Length"), str(len(body)), rec.raw)


class HeaderTest(TextopsBase):
    def test_is_present_hf(self):
        hdrs = [("X-Foo", "1"), ("s", "compact subject")]
        self.assertEqual(self.rc("present", "X-Foo", headers=hdrs), "1")
        self.assertEqual(self.rc("present", "x-FOO", headers=hdrs), "1")   # names ignore case
        self.assertEqual(self.rc("present", "Subject", headers=hdrs), "1")  # compact form received
        self.assertEqual(self.rc("present", "f", headers=hdrs), "1")        # compact form asked
        self.assertEqual(self.rc("present", "X-Bar", headers=hdrs), "-1")
        self.assertEqual(self.rc("present", "", headers=hdrs), "-1")

    def test_remove_hf(self):
        hdrs = [("X-Foo", "1"), ("X-Bar", "keep"), ("x-foo", "2")]
        rc, rec = self.forward("remove", "X-Foo", headers=hdrs)
        self.assertEqual(rc, "2")
        self.assertFalse(rec.msg.has("X-Foo"))
        self.assertEqual(rec.msg.get("X-Bar"), "keep")
        self.assertEqual(rec.msg.get("Call-ID")[:4], "cid-")  # nothing else went

    def test_remove_hf_compact(self):
        rc, rec = self.forward("remove", "Subject", headers=[("s", "compact"), ("Subject", "long")])
        self.assertEqual(rc, "2")
        self.assertFalse(rec.msg.has("Subject"))

    def test_remove_hf_none(self):
        self.assertEqual(self.rc("remove_rc", "X-None"), "-1")
        self.assertEqual(self.rc("remove_rc", ""), "-1")

    def test_remove_hf_twice(self):
        # the second call finds nothing left to remove; presence is about the received message
        self.assertEqual(self.rc("remove_twice", "X-Foo", headers=[("X-Foo", "1")]), "1,-1,1")

    def test_is_present_hf_re(self):
        hdrs = [("P-Asserted-Identity", "<sip:a@b>")]
        self.assertEqual(self.rc("present_re", "^P-", headers=hdrs), "1")
        self.assertEqual(self.rc("present_re", "^p-asserted", headers=hdrs), "1")
        self.assertEqual(self.rc("present_re", "^X-Nope", headers=hdrs), "-1")
        self.assertEqual(self.rc("present_re", "(", headers=hdrs), "-1")  # bad regex

    def test_remove_hf_re(self):
        hdrs = [("P-One", "1"), ("P-Two", "2"), ("X-P-Three", "3")]
        rc, rec = self.forward("remove_re", "^P-", headers=hdrs)
        self.assertEqual(rc, "2")
        self.assertFalse(rec.msg.has("P-One") or rec.msg.has("P-Two"))
        self.assertEqual(rec.msg.get("X-P-Three"), "3")

    def test_remove_hf_exp(self):
        hdrs = [("P-One", "1"), ("P-Keep-Me", "2"), ("P-Two", "3")]
        rc, rec = self.forward("remove_exp", "^P-", "^P-Keep-", headers=hdrs)
        self.assertEqual(rc, "2")
        self.assertEqual([n for n, _ in rec.msg.headers if n.startswith("P-")], ["P-Keep-Me"])

    def test_remove_hf_idx(self):
        hdrs = [("X-N", "a"), ("X-N", "b"), ("X-N", "c")]
        rc, rec = self.forward("remove_idx", "X-N", "0", headers=hdrs)
        self.assertEqual((rc, rec.msg.get_all("X-N")), ("1", ["b", "c"]))
        rc, rec = self.forward("remove_idx", "X-N", "-1", headers=hdrs)
        self.assertEqual((rc, rec.msg.get_all("X-N")), ("1", ["a", "b"]))
        rc, rec = self.forward("remove_idx", "X-N", "3", headers=hdrs)
        self.assertEqual((rc, rec.msg.get_all("X-N")), ("-1", ["a", "b", "c"]))


class BodyTest(TextopsBase):
    SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"

    def test_has_body(self):
        self.assertEqual(self.rc("has_body", body=self.SDP, ctype="application/sdp"), "1")
        self.assertEqual(self.rc("has_body"), "-1")

    def test_has_body_type(self):
        self.assertEqual(self.rc("has_body_type", "application/sdp", body=self.SDP, ctype="application/sdp"), "1")
        self.assertEqual(self.rc("has_body_type", "application/sdp", body=self.SDP,
                                 ctype="Application/SDP ; charset=utf-8"), "1")
        self.assertEqual(self.rc("has_body_type", "text/plain", body=b"hi", ctype="text/plain;charset=x"), "1")
        self.assertEqual(self.rc("has_body_type", "application/sdp", body=b"hi", ctype="text/plain"), "-1")
        # no body, or a body without Content-Type (application/sdp is assumed)
        self.assertEqual(self.rc("has_body_type", "application/sdp"), "-1")
        self.assertEqual(self.rc("has_body_type", "application/sdp", body=self.SDP), "1")
        self.assertEqual(self.rc("has_body_type", "text/plain", body=self.SDP), "-1")
        # compact Content-Type
        self.assertEqual(self.rc("has_body_type", "text/plain", body=b"x", headers=[("c", "text/plain")]), "1")

    def test_set_body(self):
        rc, rec = self.forward("set_body", "new body", "text/plain", body=b"old body", ctype="application/x-old")
        self.assertEqual(rc, "1")
        self.assertEqual(rec.msg.body, b"new body")
        self.assertEqual(rec.msg.get_all("Content-Type"), ["text/plain"])
        self.assertFramed(rec)

    def test_set_body_without_body(self):
        # no Content-Type before: one is added
        rc, rec = self.forward("set_body", "hello", "text/plain")
        self.assertEqual((rc, rec.msg.body, rec.msg.get_all("Content-Type")), ("1", b"hello", ["text/plain"]))
        self.assertFramed(rec)

    def test_set_body_tcp(self):
        # over TCP the UAS frames by Content-Length: a wrong one would lose the message
        with Uas("tcp") as uas, UdpPeer() as p:
            rc, rec = self.forward("set_body", "0123456789" * 20, "text/plain", body=b"short", peer=p, uas=uas)
        self.assertEqual(rec.msg.body, b"0123456789" * 20)
        self.assertFramed(rec)

    def test_set_body_empty_args(self):
        self.assertEqual(self.rc("set_body_rc", "", "text/plain"), "-1")
        self.assertEqual(self.rc("set_body_rc", "x", ""), "-1")

    def test_set_reply_body(self):
        reply = self.call("set_reply_body", "reply text", "text/plain")
        self.assertEqual(reply.reason, "rc=1")
        self.assertEqual(reply.body, b"reply text")
        self.assertEqual(reply.get("Content-Type"), "text/plain")
        self.assertEqual(reply.get("Content-Length"), "10")
        self.assertEqual(self.call("set_reply_body", "", "text/plain").reason, "rc=-1")

    def test_set_body_in_reply_route(self):
        with Uas("udp") as uas:
            uas.reason = "OK"
            with UdpPeer() as p:
                req = make_request("MESSAGE", self.srv.uri("remove"), p.via(),
                                   headers=[("X-A1", "X-None"), ("X-Dst", uas.uri)],
                                   frm="<sip:reply_set_body@client.invalid>;tag=rsb1")
                p.send(req, self.srv.udp)
                self.assertIsNotNone(uas.wait_request())
                reply = p.recv_msg()
        self.assertIsNotNone(reply)
        self.assertEqual(reply.body, b"reply body")
        self.assertEqual(reply.get("Content-Type"), "text/x-reply")
        self.assertEqual(reply.get("Content-Length"), "10")


class SearchTest(TextopsBase):
    def test_search(self):
        hdrs = [("X-Foo", "Some Value")]
        self.assertEqual(self.rc("search", "^x-foo: some", headers=hdrs), "1")  # case-insensitive, ^ per line
        self.assertEqual(self.rc("search", "^MESSAGE sip:search@", headers=hdrs), "1")  # the start line too
        # the arguments travel in the request: patterns must not match their own text
        self.assertEqual(self.rc("search", "nothing-like-thi[s]", headers=hdrs), "-1")
        self.assertEqual(self.rc("search", "[", headers=hdrs), "-1")

    def test_search_body(self):
        self.assertEqual(self.rc("search_body", "^line two", body=b"line one\r\nline two\r\n", ctype="text/plain"), "1")
        self.assertEqual(self.rc("search_body", "MESSAGE", body=b"abc", ctype="text/plain"), "-1")
        self.assertEqual(self.rc("search_body", "a"), "-1")

    def test_search_hf(self):
        hdrs = [("X-V", "first"), ("X-V", "second"), ("X-V", "third")]
        self.assertEqual(self.rc("search_hf", "X-V", "^sec", "a", headers=hdrs), "1")
        self.assertEqual(self.rc("search_hf", "X-V", "^sec", "f", headers=hdrs), "-1")
        self.assertEqual(self.rc("search_hf", "X-V", "^fir", "f", headers=hdrs), "1")
        self.assertEqual(self.rc("search_hf", "X-V", "^thi", "l", headers=hdrs), "1")
        self.assertEqual(self.rc("search_hf", "X-V", "^fir", "l", headers=hdrs), "-1")
        self.assertEqual(self.rc("search_hf", "f", "alice@client", "a", headers=hdrs), "1")  # From by compact name
        self.assertEqual(self.rc("search_hf", "X-None", ".", "a", headers=hdrs), "-1")

    def test_search_str(self):
        self.assertEqual(self.rc("search_str", "sip:a@b;transport=TCP", ";transport=tcp"), "1")
        self.assertEqual(self.rc("search_str", "sip:a@b", ";transport=tcp"), "-1")

    def test_is_privacy(self):
        self.assertEqual(self.rc("is_privacy", "id", headers=[("Privacy", "header; id")]), "1")
        self.assertEqual(self.rc("is_privacy", "user", headers=[("Privacy", "header; id")]), "-1")
        self.assertEqual(self.rc("is_privacy", "id"), "-1")
        self.assertEqual(self.rc("is_privacy", "bogus", headers=[("Privacy", "id")]), "-1")


class ReplaceTest(TextopsBase):
    def test_replace_first(self):
        hdrs = [("X-T", "foo foo"), ("X-U", "foo")]
        rc, rec = self.forward("replace", "foo", "bar", headers=hdrs)
        self.assertEqual((rc, rec.msg.get("X-T"), rec.msg.get("X-U")), ("1", "bar foo", "foo"))

    def test_replace_all(self):
        hdrs = [("X-T", "foo foo"), ("X-U", "FOO")]
        rc, rec = self.forward("replace_all", "foo", "bar", headers=hdrs, body=b"a foo b", ctype="text/plain")
        self.assertEqual((rc, rec.msg.get("X-T"), rec.msg.get("X-U")), ("1", "bar bar", "bar"))
        self.assertEqual(rec.msg.body, b"a bar b")
        self.assertFramed(rec)

    def test_replace_across_headers(self):
        # a match may span header lines: here it removes one whole header
        hdrs = [("X-One", "1"), ("X-Gone", "2"), ("X-Three", "3")]
        rc, rec = self.forward("replace", "X-Gone: 2<CRLF>", "", headers=hdrs)
        names = [n for n, _ in rec.msg.headers]
        self.assertEqual(rc, "1")
        self.assertNotIn("X-Gone", names)
        self.assertEqual(names.index("X-One") + 1, names.index("X-Three"))

    def test_replace_nothing(self):
        rc, rec = self.forward("replace", "no-such-text", "x")
        self.assertEqual(rc, "-1")

    def test_replace_all_empty_match_is_an_error(self):
        rc, rec = self.forward("replace_all", "x*", "y", headers=[("X-T", "abc")])
        self.assertEqual((rc, rec.msg.get("X-T")), ("-1", "abc"))

    def test_replace_hdrs_leaves_body(self):
        rc, rec = self.forward("replace_hdrs", "zzz", "yyy", body=b"zzz", ctype="text/plain")
        self.assertEqual((rc, rec.msg.body), ("-1", b"zzz"))
        rc, rec = self.forward("replace_hdrs", "zzz", "yyy", headers=[("X-T", "zzz")], body=b"zzz",
                               ctype="text/plain")
        self.assertEqual((rc, rec.msg.get("X-T"), rec.msg.body), ("1", "yyy", b"zzz"))

    def test_replace_body(self):
        body = b"a=x\r\na=x\r\n"
        rc, rec = self.forward("replace_body", "a=x", "a=longer", body=body, ctype="text/plain")
        self.assertEqual((rc, rec.msg.body), ("1", b"a=longer\r\na=x\r\n"))
        self.assertFramed(rec)
        rc, rec = self.forward("replace_body_all", "^a=x", "b", body=body, ctype="text/plain")
        self.assertEqual((rc, rec.msg.body), ("1", b"b\r\nb\r\n"))
        self.assertFramed(rec)

    def test_replace_body_atonce(self):
        # the whole body is one text: ^.+$ takes all of it (Kamailio's idiom to empty a body)
        rc, rec = self.forward("replace_body_atonce", "^.+$", "", body=b"l1\r\nl2\r\n", ctype="text/plain")
        self.assertEqual((rc, rec.msg.body), ("1", b""))
        self.assertFramed(rec)

    def test_replace_str(self):
        hdrs = [("X-T", "a.b a.b"), ("X-U", "axb")]
        rc, rec = self.forward("replace_str", "a.b", "x", "f", headers=hdrs)
        self.assertEqual((rc, rec.msg.get("X-T"), rec.msg.get("X-U")), ("1", "x a.b", "axb"))  # not a regex
        rc, rec = self.forward("replace_str", "a.b", "x", "a", headers=hdrs, body=b"a.b", ctype="text/plain")
        self.assertEqual((rc, rec.msg.get("X-T"), rec.msg.body), ("1", "x x", b"x"))
        self.assertFramed(rec)
        rc, rec = self.forward("replace_str", "A.B", "x", "a", headers=hdrs)
        self.assertEqual((rc, rec.msg.get("X-T")), ("-1", "a.b a.b"))  # case matters

    def test_replace_hdrs_body_str(self):
        hdrs = [("X-T", "same")]
        rc, rec = self.forward("replace_hdrs_str", "same", "hdr", "a", headers=hdrs, body=b"same", ctype="text/plain")
        self.assertEqual((rc, rec.msg.get("X-T"), rec.msg.body), ("1", "hdr", b"same"))
        rc, rec = self.forward("replace_body_str", "same", "bod", "a", headers=hdrs, body=b"same same",
                               ctype="text/plain")
        self.assertEqual((rc, rec.msg.get("X-T"), rec.msg.body), ("1", "same", b"bod bod"))
        self.assertFramed(rec)

    def test_search_append(self):
        rc, rec = self.forward("search_append", "^X-T: [a-z]+", ";tagged", headers=[("X-T", "abc def")])
        self.assertEqual((rc, rec.msg.get("X-T")), ("1", "abc;tagged def"))
        # after the last header line: a new header
        rc, rec = self.forward("search_append", "^Content-Length: [0-9]+<CRLF>", "X-New: 1<CRLF>")
        self.assertEqual((rc, rec.msg.get("X-New")), ("1", "1"))
        rc, rec = self.forward("search_append", "^X-None", "x")
        self.assertEqual(rc, "-1")

    def test_search_append_body(self):
        rc, rec = self.forward("search_append_body", "^a=x", "yz", body=b"a=x\r\n", ctype="text/plain")
        self.assertEqual((rc, rec.msg.body), ("1", b"a=xyz\r\n"))
        self.assertFramed(rec)
        rc, rec = self.forward("search_append_body", "x", "y")
        self.assertEqual(rc, "-1")

    def test_subst(self):
        hdrs = [("X-T", "sip:alice@example.com")]
        rc, rec = self.forward("subst", r"/^X-T: sip:([a-z]+)@([^<CRLF>]*)/X-T: <\1 at \2>/", headers=hdrs)
        self.assertEqual((rc, rec.msg.get("X-T")), ("1", "<alice at example.com>"))

    def test_subst_flags(self):
        hdrs = [("X-T", "aAaA")]
        rc, rec = self.forward("subst", "/(x-t: )a/\\1b/i", headers=hdrs)
        self.assertEqual((rc, rec.msg.get("X-T")), ("1", "bAaA"))
        rc, rec = self.forward("subst", "/a/b/g", headers=hdrs)
        self.assertEqual((rc, rec.msg.get("X-T")), ("1", "bAbA"))
        rc, rec = self.forward("subst", "/a/b/gi", headers=hdrs)
        self.assertEqual((rc, rec.msg.get("X-T")), ("1", "bbbb"))
        # another separator, escapes in the replacement
        rc, rec = self.forward("subst", r"#X-T: a(A)#X-T: \1\#\\#", headers=hdrs)
        self.assertEqual((rc, rec.msg.get("X-T")), ("1", "A#\\aA"))

    def test_subst_pv_and_uri(self):
        hdrs = [("X-T", "who")]
        rc, rec = self.forward("subst_pv", "/^(X-T:) who/\\1 $var(who) via \\u/", headers=hdrs)
        self.assertEqual(rc, "1")
        # \u is the R-URI when subst runs (before the case renames the user)
        self.assertEqual(rec.msg.get("X-T"), f"carol via sip:subst_pv@127.0.0.1:{self.srv.port}")

    def test_subst_errors(self):
        for bad in ("/a/b", "/(/x/", "/a/\\9/", "/a/b/q", "", "/a/$/", "/a/$nosuchvar/"):
            rc, rec = self.forward("subst", bad, headers=[("X-T", "a")])
            self.assertEqual((bad, rc, rec.msg.get("X-T")), (bad, "-1", "a"))

    def test_subst_body(self):
        body = b"o=- 1 1 IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.1\r\n"
        rc, rec = self.forward("subst_body", "/IN IP4 192\\.0\\.2\\.1/IN IP4 203.0.113.77/g", body=body,
                               ctype="application/sdp")
        self.assertEqual(rc, "1")
        self.assertEqual(rec.msg.body, body.replace(b"192.0.2.1", b"203.0.113.77"))
        self.assertFramed(rec)
        rc, rec = self.forward("subst_body", "/nomatch/x/", body=body, ctype="application/sdp")
        self.assertEqual((rc, rec.msg.body), ("-1", body))

    def test_subst_hf(self):
        hdrs = [("X-V", "a1"), ("X-V", "a2"), ("X-V", "a3")]
        rc, rec = self.forward("subst_hf", "X-V", "/a/b/", "a", headers=hdrs)
        self.assertEqual((rc, rec.msg.get_all("X-V")), ("1", ["b1", "b2", "b3"]))
        rc, rec = self.forward("subst_hf", "X-V", "/a/b/", "f", headers=hdrs)
        self.assertEqual((rc, rec.msg.get_all("X-V")), ("1", ["b1", "a2", "a3"]))
        rc, rec = self.forward("subst_hf", "X-V", "/a/b/", "l", headers=hdrs)
        self.assertEqual((rc, rec.msg.get_all("X-V")), ("1", ["a1", "a2", "b3"]))
        rc, rec = self.forward("subst_hf", "X-V", "/z/b/", "a", headers=hdrs)
        self.assertEqual((rc, rec.msg.get_all("X-V")), ("-1", ["a1", "a2", "a3"]))

    def test_subst_uri_user(self):
        reply = self.call("subst_uri", "/^sip:subst_uri@(.*)$/sip:+49\\1@\\1/")
        self.assertRegex(reply.reason, r"^rc=1 ru=sip:\+49127\.0\.0\.1:\d+@127\.0\.0\.1:\d+$")
        reply = self.call("subst_user", "/_user$/_person/")
        self.assertRegex(reply.reason, r"^rc=1 ru=sip:subst_person@127\.0\.0\.1:\d+$")
        reply = self.call("subst_user", "/nomatch/x/")
        self.assertRegex(reply.reason, r"^rc=-1 ru=sip:subst_user@")
        reply = self.call("subst_uri", "/^sip:.*$/not a uri/")
        self.assertRegex(reply.reason, r"^rc=-1 ru=sip:subst_uri@")

    def test_edits_chain(self):
        rc, rec = self.forward("chain", headers=[("X-A", "aaa")], body=b"one", ctype="text/plain")
        self.assertEqual(rc, "1111")
        self.assertEqual((rec.msg.body, rec.msg.get("X-A")), (b"three", "caa"))
        self.assertFramed(rec)


class StringTest(TextopsBase):
    def test_in_list(self):
        self.assertEqual(self.rc("in_list", "fi", "dk,fi,no,se", ","), "1")
        self.assertEqual(self.rc("in_list", "fi", " dk , fi , no", ","), "1")
        self.assertEqual(self.rc("in_list", "f", "dk,fi,no", ","), "-1")
        self.assertEqual(self.rc("in_list", "se", "dk;fi;se", ";"), "1")
        self.assertEqual(self.rc("in_list", "", "dk,fi", ","), "-1")

    def test_cmp(self):
        self.assertEqual(self.rc("cmp_str", "abc", "abc"), "1")
        self.assertEqual(self.rc("cmp_str", "abd", "abc"), "-1")
        self.assertEqual(self.rc("cmp_str", "abb", "abc"), "-2")
        self.assertEqual(self.rc("cmp_str", "ab", "abc"), "-2")
        self.assertEqual(self.rc("cmp_str", "ABC", "abc"), "-2")
        self.assertEqual(self.rc("cmp_istr", "ABC", "abc"), "1")
        self.assertEqual(self.rc("cmp_istr", "ABD", "abc"), "-1")

    def test_starts_ends(self):
        self.assertEqual(self.rc("starts_with", "+358401", "+358"), "1")
        self.assertEqual(self.rc("starts_with", "+358401", "+359"), "-2")
        self.assertEqual(self.rc("starts_with", "+3", "+358"), "-1")
        self.assertEqual(self.rc("ends_with", "12348800", "8800"), "1")
        self.assertEqual(self.rc("ends_with", "12348800", "8801"), "-2")
        self.assertEqual(self.rc("ends_with", "00", "8800"), "-1")

    def test_str_any_all_in(self):
        self.assertEqual(self.rc("str_any_in", "abc", "xyc"), "1")
        self.assertEqual(self.rc("str_any_in", "abc", "xyz"), "-1")
        self.assertEqual(self.rc("str_all_in", "abc", "cab"), "1")
        self.assertEqual(self.rc("str_all_in", "abc", "abd"), "-1")
        self.assertEqual(self.rc("str_any_in", "", "a"), "-1")

    def test_str_find(self):
        self.assertEqual(self.rc("str_find", "hello world", "world"), "7")
        self.assertEqual(self.rc("str_find", "hello world", "hello"), "1")
        self.assertEqual(self.rc("str_find", "hello world", "World"), "-1")
        self.assertEqual(self.rc("str_ifind", "hello world", "WORLD"), "7")
        self.assertEqual(self.rc("str_ifind", "hello", "xyz"), "-1")


if __name__ == "__main__":
    unittest.main()
