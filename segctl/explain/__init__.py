"""Why a person is (or is not) a member of a segment: ``segctl explain`` (SPEC 3).

Every condition of the rule, its exclusions and the segments it references is shown with the
value measured for the person and its verdict. Nothing is re-implemented here: the values come
from the same fused plan that ``evaluate`` runs (:class:`~segctl.compiler.Instrumented`),
with one extra column per condition, and the plan's input tables restricted to the persons
explained. Every measure is computed per person, so restricting the inputs changes no value.

With a state folder, the person's last transition is explained too: the rule is re-evaluated at
the as_of of the run that recorded it and of the run before, and the conditions whose verdict
differs are listed (likewise between the last committed run and the as_of explained).

- :mod:`~segctl.explain.describe`, :mod:`~segctl.explain.text`: the language in plain words;
- :mod:`~segctl.explain.instrument`: values and verdicts from the instrumented plan;
- :mod:`~segctl.explain.history`: the last transition, from the state;
- :mod:`~segctl.explain.result`: the result types and their renderings.

>>> explanation = project.explain("power_users", "u00042", as_of="2026-11-17")  # doctest: +SKIP
>>> print(explanation.render())  # doctest: +SKIP
power_users for u00042 as of 2026-11-17T00:00:00Z: NOT A MEMBER
rule -> FALSE
└─ all of -> FALSE
   ├─ video_rendered in the last 30d, count: 1, needs >= 10 -> FALSE
   └─ property plan: "premium", needs in ["pro", "premium"] -> TRUE
exclude (any of) -> not excluded
└─ segment vip -> FALSE
   rule -> FALSE
   └─ on list sample_data/lists/vip.csv (by person_id) -> FALSE
"""

from segctl.explain.history import explain
from segctl.explain.instrument import Subject, explain_many
from segctl.explain.result import Change, Explanation, Node, SegmentExplanation, Since

__all__ = [
    "Change",
    "Explanation",
    "Node",
    "SegmentExplanation",
    "Since",
    "Subject",
    "explain",
    "explain_many",
]
