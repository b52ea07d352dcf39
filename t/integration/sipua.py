# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""
Call-flow peers for the transaction and record-routing tests: a scriptable UAS
and a UAC that both implement enough of RFC 3261 (§8, §12, §13, §17) to make
real calls through ksrd over UDP or TCP on loopback.

    uas = ScriptedUas("udp", plan=ring_then(200, after_ms=50))
    uac = Uac("udp", srv.udp)
    call = uac.invite(f"sip:bob@127.0.0.1", headers=[("X-Target", uas.uri)])
    final = call.wait_final()
    call.ack()
    bye_reply = call.bye()

The UAS answers an INVITE with a programmable sequence of steps (`plan`):
    (delay_ms, code)                 send code (reason from REASONS) delay_ms after the previous step
    (delay_ms, code, reason)
    (delay_ms, code, reason, [(name, value), ...])   with extra headers
    ("repeat", interval_ms)          resend the last provisional every interval_ms, forever
An empty plan never answers. A plan may also be a callable(request) -> list.
CANCEL is answered 200 and the pending INVITE 487. Every request received
(retransmissions included) is recorded.

Both peers retransmit over UDP (Timer A/E for requests; 2xx until the ACK for
the UAS, non-2xx until the ACK as Timer G) with their own short T1, and both
may drop a share of what they send and receive (Loss, deterministic seed) so
that the proxy's retransmissions get exercised. TCP is never lossy.
Every wait is bounded.
"""
import random
import re
import socket
import threading
import time

from ksrtest import (LOCAL4, SipMessage, frame_stream, hostport, make_request, new_branch, parse,
                     split_commas, unique)

T1 = 0.1            # the peers' T1 (s): short, the tests are bounded in time
T2 = 0.8
WAIT = 5.0          # the usual bound on a wait here

REASONS = {100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
           183: "Session Progress", 200: "OK", 202: "Accepted", 302: "Moved Temporarily",
           401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 407: "Proxy Authentication Required",
           408: "Request Timeout", 480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
           486: "Busy Here", 487: "Request Terminated", 500: "Server Internal Error",
           503: "Service Unavailable", 600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere"}


# ---------------------------------------------------------------- helpers

def ring_then(code, after_ms=0, reason=None, headers=()):
    """The usual plan: 180 at once, then `code` after_ms later."""
    return [(0, 180), (after_ms, code, reason or REASONS.get(code, "Whatever"), list(headers))]


def answer(code, after_ms=0, reason=None, headers=()):
    """A plan of one final reply."""
    return [(after_ms, code, reason or REASONS.get(code, "Whatever"), list(headers))]


RING_FOREVER = [(0, 180), ("repeat", 1000)]
NEVER = []


def uri_params(uri):
    """Lower-case parameter names -> values of a SIP URI (inside <> if any)."""
    u = uri.strip()
    if "<" in u:
        u = u[u.index("<") + 1:u.index(">")]
    out = {}
    for p in u.split(";")[1:]:
        name, eq, val = p.partition("=")
        out[name.strip().lower()] = val.strip() if eq else None
    return out


def uri_of(value):
    """The URI of a name-addr or addr-spec header value."""
    v = value.strip()
    if "<" in v:
        return v[v.index("<") + 1:v.index(">")]
    return v.split(";")[0].strip()


def uri_dest(uri):
    """(transport, (host, port)) a SIP URI points at (no DNS: numeric hosts only)."""
    u = uri_of(uri) if "<" in uri else uri.strip()
    m = re.match(r"sips?:(?:[^@;]*@)?(\[[^\]]+\]|[^:;?]+)(?::(\d+))?", u, re.I)
    if not m:
        raise ValueError(f"cannot route to {uri!r}")
    host = m.group(1).strip("[]")
    port = int(m.group(2)) if m.group(2) else 5060
    transport = (uri_params(u).get("transport") or "udp").lower()
    return transport, (host, port)


def route_values(msg, name):
    """Every element of the Route or Record-Route headers of msg, in order."""
    out = []
    for v in msg.get_all(name):
        out.extend(p.strip() for p in split_commas(v) if p.strip())
    return out


def cseq_of(msg):
    num, _, method = (msg.get("CSeq") or "0 X").partition(" ")
    return int(num), method.strip().upper()


class Loss:
    """Drops a share of packets, deterministically for a given seed."""

    def __init__(self, rate=0.0, seed=1):
        self.rate = rate
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.dropped_in = self.dropped_out = 0
        self.passed_in = self.passed_out = 0

    def drop(self, outgoing):
        if self.rate <= 0:
            return False
        with self.lock:
            d = self.rng.random() < self.rate
            if outgoing:
                self.dropped_out += d
                self.passed_out += not d
            else:
                self.dropped_in += d
                self.passed_in += not d
        return d


class Received:
    """A message as received: parsed, raw bytes, source address, connection (TCP), time."""

    def __init__(self, msg, raw, src, conn):
        self.msg, self.raw, self.src, self.conn = msg, raw, src, conn
        self.at = time.monotonic()

    def __repr__(self):
        return f"<Received {self.msg.start!r} from {self.src}>"


# ---------------------------------------------------------------- transport

class Endpoint:
    """
    One UDP socket, or TCP (a listening socket for a UAS; one connection to
    `connect` for a UAC), with reader threads calling self.on_message(rec).
    New TCP connections to other addresses are opened on demand and read too.
    """

    def __init__(self, transport="udp", host=LOCAL4, loss=None, connect=None):
        self.transport = transport.lower()
        self.loss = loss or Loss(0)
        self.host = host
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = []
        self._conns = {}          # (host, port) -> socket, for TCP sends
        self.listening = None
        self.sock = None
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        if self.transport == "udp":
            self.sock = socket.socket(fam, socket.SOCK_DGRAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            self.sock.bind((host, 0))
            self.port = self.sock.getsockname()[1]
            self.sock.settimeout(0.1)
            self._spawn(self._udp_loop)
        elif connect is None:
            self.listening = socket.socket(fam, socket.SOCK_STREAM)
            self.listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listening.bind((host, 0))
            self.listening.listen(64)
            self.listening.settimeout(0.1)
            self.port = self.listening.getsockname()[1]
            self._spawn(self._accept_loop)
        else:
            c = socket.create_connection(connect, timeout=WAIT)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.port = c.getsockname()[1]
            self._conns[tuple(connect)] = c
            self.main_conn = c
            self._spawn(self._conn_loop, c, tuple(connect))

    @property
    def uri(self):
        return f"sip:{hostport(self.host, self.port)};transport={self.transport}"

    def via(self, branch=None):
        return (f"SIP/2.0/{self.transport.upper()} {hostport(self.host, self.port)}"
                f";branch={branch or new_branch()};rport")

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        with self._lock:
            self._threads.append(t)
        t.start()

    def _udp_loop(self):
        while not self._stop.is_set():
            try:
                data, src = self.sock.recvfrom(1 << 17)
            except socket.timeout:
                continue
            except OSError:
                return
            if self.loss.drop(False):
                continue
            self._deliver(data, src[:2], None)

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, src = self.listening.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.setdefault(src[:2], conn)
            self._spawn(self._conn_loop, conn, src[:2])

    def _conn_loop(self, conn, src):
        buf = b""
        conn.settimeout(0.1)
        while not self._stop.is_set():
            try:
                chunk = conn.recv(1 << 16)
            except socket.timeout:
                continue
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            while True:
                framed = frame_stream(buf)
                if not framed:
                    break
                data, buf = framed
                self._deliver(data, src, conn)
        with self._lock:
            for k, c in list(self._conns.items()):
                if c is conn:
                    del self._conns[k]

    def _deliver(self, data, src, conn):
        try:
            msg = parse(data)
        except ValueError:
            return
        try:
            self.on_message(Received(msg, data, src, conn))
        except Exception as e:  # a peer bug must not kill the reader silently
            import traceback
            traceback.print_exc()
            self.errors.append(e)

    errors = []

    def on_message(self, rec):
        raise NotImplementedError

    def send(self, msg, dest=None, conn=None):
        """Sends over UDP to dest, or over TCP on conn or a connection to dest."""
        data = bytes(msg)
        if self.transport == "udp":
            if self.loss.drop(True):
                return
            try:
                self.sock.sendto(data, dest)
            except OSError:
                pass
            return
        if conn is None:
            with self._lock:
                conn = self._conns.get(tuple(dest)) if dest else None
            if conn is None and dest is None:
                conn = getattr(self, "main_conn", None)
            if conn is None:
                conn = socket.create_connection(dest, timeout=WAIT)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with self._lock:
                    self._conns[tuple(dest)] = conn
                self._spawn(self._conn_loop, conn, tuple(dest))
        try:
            conn.sendall(data)
        except OSError:
            pass

    def reply_along_via(self, resp, rec):
        """A reply to rec: on its connection (TCP) or to the top Via's received/rport (UDP)."""
        if rec.conn is not None:
            self.send(resp, conn=rec.conn)
            return
        v = rec.msg.top_via()
        host = (v.params.get("received") or v.host).strip("[]")
        port = int(v.params.get("rport") or v.port or 5060)
        self.send(resp, (host, port))

    def close(self):
        self._stop.set()
        with self._lock:
            conns = list(self._conns.values())
        for c in conns:
            try:
                c.close()
            except OSError:
                pass
        for t in list(self._threads):
            if t is not threading.current_thread():
                t.join(1)
        for s in (self.sock, self.listening):
            if s is not None:
                s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Recorder:
    """A list of Received with a condition to wait on."""

    def __init__(self):
        self.items = []
        self.cond = threading.Condition()

    def add(self, rec):
        with self.cond:
            self.items.append(rec)
            self.cond.notify_all()

    def select(self, method=None, call_id=None, pred=None):
        with self.cond:
            items = list(self.items)
        return [r for r in items
                if (method is None or (r.msg.method or cseq_of(r.msg)[1]) == method)
                and (call_id is None or r.msg.get("Call-ID") == call_id)
                and (pred is None or pred(r))]

    def wait(self, method=None, call_id=None, pred=None, count=1, timeout=WAIT):
        """The matching records once there are `count` of them; what there is at the timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = self.select(method, call_id, pred)
                left = deadline - time.monotonic()
                if len(got) >= count or left <= 0:
                    return got
                self.cond.wait(min(left, 0.1))

    def clear(self):
        with self.cond:
            self.items.clear()


def retransmit(send, done, invite, t1=T1, t2=T2, limit=None, udp=True):
    """Sends once, then again on Timer A (INVITE, doubling) or E (capped at T2) until done is set."""
    send()
    if not udp:
        return
    interval, deadline = t1, time.monotonic() + (limit or 64 * t1)
    while not done.wait(interval):
        if time.monotonic() > deadline:
            return
        send()
        interval = interval * 2 if invite else min(interval * 2, t2)


# ---------------------------------------------------------------- UAS

class ServerTx:
    """What the UAS keeps for one INVITE (or other request) transaction."""

    def __init__(self, rec):
        self.rec = rec
        self.first = rec
        self.last = None         # last response sent
        self.final = None
        self.acked = threading.Event()
        self.stop = threading.Event()   # stops the plan (CANCEL)
        self.to_tag = unique("uas")
        self.lock = threading.Lock()


class ScriptedUas(Endpoint):
    """A UAS whose INVITE answers follow a plan (see the module doc)."""

    def __init__(self, transport="udp", plan=None, *, host=LOCAL4, loss=None, other_status=200,
                 name="uas", t1=T1, answer_cancel=True, final_limit=None):
        self.plan = ring_then(200) if plan is None else plan
        self.other_status = other_status
        self.name = name
        self.t1 = t1
        self.final_limit = final_limit or 64 * t1   # how long a final is resent without its ACK (s)
        self.answer_cancel = answer_cancel
        self.requests = Recorder()     # every request received, retransmissions included
        self.replies = Recorder()      # replies to our own requests (BYE)
        self.txs = {}                  # (branch, method) -> ServerTx
        self.dialogs = {}              # Call-ID -> dict
        self.client_txs = {}           # branch -> (Recorder, Event)
        self.tx_lock = threading.Lock()
        super().__init__(transport, host, loss)

    @property
    def contact(self):
        return f"<sip:{self.name}@{hostport(self.host, self.port)};transport={self.transport}>"

    # -- receiving
    def on_message(self, rec):
        msg = rec.msg
        if not msg.is_request:
            self.replies.add(rec)
            v = msg.top_via()
            with self.tx_lock:
                ct = self.client_txs.get(v.branch if v else None)
            if ct:
                ct[0].add(rec)
                if msg.status >= 200:
                    ct[1].set()
            return
        self.requests.add(rec)
        method = msg.method
        branch = msg.top_via().branch
        if method == "ACK":
            self._on_ack(rec, branch)
            return
        if method == "CANCEL":
            self._on_cancel(rec, branch)
            return
        key = (branch, method)
        with self.tx_lock:
            tx = self.txs.get(key)
            new = tx is None
            if new:
                tx = self.txs[key] = ServerTx(rec)
        if not new:
            with tx.lock:   # a retransmission: the last response again
                last = tx.last
            if last is not None:
                self.reply_along_via(last, rec)
            return
        if method == "INVITE":
            plan = self.plan(msg) if callable(self.plan) else list(self.plan)
            threading.Thread(target=self._run_plan, args=(tx, plan), daemon=True).start()
        else:
            if self.other_status:   # None: never answers
                self._respond(tx, self.other_status, REASONS.get(self.other_status, "OK"))
            if method == "BYE":
                d = self.dialogs.get(msg.get("Call-ID"))
                if d:
                    d["ended"] = True

    def _on_ack(self, rec, branch):
        with self.tx_lock:
            tx = self.txs.get((branch, "INVITE"))
        if tx is not None:       # hop-by-hop ACK of a non-2xx final
            tx.acked.set()
            return
        d = self.dialogs.get(rec.msg.get("Call-ID"))
        if d:                    # end-to-end ACK of our 2xx
            d["acked"].set()

    def _on_cancel(self, rec, branch):
        with self.tx_lock:
            tx = self.txs.get((branch, "INVITE"))
        if not self.answer_cancel:
            return
        if tx is None:
            self._reply(rec, 481, REASONS[481])
            return
        self._reply(rec, 200, "OK")
        with tx.lock:
            pending = tx.final is None
        if pending:
            tx.stop.set()
            self._respond(tx, 487, REASONS[487])

    # -- answering
    def _run_plan(self, tx, plan):
        last_prov = None
        for step in plan:
            if step[0] == "repeat":
                while last_prov is not None and not tx.stop.wait(step[1] / 1000.0):
                    with tx.lock:
                        if tx.final is not None:
                            return
                    self._respond(tx, last_prov[0], last_prov[1])
                return
            delay, code = step[0], step[1]
            reason = step[2] if len(step) > 2 and step[2] else REASONS.get(code, "Whatever")
            headers = step[3] if len(step) > 3 else []
            if delay and tx.stop.wait(delay / 1000.0):
                return
            if tx.stop.is_set():
                return
            if not self._respond(tx, code, reason, headers):
                return
            if code < 200:
                last_prov = (code, reason)

    def _build(self, req, code, reason, to_tag, headers=()):
        hdrs = [("Via", v) for v in req.get_all("Via")]
        to = req.get("To")
        if req.tag("To") is None and code > 100:
            to += f";tag={to_tag}"
        if req.method == "INVITE" and 100 < code < 300:
            hdrs += [("Record-Route", v) for v in req.get_all("Record-Route")]
        hdrs += [("From", req.get("From")), ("To", to), ("Call-ID", req.get("Call-ID")),
                 ("CSeq", req.get("CSeq"))]
        if req.method == "INVITE" and 100 < code < 300:
            hdrs.append(("Contact", self.contact))
        hdrs += list(headers)
        hdrs.append(("Content-Length", "0"))
        return SipMessage(f"SIP/2.0 {code} {reason}", hdrs)

    def _reply(self, rec, code, reason, headers=()):
        resp = self._build(rec.msg, code, reason, unique("uas"), headers)
        self.reply_along_via(resp, rec)
        return resp

    def _respond(self, tx, code, reason, headers=()):
        """Sends a response in transaction tx; False when a final was already sent."""
        with tx.lock:
            if tx.final is not None:
                return False
            resp = self._build(tx.rec.msg, code, reason, tx.to_tag, headers)
            tx.last = resp
            if code >= 200:
                tx.final = resp
        req = tx.rec.msg
        if req.method == "INVITE" and 200 <= code < 300:
            self._new_dialog(tx, resp)
        self.reply_along_via(resp, tx.rec)
        if req.method == "INVITE" and code >= 200 and self.transport == "udp":
            # 2xx until the end-to-end ACK (§13.3.1.4), non-2xx until the hop-by-hop one (Timer G)
            done = self.dialogs[req.get("Call-ID")]["acked"] if code < 300 else tx.acked
            threading.Thread(target=self._resend_final, args=(tx, resp, done), daemon=True).start()
        return True

    def _resend_final(self, tx, resp, done):
        interval, deadline = self.t1, time.monotonic() + self.final_limit
        while not done.wait(interval) and time.monotonic() < deadline and not self._stop.is_set():
            self.reply_along_via(resp, tx.rec)
            interval = min(interval * 2, T2)

    def _new_dialog(self, tx, resp):
        req = tx.rec.msg
        self.dialogs.setdefault(req.get("Call-ID"), {
            "route_set": route_values(req, "Record-Route"),      # §12.1.1: in order at the UAS
            "remote_target": uri_of(req.get("Contact", "") or req.get("From")),
            "local": resp.get("To"), "remote": req.get("From"),
            "cseq": 1000, "acked": threading.Event(), "ended": False, "invite": tx.rec,
        })

    # -- queries
    def invites(self, call_id=None):
        """INVITE transactions received (one per branch, retransmissions not counted)."""
        with self.tx_lock:
            return [tx for (b, m), tx in self.txs.items() if m == "INVITE"
                    and (call_id is None or tx.rec.msg.get("Call-ID") == call_id)]

    def wait_request(self, method, call_id=None, count=1, timeout=WAIT):
        got = self.requests.wait(method, call_id, count=count, timeout=timeout)
        return got[0] if got else None

    def dialog(self, call_id):
        return self.dialogs.get(call_id)

    # -- in-dialog requests from the callee
    def request_in_dialog(self, call_id, method="BYE", timeout=WAIT, headers=()):
        """Sends method in the dialog (Route = Record-Route as received); its final reply or None."""
        d = self.dialogs[call_id]
        d["cseq"] += 1
        routes = d["route_set"]
        ruri = d["remote_target"]
        if routes and "lr" in uri_params(routes[0]):
            hop = uri_of(routes[0])
            hdr_routes = routes
        elif routes:       # strict router: it goes into the R-URI (§12.2.1.1)
            hop = uri_of(routes[0])
            hdr_routes = routes[1:] + [f"<{ruri}>"]
            ruri = hop
        else:
            hop, hdr_routes = ruri, []
        branch = new_branch()
        msg = SipMessage(f"{method} {ruri} SIP/2.0", [
            ("Via", self.via(branch)), ("Max-Forwards", "70"),
            ("From", d["local"]), ("To", d["remote"]), ("Call-ID", call_id),
            ("CSeq", f"{d['cseq']} {method}")] + [("Route", r) for r in hdr_routes] + list(headers)
            + [("Content-Length", "0")])
        transport, dest = uri_dest(hop)
        got, done = Recorder(), threading.Event()
        with self.tx_lock:
            self.client_txs[branch] = (got, done)
        threading.Thread(target=retransmit, args=(lambda: self.send(msg, dest), done, False),
                         kwargs={"udp": self.transport == "udp"}, daemon=True).start()
        done.wait(timeout)
        done.set()
        finals = [r.msg for r in got.select() if r.msg.status >= 200]
        return finals[0] if finals else None


# ---------------------------------------------------------------- UAC

class ClientTx:
    """A client transaction of the UAC: retransmits until answered, collects the responses."""

    def __init__(self, uac, msg, dest, invite):
        self.uac, self.msg, self.dest, self.invite = uac, msg, dest, invite
        self.branch = msg.top_via().branch
        self.responses = Recorder()
        self.answered = threading.Event()    # stops retransmissions
        self.final = threading.Event()

    def start(self):
        threading.Thread(target=retransmit, args=(lambda: self.uac.send(self.msg, self.dest),
                                                  self.answered, self.invite),
                         kwargs={"t1": self.uac.t1, "udp": self.uac.transport == "udp"},
                         daemon=True).start()
        return self

    def on_response(self, rec):
        self.responses.add(rec)
        code = rec.msg.status
        if self.invite or code >= 200:
            self.answered.set()
        if code >= 200:
            self.final.set()

    def wait_final(self, timeout=WAIT):
        """The first final response (None on timeout)."""
        got = self.responses.wait(pred=lambda r: r.msg.status >= 200, timeout=timeout)
        if not got:
            self.answered.set()
        return got[0].msg if got else None


class Call:
    """One INVITE dialog attempt of the UAC."""

    def __init__(self, uac, ruri, headers=(), body=b"", to=None):
        self.uac = uac
        self.call_id = unique("call-") + "@sipua"
        self.from_tag = unique("ft")
        self.cseq = 1
        self.ruri = ruri
        self.from_hdr = f"<sip:alice@{hostport(uac.host, uac.port)}>;tag={self.from_tag}"
        self.to_hdr = to or f"<{ruri}>"
        self.acks_sent = []
        self.dialog = None       # (to_tag, route_set, remote_target) once a 2xx came
        self.branch = new_branch()
        self.invite = SipMessage(f"INVITE {ruri} SIP/2.0", [
            ("Via", uac.via(self.branch)), ("Max-Forwards", "70"),
            ("From", self.from_hdr), ("To", self.to_hdr), ("Call-ID", self.call_id),
            ("CSeq", f"{self.cseq} INVITE"), ("Contact", uac.contact)] + list(headers)
            + [("Content-Length", str(len(body)))], body)
        self.tx = ClientTx(uac, self.invite, uac.proxy, True)
        self.lock = threading.Lock()

    # -- the INVITE transaction
    def responses(self):
        return [r.msg for r in self.tx.responses.select()]

    def statuses(self):
        return [m.status for m in self.responses()]

    def wait_status(self, code, timeout=WAIT):
        got = self.tx.responses.wait(pred=lambda r: r.msg.status == code, timeout=timeout)
        return got[0].msg if got else None

    def wait_final(self, timeout=WAIT):
        return self.tx.wait_final(timeout)

    def on_response(self, rec):
        msg = rec.msg
        code = msg.status
        self.tx.on_response(rec)
        if 200 <= code < 300:
            with self.lock:
                if self.dialog is None:
                    self.dialog = {"to": msg.get("To"), "route_set": list(reversed(route_values(msg, "Record-Route"))),
                                   "remote_target": uri_of(msg.get("Contact") or self.ruri), "reply": msg}
                acked = bool(self.acks_sent)
            if acked:               # a retransmitted 2xx: ACK it again (§13.2.2.4)
                self.ack()
        elif code >= 300:
            self._ack_non2xx(msg)   # the transaction layer's ACK, same branch (§17.1.1.3)

    def _ack_non2xx(self, resp):
        hdrs = [("Via", self.invite.get("Via")), ("Max-Forwards", "70"), ("From", self.from_hdr),
                ("To", resp.get("To")), ("Call-ID", self.call_id), ("CSeq", f"{self.cseq} ACK")]
        hdrs += [("Route", r) for r in self.invite.get_all("Route")]
        self.uac.send(SipMessage(f"ACK {self.ruri} SIP/2.0", hdrs + [("Content-Length", "0")]), self.uac.proxy)

    def _in_dialog(self, method, cseq, branch):
        d = self.dialog
        routes = d["route_set"]
        ruri = d["remote_target"]
        if routes and "lr" not in uri_params(routes[0]):
            hdr_routes = routes[1:] + [f"<{ruri}>"]
            ruri = uri_of(routes[0])
        else:
            hdr_routes = routes
        hdrs = [("Via", self.uac.via(branch)), ("Max-Forwards", "70"), ("From", self.from_hdr),
                ("To", d["to"]), ("Call-ID", self.call_id), ("CSeq", f"{cseq} {method}")]
        hdrs += [("Route", r) for r in hdr_routes]
        if method != "ACK":
            hdrs.append(("Contact", self.uac.contact))
        msg = SipMessage(f"{method} {ruri} SIP/2.0", hdrs + [("Content-Length", "0")])
        dest = uri_dest(routes[0])[1] if routes else uri_dest(ruri)[1]
        return msg, dest

    def ack(self):
        """ACK for the 2xx (§13.2.2.4): Route = reversed Record-Route, R-URI = Contact."""
        if self.dialog is None:
            raise AssertionError("no 2xx to acknowledge")
        with self.lock:
            if not self.acks_sent:
                self.ack_branch = new_branch()
        msg, dest = self._in_dialog("ACK", self.cseq, self.ack_branch)
        with self.lock:
            self.acks_sent.append(msg)
        self.uac.send(msg, self.uac.proxy if self.uac.transport == "tcp" else dest)
        return msg

    def bye(self, timeout=WAIT):
        """BYE in the dialog; its final response or None."""
        return self.request("BYE", timeout)

    def request(self, method, timeout=WAIT):
        self.cseq += 1
        msg, dest = self._in_dialog(method, self.cseq, new_branch())
        tx = self.uac.start_tx(msg, self.uac.proxy if self.uac.transport == "tcp" else dest, False)
        return tx.wait_final(timeout)

    def cancel(self, timeout=WAIT):
        """CANCEL for the INVITE (§9.1); its final response or None."""
        hdrs = [("Via", self.invite.get("Via")), ("Max-Forwards", "70"), ("From", self.from_hdr),
                ("To", self.to_hdr), ("Call-ID", self.call_id), ("CSeq", f"{self.cseq} CANCEL")]
        hdrs += [("Route", r) for r in self.invite.get_all("Route")]
        msg = SipMessage(f"CANCEL {self.ruri} SIP/2.0", hdrs + [("Content-Length", "0")])
        tx = self.uac.start_tx(msg, self.uac.proxy, False, key=(self.branch, "CANCEL"))
        return tx.wait_final(timeout)


class Uac(Endpoint):
    """A UAC sending everything through the proxy at `proxy` (host, port)."""

    def __init__(self, transport="udp", proxy=None, *, host=LOCAL4, loss=None, t1=T1):
        self.proxy = tuple(proxy)
        self.t1 = t1
        self.calls = {}
        self.txs = {}               # (branch, method) -> ClientTx
        self.requests = Recorder()  # requests received (BYE from the callee)
        self.stray = Recorder()     # responses matching nothing
        self.lock = threading.Lock()
        super().__init__(transport, host, loss, connect=proxy if transport.lower() == "tcp" else None)

    @property
    def contact(self):
        return f"<sip:alice@{hostport(self.host, self.port)};transport={self.transport}>"

    def invite(self, ruri, headers=(), body=b"", to=None):
        call = Call(self, ruri, headers, body, to)
        with self.lock:
            self.calls[call.call_id] = call
            self.txs[(call.branch, "INVITE")] = call
        call.tx.start()
        return call

    def start_tx(self, msg, dest, invite, key=None):
        tx = ClientTx(self, msg, dest, invite)
        with self.lock:
            self.txs[key or (tx.branch, cseq_of(msg)[1])] = tx
        return tx.start()

    def on_message(self, rec):
        msg = rec.msg
        if msg.is_request:
            self.requests.add(rec)
            if msg.method != "ACK":
                resp = make_reply(msg, 200 if msg.method != "INVITE" else 486)
                self.reply_along_via(resp, rec)
            return
        v = msg.top_via()
        key = (v.branch if v else None, cseq_of(msg)[1])
        with self.lock:
            target = self.txs.get(key)
            if target is None and key[1] == "INVITE":
                # a 2xx retransmission after the transaction: by Call-ID
                target = self.calls.get(msg.get("Call-ID"))
        if target is None:
            self.stray.add(rec)
            return
        target.on_response(rec)


def make_reply(req, code, reason=None, to_tag=None):
    hdrs = [("Via", v) for v in req.get_all("Via")]
    to = req.get("To")
    if req.tag("To") is None and code > 100:
        to += f";tag={to_tag or unique('t')}"
    hdrs += [("From", req.get("From")), ("To", to), ("Call-ID", req.get("Call-ID")),
             ("CSeq", req.get("CSeq")), ("Content-Length", "0")]
    return SipMessage(f"SIP/2.0 {code} {reason or REASONS.get(code, 'OK')}", hdrs)


def full_call(uac, ruri, headers=(), timeout=10.0):
    """INVITE, wait for the final, ACK a 2xx, BYE. Returns (call, final, bye_reply)."""
    call = uac.invite(ruri, headers)
    final = call.wait_final(timeout)
    bye = None
    if final is not None and 200 <= final.status < 300:
        call.ack()
        bye = call.bye(timeout)
    return call, final, bye


__all__ = ["T1", "T2", "WAIT", "REASONS", "ring_then", "answer", "RING_FOREVER", "NEVER", "Loss",
           "Endpoint", "Recorder", "ScriptedUas", "Uac", "Call", "ClientTx", "uri_dest", "uri_of",
           "uri_params", "route_values", "cseq_of", "make_reply", "full_call", "make_request"]
