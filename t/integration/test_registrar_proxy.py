# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""
The registrar-proxy route pack (lua/routes/registrar-proxy) end to end: phones
written here (digest auth with hashlib, a UAC and a UAS over UDP or TCP)
register through ksrd and call each other through it, without a database
(static users in settings.lua, location in memory) and with a real
PostgreSQL started by the test (subscriber table, location in db_mode 1).

Each server runs a copy of the pack's route.lua beside a settings.lua written
by the test, so that the users and domain are the test's; one class runs the
pack exactly as shipped (its settings.lua, its example users).
"""
import hashlib
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import uuid
from pathlib import Path

import pgserver
from ksrtest import LOCAL4, REPO, Server, SipMessage, UdpPeer, hostport, make_request, run_ksrd, unique
from sipua import Endpoint, Recorder, route_values, uri_of

PACK = REPO / "lua" / "routes" / "registrar-proxy"
DOMAIN = "ksrd.test"
USERS = {"alice": "Wonder-Land-7", "bob": "Builder-Bob-9", "carol": "Sea-Shell-3", "dave": "Dave-Rings-4",
         "o'brien": "Irish-Sea-8"}
WAIT = 5.0

# Short transaction timers: a test waits for a timeout now and then
TM = {"fr_timer": 2000, "fr_inv_timer": 4000, "wt_timer": 1000, "max_inv_lifetime": 8000}


def lua_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def settings_lua(use_db, users=USERS, extra=""):
    entries = "".join(f"\t\t[{lua_str(u)}] = {lua_str(p)},\n" for u, p in users.items())
    return (f"return {{\n\tdomains = {{ {lua_str(DOMAIN)} }},\n\tuse_db = {'true' if use_db else 'false'},\n"
            f"\tusers = {{\n{entries}\t}},\n{extra}}}\n")


def md5(text):
    return hashlib.md5(text.encode()).hexdigest()


# ---------------------------------------------------------------- digest

def parse_challenge(value):
    scheme, _, rest = value.strip().partition(" ")
    assert scheme.lower() == "digest", value
    out = {}
    for m in re.finditer(r'\s*([A-Za-z0-9_-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^,\s]+)\s*(?:,|$)', rest):
        out[m.group(1).lower()] = m.group(3) if m.group(3) is not None else m.group(2)
    return out


def credentials(ch, user, password, method, uri, nc=1):
    """RFC 7616 §3.4 with MD5, qop=auth when offered."""
    ha1 = md5(f"{user}:{ch['realm']}:{password}")
    ha2 = md5(f"{method}:{uri}")
    realm, nonce = ch["realm"], ch["nonce"]
    v = f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", algorithm=MD5'
    if "auth" in (ch.get("qop") or "").split(","):
        cnonce, ncs = uuid.uuid4().hex[:12], f"{nc:08x}"
        resp = md5(f"{ha1}:{ch['nonce']}:{ncs}:{cnonce}:auth:{ha2}")
        return v + f', response="{resp}", qop=auth, nc={ncs}, cnonce="{cnonce}"'
    resp = md5(f"{ha1}:{ch['nonce']}:{ha2}")
    return v + f', response="{resp}"'


def contacts_of(reply):
    """{uri: expires} of the Contact headers of a REGISTER reply."""
    out = {}
    for value in reply.get_all("Contact"):
        for m in re.finditer(r"<([^>]+)>([^,]*)", value):
            e = re.search(r";expires=(\d+)", m.group(2))
            out[m.group(1)] = int(e.group(1)) if e else None
    return out


# ---------------------------------------------------------------- a phone

class Phone(Endpoint):
    """
    A SIP phone on loopback: UDP, or TCP with one connection to the proxy that
    carries everything (requests from the proxy too). As UAC it registers and
    calls with digest authentication; as UAS it answers INVITE with 180 then
    `answer` (None: rings until CANCEL), and 200 to BYE, MESSAGE, OPTIONS.
    """

    def __init__(self, srv, user, transport="udp", password=None, domain=DOMAIN, answer=200):
        self.srv, self.user, self.domain = srv, user, domain
        self.password = USERS.get(user, "") if password is None else password
        self.answer = answer
        self.responses = Recorder()    # every response received
        self.incoming = Recorder()     # every request received
        self.pending = {}              # Call-ID -> INVITE waiting for CANCEL (answer None)
        self.reg_call_id = unique("reg-") + "@phone"
        self.reg_cseq = 0
        self.errors = []
        super().__init__(transport, LOCAL4, None, connect=srv.tcp if transport == "tcp" else None)

    @property
    def aor(self):
        return f"sip:{self.user}@{self.domain}"

    @property
    def contact_uri(self):
        return f"sip:{self.user}@{hostport(self.host, self.port)};transport={self.transport}"

    def to_proxy(self, msg):
        if self.transport == "tcp":
            self.send(msg)
        else:
            self.send(msg, self.srv.udp)

    # -- receiving
    def on_message(self, rec):
        msg = rec.msg
        if not msg.is_request:
            self.responses.add(rec)
            return
        self.incoming.add(rec)
        if msg.method == "ACK":
            return
        if msg.method == "INVITE":
            self.reply_along_via(self.reply_to(msg, 180), rec)
            if self.answer is None:
                self.pending[msg.get("Call-ID")] = rec
            else:
                self.reply_along_via(self.reply_to(msg, self.answer), rec)
            return
        if msg.method == "CANCEL":
            self.reply_along_via(self.reply_to(msg, 200), rec)
            inv = self.pending.pop(msg.get("Call-ID"), None)
            if inv is not None:
                self.reply_along_via(self.reply_to(inv.msg, 487), inv)
            return
        self.reply_along_via(self.reply_to(msg, 200), rec)

    def reply_to(self, req, code):
        reasons = {180: "Ringing", 200: "OK", 302: "Moved Temporarily", 486: "Busy Here",
                   487: "Request Terminated"}
        hdrs = [("Via", v) for v in req.get_all("Via")]
        to = req.get("To")
        if req.tag("To") is None and code > 100:
            to += ";tag=" + md5(req.get("Call-ID") + self.user)[:10]
        if req.method == "INVITE" and code < 300:
            hdrs += [("Record-Route", v) for v in req.get_all("Record-Route")]
        hdrs += [("From", req.get("From")), ("To", to), ("Call-ID", req.get("Call-ID")), ("CSeq", req.get("CSeq"))]
        if req.method == "INVITE" and code < 300:
            hdrs.append(("Contact", f"<{self.contact_uri}>"))
        if code == 302:
            hdrs.append(("Contact", "<sip:premium-rate@198.51.100.99>"))
        return SipMessage(f"SIP/2.0 {code} {reasons.get(code, 'OK')}", hdrs + [("Content-Length", "0")])

    def received(self, method, call_id=None, count=1, timeout=WAIT):
        got = self.incoming.wait(method, call_id, count=count, timeout=timeout)
        return got[count - 1].msg if len(got) >= count else None

    # -- sending
    def transact(self, msg, timeout=WAIT):
        """Sends msg (again over UDP until something comes back); returns the final response or None."""
        branch = msg.top_via().branch
        method = msg.method

        def mine(r):
            v = r.msg.top_via()
            return v is not None and v.branch == branch and (r.msg.get("CSeq") or "").endswith(method)

        deadline = time.monotonic() + timeout
        interval = 0.25
        self.to_proxy(msg)
        while time.monotonic() < deadline:
            got = self.responses.wait(pred=lambda r: mine(r) and r.msg.status >= 200, timeout=interval)
            if got:
                return got[0].msg
            if self.transport == "udp" and not self.responses.select(pred=mine):
                self.to_proxy(msg)
            interval = min(interval * 2, 1.0)
        return None

    def ack_non2xx(self, invite, final):
        """The hop-by-hop ACK of a non-2xx final (§17.1.1.3): same branch, the final's To."""
        hdrs = [("Via", invite.get("Via")), ("Max-Forwards", "70"), ("From", invite.get("From")),
                ("To", final.get("To")), ("Call-ID", invite.get("Call-ID")),
                ("CSeq", invite.get("CSeq").split()[0] + " ACK"), ("Content-Length", "0")]
        self.to_proxy(SipMessage(f"ACK {invite.ruri} SIP/2.0", hdrs))

    def build(self, method, ruri, to, cseq, call_id, from_tag, headers=(), body=b""):
        hdrs = [("Contact", f"<{self.contact_uri}>")] if method in ("INVITE", "REGISTER") else []
        return make_request(method, ruri, self.via(), call_id=call_id, cseq=cseq, to=to,
                            frm=f"<{self.aor}>;tag={from_tag}", headers=hdrs + list(headers), body=body)

    def request(self, method, ruri, to=None, headers=(), body=b"", password=None, call_id=None):
        """
        An out-of-dialog request, answering one 401/407 with credentials.
        Returns (final response, the request last sent, the challenge response or None).
        """
        call_id = call_id or unique("c-") + "@phone"
        from_tag = unique("f")
        cseq = 1
        req = self.build(method, ruri, to or f"<{ruri}>", cseq, call_id, from_tag, headers, body)
        final = self.transact(req)
        challenge = None
        if final is not None and final.status in (401, 407):
            challenge = final
            if method == "INVITE":
                self.ack_non2xx(req, final)
            name = "WWW-Authenticate" if final.status == 401 else "Proxy-Authenticate"
            ch = parse_challenge(final.get(name))
            auth = credentials(ch, self.user, self.password if password is None else password, method, ruri)
            hname = "Authorization" if final.status == 401 else "Proxy-Authorization"
            cseq += 1
            req = self.build(method, ruri, to or f"<{ruri}>", cseq, call_id, from_tag,
                             list(headers) + [(hname, auth)], body)
            final = self.transact(req)
        if final is not None and method == "INVITE" and final.status >= 300:
            self.ack_non2xx(req, final)
        return final, req, challenge

    def register(self, expires=600, contact=None, password=None):
        """REGISTER (Contact: ours, or `contact`; "" for none); the final response."""
        self.reg_cseq += 1
        hdrs = [("Expires", str(expires))] if expires is not None else []
        if contact is not None:
            hdrs.append(("Contact", contact))
        final = None
        for _ in range(2):
            req = make_request("REGISTER", f"sip:{self.domain}", self.via(), call_id=self.reg_call_id,
                               cseq=self.reg_cseq, to=f"<{self.aor}>", frm=f"<{self.aor}>;tag={unique('f')}",
                               headers=([] if contact is not None else [("Contact", f"<{self.contact_uri}>")]) + hdrs)
            final = self.transact(req)
            if final is None or final.status != 401:
                return final
            ch = parse_challenge(final.get("WWW-Authenticate"))
            auth = credentials(ch, self.user, self.password if password is None else password, "REGISTER",
                               f"sip:{self.domain}")
            hdrs = [h for h in hdrs if h[0] != "Authorization"] + [("Authorization", auth)]
            self.reg_cseq += 1
        return final

    def call(self, user, domain=None):
        """INVITE user@domain; a Call (final response, dialog) after the final response."""
        ruri = f"sip:{user}@{domain or self.domain}"
        final, invite, challenge = self.request("INVITE", ruri)
        return Call(self, invite, final, challenge)


