"""The simulators' one exception root.

Every error a simulator raises on purpose derives from :class:`SimulatorError`: a handset
that cannot reach the gateway, a scenario file that cannot be read, a load run misconfigured,
a shopper lost in the menus. A caller that runs a simulator catches this one class.
"""

from __future__ import annotations


class SimulatorError(Exception):
    """An error of the simulators' own, with a message fit to show a tester."""
