"""The example episodes of ``examples/episodes.json`` and the rows gr.Examples shows for them."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Episode:
    """One example: a query and its supports with masks."""

    title: str
    query: Path
    supports: list[tuple[Path, Path]]  # (image, mask)
    rule: str


def read_episodes(folder: Path) -> list[Episode]:
    """The example episodes listed in ``folder/episodes.json`` (none when the file is missing)."""
    manifest = folder / "episodes.json"
    if not manifest.is_file():
        return []
    episodes = []
    for item in json.loads(manifest.read_text(encoding="utf-8"))["episodes"]:
        supports = [(folder / s["image"], folder / s["mask"]) for s in item["supports"]]
        episodes.append(Episode(item["title"], folder / item["query"], supports, item.get("rule", "vote")))
    return episodes


def example_rows(episodes: Sequence[Episode], max_supports: int) -> list[list[Any]]:
    """Rows (query, editors..., mask uploads..., rule): each support's mask goes in its upload slot.

    (Gradio 6.31's editor draws a layer given with its value shifted on screen, though the data
    is right, so the masks are shown as uploads rather than as brush layers.)
    """
    rows = []
    for episode in episodes:
        editors: list[Any] = [{"background": str(image), "layers": [], "composite": None}
                              for image, _ in episode.supports]
        masks: list[Any] = [str(mask) for _, mask in episode.supports]
        padding = [None] * (max_supports - len(episode.supports))
        rows.append([str(episode.query), *editors, *padding, *masks, *padding, episode.rule])
    return rows
