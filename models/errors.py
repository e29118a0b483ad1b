"""Errors raised by the models package: one base class, small subclasses with clear messages."""


class ModelError(Exception):
    """Base class of every error raised by `models`."""


class ConfigError(ModelError):
    """A configuration value or preset is invalid; the message names it and what is valid."""


class VocabularyError(ModelError):
    """A vocabulary is malformed or does not match a model."""


class CheckpointError(ModelError):
    """A checkpoint file is missing, unreadable or does not match the current code."""


class UnusableImageError(ModelError):
    """An input image cannot be read as a radiograph; `reason` is a short machine-friendly tag."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
