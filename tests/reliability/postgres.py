"""A PostgreSQL cluster a scenario owns: its own directory and free port, stopped and started at will.

Debian's server binaries (``/usr/lib/postgresql/<version>/bin``) refuse to run
as root, so under root the cluster is made and run as the ``postgres`` user
(``runuser``). ``PostgresCluster.unavailable()`` says why a machine cannot run
one, for a clear skip.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from tests.helpers import free_port

BIN = Path("/usr/lib/postgresql/15/bin")


class PostgresCluster:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="eventflow-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @staticmethod
    def unavailable() -> str:
        """Why no cluster can be started here ("" if one can)."""
        if not (BIN / "initdb").exists():
            return f"no PostgreSQL server binaries in {BIN}"
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                return "running as root without runuser: initdb refuses root"
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root and there is no postgres user to run the server as"
        return ""

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> PostgresCluster:
        if self._as:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(BIN / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
        return self

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off"
        self._run(BIN / "pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "-t", "30", "start")

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (``immediate``: as a crash would; clients' connections break)."""
        self._run(BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop", check=False)

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self, *args: object, check: bool = True) -> None:
        subprocess.run([*self._as, *map(str, args)], check=check, capture_output=True, timeout=60, cwd=self.dir)
