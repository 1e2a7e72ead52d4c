"""``chalkbox box doctor|diagnostics|backup|restore``: the technician's tools."""
from __future__ import annotations

import click


def register(box: click.Group) -> None:
    """Add the technician's commands to the ``box`` group."""
