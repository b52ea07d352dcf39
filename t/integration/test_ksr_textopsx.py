# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""
KSR.textopsx from a real route, with the case-per-R-URI-user scheme of
test_ksr_textops (arguments in X-A1..X-A3, forwarded cases checked at a UAS).
Reply-route cases are picked by the From user, which the UAS copies.
"""
import unittest

from ksrtest import Uas, UdpPeer, make_request
from test_ksr_textops import TextopsBase

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
local X = KSR.textopsx

T.remove_body = function() fwd(X.remove_body()) end
T.keep_hf = function() fwd(X.keep_hf()) end
T.keep_hf_re = function() fwd(X.keep_hf_re(A())) end
T.fnmatch = function() rc(X.fnmatch(A(), B())) end
T.fnmatch_ex = function() rc(X.fnmatch_ex(A(), B(), C())) end
T.status_in_request = function() rc(X.change_reply_status(404, "Not Found")) end
T.exists = function() rc(X.hf_value_exists(A(), B())) end
T.include = function() fwd(X.include_hf_value(A(), B())) end
T.exclude = function() fwd(X.exclude_hf_value(A(), B())) end
T.plain = function() fwd(1) end

-- header iterators
T.iter_names = function()
    local names = {}
    X.hf_iterator_start("i1")
    while X.hf_iterator_next("i1") > 0 do
        names[#names + 1] = X.hf_iterator_hname("i1") .. "=" .. X.hf_iterator_hbody("i1")
    end
    local after = tostring(X.hf_iterator_hname("i1"))
    X.hf_iterator_end("i1")
    rc(table.concat(names, "|") .. "#" .. after .. "#" .. X.hf_iterator_next("i1"))
end
T.iter_edit = function()
    X.hf_iterator_start("it")
    while X.hf_iterator_next("it") > 0 do
        local n = X.hf_iterator_hname("it")
        if n == "X-Rm" then X.hf_iterator_rm("it")
        elseif n == "X-Mark" then
            X.hf_iterator_insert("it", "X-Before: 1\r\n")
            X.hf_iterator_append("it", "X-After: 2\r\n")
        end
    end
    X.hf_iterator_end("it")
    fwd(1)
end
T.iter_prev = function()
    X.hf_iterator_start("p")
    local r = { X.hf_iterator_prev("p") }
    X.hf_iterator_next("p")
    X.hf_iterator_next("p")
    r[#r + 1] = X.hf_iterator_prev("p")
    r[#r + 1] = X.hf_iterator_hname("p")
    r[#r + 1] = X.hf_iterator_prev("p")
    r[#r + 1] = tostring(X.hf_iterator_hname("p"))
    X.hf_iterator_end("p")
    rc(table.concat(r, ","))
end
T.iter_limit = function()
    local r = {}
    for i = 1, 5 do r[#r + 1] = X.hf_iterator_start("n" .. i) end
    r[#r + 1] = X.hf_iterator_end("n2")
    r[#r + 1] = X.hf_iterator_start("n5")
    r[#r + 1] = X.hf_iterator_end("nope")
    for i = 1, 5 do X.hf_iterator_end("n" .. i) end
    rc(table.concat(r, ","))
end
T.iter_left_open = function() rc(X.hf_iterator_start("stale")) end
T.iter_stale = function() rc(X.hf_iterator_next("stale") .. "," .. tostring(X.hf_iterator_hname("stale"))) end

function ksr_request_route()
    local case = KSR.pv.get("$rU")
    local f = case and T[case]
    if not f then
        KSR.sl.sl_send_reply(200, "no case")
        return
    end
    for i = 1, 3 do ARGS[i] = hdr("X-A" .. i) end
    DST = hdr("X-Dst")
    KSR.textops.remove_hf_re("^X-(A[1-3]|Dst)$")
    f()
end

-- replies: the From user says what to do; the result goes back in X-Rc
function ksr_reply_route()
    local case, r = KSR.pv.get("$fU"), nil
    if case == "status" then r = X.change_reply_status(404, "Not Found")
    elseif case == "status_code" then r = X.change_reply_status_code(480)
    elseif case == "status_empty" then r = X.change_reply_status(404, "")
    elseif case == "status_bad" then r = X.change_reply_status(700, "Too Far")
    elseif case == "remove_body" then r = X.remove_body()
    else return end
    X.include_hf_value("X-Rc", tostring(r) .. "/" .. KSR.pv.get("$rs"))
end
"""