class Call:
    """An INVITE of a Phone: the final response, and the dialog when it is a 2xx."""

    def __init__(self, phone, invite, final, challenge):
        self.phone, self.invite, self.final, self.challenge = phone, invite, final, challenge
        self.cseq = int(invite.get("CSeq").split()[0])
        if final is not None and 200 <= final.status < 300:
            self.route_set = list(reversed(route_values(final, "Record-Route")))
            self.remote_target = uri_of(final.get("Contact"))
            self.to = final.get("To")

    def provisional(self):
        branch = self.invite.top_via().branch
        return [r.msg.status for r in self.phone.responses.select(
            pred=lambda r: r.msg.top_via().branch == branch and r.msg.status < 200)]

    def in_dialog(self, method, cseq):
        hdrs = [("Via", self.phone.via()), ("Max-Forwards", "70"), ("From", self.invite.get("From")),
                ("To", self.to), ("Call-ID", self.invite.get("Call-ID")), ("CSeq", f"{cseq} {method}")]
        hdrs += [("Route", r) for r in self.route_set]
        return SipMessage(f"{method} {self.remote_target} SIP/2.0", hdrs + [("Content-Length", "0")])

    def ack(self):
        self.phone.to_proxy(self.in_dialog("ACK", self.cseq))

    def bye(self):
        self.cseq += 1
        return self.phone.transact(self.in_dialog("BYE", self.cseq))


