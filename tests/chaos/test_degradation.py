"""A failing dependency degrades the page gracefully instead of breaking it."""

from __future__ import annotations

import hystrixpy
from hystrixpy import Command, CommandProperties, IsolationStrategy, chaos
from hystrixpy.chaos import InjectedFault
from hystrixpy.fallback import degrade

SEMAPHORE = IsolationStrategy.SEMAPHORE


class GetProduct(Command[dict[str, object]]):
    group_key = "Shop"
    properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)

    def run(self) -> dict[str, object]:
        return {"id": 7, "name": "teapot"}


class GetReviews(Command[list[str]]):
    """No fallback of its own: the page decides what a missing part becomes."""

    group_key = "Shop"
    properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)

    def run(self) -> list[str]:
        return ["lovely"]


class GetPrice(Command[float]):
    group_key = "Shop"
    properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)

    def run(self) -> float:
        return 19.5

    def get_fallback(self) -> float:
        return 20.0  # the list price, cached


def test_failing_dependencies_give_a_partial_page() -> None:
    """Reviews and price fail every time: the page has the product, no reviews, the list price."""
    hystrixpy.configure(
        {
            "chaos.command.GetReviews.exception_rate": 1,
            "chaos.command.GetPrice.exception_rate": 1,
        }
    )
    with chaos.active(seed=1):
        page = degrade(
            product=GetProduct(),
            price=GetPrice(),
            optional={"reviews": GetReviews()},
            defaults={"reviews": []},
        )

    assert page.product == {"id": 7, "name": "teapot"}
    assert page.price == 20.0
    assert page.from_fallback == ("price",)
    assert page.reviews == []
    assert page.degraded == ("reviews",)
    assert isinstance(page.errors["reviews"].error.__cause__, InjectedFault)
