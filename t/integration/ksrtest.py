# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""
Harness for ksrd integration tests: real ksrd processes on loopback ports,
real sockets, Python 3 standard library only.

    with Server(script=ROUTE) as srv:
        peer = UdpPeer()
        reply = peer.request(srv.udp, make_request("OPTIONS", srv.uri(), peer.via()))
        assert reply.status == 200

Environment:
  KSRD          the binary (default: ./build/ksrd under the repository root)
  KSR_TESTDATA  the shared test data (default: ../shared/testdata from the repository root)
"""
import itertools
import json
import os
import queue
import random
import re
import shlex
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_ROUTE = REPO / "lua" / "routes" / "default" / "route.lua"
LOCAL4 = "127.0.0.1"
LOCAL6 = "::1"
TIMEOUT = 2.0        # the usual wait for something that should arrive
QUIET = 0.6          # how long "nothing arrives" is watched for


def ksrd_path():
    p = Path(os.environ.get("KSRD", "build/ksrd"))
    return p if p.is_absolute() else REPO / p


def testdata_dir():
    env = os.environ.get("KSR_TESTDATA")
    return Path(env) if env else (REPO.parent / "shared" / "testdata").resolve()


def have_ipv6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind((LOCAL6, 0))
        return True
    except OSError:
        return False


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def hostport(host, port):
    """sent-by / URI form: IPv6 in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def free_port(host=LOCAL4):
    """
    A port number free for both UDP and TCP on host. Taken at random below the
    kernel's ephemeral range, so that no client socket (ours or another test
    run's) is handed it before ksrd binds it: ksrd uses SO_REUSEPORT, and would
    share a port with another process of the same user without complaint.
    """
    fam = family_of(host)
    lo, _ = ephemeral_range()
    for _ in range(200):
        port = random.randrange(max(1024, lo - 12000), lo)
        try:
            with socket.socket(fam, socket.SOCK_STREAM) as t, socket.socket(fam, socket.SOCK_DGRAM) as u:
                t.bind((host, port))
                u.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


def ephemeral_range():
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


# ---------------------------------------------------------------- SIP messages

COMPACT = {
    "i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
    "c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to",
    "v": "via", "o": "event", "r": "refer-to", "b": "referred-by", "u": "allow-events",
    "x": "session-expires", "a": "accept-contact", "j": "reject-contact",
    "d": "request-disposition", "y": "identity", "n": "identity-info",
}


def canon(name):
    n = name.strip().lower()
    return COMPACT.get(n, n)


def unique(prefix=""):
    return prefix + uuid.uuid4().hex[:16]


class SipMessage:
    """A request or reply: start line, ordered headers, body (bytes)."""

    def __init__(self, start, headers=(), body=b""):
        self.start = start
        self.headers = [(n, v) for n, v in headers]
        self.body = body if isinstance(body, bytes) else body.encode()

    # -- start line
    @property
    def is_request(self):
        return not self.start.upper().startswith("SIP/")

    @property
    def method(self):
        return self.start.split(" ", 1)[0] if self.is_request else None

    @property
    def ruri(self):
        return self.start.split(" ")[1] if self.is_request else None

    @property
    def status(self):
        return None if self.is_request else int(self.start.split(" ")[1])

    @property
    def reason(self):
        return None if self.is_request else (self.start.split(" ", 2) + [""])[2]

    # -- headers
    def get(self, name, default=None):
        vals = self.get_all(name)
        return vals[0] if vals else default

    def get_all(self, name):
        c = canon(name)
        return [v for n, v in self.headers if canon(n) == c]

    def has(self, name):
        return bool(self.get_all(name))

    def set(self, name, value):
        """Replaces every header of that name (any spelling) by one, in the first one's place."""
        c = canon(name)
        out, done = [], False
        for n, v in self.headers:
            if canon(n) != c:
                out.append((n, v))
            elif not done:
                out.append((name, value))
                done = True
        if not done:
            out.append((name, value))
        self.headers = out

    def remove(self, name):
        c = canon(name)
        self.headers = [(n, v) for n, v in self.headers if canon(n) != c]

    def vias(self):
        """Every via-parm in order, comma lists split."""
        out = []
        for v in self.get_all("Via"):
            out.extend(p.strip() for p in split_commas(v))
        return out

    def top_via(self):
        v = self.vias()
        return parse_via(v[0]) if v else None

    def tag(self, name):
        m = re.search(r";\s*tag\s*=\s*([^;>\s]+)", self.get(name, "") or "", re.I)
        return m.group(1) if m else None

    def __bytes__(self):
        head = self.start + "\r\n" + "".join(f"{n}: {v}\r\n" for n, v in self.headers) + "\r\n"
        return head.encode("latin-1") + self.body

    def __repr__(self):
        return f"<SipMessage {self.start!r} {len(self.headers)} headers, {len(self.body)} body octets>"


