# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""
Registrar and user location against a real ksrd, and a real PostgreSQL for
db_mode 1-3 (started by pgserver.py on loopback).

Decided behaviour (see core/registrar/registrar.h): a lower CSeq for the same
Call-ID is refused with 400 "Invalid CSeq number" as Kamailio does (RFC 3261
§10.3 step 7 only says the request fails); expires below min_expires gets 423
with Min-Expires; more than max_contacts gets 403; database failures 500 with
Retry-After.
"""
import re
import time
import unittest

import pgserver
from ksrtest import Server, UdpPeer, make_request

ROUTE = """
function ksr_request_route()
  if KSR.is_REGISTER() then
    KSR.registrar.save("location", 0)
    return
  end
  if KSR.registrar.lookup("location") < 0 then
    KSR.sl.send_reply(404, "Not Found")
    return
  end
  KSR.forward()
end
"""


def contacts_of(reply):
    """{uri: expires} of a REGISTER reply's Contact headers."""
    out = {}
    for value in reply.get_all("Contact"):
        for m in re.finditer(r"<([^>]+)>([^,]*)", value):
            e = re.search(r";expires=(\d+)", m.group(2))
            out[m.group(1)] = int(e.group(1)) if e else None
    return out


class Phone:
    """A UA on its own UDP port that registers and receives requests."""

    def __init__(self, srv, user, domain="example.com"):
        self.srv, self.user, self.domain = srv, user, domain
        self.peer = UdpPeer()
        self.uri = f"sip:{user}@{self.peer.host}:{self.peer.port}"
        self.call_id = f"reg-{user}-{self.peer.port}@test"
        self.cseq = 0

    def register(self, contact=None, expires=None, headers=(), cseq=None, call_id=None, dest=None):
        self.cseq = cseq if cseq is not None else self.cseq + 1
        h = [("Contact", contact or f"<{self.uri}>")] if contact != "" else []
        if expires is not None:
            h.append(("Expires", str(expires)))
        req = make_request("REGISTER", f"sip:{self.domain}", self.peer.via(), headers=h + list(headers),
                           to=f"<sip:{self.user}@{self.domain}>", frm=f"<sip:{self.user}@{self.domain}>;tag=t1",
                           call_id=call_id or self.call_id, cseq=self.cseq)
        return self.peer.request(dest or self.srv.udp, req)

    def close(self):
        self.peer.close()


def message(srv, user, dest=None):
    """Sends a MESSAGE for user through ksrd; returns (sender, reply or None)."""
    p = UdpPeer()
    req = make_request("MESSAGE", f"sip:{user}@example.com", p.via(), body="hi",
                       headers=[("Content-Type", "text/plain")])
    p.send(req, dest or srv.udp)
    return p, req


def received_by(phone, timeout=2.0):
    m = phone.peer.recv_msg(timeout)
    return m if m and m.is_request else None


