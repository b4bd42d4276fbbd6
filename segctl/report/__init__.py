"""``segctl report``: one self-contained HTML file about the committed runs.

- :mod:`~segctl.report.figures`: :func:`collect` reads the figures through the library (sizes,
  entered and exited per run, growth over a period, overlap at the last run, destination
  status) into :class:`ReportData`;
- :mod:`~segctl.report.charts`: the charts, SVG drawn here (helpers in
  :mod:`~segctl.report.svg`);
- :mod:`~segctl.report.page`: :func:`render` puts them on one HTML page that loads nothing.

>>> html = render(collect(Project.load("."), days=30))  # doctest: +SKIP
"""

from segctl.report.figures import ReportData, RunFigures, SegmentFigures, collect
from segctl.report.page import render

__all__ = ["ReportData", "RunFigures", "SegmentFigures", "collect", "render"]