def split_commas(value):
    parts, depth, quoted, cur = [], 0, False, ""
    i = 0
    while i < len(value):
        ch = value[i]
        if quoted:
            if ch == "\\":
                cur += value[i:i + 2]
                i += 2
                continue
            quoted = ch != '"'
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            i += 1
            continue
        cur += ch
        i += 1
    parts.append(cur)
    return parts


class Via:
    def __init__(self, text):
        self.text = text
        m = re.match(r"\s*SIP\s*/\s*([^/\s]+)\s*/\s*(\S+)\s+([^;]+?)\s*(;.*)?$", text, re.I)
        if not m:
            raise ValueError(f"bad Via {text!r}")
        self.version, self.transport, sent_by, rest = m.groups()
        hm = re.match(r"^(\[[^\]]+\]|[^:]+)(?::(\d+))?$", sent_by)
        self.host = hm.group(1)
        self.port = int(hm.group(2)) if hm.group(2) else None
        self.params = {}      # lower-case name -> value (None without '=')
        self.param_order = []
        for p in (rest or "").split(";")[1:]:
            name, eq, val = p.partition("=")
            self.params[name.strip().lower()] = val.strip() if eq else None
            self.param_order.append(name.strip().lower())

    @property
    def branch(self):
        return self.params.get("branch")

    @property
    def sent_by(self):
        return f"{self.host}:{self.port}" if self.port else self.host

    def __repr__(self):
        return f"<Via {self.text!r}>"


def parse_via(text):
    return Via(text)


