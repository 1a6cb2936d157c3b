"""What one AI call costs, per service: the figure a cache hit saves (IMAGE_GENERATION_COST_USD)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation


@dataclass(frozen=True)
class GenerationCosts:
    """What one AI call costs per service, in USD; `default` covers services not listed."""

    per_service: Mapping[str, Decimal]
    default: Decimal

    def for_service(self, ai_service: str | None) -> Decimal:
        return self.per_service.get(ai_service or "", self.default)

    @classmethod
    def parse(cls, raw: str) -> GenerationCosts:
        """`dall-e-3=0.040,default=0.020`; ValueError naming the first bad entry."""
        costs: dict[str, Decimal] = {}
        for item in filter(None, (part.strip() for part in raw.split(","))):
            service, sep, amount = item.partition("=")
            try:
                value = Decimal(amount.strip())
            except InvalidOperation:
                value = Decimal("NaN")
            if not sep or not service.strip() or not value.is_finite() or value < 0:
                raise ValueError(f"bad entry {item!r}")
            costs[service.strip()] = value
        default = costs.pop("default", Decimal(0))
        return cls(per_service=costs, default=default)
