"""Human-facing output: Rerun recordings of rollouts, PNG plots, and report.md / report.html.

Submodules import their heavy dependencies (rerun, matplotlib) themselves, so importing this package
stays cheap: `from wmeval.report.rerun import log_rollouts`, `from wmeval.report.plots import ...`,
`from wmeval.report.markdown import write_report`.
"""

from wmeval.io import to_json_safe

__all__ = ["to_json_safe"]
