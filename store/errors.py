"""The store's domain errors: a caller shows their message; they are never bugs."""

from __future__ import annotations


class StoreError(Exception):
    """A request the store refuses, with a message fit to show or log."""


class InvalidField(StoreError):
    """A field's value is unusable; ``field`` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field


class NotFound(StoreError):
    """No such row."""


class Conflict(StoreError):
    """The request clashes with the current state (a taken sku, stock below zero...)."""
