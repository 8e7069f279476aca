"""The store's domain errors: a caller shows their message; they are never bugs."""

from __future__ import annotations


class StoreError(Exception):
    """A request the store refuses, with a message fit to show or log."""
