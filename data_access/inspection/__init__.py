"""The inspection pack for Datatilsynet and the DPO's yearly report (GDPR art. 5(2), 30,
38(3), 39), built from the same data as the pages.

- `assemble`: `pack`, the ZIP answering a written control, section by section (`assemble.SECTIONS`).
- `report`: the yearly report to management, with trend charts.
- `parts`: what a section builder gets and returns; one module per group of sections.
"""

from data_access.inspection.assemble import SECTIONS, build_parts, context, cover_letter, pack
from data_access.inspection.parts import Context, Part, SectionBuilder
from data_access.inspection.report import dpo_report

__all__ = [
    "SECTIONS",
    "Context",
    "Part",
    "SectionBuilder",
    "build_parts",
    "context",
    "cover_letter",
    "dpo_report",
    "pack",
]