class TextopsxBase(TextopsBase):
    ROUTE = ROUTE


class BodyHeaderTest(TextopsxBase):
    def test_remove_body(self):
        rc, rec = self.forward("remove_body", body=b"v=0\r\n", ctype="application/sdp")
        self.assertEqual((rc, rec.msg.body, rec.msg.get("Content-Length")), ("1", b"", "0"))
        self.assertEqual(rec.msg.get("Content-Type"), "application/sdp")  # kept, as Kamailio does
        rc, rec = self.forward("remove_body")
        self.assertEqual((rc, rec.msg.body), ("1", b""))

    def test_keep_hf(self):
        hdrs = [("Subject", "s"), ("X-Foo", "1"), ("Route", "<sip:127.0.0.1;lr>"), ("User-Agent", "ua"),
                ("Contact", "<sip:a@127.0.0.1>")]
        rc, rec = self.forward("keep_hf", headers=hdrs, body=b"x", ctype="text/plain")
        self.assertEqual(rc, "1")
        names = {n.lower() for n, _ in rec.msg.headers}
        for gone in ("subject", "x-foo", "user-agent"):
            self.assertNotIn(gone, names)
        for kept in ("via", "from", "to", "call-id", "cseq", "max-forwards", "route", "contact",
                     "content-type", "content-length"):
            self.assertIn(kept, names)

    def test_keep_hf_re(self):
        hdrs = [("X-Keep-Me", "1"), ("X-Drop", "2"), ("Subject", "s")]
        rc, rec = self.forward("keep_hf_re", "^X-Keep", headers=hdrs)
        self.assertEqual((rc, rec.msg.get("X-Keep-Me"), rec.msg.has("X-Drop"), rec.msg.has("Subject")),
                         ("1", "1", False, False))

    def test_hf_value_exists(self):
        hdrs = [("Supported", "path, 100rel"), ("Supported", "timer"), ("X-List", '"a,b", c')]
        self.assertEqual(self.rc("exists", "Supported", "100rel", headers=hdrs), "1")
        self.assertEqual(self.rc("exists", "supported", "TIMER", headers=hdrs), "1")
        self.assertEqual(self.rc("exists", "k", "path", headers=hdrs), "1")  # compact form
        self.assertEqual(self.rc("exists", "Supported", "gruu", headers=hdrs), "-1")
        self.assertEqual(self.rc("exists", "X-List", "c", headers=hdrs), "1")
        self.assertEqual(self.rc("exists", "X-List", "b", headers=hdrs), "-1")  # inside quotes
        self.assertEqual(self.rc("exists", "Supported[1]", "path", headers=hdrs), "-1")  # no index here
        self.assertEqual(self.rc("exists", "Supported", "", headers=hdrs), "-1")

    def test_include_hf_value(self):
        rc, rec = self.forward("include", "Supported", "100rel", headers=[("Supported", "path")])
        self.assertEqual((rc, rec.msg.get_all("Supported")), ("1", ["path,100rel"]))
        rc, rec = self.forward("include", "Supported", "PATH", headers=[("Supported", "path")])
        self.assertEqual((rc, rec.msg.get_all("Supported")), ("1", ["path"]))
        rc, rec = self.forward("include", "Supported", "100rel")
        self.assertEqual((rc, rec.msg.get_all("Supported")), ("1", ["100rel"]))

    def test_exclude_hf_value(self):
        hdrs = [("Supported", "path, 100rel, timer"), ("Supported", "100rel")]
        rc, rec = self.forward("exclude", "Supported", "100rel", headers=hdrs)
        self.assertEqual((rc, rec.msg.get_all("Supported")), ("1", ["path, timer"]))
        rc, rec = self.forward("exclude", "Supported", "gruu", headers=hdrs)
        self.assertEqual((rc, rec.msg.get_all("Supported")), ("1", ["path, 100rel, timer", "100rel"]))


