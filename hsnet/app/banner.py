"""The weights banner at the top of the page, and the wait for weights that are still loading."""
from __future__ import annotations

import html
import time
from collections.abc import Callable

from ..serving import LoadState
from .steps import STORE
from .weights_menu import WeightsMenu

WAIT_FOR_WEIGHTS_S = 600  # how long a segmentation waits for weights that are still loading
POLL_S = 0.5


def banner_html(state: LoadState, label: str | None = None) -> str:
    """The weights in use, or how their loading goes, or that it failed; ``label`` names them as the menu does."""
    label = label or state.name
    if state.status == "ready":
        return f"<div class='hs-banner hs-ok' role='status' aria-live='polite'>Checkpoint {html.escape(label)} is " \
               "loaded.</div>"
    message = html.escape(state.message.replace(f"weights {state.name}", f"checkpoint {label}")
                          .replace(f"Weights {state.name}", f"Checkpoint {label}"))
    if state.status in ("idle", "loading"):
        bar = (f"<progress value='{state.progress:.2f}' max='1'" if state.progress is not None else "<progress") + \
            " aria-label='Loading the weights'></progress>"
        return f"<div class='hs-banner hs-wait' role='status' aria-live='polite'><b>{message}</b>{bar}</div>"
    return (f"<div class='hs-banner hs-missing' role='alert'><b>{message}</b> Meanwhile, choose other weights in the "
            "Checkpoint menu.</div>")


def wait_for_weights(source: str, progress: Callable[..., None]) -> LoadState:
    """Wait while weights ``source`` load (up to WAIT_FOR_WEIGHTS_S), passing the banner's words to ``progress``."""
    state = STORE.start(source)
    deadline = time.monotonic() + WAIT_FOR_WEIGHTS_S
    while state.status == "loading" and time.monotonic() < deadline:
        progress(state.progress, desc=state.message)
        time.sleep(POLL_S)
        state = STORE.state(source)
    return state


def menu_banner(menu: WeightsMenu, weights: str) -> tuple[str, bool]:
    """The banner for the menu's choice ``weights`` (its load started), and whether the page should keep polling."""
    try:
        name = menu.shown(weights)
    except Exception as exc:  # noqa: BLE001 - an unknown name is shown as a failed load of that name
        return banner_html(LoadState(str(weights)[:60], "failed", str(exc))), False
    state = STORE.start(menu.source(name))
    return banner_html(state, menu.label(name)), state.status in ("idle", "loading")
