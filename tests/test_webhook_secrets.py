"""Webhook secrets read as the official ``standardwebhooks`` library reads them (API_CONTRACTS.md,
"Webhooks"): every form a user may paste is verified by the official library, end to end through
``segctl run`` against the receiver fake; unreadable secrets are ``validate`` errors (exit 3,
naming the destination, never the secret); a short key is a warning."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent

import pytest
from fakes import WebhookFake
from standardwebhooks import Webhook
from stateproject import AS_OF, iso, segctl, write_project

import segctl as lib
from segctl.definitions.destinations import SecretError, secret_key
from segctl.delivery.signing import headers

KEY = bytes(range(32))  # a 32-byte key
B64 = base64.b64encode(KEY).decode()  # ends in '=': padded
UNPADDED_KEY = bytes(range(40, 65))  # 25 bytes: base64 ends in '=='
UNPADDED = base64.b64encode(UNPADDED_KEY).decode().rstrip("=")

#: Every form of a secret a user may configure -> the secret the receiver verifies with.
FORMS = {
    "whsec_ padded": (f"whsec_{B64}", f"whsec_{B64}"),
    "whsec_ without padding": (f"whsec_{UNPADDED}", f"whsec_{UNPADDED}"),
    "whsec_ with a trailing newline": (f"whsec_{B64}\n", f"whsec_{B64}"),
    "whsec_ unpadded with a trailing newline": (f"whsec_{UNPADDED}\r\n", f"whsec_{UNPADDED}"),
    "spaces around": (f"  whsec_{B64}\t", f"whsec_{B64}"),
    "no prefix": (B64, B64),
    "no prefix, no padding": (UNPADDED, UNPADDED),
    "no prefix, trailing newline": (f"{B64}\n", B64),
}


@pytest.mark.parametrize(("configured", "receiver"), FORMS.values(), ids=list(FORMS))
def test_the_official_library_verifies_every_secret_form(configured: str, receiver: str) -> None:
    body = json.dumps({"type": "segment.entered", "person_id": "p1"}).encode()
    now = int(datetime.now(UTC).timestamp())
    sent = headers(configured, "msg_abc", now, body)
    assert Webhook(receiver).verify(body, sent) == json.loads(body)
    # The same key the official library decodes, not merely a signature that happens to match.
    assert secret_key(configured) == Webhook(receiver)._whsecret


@pytest.mark.parametrize(
    "secret",
    ["", "   ", "whsec_", "whsec_\n", "whsec_==", "whsec_not base64!", "whsec_abc-_def", "abcde"],
)
def test_empty_or_non_base64_secrets_are_refused(secret: str) -> None:
    with pytest.raises(SecretError) as refused:
        secret_key(secret)
    assert "empty" in str(refused.value) or "not base64" in str(refused.value)


def project(tmp_path: Path, hook: WebhookFake) -> Path:
    root = write_project(tmp_path / "proj")
    (root / "segctl.yaml").write_text(
        (root / "segctl.yaml").read_text()
        + dedent(f"""\
        destinations:
          crm: {{type: webhook, url: "{hook.url}", secret: "${{CRM_SECRET}}", backoff: 0.01,
                 max_retries: 1}}
        """)
    )
    (root / "segments" / "active.yaml").write_text(
        dedent("""\
        name: active
        rule: {event: "*", within: 7d, count: {gte: 1}}
        on_enter:
          - webhook: {destination: crm}
        """)
    )
    return root


@pytest.mark.parametrize(
    ("configured", "receiver"),
    [FORMS[k] for k in ("whsec_ without padding", "whsec_ with a trailing newline", "no prefix")],
    ids=["unpadded", "trailing-newline", "no-prefix"],
)
def test_segctl_run_delivers_with_every_secret_form(
    tmp_path: Path, configured: str, receiver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once ``run`` exited 70 on an unpadded secret and every webhook stayed pending; a
    no-prefix secret was signed with its raw bytes and nothing verified."""
    with WebhookFake(secret=receiver) as hook:  # the fake verifies with standardwebhooks
        root = project(tmp_path, hook)
        env = {**os.environ, "CRM_SECRET": configured}
        ok = segctl(root, "validate", env=env)
        assert ok.returncode == 0, ok.stderr
        proc = segctl(root, "run", "--as-of", iso(AS_OF[0]), "--fire-initial", env=env)
        assert proc.returncode == 0, proc.stderr
        monkeypatch.setenv("CRM_SECRET", configured)
        active = lib.Project.load(root).evaluate(["active"], as_of=AS_OF[0]).members("active")
        assert sorted(e["person_id"] for e in hook.events()) == sorted(
            active["person_id"].to_list()
        )
        assert hook.calls("deliver") and all(r.status == 204 for r in hook.calls("deliver"))


@pytest.mark.parametrize(
    ("secret", "why"),
    [("whsec_", "empty"), ("whsec_bm90LWJhc2U2NA-_", "not base64"), ("whsec_abcde", "not base64")],
)
def test_validate_refuses_an_unreadable_secret_naming_the_destination_not_the_secret(
    tmp_path: Path, secret: str, why: str
) -> None:
    with WebhookFake() as hook:
        root = project(tmp_path, hook)
        env = {**os.environ, "CRM_SECRET": secret}
        for command in (("validate",), ("run", "--as-of", iso(AS_OF[0]))):
            proc = segctl(root, *command, env=env)
            assert proc.returncode == 3, (command, proc.stderr)
            assert "segctl.yaml:" in proc.stderr and "destination 'crm'" in proc.stderr
            assert why in proc.stderr
            if secret != "whsec_":
                assert secret.removeprefix("whsec_") not in proc.stderr + proc.stdout
        assert not (root / ".segctl").exists() or hook.deliveries == []


def test_a_short_key_is_a_warning_not_an_error(tmp_path: Path) -> None:
    short = "whsec_" + base64.b64encode(b"0123456789").decode()  # 10 bytes
    with WebhookFake(secret=short) as hook:
        root = project(tmp_path, hook)
        env = {**os.environ, "CRM_SECRET": short}
        proc = segctl(root, "validate", env=env)
        assert proc.returncode == 0, proc.stderr
        assert "warning: destination 'crm'" in proc.stderr and "10 bytes" in proc.stderr
        assert "under the Standard Webhooks minimum of 24" in proc.stderr
        assert short.removeprefix("whsec_") not in proc.stderr