class MemoryRegistrar(unittest.TestCase):
    """db_mode 0."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(script=ROUTE, config={
            "usrloc": {"timer_interval": 1},
            "registrar": {"min_expires": 2, "max_expires": 1800, "max_contacts": 3},
        })
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def phone(self, user):
        p = Phone(self.srv, user)
        self.addCleanup(p.close)
        return p

    def test_register_lists_bindings(self):
        a = self.phone("alice")
        r = a.register(expires=600)
        self.assertEqual(r.status, 200, r.start)
        self.assertEqual(contacts_of(r), {a.uri: 600})
        self.assertRegex(r.get("Date"), r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$")
        # a second binding is listed with the first
        r = a.register(contact=f"<sip:alice@192.0.2.10:5060>;expires=300;q=0.5")
        self.assertEqual(r.status, 200, r.start)
        self.assertEqual(contacts_of(r), {a.uri: 600, "sip:alice@192.0.2.10:5060": 300})
        self.assertIn("q=0.5", r.get("Contact"))

    def test_reregister_refreshes(self):
        a = self.phone("rereg")
        self.assertEqual(a.register(expires=100).status, 200)
        r = a.register(expires=900)
        self.assertEqual(contacts_of(r), {a.uri: 900})

    def test_unregister_one_and_star(self):
        a = self.phone("unreg")
        a.register(expires=600)
        a.register(contact="<sip:unreg@192.0.2.11>", expires=600)
        r = a.register(contact="<sip:unreg@192.0.2.11>", expires=0)
        self.assertEqual(contacts_of(r), {a.uri: 600})
        r = a.register(contact="*", expires=0)
        self.assertEqual(r.status, 200, r.start)
        self.assertEqual(contacts_of(r), {})
        r = a.register(contact="")  # a query: nothing left
        self.assertEqual((r.status, contacts_of(r)), (200, {}))

    def test_star_with_expires_refused(self):
        a = self.phone("star")
        r = a.register(contact="*", expires=60)
        self.assertEqual(r.status, 400, r.start)

    def test_expires_clamped_and_too_brief(self):
        a = self.phone("clamp")
        r = a.register(expires=7200)
        self.assertEqual(contacts_of(r), {a.uri: 1800})
        r = a.register(expires=1)
        self.assertEqual(r.status, 423, r.start)
        self.assertEqual(r.get("Min-Expires"), "2")
        # the refused request changed nothing
        r = a.register(contact="")
        self.assertEqual(contacts_of(r), {a.uri: 1800})

    def test_max_contacts(self):
        a = self.phone("many")
        r = a.register(contact=", ".join(f"<sip:many@192.0.2.{i}>" for i in range(1, 4)), expires=60)
        self.assertEqual(r.status, 200, r.start)
        r = a.register(contact="<sip:many@192.0.2.99>", expires=60)
        self.assertEqual(r.status, 403, r.start)
        self.assertRegex(r.reason, "(?i)too many")
        self.assertEqual(len(contacts_of(a.register(contact=""))), 3)

    def test_invalid_contact(self):
        a = self.phone("badc")
        r = a.register(contact="<sip:badc@>", expires=60)
        self.assertEqual(r.status, 400, r.start)
        r = a.register(contact="<sip:badc@192.0.2.1>;expires=soon")
        self.assertEqual(r.status, 400, r.start)

    def test_lower_cseq_same_callid(self):
        a = self.phone("cseq")
        self.assertEqual(a.register(expires=60, cseq=10).status, 200)
        r = a.register(expires=0, cseq=9)
        self.assertEqual(r.status, 400, r.start)
        self.assertEqual(r.get("P-Registrar-Error"), "Invalid CSeq number")
        self.assertEqual(contacts_of(a.register(contact="", cseq=11)), {a.uri: 60})

    def test_lookup_forwards_message(self):
        b = self.phone("bob")
        self.assertEqual(b.register(expires=60).status, 200)
        sender, req = message(self.srv, "bob")
        self.addCleanup(sender.close)
        got = received_by(b)
        self.assertIsNotNone(got, "MESSAGE not delivered to the registered contact")
        self.assertEqual(got.method, "MESSAGE")
        self.assertEqual(got.ruri, b.uri)
        self.assertEqual(got.get("Call-ID"), req.get("Call-ID"))
        # nobody registered: 404
        r = sender.request(self.srv.udp, make_request("MESSAGE", "sip:nobody@example.com", sender.via()))
        self.assertEqual(r.status, 404)

    def test_expiry_by_timer(self):
        c = self.phone("short")
        self.assertEqual(c.register(expires=2).status, 200)
        time.sleep(3.5)
        sender, _ = message(self.srv, "short")
        self.addCleanup(sender.close)
        r = sender.recv_msg()
        self.assertEqual(r.status, 404)
        self.assertIsNone(received_by(c, 0.3))
        stats = self.srv.rpc("stats.get_statistics", "usrloc:location-expires") if self._rpc() else None
        if stats is not None:
            self.assertIn("1", str(stats))

    def _rpc(self):
        try:
            self.srv.rpc("ul.dump", "brief")
            return True
        except OSError:
            return False

    def test_sql_metacharacters_in_memory(self):
        user = "o%27brien%3B--"
        a = self.phone(user)
        self.assertEqual(a.register(expires=60).status, 200)
        sender, _ = message(self.srv, user)
        self.addCleanup(sender.close)
        self.assertIsNotNone(received_by(a))

    def test_load_10000_then_dump(self):
        if not self._rpc():
            self.skipTest("no RPC socket (rpc_start not wired in core/main.c yet)")
        p = UdpPeer()
        self.addCleanup(p.close)
        n, window = 10000, 200
        for start in range(0, n, window):
            for i in range(start, start + window):
                req = make_request("REGISTER", "sip:example.com", p.via(),
                                   headers=[("Contact", f"<sip:load{i}@192.0.2.1:5060>"), ("Expires", "600")],
                                   to=f"<sip:load{i}@example.com>", frm=f"<sip:load{i}@example.com>;tag=x")
                p.send(req, self.srv.udp)
            got = 0
            while got < window:
                m = p.recv_msg(5)
                self.assertIsNotNone(m, f"replies missing after {start + got}")
                self.assertEqual(m.status, 200, m.start)
                got += 1
        dump = self.srv.rpc("ul.dump", "brief")
        aors = [a for d in dump["Domains"] for a in d["Domain"]["AoRs"]
                if a["Info"]["AoR"].startswith("load")]
        self.assertEqual(len(aors), n)
        self.assertEqual(sum(len(a["Info"]["Contacts"]) for a in aors), n)


NAT_ROUTE = """
function ksr_request_route()
  if KSR.is_REGISTER() then
    if KSR.hdr.is_present("X-Behind-NAT") > 0 then
      KSR.setbflag(6)
    end
    KSR.registrar.save("location", 0)
    return
  end
  local rc = KSR.registrar.lookup("location")
  if rc < 0 then
    KSR.sl.send_reply(404, "Not Found " .. rc)
    return
  end
  KSR.forward()
