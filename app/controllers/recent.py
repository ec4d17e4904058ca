"""File > Recent projects: the last projects opened, newest first, kept in QSettings when the
window has settings (app.main gives it the user's; tests leave it off and the list lives as long
as the windows that share it)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

MAX_RECENT = 10
KEY = "recent/projects"


class RecentProjects:
    def __init__(self) -> None:
        self._paths: list[str] = []
        self.settings: QSettings | None = None

    def use_settings(self, settings: QSettings) -> None:
        """Merge the saved list in (saved ones after this session's) and save from now on."""
        self.settings = settings
        saved = settings.value(KEY) or []
        if isinstance(saved, str):
            saved = [saved]
        self._paths = list(dict.fromkeys(self._paths + [str(p) for p in saved]))[:MAX_RECENT]
        self._save()

    def add(self, path) -> None:
        p = str(Path(path).absolute())
        self._paths = [p] + [q for q in self._paths if q != p]
        del self._paths[MAX_RECENT:]
        self._save()

    def paths(self) -> list[str]:
        """The remembered projects that still exist, newest first."""
        return [p for p in self._paths if Path(p).is_file()]

    def _save(self) -> None:
        if self.settings is not None:
            self.settings.setValue(KEY, list(self._paths))
