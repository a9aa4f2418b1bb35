"""``pycompose rollback SERVICE``: back to the configuration the latest update replaced.

Exit status: 0 once every replica runs the previous config again; 12 (RolloutPaused)
when the rollback itself failed and paused; 4 when the service records no previous
configuration (see ``exitcodes``).
"""

from __future__ import annotations

import click

from orchestrator.cli.context import GlobalOptions
from orchestrator.cli.lifecycle_cmd import composer, show_plan, timeout_option


@click.command("rollback")
@timeout_option
@click.argument("service")
@click.pass_obj
def rollback(opts: GlobalOptions, /, service: str, timeout: float | None) -> None:
    """Roll SERVICE back to its previous configuration, by its deploy.rollback_config."""
    with composer(opts) as comp:
        outcome = comp.rollback(service, timeout=timeout, dry_run=opts.dry_run)
        show_plan(opts, outcome)
        if not opts.dry_run and outcome.plan.empty:
            click.echo(f"service {service} already runs its previous configuration", err=True)


COMMANDS = [rollback]
