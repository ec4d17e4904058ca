"""Errors for bad input: every message names the file and the field (and the line when known)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    file: str
    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else f"{self.file}"
        return f"{where}: {self.field}: {self.message}"


class BadInput(Exception):
    """Input that cannot be used as it is. CLI exit code 2."""

    def __init__(self, file: str, field: str, message: str, line: int | None = None):
        self.problem = Problem(str(file), field, message, line)
        super().__init__(str(self.problem))


class ImportFailed(BadInput):
    """An import found problems; nothing was written to the project."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        first = self.problems[0] if self.problems else Problem("?", "?", "unknown problem")
        more = f" (and {len(self.problems) - 1} more problems)" if len(self.problems) > 1 else ""
        Exception.__init__(self, f"{first}{more}")
        self.problem = first


class ProjectLocked(BadInput):
    def __init__(self, path: str):
        super().__init__(path, "project", "is open for writing in another Visionbench process; "
                         "close it there first (or open this one read-only)")