end
"""


class PathNatOutbound(unittest.TestCase):
    """Path (RFC 3327), received for NATed contacts, outbound flows (RFC 5626)."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(script=NAT_ROUTE, config={
            "usrloc": {"nat_bflag": 6},
            "registrar": {"use_path": True, "path_mode": 2, "method_filtering": True},
        })
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def phone(self, user):
        p = Phone(self.srv, user)
        self.addCleanup(p.close)
        return p

    def test_path_becomes_route_and_first_hop(self):
        edge = self.phone("edge")  # stands for the edge proxy that added Path
        a = self.phone("pathuser")
        path = f"<sip:{edge.peer.host}:{edge.peer.port};lr>"
        r = a.register(contact="<sip:pathuser@192.0.2.50:5060>", expires=60,
                       headers=[("Path", path), ("Supported", "path")])
        self.assertEqual(r.status, 200, r.start)
        self.assertEqual(r.get("Path"), path)
        # without Supported: path, strict mode refuses (420)
        r = a.register(contact="<sip:pathuser@192.0.2.51:5060>", expires=60, headers=[("Path", path)])
        self.assertEqual(r.status, 420, r.start)
        sender, _ = message(self.srv, "pathuser")
        self.addCleanup(sender.close)
        got = received_by(edge)
        self.assertIsNotNone(got, "request not sent to the Path's first hop")
        self.assertEqual(got.ruri, "sip:pathuser@192.0.2.50:5060")
        self.assertEqual(got.get("Route"), path)

    def test_nat_received_is_used(self):
        a = self.phone("natted")
        # the Contact names an address nobody listens on; the source address is real
        r = a.register(contact="<sip:natted@10.0.0.7:5060>", expires=60, headers=[("X-Behind-NAT", "1")])
        self.assertEqual(r.status, 200, r.start)
        self.assertIn(f'received="sip:{a.peer.host}:{a.peer.port}"', r.get("Contact"))
        sender, _ = message(self.srv, "natted")
        self.addCleanup(sender.close)
        got = received_by(a)
        self.assertIsNotNone(got, "not sent to the received address")
        self.assertEqual(got.ruri, "sip:natted@10.0.0.7:5060")

    def test_outbound_flows(self):
        a = self.phone("flows")
        inst = "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"
        c1 = f'<sip:flows@192.0.2.60:5060>;+sip.instance="{inst}";reg-id=1'
        c2 = f'<sip:flows@192.0.2.60:5062>;+sip.instance="{inst}";reg-id=2'
        self.assertEqual(a.register(contact=c1, expires=60).status, 200)
        r = a.register(contact=c2, expires=60)
        self.assertEqual(len(contacts_of(r)), 2)
        self.assertIn("reg-id=1", r.get("Contact"))
        self.assertIn(f'+sip.instance="{inst}"', r.get("Contact"))
        # the same flow from a new address replaces its binding (instance + reg-id match)
        r = a.register(contact=f'<sip:flows@192.0.2.99:7000>;+sip.instance="{inst}";reg-id=1', expires=60)
        self.assertEqual(set(contacts_of(r)), {"sip:flows@192.0.2.99:7000", "sip:flows@192.0.2.60:5062"})

    def test_method_filtering(self):
        a = self.phone("picky")
        r = a.register(expires=60, headers=[("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS")])
        self.assertEqual(r.status, 200)
        sender, _ = message(self.srv, "picky")
        self.addCleanup(sender.close)
        r = sender.recv_msg()
        self.assertEqual((r.status, r.reason), (404, "Not Found -2"))


