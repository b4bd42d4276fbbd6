"""Help text that reads as sentences at any terminal width.

Docstrings are wrapped at 100 columns in the source; Typer's rich help keeps those line breaks,
so ``--help`` showed paragraphs broken mid-sentence ("...segctl's canonical⏎column names").
:func:`rewrap_help` joins the lines of each paragraph of every command's help (and the app's
help and epilog) once all commands are registered, and lets the terminal wrap them. Paragraph
breaks stay, and so does each example (one paragraph per example line).
"""

from __future__ import annotations

import inspect
import re

import typer

# Rich reads `[word]` as a markup tag and drops it: `segctl[ml]` showed as `segctl`. A bracket
# right after a word character is text (an extra, an index), never intended markup.
_TAG = re.compile(r"(?<=\w)\[")


def rewrap(text: str | None) -> str | None:
    """``text`` with the line breaks inside each paragraph replaced by spaces.

    >>> rewrap("One sentence\\n    broken here.\\n\\nExamples:\\n\\n  segctl run")
    'One sentence broken here.\\n\\nExamples:\\n\\nsegctl run'
    >>> print(rewrap("Needs pip install 'segctl[ml]'."))
    Needs pip install 'segctl\\[ml]'.
    """
    if text is None:
        return None
    paragraphs = [
        _TAG.sub(r"\\[", " ".join(p.split())) for p in inspect.cleandoc(text).split("\n\n")
    ]
    return "\n\n".join(p for p in paragraphs if p)


def rewrap_help(app: typer.Typer) -> None:
    """Rewrap the help of ``app``, its commands and its sub-apps, in place."""
    app.info.help = rewrap(app.info.help if isinstance(app.info.help, str) else None)
    if isinstance(app.info.epilog, str):
        app.info.epilog = rewrap(app.info.epilog)
    callback = app.registered_callback
    if callback is not None and callback.callback is not None:
        callback.help = rewrap(_text(callback.help) or inspect.getdoc(callback.callback))
        if isinstance(callback.epilog, str):
            callback.epilog = rewrap(callback.epilog)
    for command in app.registered_commands:
        if command.callback is not None:
            command.help = rewrap(_text(command.help) or inspect.getdoc(command.callback))
    for group in app.registered_groups:
        if group.typer_instance is not None:
            rewrap_help(group.typer_instance)


def _text(value: object) -> str | None:
    """A help value that is real text (Typer uses a placeholder object for 'not given')."""
    return value if isinstance(value, str) else None