# ---------------------------------------------------------------- the servers

class PackServer:
    """ksrd running a copy of the pack with a settings.lua of the test."""

    def __init__(self, use_db, config, extra_settings=""):
        self.tmp = tempfile.TemporaryDirectory(prefix="ksrtest-pack-")
        d = Path(self.tmp.name)
        shutil.copy(PACK / "route.lua", d / "route.lua")
        (d / "settings.lua").write_text(settings_lua(use_db, extra=extra_settings))
        self.srv = Server(script_path=d / "route.lua", config={"tm": TM, **config})

    def start(self):
        try:
            self.srv.start()
        except BaseException:
            self.close()
            raise
        return self.srv

    def close(self):
        try:
            if self.srv.proc is not None:
                self.srv.stop()
        finally:
            self.srv.cleanup()
            self.tmp.cleanup()


class PackTests:
    """What the pack does, with or without a database (mixed into the classes below)."""

    srv = None

    def phone(self, user, transport="udp", **kw):
        p = Phone(self.srv, user, transport, **kw)
        self.addCleanup(p.close)
        return p

    def registered(self, user, transport="udp", **kw):
        p = self.phone(user, transport, **kw)
        self.addCleanup(p.register, 0)    # before the phone closes: no stale binding for the next test
        r = p.register()
        self.assertIsNotNone(r, f"no answer to the REGISTER of {user}\n{self.srv.log()[-3000:]}")
        self.assertEqual(r.status, 200, r.start)
        return p

    def full_call(self, caller, callee):
        call = caller.call(callee.user)
        self.assertIsNotNone(call.final, f"no final response\n{self.srv.log()[-3000:]}")
        self.assertIsNotNone(call.challenge, "the INVITE of a local user is challenged first")
        self.assertEqual(call.challenge.status, 407)
        self.assertEqual(parse_challenge(call.challenge.get("Proxy-Authenticate"))["realm"], DOMAIN)
        self.assertEqual(call.final.status, 200, call.final.start)
        self.assertIn(180, call.provisional())
        # the callee got the INVITE from the proxy, record-routed, credentials consumed
        inv = callee.received("INVITE", call.invite.get("Call-ID"))
        self.assertIsNotNone(inv)
        self.assertFalse(inv.has("Proxy-Authorization"), "credentials relayed")
        self.assertTrue(route_values(inv, "Record-Route"), "INVITE not record-routed")
        self.assertEqual(inv.ruri, callee.contact_uri)
        self.assertTrue(call.route_set, "no Record-Route in the 200")
        self.assertIn(str(self.srv.port), call.route_set[0])
        call.ack()
        ack = callee.received("ACK", call.invite.get("Call-ID"))
        self.assertIsNotNone(ack, "the ACK did not reach the callee")
        self.assertEqual(len(ack.vias()), 2, "the ACK went through the proxy")
        bye = call.bye()
        self.assertIsNotNone(bye, "no answer to BYE")
        self.assertEqual(bye.status, 200, bye.start)
        got = callee.received("BYE", call.invite.get("Call-ID"))
        self.assertIsNotNone(got)
        self.assertEqual(len(got.vias()), 2, "the BYE went through the proxy")

    # -- registration
    def test_register_udp_and_tcp_challenged_then_listed(self):
        for transport in ("udp", "tcp"):
            with self.subTest(transport):
                p = self.phone("carol", transport)
                first = p.transact(make_request("REGISTER", f"sip:{DOMAIN}", p.via(), to=f"<{p.aor}>",
                                                frm=f"<{p.aor}>;tag=x", headers=[("Contact", f"<{p.contact_uri}>")]))
                self.assertEqual(first.status, 401, first.start)
                ch = parse_challenge(first.get("WWW-Authenticate"))
                self.assertEqual(ch["realm"], DOMAIN)
                self.assertEqual(ch.get("qop"), "auth")
                r = p.register(expires=300)
                self.assertEqual(r.status, 200, r.start)
                self.assertEqual(contacts_of(r).get(p.contact_uri), 300)
                p.register(expires=0)

    def test_wrong_password_is_challenged_again(self):
        p = self.phone("dave", password="not-his-password")
        r = p.register()
        self.assertEqual(r.status, 401, r.start)
        self.assertEqual(r.reason, "Unauthorized")
        self.assertTrue(r.has("WWW-Authenticate"))
        self.assertFalse(r.has("Warning"))

    def test_unknown_user_is_challenged_again(self):
        r = self.phone("mallory", password="guess").register()
        self.assertEqual(r.status, 401, r.start)

    def test_credentials_of_another_user_forbidden(self):
        p = self.phone("bob")

        def register_bob(*extra):
            return p.transact(make_request("REGISTER", f"sip:{DOMAIN}", p.via(), to=f"<{p.aor}>",
                                           frm=f"<{p.aor}>;tag=x", headers=[("Contact", f"<{p.contact_uri}>"), *extra]))

        ch = parse_challenge(register_bob().get("WWW-Authenticate"))
        # alice's good credentials, to register bob
        r = register_bob(("Authorization", credentials(ch, "alice", USERS["alice"], "REGISTER", f"sip:{DOMAIN}")))
        self.assertEqual((r.status, r.reason), (403, "Forbidden auth ID"))

    def test_register_refused_by_the_registrar_gets_one_reply(self):
        p = self.phone("carol")
        r = p.register(expires=1)        # below min_expires
        self.assertEqual(r.status, 423, r.start)
        self.assertEqual(r.get("Min-Expires"), "60")
        extra = p.responses.wait(pred=lambda x: x.msg.status >= 200 and x.msg.get("Call-ID") == p.reg_call_id,
                                 count=3, timeout=0.5)
        self.assertEqual([x.msg.status for x in extra], [401, 423], "a second final response")

    def test_unregister_one_binding_then_star(self):
        p = self.registered("dave")
        other = "sip:dave@192.0.2.44:5060"
        r = p.register(expires=600, contact=f"<{other}>")
        self.assertEqual(set(contacts_of(r)), {p.contact_uri, other})
        r = p.register(expires=0, contact=f"<{other}>")
        self.assertEqual(r.status, 200, r.start)
        self.assertEqual(set(contacts_of(r)), {p.contact_uri})
        r = p.register(expires=0, contact="*")
        self.assertEqual(r.status, 200, r.start)
        self.assertEqual(contacts_of(r), {})
        # dave exists, but is not registered now: 480 (404 is for who does not exist)
        alice = self.phone("alice")
        call = alice.call("dave")
        self.assertEqual((call.final.status, call.final.reason), (480, "Temporarily Unavailable"))

    # -- calls and messages
    def test_call_udp_to_tcp_and_back(self):
        alice = self.registered("alice", "udp")
        bob = self.registered("bob", "tcp")
        self.full_call(alice, bob)
        self.full_call(bob, alice)

    def test_call_udp_to_udp(self):
        carol = self.registered("carol", "udp")
        dave = self.registered("dave", "udp")
        self.full_call(carol, dave)

    def test_callee_hangs_up(self):
        alice = self.registered("alice", "tcp")
        carol = self.registered("carol", "udp")
        call = alice.call("carol")
        self.assertEqual(call.final.status, 200, call.final.start)
        call.ack()
        inv = carol.received("INVITE", call.invite.get("Call-ID"))
        self.assertIsNotNone(carol.received("ACK", call.invite.get("Call-ID")))
        # carol's BYE: Route = Record-Route as carol received it, R-URI = alice's Contact
        bye = SipMessage(f"BYE {uri_of(inv.get('Contact'))} SIP/2.0", [
            ("Via", carol.via()), ("Max-Forwards", "70"), ("From", call.final.get("To")),
            ("To", inv.get("From")), ("Call-ID", inv.get("Call-ID")), ("CSeq", "7 BYE")]
            + [("Route", r) for r in route_values(inv, "Record-Route")] + [("Content-Length", "0")])
        r = carol.transact(bye)
        self.assertIsNotNone(r)
        self.assertEqual(r.status, 200, r.start)
        self.assertIsNotNone(alice.received("BYE", call.invite.get("Call-ID")))

    def test_cancel_a_ringing_call(self):
        alice = self.registered("alice", "udp")
        self.registered("dave", "udp", answer=None)
        result = {}
        t = threading.Thread(target=lambda: result.setdefault("call", alice.call("dave")), daemon=True)
        t.start()
        # the 180 for the INVITE with credentials carries what the CANCEL needs (§9.1)
        ringing = alice.responses.wait(pred=lambda r: r.msg.status == 180, timeout=WAIT)
        self.assertTrue(ringing, f"no 180\n{self.srv.log()[-3000:]}")
        r180 = ringing[0].msg
        cancel = SipMessage(f"CANCEL sip:dave@{DOMAIN} SIP/2.0", [
            ("Via", r180.get("Via")), ("Max-Forwards", "70"), ("From", r180.get("From")),
            ("To", f"<sip:dave@{DOMAIN}>"), ("Call-ID", r180.get("Call-ID")),
            ("CSeq", r180.get("CSeq").split()[0] + " CANCEL"), ("Content-Length", "0")])
        r = alice.transact(cancel)
        self.assertIsNotNone(r, "no answer to CANCEL")
        self.assertEqual(r.status, 200, r.start)
        t.join(WAIT)
        self.assertEqual(result["call"].final.status, 487)

    def test_cancel_without_transaction_481(self):
        p = UdpPeer()
        self.addCleanup(p.close)
        req = make_request("CANCEL", f"sip:bob@{DOMAIN}", p.via(), frm="<sip:x@elsewhere.example>;tag=1")
        r = p.request(self.srv.udp, req)
        self.assertEqual(r.status, 481, r.start)

    def test_message_both_ways(self):
        alice = self.registered("alice", "tcp")
        bob = self.registered("bob", "udp")
        for a, b in ((alice, bob), (bob, alice)):
            final, req, challenge = a.request("MESSAGE", f"sip:{b.user}@{DOMAIN}",
                                              headers=[("Content-Type", "text/plain")], body=b"hello")
            self.assertEqual(challenge.status, 407)
            self.assertEqual(final.status, 200, final.start)
            got = b.received("MESSAGE", req.get("Call-ID"))
            self.assertEqual(got.body, b"hello")
            self.assertFalse(got.has("Record-Route"), "MESSAGE record-routed")

    def test_foreign_caller_reaches_a_local_user_unauthenticated(self):
        bob = self.registered("bob")
        p = UdpPeer()
        self.addCleanup(p.close)
        req = make_request("MESSAGE", f"sip:bob@{DOMAIN}", p.via(), frm="<sip:eve@elsewhere.example>;tag=1",
                           headers=[("Content-Type", "text/plain")], body="hi")
        p.send(req, self.srv.udp)
        self.assertIsNotNone(bob.received("MESSAGE", req.get("Call-ID")))

    def test_unknown_user_404(self):
        alice = self.phone("alice")
        call = alice.call("nobody")
        self.assertEqual((call.final.status, call.final.reason), (404, "Not Found"))

    def test_callee_busy(self):
        alice = self.registered("alice")
        self.registered("carol", answer=486)
        call = alice.call("carol")
        self.assertEqual(call.final.status, 486, call.final.start)

    def test_redirect_blocked(self):
        alice = self.registered("alice")
        self.registered("carol", answer=302)
        call = alice.call("carol")
        self.assertEqual((call.final.status, call.final.reason), (404, "Not found"))
        self.assertFalse(call.final.has("Contact"), "the redirect target reached the caller")

    # -- what is refused
    def test_relay_denied_foreign_to_foreign(self):
        p = UdpPeer()
        self.addCleanup(p.close)
        req = make_request("INVITE", "sip:bob@elsewhere.example", p.via(), frm="<sip:eve@other.example>;tag=1")
        r = p.request(self.srv.udp, req)
        self.assertEqual((r.status, r.reason), (403, "Not relaying"))

    def test_scanner_dropped_silently(self):
        p = UdpPeer()
        self.addCleanup(p.close)
        req = make_request("REGISTER", f"sip:{DOMAIN}", p.via(), headers=[("User-Agent", "friendly-scanner")])
        p.send(req, self.srv.udp)
        self.assertTrue(p.quiet(), "a scanner got an answer")

    def test_options_keepalive_and_max_forwards(self):
        p = UdpPeer()
        self.addCleanup(p.close)
        r = p.request(self.srv.udp, make_request("OPTIONS", f"sip:{DOMAIN}", p.via()))
        self.assertEqual((r.status, r.reason), (200, "Keepalive"))
        r = p.request(self.srv.udp, make_request("MESSAGE", f"sip:bob@{DOMAIN}", p.via(), max_forwards=0))
        self.assertEqual((r.status, r.reason), (483, "Too Many Hops"))

    def test_in_dialog_request_without_route_404(self):
        p = UdpPeer()
        self.addCleanup(p.close)
        req = make_request("BYE", f"sip:bob@{DOMAIN}", p.via(), to=f"<sip:bob@{DOMAIN}>;tag=gone")
        r = p.request(self.srv.udp, req)
        self.assertEqual((r.status, r.reason), (404, "Not here"))


