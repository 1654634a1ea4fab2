"""Domain errors that carry their fields, so that adapters (API, worker, CLI) map them without reading messages."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is out of range: `field` names it (None: no single field), `reason` says why.
    `str()` is "field: reason"."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field, self.reason = field, reason


class InvalidId(ValueError):
    """An id that does not match the id rule, contains '..', or would leave the store. `kind` is what it names
    ("model id", "job id"), `value` the id given."""

    def __init__(self, kind: str, value: object, reason: str) -> None:
        super().__init__(f"{kind} {value!r} {reason}")
        self.kind, self.value, self.reason = kind, value, reason

    @property
    def field(self) -> str:
        """The request field it came from: "model_id", "job_id"."""
        return self.kind.replace(" ", "_")


class NotFound(KeyError):
    """No published model (or job) with that id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"