ULC_ROUTE = """
function ksr_request_route()
  if KSR.is_REGISTER() then
    KSR.registrar.save("location", 0)
    return
  end
  local rc = KSR.registrar.reg_fetch_contacts("location", "sip:ulc@example.com", "p")
  KSR.sl.send_reply(200, "rc=" .. rc .. " n=" .. tostring(KSR.registrar.ulc_rget("p", "count"))
    .. " addr=" .. tostring(KSR.registrar.ulc_cget("p", "addr", 0))
    .. " reg=" .. KSR.registrar.registered_uri("location", "sip:ulc@example.com")
    .. " none=" .. KSR.registrar.registered_uri("location", "sip:nobody@example.com"))
end
"""


class FetchContacts(unittest.TestCase):
    """reg_fetch_contacts + ulc_rget/ulc_cget ($ulc), registered_uri."""

    def test_fetch(self):
        with Server(script=ULC_ROUTE) as srv:
            a = Phone(srv, "ulc")
            self.addCleanup(a.close)
            self.assertEqual(a.register(expires=60).status, 200)
            p = UdpPeer()
            self.addCleanup(p.close)
            r = p.request(srv.udp, make_request("OPTIONS", srv.uri(), p.via()))
            self.assertEqual(r.reason, f"rc=1 n=1 addr={a.uri} reg=1 none=-1")