def parse(data):
    """Parses one message (bytes). Tolerant: meant for what ksrd sends."""
    sep = data.find(b"\r\n\r\n")
    if sep < 0:
        raise ValueError(f"no end of headers in {data[:200]!r}")
    head, body = data[:sep].decode("latin-1"), data[sep + 4:]
    lines = head.split("\r\n")
    headers = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            n, v = headers[-1]
            headers[-1] = (n, v + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise ValueError(f"bad header line {line!r}")
        headers.append((name.strip(), value.strip()))
    msg = SipMessage(lines[0], headers, body)
    cl = msg.get("Content-Length")
    if cl is not None and cl.strip().isdigit():
        msg.body = body[:int(cl)]
    return msg


_seq = itertools.count(1)


def make_request(method, ruri, via, *, headers=(), body=b"", call_id=None, from_tag=None,
                 cseq=None, max_forwards=70, to=None, frm=None, content_length=True):
    """
    A request with a unique Call-ID and From tag. `via` is a Via value (see
    Peer.via()) or a list of them. Content-Length is computed unless
    content_length is False (then left out) or a header sets it.
    """
    body = body if isinstance(body, bytes) else body.encode()
    vias = [via] if isinstance(via, str) else list(via)
    hdrs = [("Via", v) for v in vias]
    if max_forwards is not None:
        hdrs.append(("Max-Forwards", str(max_forwards)))
    hdrs += [
        ("From", frm or f"<sip:alice@client.invalid>;tag={from_tag or unique('ft')}"),
        ("To", to or (f"<{ruri}>" if len(ruri) < 200 else "<sip:bob@example.com>")),
        ("Call-ID", call_id or unique("cid-") + "@ksrtest"),
        ("CSeq", f"{cseq if cseq is not None else next(_seq)} {method}"),
    ]
    hdrs += list(headers)
    msg = SipMessage(f"{method} {ruri} SIP/2.0", hdrs, body)
    if content_length and not msg.has("Content-Length"):
        msg.headers.append(("Content-Length", str(len(body))))
    return msg


def make_response(req, status, reason="OK", *, to_tag=None, headers=(), body=b""):
    """A reply to req: its Vias, From, To (+tag), Call-ID, CSeq copied."""
    hdrs = [("Via", v) for v in req.get_all("Via")]
    to = req.get("To")
    if req.tag("To") is None and status > 100:
        to += f";tag={to_tag or unique('tt')}"
    hdrs += [("From", req.get("From")), ("To", to), ("Call-ID", req.get("Call-ID")),
             ("CSeq", req.get("CSeq"))]
    hdrs += list(headers)
    hdrs.append(("Content-Length", str(len(body))))
    return SipMessage(f"SIP/2.0 {status} {reason}", hdrs, body)


def new_branch():
    return "z9hG4bK" + unique()


def frame_stream(buf):
    """(message, rest) when buf starts with a complete message, else None. Leading CRLFs skipped."""
    stripped = buf.lstrip(b"\r\n")
    sep = stripped.find(b"\r\n\r\n")
    if sep < 0:
        return None
    head = stripped[:sep].decode("latin-1")
    m = re.search(r"^(?:content-length|l)[ \t]*:[ \t]*(\d+)", head, re.I | re.M)
    cl = int(m.group(1)) if m else 0
    end = sep + 4 + cl
    if len(stripped) < end:
        return None
    return stripped[:end], stripped[end:]


# ---------------------------------------------------------------- peers

class UdpPeer:
    """A UDP socket on loopback: send, receive with a timeout."""

    transport = "UDP"

    def __init__(self, host=LOCAL4, port=0):
        self.sock = socket.socket(family_of(host), socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((host, port))
        self.host, self.port = host, self.sock.getsockname()[1]

    def via(self, *, rport=True, branch=None, host=None, port=None, transport=None):
        """A Via value for requests from this peer (sent-by = our address unless given)."""
        v = (f"SIP/2.0/{transport or self.transport} {hostport(host or self.host, port or self.port)}"
             f";branch={branch or new_branch()}")
        return v + (";rport" if rport else "")

    def send(self, data, dest):
        self.sock.sendto(bytes(data), dest)

    def recv(self, timeout=TIMEOUT):
        """(bytes, source) or None."""
        self.sock.settimeout(timeout)
        try:
            data, src = self.sock.recvfrom(1 << 17)
        except socket.timeout:
            return None
        return data, src[:2]

    def recv_msg(self, timeout=TIMEOUT):
        got = self.recv(timeout)
        return parse(got[0]) if got else None

    def request(self, dest, msg, timeout=TIMEOUT):
        """Sends msg, returns the first reply (SipMessage) or None."""
        self.send(msg, dest)
        return self.recv_msg(timeout)

    def quiet(self, timeout=QUIET):
        """True when nothing arrives within timeout."""
        return self.recv(timeout) is None

    def drain(self):
        while self.recv(0.05):
            pass

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class TcpPeer:
    """A TCP connection to dest; messages framed by Content-Length."""

    transport = "TCP"

    def __init__(self, dest, timeout=TIMEOUT):
        self.sock = socket.create_connection(dest, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.host, self.port = self.sock.getsockname()[:2]
        self.buf = b""
        self.eof = False

    via = UdpPeer.via

    def send(self, data):
        self.sock.sendall(bytes(data))

    def _fill(self, deadline):
        """Reads once; False on timeout. Sets eof on close or reset."""
        left = deadline - time.monotonic()
        if left <= 0 or self.eof:
            return False
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(1 << 16)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def recv_bytes(self, n, timeout=TIMEOUT):
        """Exactly n octets (or fewer if the time runs out or the peer closes)."""
        deadline = time.monotonic() + timeout
        while len(self.buf) < n and self._fill(deadline):
            pass
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_raw(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while self._fill(deadline):
            pass
        out, self.buf = self.buf, b""
        return out

    def recv_msg(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            framed = frame_stream(self.buf)
            if framed:
                data, self.buf = framed
                return parse(data)
            if not self._fill(deadline):
                return None

    def request(self, msg, timeout=TIMEOUT):
        self.send(msg)
        return self.recv_msg(timeout)

    def closed_by_peer(self, timeout=TIMEOUT):
        """True when the server closes (FIN or RST) within timeout; data received meanwhile is kept."""
        deadline = time.monotonic() + timeout
        while not self.eof and self._fill(deadline):
            pass
        return self.eof

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Received:
    """What a Uas got: the message, its bytes, where from, and the connection (TCP)."""

    def __init__(self, msg, raw, src, conn):
        self.msg, self.raw, self.src, self.conn = msg, raw, src, conn


class Uas:
    """
    A SIP endpoint on a loopback port (UDP or TCP) running in a thread. It
    records every message it receives (requests and replies) and answers every
    request but ACK with `status` (None: no answer) along the Via path: over
    the same connection for TCP, to the top Via's received/rport (or sent-by)
    for UDP.
    """

    def __init__(self, transport="udp", host=LOCAL4, status=200, reason="OK", content_length=True):
        self.content_length = content_length  # False: replies without Content-Length
        self.transport = transport.lower()
        self.host = host
        self.status, self.reason = status, reason
        self.requests = queue.Queue()
        self.replies = queue.Queue()
        self._stop = threading.Event()
        self._conns = []
        self._lock = threading.Lock()
        fam = family_of(host)
        if self.transport == "udp":
            self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        else:
            self.sock = socket.socket(fam, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        if self.transport == "tcp":
            self.sock.listen(16)
        self.sock.settimeout(0.1)
        self._threads = [threading.Thread(target=self._run, daemon=True)]
        self._threads[0].start()

    @property
    def uri(self):
        return f"sip:{hostport(self.host, self.port)};transport={self.transport}"

    # -- receiving
    def _run(self):
        while not self._stop.is_set():
            try:
                if self.transport == "udp":
                    data, src = self.sock.recvfrom(1 << 17)
                    self._handle(data, src[:2], None)
                else:
                    conn, src = self.sock.accept()
                    t = threading.Thread(target=self._serve_conn, args=(conn, src[:2]), daemon=True)
                    with self._lock:
                        self._conns.append(conn)
                        self._threads.append(t)
                    t.start()
            except socket.timeout:
                continue
            except OSError:
                return

    def _serve_conn(self, conn, src):
        buf = b""
        conn.settimeout(0.1)
        while not self._stop.is_set():
            try:
                chunk = conn.recv(1 << 16)
            except socket.timeout:
                continue
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while True:
                framed = frame_stream(buf)
                if not framed:
                    break
                data, buf = framed
                self._handle(data, src, conn)

    def _handle(self, data, src, conn):
        try:
            msg = parse(data)
        except ValueError:
            return
        rec = Received(msg, data, src, conn)
        if not msg.is_request:
            self.replies.put(rec)
            return
        self.requests.put(rec)
        if self.status and msg.method != "ACK":
            self.reply(rec, self.status, self.reason)

    def wait_request(self, timeout=TIMEOUT):
        try:
            return self.requests.get(timeout=timeout)
        except queue.Empty:
            return None

    def no_request(self, timeout=QUIET):
        return self.wait_request(timeout) is None

    # -- sending
    def reply(self, rec, status, reason="OK", **kw):
        """Answers the recorded request along its Via path."""
        resp = make_response(rec.msg, status, reason, **kw)
        if not self.content_length:
            resp.remove("Content-Length")
        self.send_along_via(resp, rec)

    def drain(self):
        for q in (self.requests, self.replies):
            while not q.empty():
                q.get_nowait()

    def send_along_via(self, msg, rec):
        data = bytes(msg)
        if rec.conn is not None:
            rec.conn.sendall(data)
            return
        v = rec.msg.top_via()
        host = (v.params.get("received") or v.host).strip("[]")
        port = v.params.get("rport") or v.port or 5060
        self.sock.sendto(data, (host, int(port)))

    def send_to(self, data, dest):
        """Raw send over UDP (or on the first TCP connection)."""
        if self.transport == "udp":
            self.sock.sendto(bytes(data), dest)
        else:
            with self._lock:
                self._conns[0].sendall(bytes(data))

    def close(self):
        self._stop.set()
        with self._lock:
            for c in self._conns:
                try:
                    c.close()
                except OSError:
                    pass
        for t in self._threads:
            t.join(1)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------- the server

def lua_value(v, indent="\t"):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, (list, tuple)):
        return "{ " + ", ".join(lua_value(x) for x in v) + " }"
    if isinstance(v, dict):
        inner = "".join(f"{indent}{k} = {lua_value(x, indent + chr(9))},\n" for k, x in v.items())
        return "{\n" + inner + indent[:-1] + "}"
    raise TypeError(f"no Lua form for {v!r}")


def lua_config(settings):
    """Lua text assigning each top-level setting."""
    return "".join(f"{k} = {lua_value(v)}\n" for k, v in settings.items())


class RpcError(Exception):
    pass


class Server:
    """
    A ksrd process: temp config with UDP+TCP listeners on free loopback ports
    (and [::1] when ipv6=True), `workers` workers, a route script (text via
    `script`, or a file via `script_path`; default: the default route), stderr
    to a file. Ready once it answers an OPTIONS over UDP. stop() sends SIGTERM
    (or `sig`) and fails unless it exits 0 within 5 s.
    """

    START_TIMEOUT = 15.0
    STOP_TIMEOUT = 5.0

    def __init__(self, script=None, script_path=None, *, ipv6=False, config=None, workers=2,
                 log_level="info", ready=True):
        self.tmp = tempfile.TemporaryDirectory(prefix="ksrtest-")
        self.dir = Path(self.tmp.name)
        self.port = free_port(LOCAL4)
        self.port6 = free_port(LOCAL6) if ipv6 else None
        self.script_path = Path(script_path) if script_path else self.dir / "route.lua"
        if script is not None:
            self.script_path.write_text(script)
        elif not script_path:
            self.script_path = DEFAULT_ROUTE
        listen = [f"udp:{LOCAL4}:{self.port}", f"tcp:{LOCAL4}:{self.port}"]
        if ipv6:
            listen += [f"udp:[{LOCAL6}]:{self.port6}", f"tcp:[{LOCAL6}]:{self.port6}"]
        settings = {
            "listen": listen,
            "workers": workers,
            "script": str(self.script_path),
            "log": {"level": log_level, "target": "stderr"},
            "rpc": {"socket": str(self.dir / "ksrd.sock")},
        }
        text = ""
        if isinstance(config, dict):
            for k, v in config.items():
                if isinstance(v, dict) and isinstance(settings.get(k), dict):
                    settings[k] = {**settings[k], **v}
                else:
                    settings[k] = v
        elif config:
            text = config
        self.cfg_path = self.dir / "ksrd.lua"
        self.cfg_path.write_text(lua_config(settings) + text)
        self.log_path = self.dir / "stderr.log"
        self.proc = None
        self.ready = ready

    # -- addresses
    @property
    def udp(self):
        return (LOCAL4, self.port)

    @property
    def tcp(self):
        return (LOCAL4, self.port)

    @property
    def udp6(self):
        return (LOCAL6, self.port6)

    tcp6 = udp6

    def uri(self, user=None, host=LOCAL4, port=None):
        port = port or (self.port6 if ":" in host else self.port)
        return f"sip:{user + '@' if user else ''}{hostport(host, port)}"

    # -- life cycle
    def start(self):
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([str(ksrd_path()), "-f", str(self.cfg_path), "-E"],
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        if self.ready:
            try:
                self.wait_ready()
            except BaseException:
                self.proc.kill()
                self.proc.wait(5)
                self._log.close()
                self.proc = None
                raise
        return self

    def wait_ready(self):
        deadline = time.monotonic() + self.START_TIMEOUT
        with UdpPeer() as p:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"ksrd exited with {self.proc.returncode} while starting\n{self.describe()}")
                try:
                    if p.request(self.udp, make_request("OPTIONS", self.uri(), p.via()), timeout=0.2):
                        return
                except ConnectionRefusedError:
                    time.sleep(0.05)
        raise AssertionError(f"ksrd did not answer OPTIONS within {self.START_TIMEOUT} s\n{self.describe()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM):
        """Stops ksrd with sig; fails unless it exits 0 within 5 s. Returns the log."""
        if self.proc is None:
            return self.log()
        try:
            if self.proc.poll() is not None:
                raise AssertionError(f"ksrd had already exited with {self.proc.returncode}\n{self.describe()}")
            self.proc.send_signal(sig)
            try:
                rc = self.proc.wait(self.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError(f"ksrd did not stop within {self.STOP_TIMEOUT} s of signal {sig}\n{self.describe()}")
            if rc != 0:
                raise AssertionError(f"ksrd exited with {rc} after signal {sig}\n{self.describe()}")
            return self.log()
        finally:
            self._log.close()
            self.proc = None

    @property
    def rpc_socket(self):
        return self.dir / "ksrd.sock"

    def rpc(self, method, *params, timeout=TIMEOUT):
        """
        Calls a JSON-RPC method on the control socket; returns the result.
        Raises RpcError for an error answer, OSError when the socket is not there.
        """
        req = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": next(_seq)}
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(self.rpc_socket))
            s.sendall(json.dumps(req).encode())
            buf = b""
            while True:
                chunk = s.recv(1 << 16)
                if not chunk:
                    raise RpcError(f"connection closed after {buf[:200]!r}")
                buf += chunk
                try:
                    answer, _ = json.JSONDecoder().raw_decode(buf.decode())
                    break
                except ValueError:
                    continue
        if "error" in answer:
            raise RpcError(answer["error"])
        return answer.get("result")

    def stats(self):
        """Every statistic as {"group.name": value} (stats.fetch)."""
        return self.rpc("stats.fetch", "all")

    def log(self):
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=5.0):
        """The first match of regex pattern in the log, waiting for it; None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.log())
            if m or time.monotonic() > deadline:
                return m
            time.sleep(0.05)

    def describe(self):
        cmd = shlex.join([str(ksrd_path()), "-f", str(self.cfg_path), "-E"])
        return (f"command: {cmd}\n--- config\n{self.cfg_path.read_text()}"
                f"--- stderr (last 4000 chars)\n{self.log()[-4000:]}")

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.tmp.cleanup()

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def close(self):
        """stop() (which fails unless ksrd exits cleanly), then cleanup() whatever happened."""
        try:
            self.stop()
        finally:
            self.cleanup()

    def __exit__(self, exc_type, exc, tb):
        self.close()


class RouteCase(unittest.TestCase):
    """
    One ksrd running cls.ROUTE (plus cls.CONFIG) and one UAS for the whole
    class; a fresh UDP peer for each test, and the UAS emptied of what earlier
    tests left. A class whose server needs more overrides start_server().
    """
    ROUTE = None
    CONFIG = None

    @classmethod
    def start_server(cls):
        cls.srv = Server(script=cls.ROUTE, config=cls.CONFIG)
        cls.srv.start()

    @classmethod
    def setUpClass(cls):
        cls.start_server()
        cls.uas = Uas()

    @classmethod
    def tearDownClass(cls):
        cls.uas.close()
        cls.srv.close()

    def setUp(self):
        self.peer = UdpPeer()
        # a request still in flight from the previous test arrives within this wait
        while self.uas.wait_request(0.01):
            pass
        self.uas.drain()

    def tearDown(self):
        self.peer.close()


def run_ksrd(*args, timeout=10, cwd=None):
    """Runs ksrd to completion: CompletedProcess with text stdout/stderr."""
    return subprocess.run([str(ksrd_path()), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, stdin=subprocess.DEVNULL)


def options(srv, peer, dest=None, **kw):
    """Sends an OPTIONS for the server from peer (UdpPeer or TcpPeer); returns the reply."""
    host = (dest or srv.udp)[0]
    msg = make_request("OPTIONS", srv.uri(host=host), peer.via(), **kw)
    if isinstance(peer, TcpPeer):
        return peer.request(msg)
    return peer.request(dest or srv.udp, msg)


def still_serving(testcase, srv, transports=("udp", "tcp")):
    """Asserts that fresh clients still get 200 to OPTIONS."""
    for t in transports:
        if t == "udp":
            with UdpPeer() as p:
                r = options(srv, p)
        else:
            with TcpPeer(srv.tcp) as p:
                r = options(srv, p)
        testcase.assertIsNotNone(r, f"no answer to OPTIONS over {t} afterwards\n{srv.log()[-3000:]}")
        testcase.assertEqual(r.status, 200, f"OPTIONS over {t} afterwards: {r.start}")
        testcase.assertTrue(srv.alive(), "ksrd died")
