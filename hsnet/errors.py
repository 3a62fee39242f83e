"""The exceptions hsnet raises for problems a user can fix.

Every message is one line that says what was wrong and what to do about it; the
CLI prints it without a traceback and the app shows it on the page.
"""


class HSNetError(Exception):
    """Base class of every error hsnet raises on purpose."""


class InputError(HSNetError, ValueError):
    """An image, mask or argument the user gave cannot be used as it is."""


class CheckpointError(HSNetError):
    """A checkpoint file or state dict cannot be loaded into the model."""


class WeightsNotFoundError(HSNetError, LookupError):
    """Pretrained weights named by the user cannot be found: unknown name, missing Hub repo or file, or offline."""


class HubError(HSNetError):
    """Talking to the Hugging Face Hub failed for a reason the user can fix (token, permissions, connection)."""


class OutputError(HSNetError, OSError):
    """A file hsnet writes cannot be written (disk full, no permission); the message names the file and what to do."""


class DatasetError(HSNetError):
    """A benchmark dataset or one of the authors' split lists is missing, incomplete or unreadable."""


def one_line(text: str, limit: int = 160) -> str:
    """``text`` (a file name, a library's exception message) as one line of at most ``limit`` characters.

    Messages quote names and reasons that come from outside (a file called "a\\nb.png",
    a decoder's multi-line complaint); this keeps every hsnet message on one line.
    """
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def describe(exc: BaseException) -> str:
    """Another library's exception as a short one-line reason for an hsnet message.

    The type is named when the message alone says nothing (empty, or a bare key or index).
    """
    message = one_line(str(exc))
    return message if message and not isinstance(exc, LookupError) else f"{type(exc).__name__} {message}".strip()
