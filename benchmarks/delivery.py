"""Benchmark: a 100,000-member audience to the Meta, Google and TikTok fakes at once, and
10,000 webhooks, through ``segctl run`` (issue 4: goal under 15 s on 2 cores).

    python benchmarks/delivery.py [--persons 100000] [--webhooks 10000] [--webhook-batch 100]

The fakes (tests/fakes) are real HTTP servers on 127.0.0.1 enforcing the platform contracts
(batch limits, hash formats, sessions). They run in a process of their own, as a real platform
would: in segctl's process their JSON work would compete with segctl for the GIL. For a
baseline measured in the same run, a bare httpx loop sends the same number of equivalent
requests (pre-built bodies, no state, no hashing) to the same fakes; the ratio shows what
segctl's reconciliation, hashing, retries and bookkeeping cost on top of the wire. The CPU
time of segctl's process and of the fakes' process during the run are printed too: on a
shared machine they move less than wall time.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from textwrap import dedent
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fakes import TEST_SECRET, GoogleFake, MetaFake, TikTokFake, WebhookFake

import segctl
from segctl.delivery.identifiers import hash_identity

TIKTOK = "/open_api/v1.3"


def write_project(
    root: Path, persons: int, webhooks: int, batch: int, urls: dict[str, str], ids: dict[str, str]
) -> None:
    (root / "segments").mkdir(parents=True)
    rows = ["person_id,email,phone,country,n"] + [
        f"u{i:07d},user{i}@example.com,+1 555 {i // 10000:03d} {i % 10000:04d},US,{i}"
        for i in range(persons)
    ]
    (root / "persons.csv").write_text("\n".join(rows) + "\n")
    (root / "events.csv").write_text(
        "person_id,event,timestamp\nu0000000,login,2026-01-01T00:00:00Z\n"
    )
    (root / "segctl.yaml").write_text(
        dedent(f"""\
        data: {{events: events.csv, persons: persons.csv}}
        destinations:
          meta: {{type: meta, ad_account_id: "1", access_token: meta-token,
                  base_url: "{urls["meta"]}"}}
          google: {{type: google, operating_account_id: "1234567890",
                    access_token: google-token, base_url: "{urls["google"]}"}}
          tiktok: {{type: tiktok, advertiser_id: "7001", access_token: tiktok-token,
                    base_url: "{urls["tiktok"]}{TIKTOK}"}}
          hooks: {{type: webhook, url: "{urls["webhook"]}", secret: "{TEST_SECRET}",
                   rate_limit: 5000, concurrency: 8}}
        """)
    )
    (root / "segments" / "everyone.yaml").write_text(
        dedent(f"""\
        name: everyone
        rule: {{property: email, is_set: true}}
        audiences:
          - {{destination: meta, audience_id: "{ids["meta"]}", mode: mirror}}
          - {{destination: google, user_list_id: "7001234"}}
          - {{destination: tiktok, audience_id: "{ids["tiktok"]}", mode: mirror}}
        """)
    )
    (root / "segments" / "hooked.yaml").write_text(
        dedent(f"""\
        name: hooked
        rule: {{property: n, lt: {webhooks}}}
        on_enter:
          - webhook: {{destination: hooks, batch: {batch}}}
        """)
    )


def tiktok_audience(fake: TikTokFake, client: httpx.Client) -> str:
    content = (hashlib.sha256(b"seed@example.com").hexdigest() + "\n").encode()
    headers = {"Access-Token": "tiktok-token"}
    upload = client.post(
        f"{fake.base_url}{TIKTOK}/dmp/custom_audience/file/upload/",
        headers=headers,
        files={"file": ("seed.txt", content)},
        data={
            "advertiser_id": "7001",
            "calculate_type": "EMAIL_SHA256",
            "file_signature": hashlib.md5(content).hexdigest(),
        },
    ).json()
    created = client.post(
        f"{fake.base_url}{TIKTOK}/dmp/custom_audience/create/",
        headers=headers,
        json={
            "advertiser_id": "7001",
            "custom_audience_name": "bench",
            "calculate_type": "EMAIL_SHA256",
            "file_paths": [upload["data"]["file_path"]],
        },
    ).json()
    return str(created["data"]["custom_audience_id"])


def baseline(
    persons: int, webhooks: int, batch: int, urls: dict[str, str], ids: dict[str, str]
) -> float:
    """The same number of equivalent requests from a bare httpx loop."""
    hashes = [hashlib.sha256(f"user{i}@example.com".encode()).hexdigest() for i in range(persons)]
    started = time.perf_counter()
    with httpx.Client(timeout=60) as client:
        for seq, start in enumerate(range(0, persons, 10_000), start=1):
            chunk = hashes[start : start + 10_000]
            client.post(
                f"{urls['meta']}/v25.0/{ids['meta']}/usersreplace",
                headers={"Authorization": "Bearer meta-token"},
                json={
                    "payload": {"schema": ["EMAIL", "PHONE"], "data": [[h, ""] for h in chunk]},
                    "session": {
                        "session_id": 42,
                        "batch_seq": seq,
                        "last_batch_flag": start + 10_000 >= persons,
                        "estimated_num_total": persons,
                    },
                },
            )
            client.post(
                f"{urls['google']}/v1/audienceMembers:ingest",
                headers={"Authorization": "Bearer google-token"},
                json={
                    "destinations": [
                        {
                            "operatingAccount": {
                                "accountType": "GOOGLE_ADS",
                                "accountId": "1234567890",
                            },
                            "productDestinationId": "7009999",
                        }
                    ],
                    "audienceMembers": [
                        {"userData": {"userIdentifiers": [{"emailAddress": h}]}} for h in chunk
                    ],
                    "consent": {
                        "adUserData": "CONSENT_GRANTED",
                        "adPersonalization": "CONSENT_GRANTED",
                    },
                    "encoding": "HEX",
                    "termsOfService": {"customerMatchTermsOfServiceStatus": "ACCEPTED"},
                    "validateOnly": False,
                },
            )
        content = ("\n".join(hashes) + "\n").encode()
        upload = client.post(
            f"{urls['tiktok']}{TIKTOK}/dmp/custom_audience/file/upload/",
            headers={"Access-Token": "tiktok-token"},
            files={"file": ("a.txt", content)},
            data={
                "advertiser_id": "7001",
                "calculate_type": "EMAIL_SHA256",
                "file_signature": hashlib.md5(content).hexdigest(),
            },
        ).json()
        client.post(
            f"{urls['tiktok']}{TIKTOK}/dmp/custom_audience/update/",
            headers={"Access-Token": "tiktok-token"},
            json={
                "advertiser_id": "7001",
                "custom_audience_id": ids["tiktok"],
                "file_paths": [upload["data"]["file_path"]],
                "action": "REPLACE",
            },
        )
        from fakes import sign

        for n in range(0, webhooks, batch):
            body = (
                b"["
                + b",".join(b'{"person_id": "x"}' for _ in range(min(batch, webhooks - n)))
                + b"]"
            )
            msg = f"msg_bench_{n}"
            stamp = int(time.time())
            client.post(
                urls["webhook"],
                content=body,
                headers={
                    "webhook-id": msg,
                    "webhook-timestamp": str(stamp),
                    "webhook-signature": sign(TEST_SECRET, msg, stamp, body),
                },
            )
    return time.perf_counter() - started


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def serve_fakes(conn: Connection, persons: int, webhooks: int) -> None:
    """The fakes' process: start them, send their addresses and audience ids, answer requests
    for the CPU time used so far, and at the end check what they hold."""
    with (
        MetaFake(latency=0) as meta,
        GoogleFake(latency=0) as google,
        TikTokFake(latency=0) as tiktok,
        WebhookFake(secret=TEST_SECRET) as hook,
        httpx.Client() as setup,
    ):
        # The baseline writes to audiences of its own, so it cannot disturb segctl's.
        conn.send(
            {
                "urls": {
                    "meta": meta.base_url,
                    "google": google.base_url,
                    "tiktok": tiktok.base_url,
                    "webhook": hook.url,
                },
                "ids": {"meta": meta.create_audience(), "tiktok": tiktok_audience(tiktok, setup)},
                "own": {"meta": meta.create_audience(), "tiktok": tiktok_audience(tiktok, setup)},
            }
        )
        while (command := conn.recv()) == "cpu":
            conn.send(cpu_seconds())
        ids = command
        expected = {
            hash_identity({"person_id": f"u{i:07d}", "email": f"user{i}@example.com"}, "meta").email
            for i in range(persons)
        }
        checks = {
            "meta": {row[0] for row in meta.audience(ids["meta"])} == expected,
            "google": expected <= set(google.identifiers("7001234", "emailAddress")),
            "tiktok": tiktok.audience(ids["tiktok"]) == expected,
            # The baseline's webhooks go to the same receiver, for person "x".
            "webhooks": sorted(e["person_id"] for e in hook.events() if e["person_id"] != "x")
            == [f"u{i:07d}" for i in range(webhooks)],
        }
        limits = []
        for fake in (meta, google, tiktok, hook):
            try:
                fake.assert_limits()
            except AssertionError as exc:
                limits.append(str(exc))
        conn.send({"wrong": [name for name, ok in checks.items() if not ok], "limits": limits})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--webhooks", type=int, default=10_000)
    parser.add_argument("--webhook-batch", type=int, default=100)
    args = parser.parse_args()

    conn, child_end = multiprocessing.get_context("spawn").Pipe()
    fakes_process = multiprocessing.get_context("spawn").Process(
        target=serve_fakes, args=(child_end, args.persons, args.webhooks), daemon=True
    )
    fakes_process.start()
    try:
        started_fakes: dict[str, Any] = conn.recv()
        urls, ids, own = started_fakes["urls"], started_fakes["ids"], started_fakes["own"]
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "project"
            write_project(root, args.persons, args.webhooks, args.webhook_batch, urls, ids)
            base_cpu = cpu_seconds()
            base = baseline(args.persons, args.webhooks, args.webhook_batch, urls, own)
            base_cpu = cpu_seconds() - base_cpu

            project = segctl.Project.load(root)
            started = time.perf_counter()
            project.evaluate(as_of="2026-06-01T00:00:00Z")
            evaluation = time.perf_counter() - started
            project = segctl.Project.load(root)
            conn.send("cpu")
            fakes_cpu = conn.recv()
            cpu = cpu_seconds()
            started = time.perf_counter()
            result = project.run(as_of="2026-06-01T00:00:00Z", fire_initial=True)
            total = time.perf_counter() - started
            cpu = cpu_seconds() - cpu
            conn.send("cpu")
            fakes_cpu = conn.recv() - fakes_cpu
            delivery = total - evaluation
        conn.send(ids)
        checked: dict[str, list[str]] = conn.recv()
    finally:
        fakes_process.join(timeout=30)
        if fakes_process.is_alive():
            fakes_process.kill()

    report = result.report
    wrong = checked["wrong"]
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f} (1 min) {os.getloadavg()[1]:.1f} (5 min)"
    )
    print(
        f"{args.persons:,} members to Meta + Google + TikTok, {args.webhooks:,} webhooks "
        f"in batches of {args.webhook_batch}; the fakes in a process of their own"
    )
    print(f"{'method':<40}{'seconds':>9}{'vs baseline':>13}{'CPU s':>8}")
    print(f"{'baseline: bare httpx, same requests':<40}{base:>9.2f}{1:>12.2f}x{base_cpu:>8.2f}")
    print(f"{'segctl run: delivery (run - evaluate)':<40}{delivery:>9.2f}{delivery / base:>12.2f}x")
    print(f"{'segctl run: total':<40}{total:>9.2f}{total / base:>12.2f}x{cpu:>8.2f}")
    print(f"CPU of the fakes' process during the segctl run: {fakes_cpu:.2f} s")
    print(
        f"throughput: {3 * args.persons / delivery:,.0f} audience members/s, "
        f"{args.webhooks / delivery:,.0f} webhooks/s (all in parallel)"
    )
    print(
        f"delivered: sent={report.sent if report else 0}, "
        f"failed={report.failed if report else 0}; platform limits "
        f"{'exceeded: ' + '; '.join(checked['limits']) if checked['limits'] else 'never exceeded'}"
        f"; audiences and webhooks exact: {'NO: ' + ', '.join(wrong) if wrong else 'yes'}"
    )
    print(f"goal < 15 s: {'PASS' if total < 15 else 'FAIL'} ({total:.1f} s)")


if __name__ == "__main__":
    main()
