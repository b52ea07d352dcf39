# SPDX-License-Identifier: MIT
# Copyright (c) 2026 the ksrd authors
"""
A real, throw-away PostgreSQL for integration tests: initdb into a temporary
directory, pg_ctl start on a free loopback port (no unix socket in /run), the
tables of conf/sql/*.sql loaded in name order; stopped and removed afterwards,
also when the test fails.

    with PgServer() as pg:
        url = pg.url                      # postgres://ksrd:ksrd@127.0.0.1:PORT/ksrd
        pg.sql("SELECT count(*) FROM location")
        pg.sql("SELECT 1 FROM location WHERE username = :'u'", u="o'brien")
        pg.stop(); pg.start()             # an outage, the data kept

PostgreSQL refuses to run as root: as root, initdb, pg_ctl and psql run as
the `postgres` user (runuser -u postgres --). Values given to sql() travel as
psql variables (:'name' quotes them), never pasted into the SQL text.
"""
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ksrtest import REPO, free_port

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def pg_tool(name):
    for d in PG_BIN_DIRS:
        if (d / name).exists():
            return str(d / name)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name}: PostgreSQL server binaries not found (Debian: postgresql)")
    return found


def available():
    """True when initdb, pg_ctl and psql can be found (the tests skip otherwise)."""
    try:
        for t in ("initdb", "pg_ctl", "psql"):
            pg_tool(t)
        return True
    except FileNotFoundError:
        return False


class PgServer:
    USER = "ksrd"
    PASSWORD = "ksrd"
    DB = "ksrd"

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="ksrtest-pg-")
        self.data = os.path.join(self.tmp, "data")
        self.logfile = os.path.join(self.tmp, "postgres.log")
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self.running = False
        if self.as_root:
            shutil.chown(self.tmp, "postgres", "postgres")

    @property
    def url(self):
        return f"postgres://{self.USER}:{self.PASSWORD}@127.0.0.1:{self.port}/{self.DB}"

    # ---- running the tools
    def _cmd(self, args):
        return (["runuser", "-u", "postgres", "--"] + args) if self.as_root else args

    def _env(self):
        return {**os.environ, "PGPASSWORD": self.PASSWORD, "PGCONNECT_TIMEOUT": "5"}

    def _run(self, args, **kw):
        r = subprocess.run(self._cmd(args), capture_output=True, text=True, env=self._env(), **kw)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({r.returncode}):\n{r.stdout}{r.stderr}"
                               f"\n--- postgres log\n{self.log()[-3000:]}")
        return r.stdout

    def _psql(self, db):
        return [pg_tool("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.USER, "-d", db,
                "-v", "ON_ERROR_STOP=1", "-X", "-q"]

    def log(self):
        try:
            return Path(self.logfile).read_text(errors="replace")
        except OSError:
            return ""

    # ---- life cycle
    def init(self):
        pwfile = os.path.join(self.tmp, "pw")
        Path(pwfile).write_text(self.PASSWORD + "\n")
        if self.as_root:
            shutil.chown(pwfile, "postgres", "postgres")
        self._run([pg_tool("initdb"), "-D", self.data, "-U", self.USER, "--pwfile", pwfile, "-A", "md5",
                   "--no-sync", "-E", "UTF8", "--locale", "C"])
        self.start()
        self._run(self._psql("postgres") + ["-c", f"CREATE DATABASE {self.DB}"])
        for f in sorted((REPO / "conf" / "sql").glob("*.sql")):
            self._run(self._psql(self.DB) + ["-f", str(f)])
        return self

    def start(self):
        opts = f"-p {self.port} -k {self.tmp} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run([pg_tool("pg_ctl"), "-D", self.data, "-l", self.logfile, "-o", opts, "-w", "-t", "30",
                   "start"])
        self.running = True

    def stop(self, mode="fast"):
        """fast: clients are disconnected; immediate: as if the machine died."""
        if not self.running:
            return
        self._run([pg_tool("pg_ctl"), "-D", self.data, "-m", mode, "-w", "-t", "30", "stop"])
        self.running = False

    def close(self):
        try:
            if self.running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        try:
            return self.init()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()

    # ---- SQL
    def sql(self, text, **variables):
        """Runs SQL, returns psql's unaligned output; variables bound as :'name'."""
        args = self._psql(self.DB) + ["-tA"]
        for k, v in variables.items():
            args += ["-v", f"{k}={v}"]
        return self._run(args, input=text).strip()

    def count(self, where="TRUE", **variables):
        """Rows of location matching a condition (may use :'var' values)."""
        return int(self.sql(f"SELECT count(*) FROM location WHERE {where}", **variables) or 0)
