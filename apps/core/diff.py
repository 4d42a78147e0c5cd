"""Differences between two versions of a setting, in words: "Challenge threshold: 50 → 40".

Each app turns a version's settings into labelled words (label → value as a person reads it, one
entry per currency, country or locale); this compares two such readings. Core knows no app: the
labels, the values and the word for "not set" come from the caller.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Change:
    label: str
    before: str
    after: str

    def __str__(self) -> str:
        return f"{self.label}: {self.before} → {self.after}"


def changes(before: dict[str, str], after: dict[str, str], *, absent: str) -> list[Change]:
    """What differs, in the order of `after` then what `after` no longer has; `absent` stands for a
    value one side does not have (e.g. "none" for a currency without a threshold)."""
    labels = list(after) + [label for label in before if label not in after]
    return [
        Change(str(label), str(before.get(label, absent)), str(after.get(label, absent)))
        for label in labels
        if before.get(label) != after.get(label)
    ]
