"""``segctl report``: the figures it draws, its escaping, and the page in a real browser.

The browser tests drive headless Chromium through the DevTools protocol over a pipe
(``--remote-debugging-pipe``: no port, no websocket library) and skip, saying why, when no
Chromium is installed (`.ci/run` installs Debian's ``chromium`` when it can). The screenshot is
written to ``test-artifacts/`` at the repository root (or ``$SEGCTL_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import base64
import html
import itertools
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
from conftest import Cli
from fakes import TEST_SECRET, MetaFake, WebhookFake
from stateproject import AS_OF, write_project

import segctl as lib
from segctl import report
from segctl.analytics import OverlapRow, StatsRow
from segctl.report import charts
from segctl.report.svg import nice_ticks

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
CHARTS = ("flows", "growth", "overlap", "destinations")  # sizes: a panel per segment

ACTIVE = """\
    name: active
    rule: {event: "*", within: 7d, count: {gte: 1}}
    on_enter:
      - webhook: {destination: crm}
      - webhook: {destination: down}
    on_exit:
      - webhook: {destination: crm}
    audiences:
      - {destination: meta, audience_id: "AUDIENCE"}
    """


def build(root: Path, hook: WebhookFake, meta: MetaFake) -> Path:
    """The state project with a webhook that refuses some calls, one that is unreachable,
    and a Meta audience; one committed run per AS_OF."""
    write_project(root)
    audience = meta.create_audience()
    (root / "segctl.yaml").write_text(
        (root / "segctl.yaml").read_text()
        + dedent(f"""\
        destinations:
          crm: {{type: webhook, url: "{hook.url}", secret: "${{CRM_SECRET}}", backoff: 0.01,
                 max_retries: 0}}
          down: {{type: webhook, url: "http://127.0.0.1:9/hook", secret: "${{CRM_SECRET}}",
                  backoff: 0.01, max_retries: 0, timeout: 2}}
          meta: {{type: meta, ad_account_id: "1", access_token: meta-token,
                  base_url: "{meta.base_url}", backoff: 0.01}}
        """)
    )
    (root / "segments" / "active.yaml").write_text(dedent(ACTIVE).replace("AUDIENCE", audience))
    hook.inject(status=410, times=None)  # gone: a permanent failure, recorded with its message
    for moment in AS_OF:
        lib.Project.load(root).run(as_of=moment)
    return root


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    os.environ["CRM_SECRET"] = TEST_SECRET
    try:
        with WebhookFake(secret=TEST_SECRET) as hook, MetaFake() as meta:
            yield build(tmp_path_factory.mktemp("report") / "proj", hook, meta)
    finally:
        os.environ.pop("CRM_SECRET", None)


@pytest.fixture(scope="module")
def page(project: Path) -> str:
    return report.render(report.collect(lib.Project.load(project), days=30))


def titles(page: str) -> list[str]:
    """The tooltips (SVG <title>) of the page, unescaped."""
    return [html.unescape(t) for t in re.findall(r"<title>(.*?)</title>", page, re.S)]


# ---- what the page says -----------------------------------------------------------------


def test_sizes_chart_plots_every_committed_size(project: Path, page: str) -> None:
    lib_project = lib.Project.load(project)
    tips = titles(page)
    for segment in ("active", "buyers", "active_buyers"):
        for row in lib_project.history(segment):
            when = row.as_of.strftime("%Y-%m-%d %H:%MZ")
            assert f"{segment}: {row.size:,} at run {row.run_id} ({when})" in tips
    assert page.count('class="segment-line"') == 3
    assert page.count('<figure class="panel"') == 3


def test_sizes_are_drawn_on_a_time_axis(project: Path, page: str) -> None:
    """Runs at days 10, 11, 12 and 20: the points are spaced 1, 1 and 8 days apart."""
    panel = page.split('data-segment="active"', 1)[1].split("</figure>", 1)[0]
    xs = [float(v) for v in re.findall(r'<circle cx="([\d.]+)"', panel)]
    assert len(xs) == len(AS_OF) == 4
    gaps = [b - a for a, b in itertools.pairwise(xs)]
    days = [(b - a).days for a, b in itertools.pairwise(AS_OF)]
    assert days == [1, 1, 8]
    for gap, day in zip(gaps, days, strict=True):
        assert gap == pytest.approx(gaps[0] * day, rel=0.01)
    # Every panel shares the axis: the same run sits at the same x in each.
    for name in ("buyers", "active_buyers"):
        other = page.split(f'data-segment="{name}"', 1)[1].split("</figure>", 1)[0]
        assert [float(v) for v in re.findall(r'<circle cx="([\d.]+)"', other)] == xs


def test_each_panel_shows_the_segment_description_size_and_change(tmp_path: Path) -> None:
    root = write_project(tmp_path / "described")
    (root / "segments" / "active.yaml").write_text(
        "name: active\ndescription: Any event in the last week\n"
        'rule: {event: "*", within: 7d, count: {gte: 1}}\n'
    )
    for moment in AS_OF[:2]:
        lib.Project.load(root).run(as_of=moment)
    page = report.render(report.collect(lib.Project.load(root)))
    panel = page.split('data-segment="active"', 1)[1].split("</figure>", 1)[0]
    assert '<span class="description" title="Any event in the last week">' in panel
    sizes = [r.size for r in lib.Project.load(root).history("active")]
    assert f'<span class="size">{sizes[-1]:,}</span>' in panel
    assert f"{(sizes[-1] - sizes[0]) / sizes[0] * 100:+.1f}%" in panel
    buyers = page.split('data-segment="buyers"', 1)[1].split("</figure>", 1)[0]
    assert "no description" in buyers


HELD = """\
    name: NAME
    rule: {event: "*", within: 7d, count: {gte: 1}}
    """


def test_the_held_badge_marks_only_real_holds(tmp_path: Path) -> None:
    """Both segments lose more than max_exit_ratio of their members at run 2; only the one
    with an exit action has anything to hold."""
    root = write_project(tmp_path / "held")
    (root / "segctl.yaml").write_text(
        (root / "segctl.yaml").read_text()
        + "delivery: {max_exit_ratio: 0.1}\n"
        + "destinations:\n  crm: {type: webhook, url: 'http://127.0.0.1:9/h',\n"
        + "        secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}\n"
    )
    (root / "segments" / "active.yaml").write_text(
        dedent(HELD).replace("NAME", "active") + "on_exit:\n  - webhook: {destination: crm}\n"
    )
    (root / "segments" / "plain.yaml").write_text(dedent(HELD).replace("NAME", "plain"))
    for moment in AS_OF[:2]:
        lib.Project.load(root).run(as_of=moment)
    page = report.render(report.collect(lib.Project.load(root)))
    panels = {
        chunk.split('"', 1)[0]: chunk.split("</figure>", 1)[0]
        for chunk in page.split('<figure class="panel" data-segment="')[1:]
    }
    assert set(panels) == {"active", "active_buyers", "buyers", "plain"}
    held = {name for name, panel in panels.items() if 'class="badge held"' in panel}
    assert held == {"active"}
    assert "push --confirm active" in page and "push --confirm plain" not in page
    card = r'<div class="value">([^<]*)</div><div class="label">([^<]*)<'
    cards = {label: value for value, label in re.findall(card, page)}
    assert cards["held segments"] == "1"


def test_flows_chart_shows_entered_and_exited_of_each_run(project: Path, page: str) -> None:
    lib_project = lib.Project.load(project)
    tips = "\n".join(titles(page))
    for segment in ("active", "buyers"):
        for row in lib_project.history(segment)[1:]:
            if row.entered or row.exited:
                assert f"{segment}: +{row.entered:,} -{row.exited:,}" in tips
    first = lib_project.history("active")[0]
    assert f"active: +{first.entered:,} -0 (first run)" in tips


def test_overlap_and_growth_agree_with_the_library(project: Path, page: str) -> None:
    lib_project = lib.Project.load(project)
    pairs, _ = lib_project.overlap(["active", "active_buyers", "buyers"])
    tips = titles(page)
    for pair in pairs:
        assert any(
            t.startswith(f"{pair.a} & {pair.b}: {pair.both:,} in both; jaccard {pair.jaccard:.3f}")
            for t in tips
        ), pair
    # 9 cells for 3 segments, shaded by the Jaccard index.
    assert page.count('<g class="cell">') == 9
    for row in lib_project.stats(days=30):
        if row.growth_rate is not None:
            assert f"{row.segment}: {row.growth_rate * 100:+.1f}% ({row.size:,} members)" in tips


def test_destination_status_shows_failures_pending_and_audiences(project: Path, page: str) -> None:
    status = lib.Project.load(project).status()
    statuses = {(d["destination"], d["status"]): d["count"] for d in status["deliveries"]}
    assert statuses.get(("crm", "failed")), statuses  # 410 from the receiver
    assert statuses.get(("down", "pending")), statuses  # connection refused: retried later
    assert "HTTP 410: injected HTTP 410" in page  # the platform's message, as recorded
    tips = titles(page)
    assert f"crm: {statuses[('crm', 'failed')]:,} failed" in tips
    assert f"down: {statuses[('down', 'pending')]:,} pending" in tips
    [audience] = status["audiences"]
    assert audience["received"] and audience["last_sync_at"] is not None
    synced_at = audience["last_sync_at"].strftime("%Y-%m-%d %H:%MZ")
    assert (
        f"<td>{audience['audience']}</td><td>{synced_at}</td>"
        f'<td class="num">{audience["synced_members"]:,}</td>'
        f'<td class="num">{audience["received"]:,}</td>'
    ) in page
    cards = re.findall(r'<div class="value">([^<]*)</div><div class="label">([^<]*)<', page)
    assert dict((label, value) for value, label in cards)["failed deliveries"] == (
        f"{statuses[('crm', 'failed')]:,}"
    )


def test_days_limits_the_runs_shown(project: Path) -> None:
    # Runs are on days 10, 11, 12 and 20: one day back keeps run 4 and its baseline, run 3.
    data = report.collect(lib.Project.load(project), days=1)
    assert [r.run_id for r in data.runs] == [3, 4]
    page = report.render(data)
    assert "at run 1 " not in page and "at run 3 " in page
    assert "2 of 4 run(s) shown" in page


def test_the_page_loads_nothing_and_admits_only_its_own_script(page: str) -> None:
    assert not re.search(r"""(src|href)\s*=|@import|url\(|<link|<iframe|<object""", page, re.I)
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert len(scripts) == 1
    import hashlib

    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    [policy] = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    policy = html.unescape(policy)
    assert f"script-src 'sha256-{digest}'" in policy and "default-src 'none'" in policy


def hostile_data() -> report.ReportData:
    """Every user- or platform-provided string of the report set to markup."""
    runs = [
        report.RunFigures(
            run_id=i,
            kind=HOSTILE,
            as_of=datetime(2026, 3, 10 + i),
            segments={
                HOSTILE: report.SegmentFigures(10 + i, 3, 1, i == 1),
                "plain": report.SegmentFigures(5, 0, 0, i == 1),
            },
        )
        for i in (1, 2)
    ]
    return report.ReportData(
        title=HOSTILE,
        generated_at=datetime(2026, 3, 13),
        days=30,
        runs=runs,
        total_runs=2,
        stats=[
            StatsRow(HOSTILE, 12, 3, 1, 0.2, datetime(2026, 3, 11)),
            StatsRow("plain", 5, 0, 0, None, None),
        ],
        overlap_segments=sorted([HOSTILE, "plain"]),
        overlap=[OverlapRow(HOSTILE, "plain", 12, 5, 2, 0.16, 0.4, 0.13)],
        status={
            "runs": [
                {"run_id": 2, "kind": HOSTILE, "as_of": datetime(2026, 3, 12), "finished_at": None}
            ],
            "deliveries": [
                {
                    "destination": HOSTILE,
                    "kind": HOSTILE,
                    "status": HOSTILE,
                    "count": 2,
                    "last_error": HOSTILE,
                },
                {
                    "destination": HOSTILE,
                    "kind": "webhook",
                    "status": "failed",
                    "count": 1,
                    "last_error": HOSTILE,
                },
            ],
            "audiences": [
                {
                    "destination": HOSTILE,
                    "audience": HOSTILE,
                    "last_sync_at": datetime(2026, 3, 12),
                    "received": 5,
                    "invalid": 0,
                    "match_rate": 0.5,
                    "synced_members": 5,
                    "details": {},
                }
            ],
            "holds": [{"segment": HOSTILE, "run_id": 2, "reason": HOSTILE, "held_at": None}],
        },
    )


def test_hostile_strings_are_escaped_everywhere() -> None:
    page = report.render(hostile_data())
    assert "<img" not in page
    assert page.count("<script") == 1  # ours
    assert page.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") >= 10


def test_the_cli_writes_the_file(project: Path, tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "nested" / "report.html"
    result = cli("report", "--out", out, "--project", project, "--days", "30")
    assert out.is_file() and f"wrote {out}" in result.stderr
    written = out.read_text()
    for key in CHARTS:
        assert f'id="chart-{key}"' in written
    stdout = cli("report", "--out", "-", "--project", project).stdout
    assert stdout.startswith("<!DOCTYPE html>") and 'id="chart-sizes"' in stdout


def test_the_cli_refuses_bad_input(project: Path, tmp_path: Path, cli: Cli) -> None:
    result = cli("report", "--out", tmp_path / "report.pdf", "--project", project, code=2)
    assert "use a .html file name" in result.stderr
    cli("report", "--days", "0", "--project", project, code=2)
    fresh = write_project(tmp_path / "fresh")
    result = cli("report", "--project", fresh, code=2)
    assert "run `segctl run` first" in result.stderr


# ---- in a browser -----------------------------------------------------------------------


def chromium() -> str:
    for name in (os.environ.get("SEGCTL_CHROMIUM"), "chromium", "chromium-browser", "chrome"):
        if name and (path := shutil.which(name)):
            return path
    pytest.skip(
        "no Chromium found (install Debian's `chromium` package, as .ci/run does, or set "
        "SEGCTL_CHROMIUM): the report was not checked in a browser"
    )


class Browser:
    """A headless Chromium driven over the DevTools protocol on a pipe (fd 3 in, fd 4 out)."""

    def __init__(self, executable: str, profile: Path) -> None:
        args = [
            executable,
            "--headless",
            "--remote-debugging-pipe",
            "--no-sandbox",  # tests may run as root (containers)
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "about:blank",
        ]
        # The shell moves the pipes to fds 3 and 4, where Chromium expects them.
        self.proc = subprocess.Popen(
            ["sh", "-c", 'exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null', *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        self.next_id = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        buffer = b""
        while chunk := self.proc.stdout.read1(65536):
            buffer += chunk
            *whole, buffer = buffer.split(b"\0")
            for raw in whole:
                self.messages.put(json.loads(raw))

    def send(self, method: str, session: bool = False, **params: Any) -> int:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\0")
        self.proc.stdin.flush()
        return self.next_id

    def call(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        sent = self.send(method, session, **params)
        while True:
            reply = self.messages.get(timeout=30)
            if reply.get("id") == sent:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply["result"])
            self._event(reply)

    def _event(self, event: dict[str, Any]) -> None:
        if "id" in event:
            return  # the answer to a command sent without waiting
        self.events.append(event)
        if event.get("method") == "Page.javascriptDialogOpening":
            # An alert() would block the page: record it (a problem) and dismiss it.
            self.send("Page.handleJavaScriptDialog", True, accept=True)

    def wait_for(self, method: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            self._event(self.messages.get(timeout=max(0.1, deadline - time.monotonic())))

    def open(self, path: Path) -> None:
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", True)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            True,
            width=1280,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.events.clear()
        self.call("Page.navigate", True, url=path.as_uri())
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", True, expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, log errors (CSP included) and
        dialogs the page opened."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "warning"):
                found.append(f"console.{params['type']}: {params['args']}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails']}")
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                found.append(f"log: {params['entry']['text']}")
            elif method == "Page.javascriptDialogOpening":
                found.append(f"dialog: {params['message']}")
        return found

    def requests(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def screenshot(self, out: Path) -> Path:
        metrics = self.call("Page.getLayoutMetrics", True)["cssContentSize"]
        self.call(
            "Emulation.setDeviceMetricsOverride",
            True,
            width=1280,
            height=int(metrics["height"]) + 1,
            deviceScaleFactor=1,
            mobile=False,
        )
        data = self.call("Page.captureScreenshot", True, format="png")["data"]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(data))
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            self.send("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    instance = Browser(chromium(), tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield instance
    finally:
        instance.close()


def artifacts() -> Path:
    return Path(os.environ.get("SEGCTL_TEST_ARTIFACTS") or ROOT / "test-artifacts")


CHART_FACTS = """(() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.width, r.height]; };
  const charts = {};
  document.querySelectorAll("svg.chart").forEach((svg) => {
    charts[svg.id] = {size: box(svg), shapes: svg.querySelectorAll(
      "polyline, circle, rect").length};
  });
  return JSON.stringify({
    ready: document.documentElement.dataset.ready === "true",
    charts,
    panels: [...document.querySelectorAll("#chart-sizes figure.panel")].map((f) => {
      const r = f.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }),
    lines: [...document.querySelectorAll("#chart-sizes polyline")].map(
      (p) => [p.getAttribute("points").split(" ").length, box(p)[0]]),
    bars: document.querySelectorAll("#chart-flows rect.bar").length,
    cells: document.querySelectorAll("#chart-overlap g.cell").length,
    statuses: [...document.querySelectorAll("#chart-destinations rect.status")].map(
      (r) => r.dataset.status),
    scripts: document.querySelectorAll("script").length,
    images: document.querySelectorAll("img").length,
  });
})()"""


def test_the_report_renders_in_chromium(project: Path, browser: Browser, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "segctl", "report", "--out", str(out)),
            *("--project", str(project)),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    browser.open(out)
    facts = json.loads(browser.evaluate(CHART_FACTS))
    shot = browser.screenshot(artifacts() / "report.png")
    print(f"screenshot: {shot}")
    assert browser.problems() == []
    assert browser.requests() == [out.as_uri()]  # the page fetches nothing
    assert facts["ready"], "the page's script did not run (blocked by its CSP?)"
    assert sorted(facts["charts"]) == sorted(f"chart-{k}" for k in CHARTS)
    for chart, info in facts["charts"].items():
        width, height = info["size"]
        assert width > 200 and height > 50 and info["shapes"] > 0, (chart, info)
    assert len(facts["panels"]) == 3
    for _left, _top, width, height in facts["panels"]:
        assert width > 200 and height > 100
    boxes = facts["panels"]
    for i, a in enumerate(boxes):  # laid out side by side, none over another
        for b in boxes[i + 1 :]:
            apart_x = a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0]
            apart_y = a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1]
            assert apart_x or apart_y, (a, b)
    assert [points for points, _ in facts["lines"]] == [len(AS_OF)] * 3
    assert all(width > 100 for _, width in facts["lines"])
    assert facts["bars"] > 0 and facts["cells"] == 9
    assert {"sent", "failed", "pending"} <= set(facts["statuses"])
    assert facts["scripts"] == 1 and facts["images"] == 0
    assert shot.stat().st_size > 10_000


def test_panels_read_well_in_chromium(tmp_path: Path, browser: Browser) -> None:
    """The sample project's 17 segments: each panel shows its description in full lines of
    text (clamped to two), its line inside its box, and nothing overflows the page."""
    root = tmp_path / "sample"
    root.mkdir()
    for name in ("segctl.yaml", "features.yaml"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "segments", root / "segments")
    (root / "sample_data").symlink_to(ROOT / "sample_data")
    for moment in ("2026-10-01", "2026-10-02", "2026-10-20", "2026-11-16", "2026-11-17"):
        lib.Project.load(root).run(as_of=moment)
    out = tmp_path / "report.html"
    out.write_text(report.render(report.collect(lib.Project.load(root), days=60)))
    browser.open(out)
    facts = json.loads(
        browser.evaluate("""JSON.stringify([...document.querySelectorAll("figure.panel")].map(
          (f) => { const d = f.querySelector(".description"); const s = f.querySelector("svg");
            const fr = f.getBoundingClientRect(), sr = s.getBoundingClientRect();
            return {desc: d.innerText, descHeight: d.getBoundingClientRect().height,
                    inside: sr.left >= fr.left && sr.right <= fr.right + 1,
                    page: fr.right <= document.documentElement.clientWidth}; }))""")
    )
    browser.screenshot(artifacts() / "report-sample.png")
    assert browser.problems() == []
    assert len(facts) == 17
    descriptions = {s.description for s in lib.Project.load(root).definitions.segments.values()}
    assert {f["desc"] for f in facts} <= descriptions | {"no description"}
    assert all(f["descHeight"] > 10 and f["inside"] and f["page"] for f in facts), facts


def test_hostile_strings_stay_text_in_chromium(browser: Browser, tmp_path: Path) -> None:
    out = tmp_path / "hostile.html"
    out.write_text(report.render(hostile_data()))
    browser.open(out)
    facts = json.loads(browser.evaluate(CHART_FACTS))
    text = browser.evaluate("document.body.innerText")
    browser.screenshot(artifacts() / "report-hostile.png")
    assert browser.problems() == []  # no alert() dialog, no blocked script
    assert facts["scripts"] == 1 and facts["images"] == 0 and facts["ready"]
    assert HOSTILE in text


def test_an_outlier_does_not_flatten_the_growth_chart() -> None:
    rows = [StatsRow(f"s{i}", 10, 1, 0, rate, None) for i, rate in enumerate([50.0, 0.4, 0.2])]
    svg = charts.growth_chart(rows)
    widths = [float(w) for w in re.findall(r'<rect class="bar entered" [^>]*width="([\d.]+)"', svg)]
    # The outlier is cut at the edge (1.5x the runner-up), its number still written in full.
    assert widths[0] == pytest.approx(widths[1] * 1.5, rel=0.01)
    assert widths[1] == pytest.approx(widths[2] * 2, rel=0.01)
    assert "+5000.0%" in svg
    assert nice_ticks(0) == [0, 1]
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(1234)[-1] >= 1234 and len(nice_ticks(1234)) <= 7
