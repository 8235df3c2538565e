"""What every action returns (DESIGN.md "Public API")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ActionResult:
    """Ids the action succeeded for, and the reason per id it failed for.

    Actions never raise for one bad row among many; `failed` says why each one failed.
    """

    succeeded: list[Any] = field(default_factory=list)
    failed: dict[Any, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        """'3 succeeded, 1 failed' for a flash message."""
        return f"{len(self.succeeded)} succeeded, {len(self.failed)} failed"