class WithoutDatabase(PackTests, unittest.TestCase):
    """Static users in settings.lua, location in memory."""

    @classmethod
    def setUpClass(cls):
        cls.pack = PackServer(False, {"usrloc": {"timer_interval": 1},
                                      "registrar": {"min_expires": 60, "max_expires": 3600}})
        cls.srv = cls.pack.start()

    @classmethod
    def tearDownClass(cls):
        cls.pack.close()


@unittest.skipUnless(pgserver.available(), "PostgreSQL server binaries not installed")
class WithPostgres(PackTests, unittest.TestCase):
    """The subscriber table for passwords, the location table written through (db_mode 1)."""

    @classmethod
    def setUpClass(cls):
        cls.pg = pgserver.PgServer().__enter__()
        try:
            for user, password in USERS.items():
                cls.pg.sql("INSERT INTO subscriber (username, domain, ha1, ha1b) "
                           "VALUES (:'u', :'d', :'h', :'hb')", u=user, d=DOMAIN,
                           h=md5(f"{user}:{DOMAIN}:{password}"), hb=md5(f"{user}@{DOMAIN}:{DOMAIN}:{password}"))
            cls.pack = PackServer(True, {
                "usrloc": {"db_url": cls.pg.url, "db_mode": 1, "timer_interval": 1},
                "registrar": {"min_expires": 60, "max_expires": 3600},
                "auth": {"db_url": cls.pg.url},
            })
            cls.srv = cls.pack.start()
        except BaseException:
            cls.pg.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.pack.close()
        finally:
            cls.pg.close()

    def test_bindings_written_through(self):
        p = self.registered("o'brien")
        self.assertEqual(self.pg.count("username = :'u' AND contact = :'c'", u="o'brien", c=p.contact_uri), 1)
        r = p.register(expires=0)
        self.assertEqual(contacts_of(r), {})
        self.assertEqual(self.pg.count("username = :'u'", u="o'brien"), 0)

    def test_zz_database_down_500_then_back(self):
        p = self.phone("carol")
        self.pg.stop()
        try:
            r = p.register()
            self.assertIsNotNone(r, "no answer while the database is down")
            self.assertEqual(r.status, 500, r.start)
            self.assertIsNotNone(r.get("Retry-After"))
            # auth_db answered: the pack's challenge sends nothing more
            finals = p.responses.wait(pred=lambda x: x.msg.status >= 200, count=3, timeout=0.5)
            self.assertEqual([x.msg.status for x in finals], [401, 500])
        finally:
            self.pg.start()
        deadline = time.monotonic() + 10
        while True:
            r = p.register()
            if r is not None and r.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual(r.status, 200, r.start)
        p.register(expires=0)

    def test_subscriber_table_decides_404_or_480(self):
        self.pg.sql("INSERT INTO subscriber (username, domain, ha1) VALUES ('erin', :'d', 'x')", d=DOMAIN)
        alice = self.phone("alice")
        self.assertEqual(alice.call("erin").final.status, 480)
        self.assertEqual(alice.call("frank").final.status, 404)


