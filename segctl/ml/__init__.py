"""Machine-learned segments: behavioural features, discovery and lookalikes (SPEC 7).

The modules here need the optional ``ml`` extra (scikit-learn, with numpy) for the models;
the features themselves are computed in DuckDB. Nothing here is imported by ``segctl --help``:
the CLI imports these modules inside its commands, and the modules import numpy and sklearn
inside their functions.

- :mod:`segctl.ml.features`: one row of behavioural features per person, each feature tied to
  a condition of the segment language, and robust scaling for models;
- :mod:`segctl.ml.rules`: a shallow decision tree turned into a segment rule;
- :mod:`segctl.ml.discover`: clusters, their readable rules, holdout conversion and lift;
- :mod:`segctl.ml.lookalike`: a propensity model ranking non-members of a segment.
"""

from __future__ import annotations

from typing import Any

from segctl.errors import ConfigError

INSTALL_HINT = "pip install 'segctl[ml]'"


def require_sklearn(command: str, modules: tuple[str, ...] = ("numpy", "sklearn")) -> None:
    """Raise a :class:`ConfigError` (exit 3) naming the extra to install when scikit-learn
    or numpy (``modules``) cannot be imported."""
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(
                f"{command} needs {'scikit-learn' if module == 'sklearn' else module}, which "
                f"is not installed ({exc}); install the machine-learning extra with: "
                f"{INSTALL_HINT}"
            ) from None


#: Below this many persons the models run on one thread: OpenMP's worker threads cost more
#: than they save on small data, and much more when other processes busy the cores.
PARALLEL_FROM = 200_000


def model_threads(persons: int) -> Any:
    """A context manager limiting the native thread pools (OpenMP, BLAS) of sklearn and numpy
    to one thread for small data; no limit from :data:`PARALLEL_FROM` persons on."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1 if persons < PARALLEL_FROM else None)
