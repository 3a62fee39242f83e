"""The Checkpoint choices: clean names for visitors and API clients, each mapped to what the server loads.

The operator's own weights (``--weights``, maybe a local path) are named by their file
or folder name, e.g. ``best_model-resnet50.pt``; a client may send that name or the
operator's exact setting. A name off the menu is refused without looking at the
server's files, so an answer never tells which paths exist there.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from .. import hub
from ..errors import InputError, one_line

OWN = "the server's own weights"


def _is_local(source: str) -> bool:
    """Whether the operator's setting names a file or folder on the server (rather than a registry name or Hub id)."""
    try:
        return Path(source).exists() or Path(source).is_absolute() or "\\" in source
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class WeightsMenu:
    """Checkpoint names visitors and clients use, each mapped to the source the server loads."""

    sources: dict[str, str]  # name -> registry name, Hub repo id or local path
    labels: dict[str, str]  # name -> dropdown label
    default: str  # name of the operator's weights

    @classmethod
    def build(cls, default_source: str) -> WeightsMenu:
        """The operator's weights first (a local path named by its last part only), then every registry name."""
        entries = hub.registry()
        local = default_source not in entries and _is_local(default_source)
        default = one_line(Path(default_source).name, 80) if local else one_line(default_source, 80)
        sources = {default: default_source}
        labels = {default: default if default_source in entries else f"{default} ({OWN})"}
        for name, entry in entries.items():
            fold = "" if entry.fold is None else f" fold {entry.fold}"
            sources.setdefault(name, name)
            labels.setdefault(name, f"{name}  ({entry.backbone}, {entry.benchmark}{fold})")
        return cls(sources, labels, default)

    def choices(self) -> list[tuple[str, str]]:
        """(label, name) pairs for the dropdown."""
        return [(label, name) for name, label in self.labels.items()]

    def label(self, name: str) -> str:
        """How the banner and summary name weights ``name``."""
        return self.labels.get(name, name).split("  (")[0]

    def shown(self, value: Any) -> str:
        """The menu name of ``value`` (a menu name, or the operator's own setting); InputError otherwise."""
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"no weights given; send a name from the Checkpoint menu ({self._some()}), or leave "
                             "it out for the server's own")
        if value in self.sources:
            return value
        for name, source in self.sources.items():
            if source == value:
                return name
        said = one_line(PurePath(value.replace("\\", "/")).name or value, 60)  # never checked against the disk
        raise InputError(f"unknown weights {said!r}; send a name from the Checkpoint menu ({self._some()}), or leave "
                         "it out for the server's own")

    def _some(self) -> str:
        names = list(self.sources)
        return ", ".join(names[:3]) + (f" or {len(names) - 3} more" if len(names) > 3 else "")

    def source(self, value: Any) -> str:
        """What the server loads for ``value`` (InputError for a name that is not on the menu)."""
        return self.sources[self.shown(value)]
