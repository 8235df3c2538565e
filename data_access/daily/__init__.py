"""The scheduled side of the dashboard: the nightly run and the deadline radar.

- `deadline_radar`: `radar()`, every dated duty within the horizon and everything overdue, soonest first.
- `acks`: radar items as the daily run reported them; acknowledgement and escalation.
- `digest`: the daily e-mail to the DPO role (and the deputy for escalations).
- `nightly`: `run()`, `python -m data_access.daily [--as-of YYYY-MM-DD] [--dry-run]`, each run and
  step recorded in the ledger, under a lock.
- `schedule`: the retention schedule ("sletteplan") with the evidence that it runs.
"""

from data_access.daily.acks import acknowledge
from data_access.daily.deadline_radar import (
    RADAR_COLUMNS,
    SOURCES,
    Item,
    add_source,
    automation_alerts,
    radar,
    severity_counts,
)
from data_access.daily.nightly import ACTOR, DailyRun, run

__all__ = [
    "ACTOR",
    "RADAR_COLUMNS",
    "SOURCES",
    "DailyRun",
    "Item",
    "acknowledge",
    "add_source",
    "automation_alerts",
    "radar",
    "run",
    "severity_counts",
]
