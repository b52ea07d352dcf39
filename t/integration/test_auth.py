# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""
Digest authentication end to end: a route that checks credentials with
KSR.auth.pv_auth_check (password or HA1 named by a pseudo-variable) or
KSR.auth_db.auth_check (a real PostgreSQL started here) and challenges with
KSR.auth.auth_challenge, driven by a digest client written with hashlib.
"""
import hashlib
import os
import re
import time
import unittest
import uuid

from ksrtest import LOCAL4, Server, TcpPeer, Uas, UdpPeer, make_request

import pgserver

REALM = "example.com"
PASSWORDS = {"alice": "Wonderland-27", "bob": "Builder-99"}
CAROL_HA1 = hashlib.md5(b"carol:example.com:Sea-Shell-3").hexdigest()

ROUTE = r'''
local PASSWORDS = { alice = "Wonderland-27", bob = "Builder-99" }
local HA1 = { carol = "%(carol_ha1)s" }

local function debug_rc(rc)
	if KSR.hdr.is_present("X-Debug") > 0 then
		KSR.hdr.append_to_reply("X-Auth-RC: " .. rc .. "\r\n")
	end
end

local function relay_or_answer()
	local target = KSR.hdr.get("X-Target")
	if target then
		KSR.auth.consume_credentials()
		KSR.forward_uri(target)
		return
	end
	KSR.sl.send_reply(200, "OK")
end

local function pv_route(realm)
	-- the credentials of the user who claims to be $au, named by a pseudo-variable
	local au = KSR.pv.get("$au")
	local flags = 0
	KSR.pv.unset("$avp(pw)")
	if au and PASSWORDS[au] then KSR.pv.sets("$avp(pw)", PASSWORDS[au]) end
	if au and HA1[au] then
		KSR.pv.sets("$avp(pw)", HA1[au])
		flags = 1
	end
	if not au and KSR.auth.has_credentials(realm) < 0 then
		debug_rc(-5)
		KSR.auth.auth_challenge(realm, 1)
		return
	end
	local rc = KSR.auth.pv_auth_check(realm, "$avp(pw)", flags, 1)
	debug_rc(rc)
	if rc < 0 then
		KSR.auth.auth_challenge(realm, 1)
		return
	end
	relay_or_answer()
end

local function db_route(realm)
	local rc = KSR.auth_db.auth_check(realm, "subscriber", 1)
	debug_rc(rc)
	if rc < 0 then
		KSR.auth.auth_challenge(realm, 1)
		return
	end
	local loaded = KSR.pv.get("$avp(rpid)")
	if loaded then KSR.hdr.append_to_reply("X-Rpid: " .. loaded .. "\r\n") end
	relay_or_answer()
end

function ksr_request_route()
	if KSR.is_OPTIONS() and KSR.pv.get("$rU") == nil then
		KSR.sl.send_reply(200, "OK")
		return
	end
	local subs = KSR.hdr.get("X-Subs")
	if subs then
		-- is_subscriber(uri, table, flags) with all three from the request
		local rc = KSR.auth_db.is_subscriber(subs, KSR.hdr.get("X-Table") or "subscriber",
			tonumber(KSR.hdr.get("X-Flags") or "0"))
		KSR.hdr.append_to_reply("X-Subs-RC: " .. rc .. "\r\n")
		local loaded = KSR.pv.get("$avp(rpid)")
		if loaded then KSR.hdr.append_to_reply("X-Rpid: " .. loaded .. "\r\n") end
		KSR.sl.send_reply(200, "OK")
		return
	end
	local realm = KSR.is_REGISTER() and KSR.pv.get("$td") or KSR.pv.get("$fd")
	if KSR.hdr.is_present("X-Db") > 0 then
		db_route(realm)
	else
		pv_route(realm)
	end
end
''' % {"carol_ha1": CAROL_HA1}


# ---------------------------------------------------------------- a digest client

def parse_challenge(value):
    """'Digest realm="a", nonce="b", stale=true' -> {'realm': 'a', 'nonce': 'b', 'stale': 'true'}."""
    scheme, _, rest = value.strip().partition(" ")
    assert scheme.lower() == "digest", value
    out = {}
    for m in re.finditer(r'\s*([A-Za-z0-9_-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^,\s]+)\s*(?:,|$)', rest):
        out[m.group(1).lower()] = m.group(3) if m.group(3) is not None else m.group(2)
    return out


HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256, "MD5-SESS": hashlib.md5,
          "SHA-256-SESS": hashlib.sha256}


def digest(algorithm, *parts):
    return HASHES[algorithm.upper()](":".join(parts).encode()).hexdigest()


def credentials(ch, user, password, method, uri, nc=1, cnonce=None, qop="auth", algorithm=None,
                realm=None, response=None, nonce=None):
    """An Authorization value answering challenge ch (RFC 7616 §3.4)."""
    alg = algorithm or ch.get("algorithm", "MD5")
    realm = realm or ch["realm"]
    nonce = nonce or ch["nonce"]
    cnonce = cnonce or uuid.uuid4().hex[:12]
    ncs = f"{nc:08x}"
    ha1 = digest(alg, user, realm, password)
    if alg.upper().endswith("-SESS"):
        ha1 = digest(alg, ha1, nonce, cnonce)
    ha2 = digest(alg, method, uri)
    if response is None:
        response = digest(alg, ha1, nonce, ncs, cnonce, qop, ha2) if qop else digest(alg, ha1, nonce, ha2)
    v = (f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
         f'response="{response}", algorithm={alg}')
    if qop:
        v += f', qop={qop}, nc={ncs}, cnonce="{cnonce}"'
    return v


class Phone:
    """A UA over UDP or TCP that registers (or sends MESSAGE) and answers challenges."""

    def __init__(self, srv, transport="udp", user="alice", domain=REALM):
        self.srv, self.user, self.domain = srv, user, domain
        self.peer = UdpPeer() if transport == "udp" else TcpPeer(srv.tcp)
        self.call_id = uuid.uuid4().hex + "@ksrtest"
        self.cseq = 0

    def close(self):
        self.peer.close()

    def send(self, method="REGISTER", auth=None, headers=(), to_user=None, ruri=None):
        self.cseq += 1
        aor = f"sip:{self.user}@{self.domain}"
        hdrs = list(headers)
        if auth:
            hdrs.append(("Authorization" if method == "REGISTER" else "Proxy-Authorization", auth))
        if method == "REGISTER":
            hdrs.append(("Contact", f"<sip:{self.user}@{self.peer.host}:{self.peer.port}>"))
        ruri = ruri or (f"sip:{self.domain}" if method == "REGISTER" else f"sip:bob@{self.domain}")
        to = f"<sip:{to_user or self.user}@{self.domain}>" if method == "REGISTER" else f"<{ruri}>"
        req = make_request(method, ruri, self.peer.via(), call_id=self.call_id, cseq=self.cseq,
                           frm=f"<{aor}>;tag={uuid.uuid4().hex[:8]}", to=to, headers=hdrs)
        self.last = req
        if isinstance(self.peer, TcpPeer):
            return self.peer.request(req)
        return self.peer.request(self.srv.udp, req)

    @staticmethod
    def challenges(reply):
        name = "WWW-Authenticate" if reply.status == 401 else "Proxy-Authenticate"
        return [parse_challenge(v) for v in reply.get_all(name)]


def challenge_of(testcase, reply, status=401):
    testcase.assertIsNotNone(reply, "no reply")
    testcase.assertEqual(reply.status, status, reply.start)
    chs = Phone.challenges(reply)
    testcase.assertTrue(chs, f"no challenge in {reply.start}")
    return chs[0]


class AuthPvTest(unittest.TestCase):
    """pv_auth_check with the password (or HA1) in a pseudo-variable."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(ROUTE, config={"auth": {"secret": "integration-test-secret-42",
                                                   "algorithm": "SHA-256,MD5"}})
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def register(self, transport, user="alice", password=None, algorithm="MD5"):
        ph = Phone(self.srv, transport, user)
        try:
            r = ph.send()
            ch = self.pick(r, algorithm)
            self.assertEqual(ch["realm"], REALM)
            self.assertEqual(ch.get("qop"), "auth")
            r = ph.send(auth=credentials(ch, user, password or PASSWORDS[user], "REGISTER", f"sip:{REALM}",
                                         algorithm=algorithm))
            self.assertIsNotNone(r)
            self.assertEqual(r.status, 200, r.start)
        finally:
            ph.close()

    def pick(self, reply, algorithm):
        chs = Phone.challenges(reply)
        self.assertEqual(reply.status, 401, reply.start)
        found = [c for c in chs if c.get("algorithm", "MD5") == algorithm]
        self.assertTrue(found, f"no {algorithm} challenge among {chs}")
        return found[0]

    def test_register_udp(self):
        self.register("udp")

    def test_register_tcp(self):
        self.register("tcp")

    def test_sha256_offered_first_and_used(self):
        ph = Phone(self.srv)
        try:
            r = ph.send()
            chs = Phone.challenges(r)
            # RFC 8760: the preferred algorithm first, MD5 for older phones, one nonce
            self.assertEqual([c["algorithm"] for c in chs], ["SHA-256", "MD5"])
            self.assertEqual(chs[0]["nonce"], chs[1]["nonce"])
        finally:
            ph.close()
        self.register("udp", algorithm="SHA-256")
        self.register("tcp", algorithm="SHA-256")

    def test_ha1_from_pv(self):
        self.register("udp", user="carol", password="Sea-Shell-3")

    def test_proxy_challenge_for_message(self):
        ph = Phone(self.srv)
        try:
            r = ph.send("MESSAGE")
            ch = challenge_of(self, r, 407)
            r = ph.send("MESSAGE", auth=credentials(ch, "alice", PASSWORDS["alice"], "MESSAGE", ph.last.ruri))
            self.assertEqual(r.status, 200, r.start)
        finally:
            ph.close()

    def test_consumed_credentials_not_relayed(self):
        with Uas("udp") as uas:
            ph = Phone(self.srv)
            try:
                r = ph.send("MESSAGE")
                ch = challenge_of(self, r, 407)
                target = ("X-Target", f"sip:bob@{LOCAL4}:{uas.port}")
                ph.send("MESSAGE", auth=credentials(ch, "alice", PASSWORDS["alice"], "MESSAGE", ph.last.ruri),
                        headers=[target])
                got = uas.wait_request()
                self.assertIsNotNone(got, "not relayed")
                self.assertFalse(got.msg.has("Proxy-Authorization"), "credentials leaked downstream")
            finally:
                ph.close()

    def test_wrong_password_401_again_nothing_leaked(self):
        ph = Phone(self.srv)
        try:
            first = ph.send()
            ch = challenge_of(self, first)
            again = ph.send(auth=credentials(ch, "alice", "not-the-password", "REGISTER", f"sip:{REALM}"))
            ch2 = challenge_of(self, again)
            # the same answer as to a request without credentials: status, reason, headers
            self.assertEqual(again.start, first.start)
            names = lambda m: sorted(n.lower() for n, _ in m.headers)
            self.assertEqual(names(again), names(first))
            self.assertNotEqual(ch2["nonce"], ch["nonce"])
            self.assertNotIn("stale", ch2)
            # and with the debug header the script learns -2
            r = ph.send(auth=credentials(ch2, "alice", "wrong", "REGISTER", f"sip:{REALM}"),
                        headers=[("X-Debug", "1")])
            self.assertEqual(r.get("X-Auth-RC"), "-2")
        finally:
            ph.close()

    def test_failures_counted_per_source(self):
        def failures():
            return {r["source"]: r["failures"] for r in self.srv.rpc("auth.failures")}.get(LOCAL4, 0)

        before, failed_before = failures(), self.srv.stats().get("auth.failed", 0)
        ph = Phone(self.srv)
        try:
            ch = challenge_of(self, ph.send())
            for i in range(3):
                r = ph.send(auth=credentials(ch, "alice", f"guess-{i}", "REGISTER", f"sip:{REALM}"))
                ch = challenge_of(self, r)
        finally:
            ph.close()
        self.assertGreaterEqual(failures() - before, 3)
        self.assertGreaterEqual(self.srv.stats().get("auth.failed", 0) - failed_before, 3)
        self.assertGreaterEqual(self.srv.stats().get("auth.challenges", 0), 4)

    def test_replayed_nonce_count_refused(self):
        ph = Phone(self.srv)
        try:
            ch = challenge_of(self, ph.send())
            good = credentials(ch, "alice", PASSWORDS["alice"], "REGISTER", f"sip:{REALM}", nc=1,
                               cnonce="fixedcnonce")
            self.assertEqual(ph.send(auth=good).status, 200)
            # the very same credentials again, in a new transaction
            r = ph.send(auth=good, headers=[("X-Debug", "1")])
            self.assertEqual(r.status, 401, r.start)
            self.assertEqual(r.get("X-Auth-RC"), "-6")
            # a higher nc on the same nonce is the normal way to reuse it
            nxt = credentials(ch, "alice", PASSWORDS["alice"], "REGISTER", f"sip:{REALM}", nc=2)
            self.assertEqual(ph.send(auth=nxt).status, 200)
            # and a lower one after that is a replay again
            r = ph.send(auth=good, headers=[("X-Debug", "1")])
            self.assertEqual(r.get("X-Auth-RC"), "-6")
        finally:
            ph.close()

    def test_nonce_for_another_realm(self):
        ph = Phone(self.srv, domain="example.org")
        other = Phone(self.srv)
        try:
            ch_org = challenge_of(self, ph.send())
            self.assertEqual(ch_org["realm"], "example.org")
            # example.com credentials carrying the nonce issued for example.org
            r = other.send(auth=credentials(ch_org, "alice", PASSWORDS["alice"], "REGISTER", f"sip:{REALM}",
                                            realm=REALM), headers=[("X-Debug", "1")])
            ch = challenge_of(self, r)
            self.assertEqual(r.get("X-Auth-RC"), "-1")
            self.assertEqual(ch["realm"], REALM)
            self.assertNotIn("stale", ch)
        finally:
            ph.close()
            other.close()

    def test_forged_nonce(self):
        ph = Phone(self.srv)
        try:
            ch = challenge_of(self, ph.send())
            n = ch["nonce"]
            forged = dict(ch, nonce=n[:10] + ("A" if n[10] != "A" else "B") + n[11:])
            r = ph.send(auth=credentials(forged, "alice", PASSWORDS["alice"], "REGISTER", f"sip:{REALM}"),
                        headers=[("X-Debug", "1")])
            self.assertEqual(r.status, 401)
            self.assertEqual(r.get("X-Auth-RC"), "-1")
        finally:
            ph.close()

    def test_user_mismatch(self):
        ph = Phone(self.srv)
        try:
            ch = challenge_of(self, ph.send(to_user="bob"))
            # alice's good credentials registering bob's AOR
            r = ph.send(auth=credentials(ch, "alice", PASSWORDS["alice"], "REGISTER", f"sip:{REALM}"),
                        to_user="bob", headers=[("X-Debug", "1")])
            self.assertEqual(r.status, 401, r.start)
            self.assertEqual(r.get("X-Auth-RC"), "-8")
        finally:
            ph.close()

    def test_malformed_authorization_400(self):
        bad = [
            'Digest username="alice" realm="example.com"',
            'Digest username="alice", realm="example.com", uri="sip:example.com"',
            'Digest username="alice", realm="example.com", nonce="x", uri="sip:example.com", '
            'response="0123", qop=auth, nc=00000001, cnonce="c"',
            'Digest username="alice", realm="example.com", nonce="x", uri="sip:example.com", '
            'response="0123456789abcdef0123456789abcdef", qop=auth, cnonce="c"',
            'Digest username="alice", realm="example.com", nonce="x", uri="sip:example.com", '
            'response="0123456789abcdef0123456789abcdef", qop=auth, nc=xyz, cnonce="c"',
        ]
        for value in bad:
            ph = Phone(self.srv)
            try:
                r = ph.send(auth=value)
                self.assertIsNotNone(r, value)
                self.assertEqual(r.status, 400, f"{value}: {r.start}")
                self.assertFalse(r.has("WWW-Authenticate"))
                # one final reply only: the script's challenge after -1 is not sent
                self.assertTrue(ph.peer.quiet(0.3), f"a second reply to {value}")
            finally:
                ph.close()
        # over TCP too
        ph = Phone(self.srv, "tcp")
        try:
            r = ph.send(auth=bad[0])
            self.assertEqual(r.status, 400, r.start)
        finally:
            ph.close()
        self.assertTrue(self.srv.alive())

    def test_other_scheme_is_challenged(self):
        ph = Phone(self.srv)
        try:
            r = ph.send(auth="Basic YWxpY2U6V29uZGVybGFuZC0yNw==")
            challenge_of(self, r)
        finally:
            ph.close()