class SerialForkingAndFailover(unittest.TestCase):
    """settings.serial_forking and settings.failover (a voicemail server for busy or unanswered calls)."""

    @classmethod
    def setUpClass(cls):
        cls.voicemail = Phone(None, "voicemail", "udp")
        cls.pack = PackServer(False, {"registrar": {"min_expires": 60}},
                              f'\tserial_forking = true,\n\tfailover = "{LOCAL4}:{cls.voicemail.port}",\n')
        cls.srv = cls.pack.start()
        cls.voicemail.srv = cls.srv

    @classmethod
    def tearDownClass(cls):
        try:
            cls.pack.close()
        finally:
            cls.voicemail.close()

    def contact(self, user, q, answer):
        p = Phone(self.srv, user, answer=answer)
        self.addCleanup(p.close)
        r = p.register(contact=f"<{p.contact_uri}>;q={q}")
        self.assertEqual(r.status, 200, r.start)
        self.addCleanup(p.register, 0, f"<{p.contact_uri}>")
        return p

    def caller(self):
        p = Phone(self.srv, "alice")
        self.addCleanup(p.close)
        return p

    def test_highest_q_first_and_alone_when_it_answers(self):
        high = self.contact("bob", "1.0", 200)
        low = self.contact("bob", "0.5", 200)
        call = self.caller().call("bob")
        self.assertEqual(call.final.status, 200, call.final.start)
        self.assertIsNotNone(high.received("INVITE", call.invite.get("Call-ID")))
        self.assertEqual(low.incoming.select("INVITE"), [], "the lower q was tried in parallel")
        call.ack()
        self.assertEqual(call.bye().status, 200)

    def test_next_q_group_after_a_failure(self):
        high = self.contact("carol", "1.0", 480)
        low = self.contact("carol", "0.5", 200)
        call = self.caller().call("carol")
        self.assertEqual(call.final.status, 200, f"{call.final.start}\n{self.srv.log()[-3000:]}")
        self.assertIsNotNone(high.received("INVITE", call.invite.get("Call-ID")))
        self.assertIsNotNone(low.received("INVITE", call.invite.get("Call-ID")))
        call.ack()
        self.assertEqual(call.bye().status, 200)

    def test_busy_goes_to_the_failover(self):
        # the called user comes from $avp(oexten), set in the request route
        self.contact("dave", "1.0", 486)
        call = self.caller().call("dave")
        self.assertEqual(call.final.status, 200, f"{call.final.start}\n{self.srv.log()[-3000:]}")
        got = self.voicemail.received("INVITE", call.invite.get("Call-ID"))
        self.assertIsNotNone(got, "the failover did not get the call")
        self.assertEqual(got.ruri, f"sip:dave@{LOCAL4}:{self.voicemail.port}")
        call.ack()
        self.assertEqual(call.bye().status, 200)


