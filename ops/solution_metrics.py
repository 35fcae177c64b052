"""`recs personalize metrics`: the offline metrics of each solution's newest ACTIVE version.

Personalize computes them on its own hold-out (the newest 10% of interactions of 10% of
users), so they compare recipes with each other, not with our local evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recs.ops import resources as res
from recs.ops.plan import RECIPES, Names, check_base_name
from recs.ops.resources import ProvisioningError


@dataclass(frozen=True, slots=True)
class SolutionMetrics:
    """One solution's metrics; `status` says why there are none (e.g. no ACTIVE version)."""

    solution: str
    recipe: str
    version_arn: str = ""
    status: str = "ACTIVE"
    metrics: dict[str, float] = field(default_factory=dict)


def collect_metrics(personalize: Any, name: str) -> list[SolutionMetrics]:
    """Metrics of the solutions provisioned under `name` (one per recipe), in recipe order."""
    names = Names(check_base_name(name))
    group = res.find_by_name(personalize, res.DATASET_GROUP, names.dataset_group)
    if group is None:
        raise ProvisioningError(f"no dataset group named {names.dataset_group}")
    results = []
    for recipe in RECIPES:
        solution_name = names.solution(recipe)
        solution = res.find_by_name(
            personalize, res.SOLUTION, solution_name, datasetGroupArn=group["datasetGroupArn"]
        )
        if solution is None:
            results.append(SolutionMetrics(solution_name, recipe.short_name, status="missing"))
            continue
        active = [
            version
            for version in res.list_all(
                personalize, res.SOLUTION_VERSION, solutionArn=solution["solutionArn"]
            )
            if version.get("status") == res.ACTIVE
        ]
        if not active:
            results.append(
                SolutionMetrics(solution_name, recipe.short_name, status="no ACTIVE version")
            )
            continue
        newest = max(active, key=lambda version: version["creationDateTime"])
        response = personalize.get_solution_metrics(solutionVersionArn=newest["solutionVersionArn"])
        results.append(
            SolutionMetrics(
                solution_name,
                recipe.short_name,
                newest["solutionVersionArn"],
                metrics=dict(response.get("metrics", {})),
            )
        )
    return results