class MatchTest(TextopsxBase):
    def test_fnmatch(self):
        self.assertEqual(self.rc("fnmatch", "12345", "123*"), "1")
        self.assertEqual(self.rc("fnmatch", "123", "1?3"), "1")
        self.assertEqual(self.rc("fnmatch", "ABC", "abc"), "-1")
        self.assertEqual(self.rc("fnmatch", "b", "[a-c]"), "1")
        self.assertEqual(self.rc("fnmatch", "9", "[a-c]"), "-1")
        self.assertEqual(self.rc("fnmatch_ex", "ABC", "abc", "i"), "1")
        self.assertEqual(self.rc("fnmatch_ex", "ABC", "abc", ""), "-1")


class ReplyStatusTest(TextopsxBase):
    def run_reply(self, case, status, reason):
        with Uas("udp", status=status, reason=reason) as uas:
            self.forward("plain", uas=uas, frm=f"<sip:{case}@client.invalid>;tag=rs1")
        return self.reply

    def test_change_reply_status(self):
        r = self.run_reply("status", 603, "Decline")
        self.assertEqual((r.status, r.reason, r.get("X-Rc")), (404, "Not Found", "1/404"))

    def test_change_reply_status_code(self):
        r = self.run_reply("status_code", 486, "Busy Here")
        self.assertEqual((r.status, r.reason, r.get("X-Rc")), (480, "Busy Here", "1/480"))

    def test_change_reply_status_keeps_class(self):
        # a 2xx cannot become an error
        r = self.run_reply("status", 200, "OK")
        self.assertEqual((r.status, r.reason, r.get("X-Rc")), (200, "OK", "-1/200"))

    def test_change_reply_status_bad_args(self):
        r = self.run_reply("status_empty", 603, "Decline")
        self.assertEqual((r.status, r.get("X-Rc")), (603, "-1/603"))
        r = self.run_reply("status_bad", 603, "Decline")
        self.assertEqual((r.status, r.get("X-Rc")), (603, "-1/603"))

    def test_change_reply_status_only_in_replies(self):
        self.assertEqual(self.rc("status_in_request"), "-1")
        self.assertTrue(self.srv.wait_log(r"change_reply_status is not allowed in a request route"))

    def test_remove_body_in_reply(self):
        with Uas("udp", status=None) as uas, UdpPeer() as p:
            req = make_request("MESSAGE", self.srv.uri("plain"), p.via(), headers=[("X-Dst", uas.uri)],
                               frm="<sip:remove_body@client.invalid>;tag=rb1")
            p.send(req, self.srv.udp)
            rec = uas.wait_request()
            self.assertIsNotNone(rec)
            uas.reply(rec, 200, "OK", body=b"v=0\r\n", headers=[("Content-Type", "application/sdp")])
            r = p.recv_msg()
        self.assertIsNotNone(r)
        self.assertEqual((r.get("X-Rc"), r.body, r.get("Content-Length")), ("1/200", b"", "0"))


class IteratorTest(TextopsxBase):
    def test_walk(self):
        reply = self.call("iter_names", headers=[("X-One", "1"), ("X-Two", "two  words")])
        names, after, nxt = reply.reason[3:].split("#")
        pairs = names.split("|")
        self.assertEqual(pairs[0].split("=")[0], "Via")
        self.assertIn("X-One=1", pairs)
        self.assertIn("X-Two=two  words", pairs)
        self.assertEqual((after, nxt), ("nil", "-1"))  # past the end; ended iterators are gone

    def test_edit(self):
        hdrs = [("X-Rm", "a"), ("X-Mark", "m"), ("X-Rm", "b")]
        rc, rec = self.forward("iter_edit", headers=hdrs)
        names = [n for n, _ in rec.msg.headers]
        self.assertNotIn("X-Rm", names)
        i = names.index("X-Mark")
        self.assertEqual(names[i - 1:i + 2], ["X-Before", "X-Mark", "X-After"])

    def test_prev(self):
        # before the first: -1; after two nexts, prev goes to the first header (Via); then -1 again
        self.assertEqual(self.rc("iter_prev"), "-1,1,Via,-1,nil")

    def test_limit(self):
        # 4 iterators at most; a name can be reused after end; ending an unknown one fails
        self.assertEqual(self.rc("iter_limit"), "1,1,1,1,-1,1,1,-1")

    def test_stale(self):
        # an iterator left open belongs to its message only
        self.assertEqual(self.rc("iter_left_open"), "1")
        self.assertEqual(self.rc("iter_stale"), "-1,nil")


if __name__ == "__main__":
    unittest.main()
