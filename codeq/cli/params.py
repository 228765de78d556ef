"""Checks of option values that the option types let through."""

from __future__ import annotations

import math

import typer


def finite(value: float | None) -> float | None:
    """A number of seconds: ``nan`` and ``inf`` parse as floats but mean nothing here."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number of seconds")
    return value


def positive(value: float | None) -> float | None:
    """A finite number of seconds above 0 (a lease)."""
    value = finite(value)
    if value is not None and value <= 0:
        raise typer.BadParameter(f"{value:g} is not above 0 seconds")
    return value
