"""A throwaway PostgreSQL server for tests, and loading a segctl project's data into it.

``PostgresServer.start()`` runs ``initdb`` and ``pg_ctl`` from Debian's ``postgresql`` package
(found on PATH or under /usr/lib/postgresql/*/bin) into a fresh folder, listening only on a Unix
socket there, and ``stop()`` removes it. PostgreSQL refuses to run as root, so under root the
server runs as the ``postgres`` system user that the package creates. Queries go through
``psql`` (the client the package ships), so no Python driver is needed.

``ServerUnavailable`` says why no server could be had; the tests skip with that message.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb


class ServerUnavailable(Exception):
    """No PostgreSQL server can be started here (the message says why and how to fix it)."""


def _binary(name: str) -> str | None:
    """A real executable ``name`` from PATH or a Debian postgresql install, newest first."""
    candidates = [shutil.which(name)]
    candidates += [
        str(p / name)
        for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
        if (p / name).is_file()
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            # A stub on PATH would pass a which(); `--version` proves it is the real program.
            probe = subprocess.run([candidate, "--version"], capture_output=True, text=True)
            if probe.returncode == 0 and "PostgreSQL" in probe.stdout:
                return candidate
    return None


@dataclass
class PostgresServer:
    """A running server (after ``start``) and the ``psql`` client to query it."""

    folder: Path
    port: int = 54329
    user: str | None = None  # the system user the server runs as (None: the current one)
    binaries: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(cls) -> PostgresServer:
        """Initialise and start a server; raises ServerUnavailable with the reason."""
        binaries = {name: _binary(name) for name in ("initdb", "pg_ctl", "psql")}
        missing = [name for name, path in binaries.items() if path is None]
        if missing:
            raise ServerUnavailable(
                f"PostgreSQL is not installed here (no {', '.join(missing)} on PATH or in "
                "/usr/lib/postgresql/*/bin): install Debian's postgresql package "
                "(apt-get install postgresql; .ci/run does this)"
            )
        user = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise ServerUnavailable(
                    "running as root and there is no 'postgres' user to run the server as "
                    "(PostgreSQL refuses to run as root)"
                ) from None
            user = "postgres"
        folder = Path(tempfile.mkdtemp(prefix="segctl-pg-"))
        if user:
            shutil.chown(folder, user)
        server = cls(folder, port=_free_port(), user=user, binaries=binaries)  # type: ignore[arg-type]
        try:
            server._as_owner(
                [
                    *(binaries["initdb"], "-D", str(folder / "data"), "-A", "trust"),
                    *("-U", "postgres", "-E", "UTF8", "--no-sync", "--locale=C"),
                ]
            )
            options = (
                f"-k {folder} -p {server.port} -c listen_addresses='' -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c TimeZone=UTC"
            )
            server._as_owner(
                [
                    *(binaries["pg_ctl"], "-D", str(folder / "data"), "-o", options),
                    *("-l", str(folder / "server.log"), "-w", "-t", "60", "start"),
                ]
            )
        except subprocess.CalledProcessError as exc:
            log = folder / "server.log"
            detail = (exc.stderr or "") + (log.read_text() if log.exists() else "")
            shutil.rmtree(folder, ignore_errors=True)
            raise ServerUnavailable(f"PostgreSQL did not start: {detail.strip()[-500:]}") from None
        return server

    def _as_owner(self, command: list[str]) -> None:
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True, cwd=self.folder)

    def stop(self) -> None:
        """Stop the server at once and remove its folder."""
        try:
            self._as_owner(
                [
                    *(self.binaries["pg_ctl"], "-D", str(self.folder / "data")),
                    *("-m", "immediate", "-w", "stop"),
                ]
            )
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def psql(self, script: str) -> str:
        """Run a psql script (SQL and backslash commands); its unaligned, tab-separated output.
        Raises AssertionError with the server's message on the first error."""
        result = subprocess.run(
            [
                *(self.binaries["psql"], "-h", str(self.folder), "-p", str(self.port)),
                *("-U", "postgres", "-d", "postgres", "-X", "-q", "-A", "-t", "-F", "\t"),
                *("-v", "ON_ERROR_STOP=1", "-f", "-"),
            ],
            input=script,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise AssertionError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    def query(self, script: str) -> list[list[str]]:
        """The rows the last statement of ``script`` prints, as text fields."""
        return [line.split("\t") for line in self.psql(script).splitlines() if line]


def _free_port() -> int:
    """A TCP port number nobody listens on; the server only uses it to name its socket."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def create_statements(sql: str) -> list[str]:
    """The ``CREATE TABLE`` statements of compiled SQL's header comment."""
    return [
        line.removeprefix("--").strip().removesuffix(";")
        for line in sql.splitlines()
        if line.startswith("--") and line.removeprefix("--").strip().startswith("CREATE TABLE")
    ]


def table_columns(create: str) -> tuple[str, list[str]]:
    """The table and column names of a header's ``CREATE TABLE`` (read with sqlglot)."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(create, read="postgres")
    schema = tree.this
    assert isinstance(schema, exp.Schema)
    return schema.this.name, [c.name for c in schema.expressions]


def json_columns(create: str) -> set[str]:
    """The columns a header's ``CREATE TABLE`` declares ``JSONB`` (nested ones)."""
    import sqlglot
    from sqlglot import exp

    schema = sqlglot.parse_one(create, read="postgres").this
    assert isinstance(schema, exp.Schema)
    return {c.name for c in schema.expressions if c.args["kind"].is_type("jsonb")}


def load_script(sql: str, con: duckdb.DuckDBPyConnection, folder: Path, schema: str) -> str:
    """A psql script that creates a fresh ``schema`` holding the tables ``sql``'s header asks
    for, made by the header's own ``CREATE TABLE`` statements, filled from the DuckDB views of
    the same name (a segctl project's engine connection); a nested column (a STRUCT, a MAP,
    a list) goes in as the JSON document DuckDB's ``to_json`` makes of it."""
    lines = [
        f"DROP SCHEMA IF EXISTS {schema} CASCADE;",
        f"CREATE SCHEMA {schema};",
        f"SET search_path TO {schema};",
    ]
    for create in create_statements(sql):
        table, columns = table_columns(create)
        path = folder / f"{schema}.{table}.csv"
        documents = json_columns(create)
        quoted = ", ".join(f'to_json("{c}")' if c in documents else f'"{c}"' for c in columns)
        con.execute(f"COPY (SELECT {quoted} FROM \"{table}\") TO '{path}' (HEADER)")
        lines += [create + ";", f"\\copy \"{table}\" FROM '{path}' CSV HEADER"]
    return "\n".join(lines) + "\n"
