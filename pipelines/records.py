"""What a bulk load of reports did (records kept, skipped and why); the records themselves live in indexer.records."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class LoadSummary:
    """What a bulk load did: records kept, records skipped and why, warnings."""

    loaded: int = 0
    skipped: Counter = field(default_factory=Counter)
    warnings: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        self.examples.setdefault(reason, where)

    def warn(self, reason: str, where: str) -> None:
        self.warnings[reason] += 1
        self.examples.setdefault(reason, where)

    def format(self) -> str:
        """A short human-readable summary."""
        lines = [f"loaded {self.loaded} reports, skipped {sum(self.skipped.values())}"]
        for reason, n in self.skipped.most_common():
            lines.append(f"  skipped {n:5d}  {reason}  (e.g. {self.examples[reason]})")
        for reason, n in self.warnings.most_common():
            lines.append(f"  warning {n:5d}  {reason}  (e.g. {self.examples[reason]})")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"loaded": self.loaded, "skipped": dict(self.skipped), "warnings": dict(self.warnings)}
