"""The result of a training-set check: :class:`Issue` and :class:`QualityReport`.

Each issue code has a severity (:data:`SEVERITY`): an ``"error"`` blocks training, a
``"warning"`` does not. Re-exported by :mod:`napari_cytounet.core.quality`, which
describes every code.

Examples
--------
>>> report = QualityReport([Issue.make("empty_mask", "a", "a: the mask is empty.")], 1)
>>> report.summary()
'1 pair checked: 0 errors, 1 warning'
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SEVERITY", "Issue", "QualityReport"]

SEVERITY = {
    "unpaired_image": "warning",
    "unpaired_mask": "warning",
    "unreadable": "error",
    "shape_mismatch": "error",
    "nan_image": "error",
    "constant_image": "error",
    "outline_only": "error",
    "no_annotation": "error",
    "invalid_labels": "error",
    "empty_mask": "warning",
    "all_foreground": "warning",
    "non_binary": "warning",
    "single_class": "warning",
}
"""Severity of each issue code: an ``"error"`` blocks training, a ``"warning"`` does not."""


@dataclass(frozen=True)
class Issue:
    """One problem found in a training set.

    Attributes
    ----------
    severity
        ``"error"`` (training would be wasted) or ``"warning"`` (worth a look).
    code
        Machine-readable kind, a key of :data:`SEVERITY`.
    item
        The image (file stem or name) concerned.
    message
        What is wrong and what to do, starting with the item's name.

    Examples
    --------
    >>> Issue.make("empty_mask", "cho05", "cho05: the mask is empty.").severity
    'warning'
    """

    severity: str
    code: str
    item: str
    message: str

    @classmethod
    def make(cls, code: str, item: str, message: str) -> Issue:
        """An issue with the severity that :data:`SEVERITY` gives its code."""
        return cls(SEVERITY[code], code, item, message)

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


@dataclass
class QualityReport:
    """The result of a training-set check.

    Attributes
    ----------
    issues
        Every issue found, in the order of the items.
    n_pairs
        Number of image/mask pairs checked.

    Examples
    --------
    >>> report = QualityReport([Issue.make("empty_mask", "a", "a: the mask is empty.")], 3)
    >>> report.ok, len(report.warnings)
    (True, 1)
    >>> report.summary()
    '3 pairs checked: 0 errors, 1 warning'
    """

    issues: list[Issue]
    n_pairs: int

    @property
    def errors(self) -> list[Issue]:
        """Issues of severity ``"error"``."""
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        """Issues of severity ``"warning"``."""
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def codes(self) -> dict[str, int]:
        """Number of issues per code."""
        out: dict[str, int] = {}
        for issue in self.issues:
            out[issue.code] = out.get(issue.code, 0) + 1
        return out

    def summary(self) -> str:
        """One line: how many pairs, errors and warnings."""
        e, w = len(self.errors), len(self.warnings)
        pairs = f"{self.n_pairs} pair{'s' if self.n_pairs != 1 else ''} checked"
        return f"{pairs}: {e} error{'s' if e != 1 else ''}, {w} warning{'s' if w != 1 else ''}"

    def format(self) -> str:
        """Human-readable report: errors then warnings, one line per issue, then a verdict.

        Examples
        --------
        >>> report = QualityReport([Issue.make("nan_image", "a", "a: NaN.")], 1)
        >>> print(report.format())
        Errors (1):
          [nan_image] a: NaN.
        FAILED: 1 pair checked: 1 error, 0 warnings. Fix the errors before training.
        """
        lines: list[str] = []
        for title, group in (("Errors", self.errors), ("Warnings", self.warnings)):
            if not group:
                continue
            lines.append(f"{title} ({len(group)}):")
            order = {code: k for k, code in enumerate(SEVERITY)}
            for issue in sorted(group, key=lambda i: order.get(i.code, len(order))):
                lines.append(f"  [{issue.code}] {issue.message}")
        if not self.ok:
            lines.append(f"FAILED: {self.summary()}. Fix the errors before training.")
        elif self.warnings:
            lines.append(f"OK with warnings: {self.summary()}. Training can go ahead.")
        else:
            lines.append(f"OK: {self.summary()}. No problem found.")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()
