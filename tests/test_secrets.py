"""Secrets and PII (SPEC 1 and 6): configured tokens and secrets never appear in anything segctl
prints or stores, and ad platforms never receive a raw email or phone.

The scenario of ``fakes.scenario`` configures a distinctive secret per destination (from the
environment). Every command runs in process through the CLI, errors included, with ``--debug``
where it has it; the platforms misbehave the worst way, by echoing the credential they were
sent in their error messages. Then everything is searched: stdout and stderr of every command,
every file in the project (the state database dumped to text table by table, emitted events,
audience files, the lock file), and every request the platforms received (a token belongs in
a header, never in a URL, a query or a body).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from fakes.scenario import (
    AS_OF,
    SECRET_STRINGS,
    SECRETS,
    Platforms,
    environment,
    iso,
    persons,
    write_project,
)
from typer.testing import CliRunner

from segctl.cli import app
from segctl.delivery.identifiers import normalize_phone

FAST = {"max_retries": 1, "backoff": 0.01, "timeout": 2}


@pytest.fixture
def platforms() -> Iterator[Platforms]:
    with Platforms() as started:
        yield started


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SEGCTL_PROJECT", raising=False)


def echo_secrets(platforms: Platforms) -> None:
    """Every platform refuses, quoting the credential it received (permanent errors: they are
    recorded in the state and shown by status)."""
    platforms.hook.inject(
        status=400, message=f"bad signature, secret was {SECRETS['CRM_SECRET']}", times=3
    )
    platforms.resend.inject(
        status=422, message=f"key {SECRETS['RESEND_KEY']} may not send", endpoint="send_batch"
    )
    platforms.meta.inject(
        status=400, message=f"Invalid OAuth access token {SECRETS['META_TOKEN']}", times=2
    )
    platforms.google.inject(
        status=400, message=f"Bearer {SECRETS['GOOGLE_TOKEN']} lacks the scope", times=2
    )
    platforms.tiktok.inject(status=400, message=f"Access-Token {SECRETS['TIKTOK_TOKEN']}")


def run_commands(root: Path) -> list[tuple[list[str], str, str]]:
    """(command, stdout, stderr) of a tour of the CLI, errors included."""
    runner = CliRunner()
    commands = [
        ["validate"],
        ["compile", "active"],
        ["run", "--as-of", iso(AS_OF[0]), "--fire-initial", "--debug"],
        ["status"],
        ["status", "--format", "json"],
        ["push", "--debug"],
        ["run", "--as-of", iso(AS_OF[1]), "--format", "json", "--debug"],
        ["run", "--as-of", iso(AS_OF[0]), "--debug"],  # not after the last run: an error
        ["diff", "--format", "json"],
        ["history", "active", "--format", "csv"],
        ["members", "active", "--format", "json"],
        ["person", "u01", "--format", "json"],
        ["sync", "active", "meta", "--dry-run", "--debug"],
        ["sync", "buyers", "tiktok", "--debug"],
        ["sync", "active", "nowhere", "--debug"],  # unknown destination: an error
        ["tags", "--format", "csv"],
        ["stats", "--format", "json"],
        ["forget", "u04", "--debug"],
        ["status", "--format", "csv"],
    ]
    out = []
    for command in commands:
        result = runner.invoke(app, [*command, "--project", str(root)])
        assert result.exit_code in (0, 1, 2, 5), (command, result.output)
        assert "Traceback" not in result.stdout
        out.append((command, result.stdout, result.stderr))
    return out


def stored_text(root: Path) -> Iterator[tuple[str, str]]:
    """(where, text) of everything segctl wrote under the project."""
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        where = str(path.relative_to(root))
        if path.name == "state.duckdb":
            con = duckdb.connect(str(path), read_only=True)
            try:
                for (table,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall():
                    rows = con.execute(f'SELECT * FROM "{table}"').fetchall()
                    yield f"{where}:{table}", repr(rows)
            finally:
                con.close()
        elif path.suffix == ".parquet":
            yield where, repr(pq.read_table(path).to_pylist())
        yield where, path.read_bytes().decode("utf-8", "replace")


def test_no_secret_in_any_output_state_or_file(tmp_path: Path, platforms: Platforms) -> None:
    root = write_project(tmp_path / "proj", platforms, common=FAST)
    echo_secrets(platforms)
    outputs = run_commands(root)
    # The echoes did happen, and were recorded (with the secret masked).
    assert any("***" in stderr for _, _, stderr in outputs)
    status = json.loads(next(out for c, out, _ in outputs if c == ["status", "--format", "json"]))
    errors = [d["last_error"] for d in status["deliveries"] if d["status"] == "failed"]
    assert errors and all("***" in e for e in errors), "\n".join(errors)
    for command, stdout, stderr in outputs:
        for secret in SECRET_STRINGS:
            assert secret not in stdout, (command, "stdout")
            assert secret not in stderr, (command, "stderr")
    found = [(where, s) for where, text in stored_text(root) for s in SECRET_STRINGS if s in text]
    assert found == [], found


def test_no_raw_email_or_phone_reaches_an_ad_platform_and_tokens_only_in_headers(
    tmp_path: Path, platforms: Platforms
) -> None:
    """Beyond the fakes' own check (anything not a digest is a leak), look for every person's
    email and phone, as written and normalised, in everything the ad platforms received (adds
    and removals); and for the tokens anywhere but in headers, on every platform."""
    root = write_project(tmp_path / "proj", platforms, common=FAST)
    for moment in AS_OF[:2]:
        args = ["run", "--as-of", iso(moment), "--fire-initial", "--project", str(root)]
        assert CliRunner().invoke(app, args).exit_code == 0
    raw: set[str] = set()
    for person in persons():
        if person["email"]:
            raw |= {person["email"], person["email"].lower(), person["email"].split("@")[0]}
        if person["phone"]:
            raw.add(person["phone"])
            for platform in ("meta", "google", "tiktok"):
                raw.add(str(normalize_phone(person["phone"], person["country"], platform)))
    for fake in (platforms.meta, platforms.google, platforms.tiktok):
        assert fake.pii_leaks == []
        received = [
            r.path
            + json.dumps(r.query)
            + r.body.decode("latin-1")
            + "".join(data.decode("latin-1") for _, data in r.files.values())
            for r in fake.requests
        ]
        assert received
        leaks = [value for value in raw for text in received if value in text]
        assert leaks == [], (type(fake).__name__, leaks[:5])
    # Emails and webhooks go to our own systems and Resend: they do carry the email.
    assert any(p["email"] in e["to"] for p in persons() for e in platforms.resend.emails)
    for fake in platforms.all:
        for request in fake.requests:
            visible = request.path + json.dumps(request.query) + request.body.decode("latin-1")
            for secret in SECRET_STRINGS:
                assert secret not in visible, (type(fake).__name__, request.path)


def test_a_secret_in_an_internal_error_is_masked_even_with_debug(
    tmp_path: Path, platforms: Platforms, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last line of defence: an unexpected exception quoting a secret (in its message and
    its traceback) prints masked."""
    from segctl.delivery import worker

    def boom(self: object) -> None:
        raise RuntimeError(f"could not sign with {SECRETS['CRM_SECRET']}")

    monkeypatch.setattr(worker.Worker, "webhooks", boom)
    root = write_project(tmp_path / "proj", platforms, common=FAST)
    args = ["run", "--as-of", iso(AS_OF[0]), "--debug", "--project", str(root)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 70
    assert "Traceback" in result.stderr and "could not sign with ***" in result.stderr
    assert all(secret not in result.output for secret in SECRET_STRINGS)
