"""How money is printed: dollars with cents, and unknown where the price table has no price."""

from __future__ import annotations


def usd(value: float | None, *, digits: int = 2) -> str:
    """Return ``$1,234.56``, or ``unknown`` for a price the table lacks (never $0)."""
    if value is None:
        return "unknown"
    if 0 < value < 10**-digits:  # a unit price like $0.0000166667 per GB-second keeps its digits
        return f"${value:.10f}".rstrip("0")
    return f"${value:,.{digits}f}"
