"""The 县指挥办's own Python, composed over the domain-free engine and never imported by it:
its vocabulary, the bulletin and evaluation figures, the leaders' dashboard, its spreadsheets
and the service-task handlers its processes call (registered on import)."""

from . import handlers  # registers item_report and period_report with the engine
from .office import Office

__all__ = ["Office", "handlers"]
