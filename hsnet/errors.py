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


class DatasetError(HSNetError):
    """A benchmark dataset or one of the authors' split lists is missing, incomplete or unreadable."""
