"""Exit codes: the one place where errors become them (:func:`handled`), and their help."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from segctl.cli.output import error
from segctl.errors import SegctlError

EXIT_CODES_HELP = """\
Exit codes: 0 ok; 1 changes found (with --exit-code); 2 usage error; 3 definition or config
error; 4 data error; 5 delivery incomplete; 6 state locked; 70 internal error."""


@contextmanager
def handled(debug: bool = False) -> Iterator[None]:
    """Map errors to exit codes: each :class:`~segctl.errors.SegctlError` to its own code,
    Ctrl-C to 130, a closed pipe on stdout to a quiet 0, a file that cannot be read or
    written to 4 (as a data error), and anything else to 70 (an internal error, with a
    plea to report it)."""
    try:
        yield
    except typer.Exit:
        raise
    except SegctlError as exc:
        if debug:
            print_traceback()
        error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        error("interrupted")
        raise typer.Exit(130) from None
    except BrokenPipeError:
        # The reader of stdout went away (`segctl members x -f csv | head`): stop quietly,
        # as a pipe's writer does; stdout is pointed at /dev/null so that Python's flush at
        # exit does not fail again. Whatever was committed stays committed.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None
    except OSError as exc:  # a path of the user's: an --out folder missing, no permission
        if debug:
            print_traceback()
        where = f"{exc.filename}: " if exc.filename else ""
        error(f"{where}{exc.strerror or exc} (check the path and its permissions)")
        raise typer.Exit(4) from None
    except Exception as exc:
        if type(exc).__name__ == "OutOfMemoryException":  # DuckDB's, outside a plan
            from segctl.engine.duckdb import memory_error

            if debug:
                print_traceback()
            error(str(memory_error(exc)))
            raise typer.Exit(4) from None
        if debug:
            print_traceback()
        error(
            f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the "
            "traceback, and please report it)"
        )
        raise typer.Exit(70) from None


def print_traceback() -> None:
    """The traceback (with --debug), secrets masked like every other message."""
    from segctl.redact import redact

    sys.stderr.write(redact(traceback.format_exc()))