class AuthStaleTest(unittest.TestCase):
    """A nonce that expired gets stale=true, and the phone's retry with the new one passes."""

    def test_expired_nonce_is_stale(self):
        with Server(ROUTE, config={"auth": {"nonce_expire": 1}}) as srv:
            ph = Phone(srv)
            try:
                ch = challenge_of(self, ph.send())
                time.sleep(2.1)
                r = ph.send(auth=credentials(ch, "alice", PASSWORDS["alice"], "REGISTER", f"sip:{REALM}"),
                            headers=[("X-Debug", "1")])
                ch2 = challenge_of(self, r)
                self.assertEqual(r.get("X-Auth-RC"), "-4")
                self.assertEqual(ch2.get("stale"), "true")
                r = ph.send(auth=credentials(ch2, "alice", PASSWORDS["alice"], "REGISTER", f"sip:{REALM}"))
                self.assertEqual(r.status, 200, r.start)
            finally:
                ph.close()

    def test_nonce_from_before_a_restart(self):
        # random secret: a nonce of the previous process is not accepted, just re-challenged
        with Server(ROUTE) as srv:
            ph = Phone(srv)
            try:
                ch = challenge_of(self, ph.send())
            finally:
                ph.close()
        with Server(ROUTE) as srv2:
            ph = Phone(srv2)
            try:
                r = ph.send(auth=credentials(ch, "alice", PASSWORDS["alice"], "REGISTER", f"sip:{REALM}"))
                challenge_of(self, r)
            finally:
                ph.close()


