"""Progress and terminal output: bars on a terminal, nothing with --quiet or when piped, no
escape codes under NO_COLOR, and the library's progress reports behind them.

Terminal behaviour is checked on a real pseudo-terminal (``pty``), with the real command in a
subprocess, as a user at a shell would see it.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from textwrap import dedent

import pytest
from fakes import TEST_SECRET, WebhookFake
from stateproject import AS_OF, iso, write_project

import segctl as lib
from segctl import progress

ROOT = Path(__file__).resolve().parent.parent
SGR = re.compile(r"\x1b\[[0-9;]*m")  # colour and style (bold, italic...) escapes
ESCAPE = re.compile(r"\x1b")


@dataclass
class Terminal:
    """What a command wrote: ``terminal`` is everything that reached the pseudo-terminal."""

    returncode: int
    terminal: str
    stdout: str = ""


def command_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NO_COLOR", "FORCE_COLOR", "SEGCTL_PROJECT", "TERM", "COLUMNS")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["TERM"] = "xterm-256color"
    env["CRM_SECRET"] = TEST_SECRET
    return {**env, **extra}


def in_terminal(args: list[str], *, stdout_tty: bool = False, **env: str) -> Terminal:
    """Run ``segctl ARGS`` with stderr (and with ``stdout_tty`` stdout too) on a pty."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "segctl", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave if stdout_tty else subprocess.PIPE,
        stderr=slave,
        env=command_env(**env),
    )
    os.close(slave)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the command closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read)
    reader.start()
    stdout = proc.stdout.read().decode() if proc.stdout is not None else ""
    if proc.stdout is not None:
        proc.stdout.close()
    proc.wait(timeout=300)
    reader.join(timeout=30)
    os.close(master)
    return Terminal(proc.returncode, b"".join(chunks).decode(errors="replace"), stdout)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("output") / "proj")


# ---- the library reports, a listener hears ----------------------------------------------


@dataclass
class Recorder:
    phases: list[str] = field(default_factory=list)
    tasks: dict[str, list[int]] = field(default_factory=dict)  # description -> [total, done]

    def phase(self, description: str) -> None:
        self.phases.append(description)

    def task(self, description: str, total: int) -> Callable[[int], None]:
        self.tasks[description] = [total, 0]

        def advance(steps: int = 1) -> None:
            self.tasks[description][1] += steps

        return advance


def with_webhook(root: Path, hook: WebhookFake) -> Path:
    (root / "segctl.yaml").write_text(
        (root / "segctl.yaml").read_text()
        + dedent(f"""\
        destinations:
          crm: {{type: webhook, url: "{hook.url}", secret: "${{CRM_SECRET}}", backoff: 0.01}}
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


def test_the_library_reports_phases_and_delivery_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_SECRET", TEST_SECRET)
    with WebhookFake() as hook:
        root = with_webhook(write_project(tmp_path / "proj"), hook)
        recorder = Recorder()
        with progress.listening(recorder):
            lib.Project.load(root).run(as_of=AS_OF[0], fire_initial=True)
        sent = len(hook.unique_ids())
    assert sent > 0
    assert recorder.phases[:3] == [
        f"Evaluating 3 segment(s) as of {iso(AS_OF[0])}",
        "Committing the run",
        "Delivering",
    ]
    assert recorder.tasks == {"Sending to crm": [sent, sent]}  # one step per webhook batch
    # Outside a listener, reports cost nothing and go nowhere.
    progress.phase("unheard")
    progress.task("unheard", 3)(1)
    assert "unheard" not in recorder.phases and "unheard" not in recorder.tasks


def test_backfill_counts_its_times(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj")
    recorder = Recorder()
    with progress.listening(recorder):
        lib.Project.load(root).backfill(iso(AS_OF[0]), iso(AS_OF[2]), "1d")
    assert recorder.tasks == {"Backfilling": [3, 3]}
    assert sum(p.startswith("Evaluating 3 segment(s)") for p in recorder.phases) == 3


# ---- what reaches the terminal ----------------------------------------------------------


def test_run_draws_progress_bars_on_a_terminal(tmp_path: Path) -> None:
    # A slow receiver keeps the delivery bar on screen for a few refreshes.
    with WebhookFake(latency=0.6) as hook:
        root = with_webhook(write_project(tmp_path / "proj"), hook)
        shown = in_terminal(
            ["run", "--as-of", iso(AS_OF[0]), "--fire-initial", "--project", str(root)]
        )
    assert shown.returncode == 0, shown.terminal
    assert "Sending to crm" in shown.terminal
    assert re.search(r"\d+/\d+", shown.terminal)  # the bar's count
    assert "\x1b[?25l" in shown.terminal  # the live display hid the cursor (and restored it)
    # stdout is piped: a plain table, no escapes, nothing of the progress display.
    assert not ESCAPE.search(shown.stdout) and "Sending" not in shown.stdout
    assert shown.stdout.splitlines()[0].startswith("Run 1 as of ")


def test_no_color_means_no_colour_or_style_escapes(project: Path) -> None:
    args = ["evaluate", "--as-of", iso(AS_OF[0]), "--project", str(project)]
    coloured = in_terminal(args, stdout_tty=True)
    assert coloured.returncode == 0 and SGR.search(coloured.terminal)  # the control case
    plain = in_terminal(args, stdout_tty=True, NO_COLOR="1")
    assert plain.returncode == 0, plain.terminal
    assert "active_buyers" in plain.terminal  # the rich table is there...
    assert not SGR.search(plain.terminal)  # ...without colour or bold


def test_quiet_shows_no_progress(project: Path) -> None:
    args = ["evaluate", "--as-of", iso(AS_OF[0]), "--project", str(project)]
    loud = in_terminal(args)
    assert "Evaluating" in loud.terminal  # the control case: a spinner on stderr
    quiet = in_terminal([*args, "--quiet"])
    assert quiet.returncode == 0
    assert quiet.terminal == ""  # nothing at all on the terminal's stderr
    assert "active_buyers" in quiet.stdout


def test_piped_output_is_plain(project: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "segctl", "evaluate", "--as-of", iso(AS_OF[0])],
        cwd=project,
        capture_output=True,
        text=True,
        env=command_env(),
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert not ESCAPE.search(proc.stdout)
    header = proc.stdout.splitlines()[1].split()
    assert header == ["segment", "size", "entered", "exited"]


def test_shell_completion_is_installed_for_segctl(tmp_path: Path) -> None:
    env = command_env(_SEGCTL_COMPLETE="complete_bash", COMP_WORDS="segctl rep", COMP_CWORD="1")
    proc = subprocess.run(
        [sys.executable, "-m", "segctl"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.stdout.split() == ["report"]
    # --show-completion prints the script of the shell it runs under (shellingham walks up
    # the process tree): from bash, as a user would. Run straight from pytest, it failed
    # ("Shell  not supported.") whenever no ancestor was a shell, e.g. under `timeout` or
    # nohup after the launching shell exited; its "bash" argument was never read.
    shown = subprocess.run(
        ["bash", "-c", f'"{sys.executable}" -m segctl --show-completion; exit $?'],
        capture_output=True,
        text=True,
        env=command_env(),
        timeout=60,
        check=False,
    )
    script = shown.stdout
    assert "_SEGCTL_COMPLETE=complete_bash" in script and script.rstrip().endswith("segctl"), (
        shown.returncode,
        shown.stderr,
    )