@unittest.skipUnless(pgserver.available(), "PostgreSQL server binaries not installed")
class DatabaseRegistrar(unittest.TestCase):
    """db_mode 1, 2, 3 on a real PostgreSQL."""

    @classmethod
    def setUpClass(cls):
        cls.pg = pgserver.PgServer().init()

    @classmethod
    def tearDownClass(cls):
        cls.pg.close()

    def setUp(self):
        self.pg.sql("DELETE FROM location")

    def server(self, db_mode, **usrloc):
        srv = Server(script=ROUTE, config={
            "usrloc": {"db_url": self.pg.url, "db_mode": db_mode, "timer_interval": 1, "db_timeout": 1000,
                       **usrloc},
            "registrar": {"min_expires": 1},
        })
        srv.start()
        self.addCleanup(srv.cleanup)
        return srv

    def phone(self, srv, user):
        p = Phone(srv, user)
        self.addCleanup(p.close)
        return p

    def restart_keeps_bindings(self, db_mode):
        srv = self.server(db_mode)
        users = [self.phone(srv, f"m{db_mode}u{i}") for i in range(5)]
        for u in users:
            self.assertEqual(u.register(expires=600).status, 200)
        users[0].register(contact="<sip:second@192.0.2.20>", expires=600)
        srv.stop()
        self.assertEqual(self.pg.count(), 6, "rows after a clean stop")
        srv.start()
        for u in users:
            r = u.register(contact="", dest=srv.udp)
            self.assertIn(u.uri, contacts_of(r), f"{u.user} lost in restart (db_mode {db_mode})")
        self.assertEqual(len(contacts_of(users[0].register(contact=""))), 2)
        sender, _ = message(srv, users[3].user)
        self.addCleanup(sender.close)
        self.assertIsNotNone(received_by(users[3]))
        srv.stop()

    def test_restart_db_mode_1(self):
        self.restart_keeps_bindings(1)

    def test_restart_db_mode_2(self):
        self.restart_keeps_bindings(2)

    def test_write_through_rows(self):
        srv = self.server(1)
        a = self.phone(srv, "wt")
        a.register(expires=600)
        self.assertEqual(self.pg.count("username = 'wt'"), 1)
        a.register(expires=0)
        self.assertEqual(self.pg.count("username = 'wt'"), 0)
        srv.stop()

    def test_sql_metacharacters(self):
        srv = self.server(1)
        user = "o%27brien%3B--%20drop"   # o'brien;-- drop once unescaped
        a = self.phone(srv, user)
        self.assertEqual(a.register(expires=600).status, 200)
        self.assertEqual(self.pg.count("username = :'u'", u="o'brien;-- drop"), 1)
        self.assertEqual(self.pg.count(), 1)
        sender, _ = message(srv, user)
        self.addCleanup(sender.close)
        self.assertIsNotNone(received_by(a), "the stored AOR is not matched literally")
        srv.stop()

    def test_two_nodes_share_db_mode_3(self):
        a_node, b_node = self.server(3, server_id=1), self.server(3, server_id=2)
        alice = self.phone(a_node, "alice3")
        bob = self.phone(b_node, "bob3")
        self.assertEqual(alice.register(expires=600).status, 200)
        self.assertEqual(bob.register(expires=600).status, 200)
        # registered on A, reached through B, and the other way round
        s1, _ = message(b_node, "alice3")
        self.addCleanup(s1.close)
        self.assertIsNotNone(received_by(alice), "alice (on A) not reached through B")
        s2, _ = message(a_node, "bob3")
        self.addCleanup(s2.close)
        self.assertIsNotNone(received_by(bob), "bob (on B) not reached through A")
        # several timer runs later, neither node has removed the other's contacts
        time.sleep(2.5)
        self.assertEqual(self.pg.count(), 2)
        self.assertIn(alice.uri, contacts_of(alice.register(contact="", dest=b_node.udp)))
        a_node.stop()
        b_node.stop()

    def test_database_outage(self):
        srv = self.server(1)
        a = self.phone(srv, "outage")
        self.assertEqual(a.register(expires=600).status, 200)
        self.pg.stop()
        try:
            t0 = time.monotonic()
            r = a.register(contact="<sip:outage@192.0.2.30>", expires=600)
            self.assertEqual(r.status, 500, r.start)
            self.assertTrue(r.has("Retry-After"))
            self.assertLess(time.monotonic() - t0, 2.5, "the worker waited too long on a dead database")
            # lookups keep working from memory, the server keeps serving
            sender, _ = message(srv, "outage")
            self.addCleanup(sender.close)
            self.assertIsNotNone(received_by(a))
            self.assertTrue(srv.alive())
        finally:
            self.pg.start()
        # back: what was stored is intact and writes work again
        self.assertEqual(self.pg.count("username = 'outage'"), 1)
        deadline = time.monotonic() + 12
        while True:
            r = a.register(contact="<sip:outage@192.0.2.30>", expires=600)
            if r.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual(r.status, 200, r.start)
        self.assertEqual(self.pg.count("username = 'outage'"), 2)
        self.assertRegex(srv.log(), r"database unreachable")
        self.assertEqual(len(re.findall(r"database unreachable", srv.log())), 1, "an outage is logged once")
        srv.stop()

    def test_database_outage_db_mode_3(self):
        srv = self.server(3)
        a = self.phone(srv, "out3")
        self.assertEqual(a.register(expires=600).status, 200)
        self.pg.stop()
        try:
            r = a.register(expires=600)
            self.assertEqual(r.status, 500, r.start)
            self.assertTrue(r.has("Retry-After"))
            sender, _ = message(srv, "out3")
            self.addCleanup(sender.close)
            r = sender.recv_msg()
            self.assertIsNotNone(r)
            self.assertEqual(r.status, 404)   # lookup -3: the route answers 404
        finally:
            self.pg.start()
        self.assertEqual(self.pg.count("username = 'out3'"), 1)
        srv.stop()


if __name__ == "__main__":
    unittest.main()