@unittest.skipUnless(pgserver.available(), "PostgreSQL binaries not installed")
class AuthDbTest(unittest.TestCase):
    """auth_db.auth_check against the subscriber table of a real PostgreSQL."""

    # quote, semicolon, comment and a LIKE wildcard, all legal in a SIP URI user part
    SQL_USER = "o'hara';DELETE/**/FROM/**/subscriber;--"

    @classmethod
    def setUpClass(cls):
        cls.pg = pgserver.PgServer().__enter__()
        ha1 = hashlib.md5(b"dave:example.com:Hash-Only-5").hexdigest()
        cls.pg.sql("INSERT INTO subscriber (username, domain, password) VALUES ('erin', 'example.com', 'Plain-Text-4')")
        cls.pg.sql("INSERT INTO subscriber (username, domain, password, ha1) VALUES ('dave', 'example.com', '', :'h')",
                   h=ha1)
        cls.pg.sql("INSERT INTO subscriber (username, domain, password) VALUES (:'u', 'example.com', 'Quote-6')",
                   u=cls.SQL_USER)
        cls.plain = Server(ROUTE, config={"auth": {"db_url": cls.pg.url, "calculate_ha1": True,
                                                     "password_column": "password", "db_timeout": 1000,
                                                     "load_credentials": "$avp(rpid)=domain"}})
        cls.plain.start()
        cls.hashed = Server(ROUTE, config={"auth": {"db_url": cls.pg.url, "db_timeout": 1000}})
        cls.hashed.start()

    @classmethod
    def tearDownClass(cls):
        for s in (cls.plain, cls.hashed):
            try:
                s.stop()
            finally:
                s.cleanup()
        cls.pg.close()

    def roundtrip(self, srv, user, password, transport="udp", expect=200):
        ph = Phone(srv, transport, user)
        try:
            ch = challenge_of(self, ph.send(headers=[("X-Db", "1")]))
            r = ph.send(auth=credentials(ch, user, password, "REGISTER", f"sip:{REALM}"),
                        headers=[("X-Db", "1"), ("X-Debug", "1")])
            self.assertIsNotNone(r)
            self.assertEqual(r.status, expect, f"{r.start} rc={r.get('X-Auth-RC')}")
            return r
        finally:
            ph.close()

    def test_plain_password_column(self):
        r = self.roundtrip(self.plain, "erin", "Plain-Text-4")
        self.assertEqual(r.get("X-Rpid"), "example.com")  # load_credentials
        self.roundtrip(self.plain, "erin", "Plain-Text-4", "tcp")
        r = self.roundtrip(self.plain, "erin", "wrong", expect=401)
        self.assertEqual(r.get("X-Auth-RC"), "-2")

    def test_ha1_column(self):
        self.roundtrip(self.hashed, "dave", "Hash-Only-5")
        r = self.roundtrip(self.hashed, "dave", "Hash-Only-6", expect=401)
        self.assertEqual(r.get("X-Auth-RC"), "-2")

    def test_unknown_user(self):
        r = self.roundtrip(self.plain, "mallory", "anything", expect=401)
        self.assertEqual(r.get("X-Auth-RC"), "-3")

    def test_sql_metacharacters_matched_literally(self):
        self.roundtrip(self.plain, self.SQL_USER, "Quote-6")
        # a prefix or a LIKE pattern of it is not the same user
        r = self.roundtrip(self.plain, "o'hara", "Quote-6", expect=401)
        self.assertEqual(r.get("X-Auth-RC"), "-3")
        r = self.roundtrip(self.plain, "o_hara';DELETE/**/FROM/**/subscriber;--", "Quote-6", expect=401)
        self.assertEqual(r.get("X-Auth-RC"), "-3")
        self.assertEqual(self.pg.sql("SELECT count(*) FROM subscriber").strip(), "3")

    def is_subscriber(self, uri, flags, table="subscriber"):
        with UdpPeer() as p:
            req = make_request("OPTIONS", f"sip:probe@{REALM}", p.via(),
                               headers=[("X-Subs", uri), ("X-Flags", str(flags)), ("X-Table", table)])
            r = p.request(self.plain.udp, req)
            self.assertIsNotNone(r)
            return r.get("X-Subs-RC"), r.get("X-Rpid")

    def test_is_subscriber(self):
        self.assertEqual(self.is_subscriber(f"sip:erin@{REALM}", 1), ("1", REALM))  # with load_credentials
        self.assertEqual(self.is_subscriber(f"sip:erin@{REALM}", 3), ("1", None))   # flag 2: existence only
        self.assertEqual(self.is_subscriber("sip:erin@example.org", 1), ("-2", None))  # other domain
        self.assertEqual(self.is_subscriber("sip:erin@example.org", 0), ("1", REALM))  # domain ignored
        self.assertEqual(self.is_subscriber(f"sip:{self.SQL_USER}@{REALM}", 1)[0], "1")
        self.assertEqual(self.is_subscriber(f"sip:mallory@{REALM}", 1), ("-2", None))
        self.assertEqual(self.is_subscriber("not a uri", 1), ("-1", None))
        # a table name is SQL text: anything but an identifier is refused, nothing runs
        self.assertEqual(self.is_subscriber(f"sip:erin@{REALM}", 1, "subscriber;DELETE FROM subscriber")[0], "-1")
        self.assertEqual(self.is_subscriber(f"sip:erin@{REALM}", 1, "nosuchtable")[0], "-1")
        self.assertEqual(self.pg.sql("SELECT count(*) FROM subscriber").strip(), "3")

    def test_zz_database_down_500_then_back(self):
        ph = Phone(self.plain)
        try:
            ch = challenge_of(self, ph.send(headers=[("X-Db", "1")]))
            self.pg.stop()
            try:
                t0 = time.monotonic()
                r = ph.send(auth=credentials(ch, "erin", "Plain-Text-4", "REGISTER", f"sip:{REALM}"),
                            headers=[("X-Db", "1")])
                self.assertIsNotNone(r, "no reply while the database is down")
                self.assertEqual(r.status, 500, r.start)
                self.assertTrue(r.has("Retry-After"))
                self.assertLess(time.monotonic() - t0, 2.0)
                self.assertTrue(ph.peer.quiet(0.3), "a second reply after the 500")
                self.assertIsNotNone(self.plain.wait_log(r"auth_db: lookup of a subscriber .* failed"),
                                     self.plain.log()[-2000:])
                self.assertTrue(self.plain.alive())
            finally:
                self.pg.start()
            # back: a fresh attempt passes (the connection is reopened after the back-off)
            deadline = time.monotonic() + 15
            while True:
                try:
                    self.roundtrip(self.plain, "erin", "Plain-Text-4")
                    break
                except AssertionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
        finally:
            ph.close()


if __name__ == "__main__":
    unittest.main()
