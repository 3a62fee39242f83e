"""Errors as visitors see them: one line on the page, kept in view until the next run; causes in the server log."""
from __future__ import annotations

import functools
import html
import inspect
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import gradio as gr

from ..errors import HSNetError, one_line

log = logging.getLogger("hsnet.app")
F = TypeVar("F", bound=Callable[..., Any])


def error_line(exc: BaseException, where: str) -> str:
    """The one line a visitor reads for ``exc``; logged with its cause (a traceback when it was unexpected)."""
    if isinstance(exc, gr.Error):
        log.info("%s refused: %s", where, exc.message)
        return one_line(str(exc.message), 400)
    if isinstance(exc, HSNetError):
        log.info("%s refused: %s", where, exc)
        return one_line(str(exc), 400)
    log.exception("%s failed", where)
    return (f"Something went wrong ({type(exc).__name__}); the details are in the server log. "
            "Your inputs are kept: check them and try again.")


def error_html(message: str) -> str:
    """The message box under Segment: it stays until the next run replaces or clears it."""
    if not message:
        return ""
    return f"<div class='hs-error' role='alert'><b>Not done:</b> {html.escape(message)}</div>"


@contextmanager
def one_line_errors(where: str) -> Iterator[None]:
    """Any failure as a gr.Error of one line (for API clients and pop-ups), logged with its cause."""
    try:
        yield
    except Exception as exc:
        raise gr.Error(error_line(exc, where), print_exception=False) from exc


def friendly(fn: F) -> F:
    """``fn`` (a function or a generator) raising only one-line gr.Errors; the app keeps serving."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Any:
            with one_line_errors(fn.__name__):
                yield from fn(*args, **kwargs)
        return generator  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with one_line_errors(fn.__name__):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
