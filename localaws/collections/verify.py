"""The `verify` task: is the environment ready, and if not, what to do."""

from __future__ import annotations

from invoke.context import Context
from invoke.tasks import task

from localaws.checks.readiness import CheckResult, run_checks
from localaws.collections._base import load_settings, print_json, reports_errors, say


def print_results(results: list[CheckResult]) -> None:
    width = max(len(result.name) for result in results)
    for result in results:
        mark = "PASS" if result.passed else "FAIL"
        line = f"{mark}  {result.name:<{width}}  {result.detail}"
        if not result.passed:
            line += f"\n      fix: {result.fix}"
        say(line)
    failed = sum(not result.passed for result in results)
    say(f"{len(results) - failed} passed, {failed} failed")


@task(help={"json": "Print the results as JSON."})
@reports_errors
def verify(c: Context, json: bool = False) -> None:
    """Check that every service, AWS API, the database and the mail catcher are ready."""
    results = run_checks(load_settings(c))
    if json:
        print_json({"passed": all(r.passed for r in results), "checks": [r.as_dict() for r in results]})
    else:
        print_results(results)
    if not all(result.passed for result in results):
        raise SystemExit(1)