class ShippedPack(unittest.TestCase):
    """The pack as shipped: its settings.lua, its example users; and the shipped configurations."""

    @classmethod
    def setUpClass(cls):
        out = subprocess.run(["luajit", "-e", f'local s = dofile("{PACK / "settings.lua"}") '
                              'for u, p in pairs(s.users) do print(u .. " " .. p) end'],
                             capture_output=True, text=True, check=True)
        cls.users = dict(line.split(" ", 1) for line in out.stdout.splitlines())
        cls.srv = Server(script_path=PACK / "route.lua", config={"tm": TM})
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_example_users_register_and_call(self):
        # without domains in settings.lua, the domain is the server's address (with its port)
        domain = hostport(LOCAL4, self.srv.port)
        self.assertIn("alice", self.users)
        phones = []
        for user, transport in (("alice", "udp"), ("bob", "tcp")):
            p = Phone(self.srv, user, transport, password=self.users[user], domain=domain)
            self.addCleanup(p.close)
            r = p.register()
            self.assertEqual(r.status, 200, f"{user}: {r.start}\n{self.srv.log()[-2000:]}")
            phones.append(p)
        call = phones[0].call("bob")
        self.assertEqual(call.final.status, 200, call.final.start)
        call.ack()
        self.assertEqual(call.bye().status, 200)

    def test_shipped_configurations_check(self):
        for name in ("ksrd.lua", "registrar-proxy.lua", "registrar-proxy-pg.lua"):
            with self.subTest(name):
                r = run_ksrd("-c", "-f", REPO / "conf" / name)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("lua/routes/registrar-proxy/route.lua OK", r.stdout)


if __name__ == "__main__":
    unittest.main()
