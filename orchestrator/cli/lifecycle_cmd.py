"""Lifecycle commands: up, down, ps, logs, start, stop, restart, exec, run, kill, rm, ...

Each command turns its flags into options, calls ``api.Composer`` and prints; decisions
live in the core, exit codes in ``exitcodes``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

import click

from orchestrator.cli.context import GlobalOptions
from orchestrator.cli.output import print_json, print_table, print_warnings
from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from orchestrator.api import Composer, Outcome

timeout_option = click.option(
    "-t", "--timeout", type=float, help="Seconds to wait for a container to stop before killing it."
)
services_argument = click.argument("services", nargs=-1)


@contextmanager
def composer(opts: GlobalOptions, services: Sequence[str] = ()) -> Iterator[Composer]:
    """Load the project, open the backend, draw progress; close everything after."""
    from orchestrator.api import Composer, load, unsupported_warnings
    from orchestrator.backends.factory import choose_backend
    from orchestrator.cli.progress import ProgressRenderer

    result = load(opts.load_options(enabled_services=tuple(services)))
    print_warnings(result.warnings, opts)
    mode = "quiet" if opts.dry_run and opts.progress == "auto" else opts.progress
    with ProgressRenderer(mode) as progress:
        backend = choose_backend(opts.backend)
        comp = Composer.open(result.project, backend.name, events=progress, parallel=opts.parallel)
        print_warnings(unsupported_warnings(result, comp.backend), opts)
        try:
            yield comp
        finally:
            comp.close()


def show_plan(opts: GlobalOptions, outcome: Outcome) -> None:
    """What ``--dry-run`` prints: the plan, as text or JSON."""
    if not opts.dry_run:
        return
    from orchestrator.plan.render import render_json, render_text

    if opts.progress == "json":
        print_json(render_json(outcome.plan))
    elif outcome.plan.empty:
        click.echo("nothing to do")
    else:
        for line in render_text(outcome.plan):
            click.echo(line)


def parse_scale(values: Sequence[str]) -> dict[str, int]:
    scale: dict[str, int] = {}
    for value in values:
        name, sep, count = value.partition("=")
        if not sep or not count.isdigit():
            raise UsageError(f"--scale {value!r}: expected SERVICE=NUMBER, e.g. web=3")
        scale[name] = int(count)
    return scale


@click.command("up")
@click.option("-d", "--detach", is_flag=True, help="Return once the stack is up.")
@click.option("--wait", is_flag=True, help="Wait for services to be running and healthy.")
@click.option("--wait-timeout", type=float, help="Seconds --wait and health gates may take.")
@click.option("--scale", multiple=True, metavar="SERVICE=N", help="Replica count (repeatable).")
@click.option("--force-recreate", is_flag=True, help="Recreate containers even if unchanged.")
@click.option("--no-recreate", is_flag=True, help="Never recreate existing containers.")
@click.option("--remove-orphans", is_flag=True, help="Remove containers of removed services.")
@click.option("--no-deps", is_flag=True, help="Do not start the named services' dependencies.")
@click.option("--build", is_flag=True, help="Build images before starting.")
@click.option("--pull", type=click.Choice(["always", "missing", "never"]), help="Pull policy.")
@click.option(
    "--abort-on-container-exit",
    is_flag=True,
    help="Attached: stop the stack when any container exits; exit with its code.",
)
@click.option(
    "--exit-code-from",
    metavar="SERVICE",
    help="Attached: stop the stack when SERVICE's container exits; exit with its code.",
)
@timeout_option
@services_argument
@click.pass_obj
def up(opts: GlobalOptions, /, services: tuple[str, ...], **kw: Any) -> None:
    """Create and start the stack (or the named services and their dependencies)."""
    from orchestrator.plan.reconcile import UpOptions

    options = UpOptions(
        services=services,
        no_deps=kw["no_deps"],
        scale=parse_scale(kw["scale"]),
        force_recreate=kw["force_recreate"],
        no_recreate=kw["no_recreate"],
        remove_orphans=kw["remove_orphans"],
        pull=kw["pull"],
        timeout=kw["timeout"],
    )
    exit_from: str | None = kw["exit_code_from"]
    abort = kw["abort_on_container_exit"] or exit_from is not None
    if abort and kw["detach"]:
        raise UsageError(
            "--abort-on-container-exit and --exit-code-from need an attached `up`: drop -d"
        )
    with composer(opts, services) as comp:
        if exit_from is not None:
            from orchestrator.api import require_services

            require_services(comp.project, [exit_from])
        if kw["build"]:
            comp.build(services)
        outcome = comp.up(
            options, dry_run=opts.dry_run, wait=kw["wait"], wait_timeout=kw["wait_timeout"]
        )
        show_plan(opts, outcome)
        if opts.dry_run:
            return
        if abort:
            code = _follow_until_exit(comp, services, exit_from, kw["timeout"])
            sys.exit(code)
        if not kw["detach"] and not kw["wait"]:
            _follow_logs(comp, services)


def _follow_until_exit(
    comp: Composer, services: Sequence[str], exit_from: str | None, timeout: float | None
) -> int:
    """Stream logs until a watched container exits, then stop the stack (compose's CI mode).

    The code is the exit code of the container that ended it: ``exit_from``'s, or the first
    one to exit under ``--abort-on-container-exit``."""
    import threading

    printer = threading.Thread(
        target=_print_logs,
        args=(comp.logs(services, follow=True),),
        kwargs={"prefix": True, "timestamps": False},
        daemon=True,
    )
    printer.start()
    try:
        ended = comp.wait_first_exit(services, only=exit_from)
    except KeyboardInterrupt:
        click.echo("stopping...", err=True)
        comp.stop(services, timeout=timeout)
        return 130
    printer.join(timeout=1.0)
    code = ended.exit_code if ended.exit_code is not None else 1
    click.echo(f"{ended.name} exited with code {code}", err=True)
    click.echo("aborting on container exit...", err=True)
    comp.stop(services, timeout=timeout)
    return code


def _follow_logs(comp: Composer, services: Sequence[str]) -> None:
    """Attached `up`: stream logs until interrupted, then stop the stack (as compose does)."""
    try:
        _print_logs(comp.logs(services, follow=True), prefix=True, timestamps=False)
    except KeyboardInterrupt:
        click.echo("stopping...", err=True)
        comp.stop(services)


@click.command("down")
@click.option("-v", "--volumes", is_flag=True, help="Also remove named and anonymous volumes.")
@click.option("--remove-orphans", is_flag=True, help="Also remove containers of removed services.")
@timeout_option
@click.pass_obj
def down(opts: GlobalOptions, volumes: bool, remove_orphans: bool, timeout: float | None) -> None:
    """Stop and remove the stack's containers and networks (volumes with -v)."""
    with composer(opts) as comp:
        show_plan(
            opts,
            comp.down(
                volumes=volumes,
                remove_orphans=remove_orphans,
                timeout=timeout,
                dry_run=opts.dry_run,
            ),
        )


def _simple(
    name: str, help_text: str, action: Callable[..., Outcome], with_timeout: bool
) -> click.Command:
    def command(
        opts: GlobalOptions, services: tuple[str, ...], timeout: float | None = None
    ) -> None:
        with composer(opts) as comp:
            kwargs: dict[str, Any] = {"dry_run": opts.dry_run}
            if with_timeout:
                kwargs["timeout"] = timeout
            show_plan(opts, action(comp, services, **kwargs))

    command.__doc__ = help_text
    decorated: Any = click.pass_obj(command)
    decorated = services_argument(decorated)
    if with_timeout:
        decorated = timeout_option(decorated)
    return click.command(name)(decorated)


start = _simple("start", "Start existing containers.", lambda c, s, **k: c.start(s, **k), False)
stop = _simple("stop", "Stop running containers.", lambda c, s, **k: c.stop(s, **k), True)
restart = _simple("restart", "Restart containers.", lambda c, s, **k: c.restart(s, **k), True)


@click.command("ps")
@click.option("-a", "--all", "show_all", is_flag=True, help="Show stopped containers too.")
@click.option("-q", "--quiet", is_flag=True, help="Only container ids.")
@click.option("--services", "only_services", is_flag=True, help="Only service names.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@services_argument
@click.pass_obj
def ps(
    opts: GlobalOptions,
    services: tuple[str, ...],
    show_all: bool,
    quiet: bool,
    only_services: bool,
    fmt: str,
) -> None:
    """List the project's containers."""
    from orchestrator import labels

    with composer(opts) as comp:
        containers = comp.containers(services, all=show_all)
        # only the PORTS column needs the ingress state (and its controller's imports)
        routes = [] if quiet or only_services else comp.ingress.status(comp.project.name)
    if quiet:
        for c in containers:
            click.echo(c.id)
        return
    if only_services:
        for name in dict.fromkeys(c.service for c in containers):
            click.echo(name)
        return

    def ports(service: str, published: Any) -> str:
        shown = [
            f"{r.host_ip}:{r.published}->{r.target}/{r.protocol}"
            for r in routes
            if r.service == service
        ]
        for key, binds in published.items():
            shown += [f"{ip or '0.0.0.0'}:{port}->{key}" for ip, port in binds]
        return ", ".join(shown)

    rows = [
        {
            "id": c.id,
            "name": c.name,
            "service": c.service,
            "number": c.number,
            "image": c.image,
            "state": c.status,
            "health": c.health,
            "exit_code": c.exit_code,
            "ports": ports(c.service, c.published),
            "config_hash": c.labels.get(labels.CONFIG_HASH, ""),
            "update_generation": c.labels.get(labels.UPDATE_GENERATION, ""),
        }
        for c in containers
    ]
    if fmt == "json":
        print_json(rows)
        return

    def status(row: dict[str, Any]) -> str:
        text = str(row["state"])
        if row["state"] == "exited":
            text += f" ({row['exit_code']})"
        if row["health"] not in ("none", ""):
            text += f" ({row['health']})"
        return text

    print_table(
        ["NAME", "IMAGE", "SERVICE", "STATUS", "PORTS"],
        [[r["name"], r["image"], r["service"], status(r), r["ports"]] for r in rows],
    )


_COLOURS = ["cyan", "yellow", "green", "magenta", "blue", "red"]


def _print_logs(lines: Any, *, prefix: bool, timestamps: bool) -> None:
    colours: dict[str, str] = {}
    width = 0
    for line in lines:
        if prefix:
            colour = colours.setdefault(line.container, _COLOURS[len(colours) % len(_COLOURS)])
            width = max(width, len(line.container))
            head = click.style(f"{line.container.ljust(width)} | ", fg=colour)
        else:
            head = ""
        stamp = ""
        if timestamps and line.timestamp is not None:
            import datetime

            stamp = datetime.datetime.fromtimestamp(line.timestamp, datetime.UTC).isoformat() + " "
        click.echo(f"{head}{stamp}{line.text}", err=line.stream == "stderr" and not prefix)


@click.command("logs")
@click.option("-f", "--follow", is_flag=True, help="Keep following new output.")
@click.option("--tail", type=int, help="Only the last N lines of each container.")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.option("--no-log-prefix", is_flag=True, help="Do not prefix lines with the container.")
@services_argument
@click.pass_obj
def logs(
    opts: GlobalOptions,
    services: tuple[str, ...],
    follow: bool,
    tail: int | None,
    timestamps: bool,
    no_log_prefix: bool,
) -> None:
    """Show the containers' output."""
    with composer(opts) as comp, suppress(KeyboardInterrupt):
        _print_logs(
            comp.logs(services, follow=follow, tail=tail, timestamps=timestamps),
            prefix=not no_log_prefix,
            timestamps=timestamps,
        )


@click.command(
    "exec",
    # everything after SERVICE COMMAND belongs to the command (`exec db psql -h x`), as in compose
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option("-T", "--no-tty", is_flag=True, help="Do not allocate a TTY.")
@click.option("--index", type=int, default=1, show_default=True, help="Which replica.")
@click.option("-u", "--user", help="Run as this user.")
@click.option("-w", "--workdir", help="Working directory inside the container.")
@click.option("-e", "--env", "env", multiple=True, help="KEY=VALUE (repeatable).")
@click.argument("service")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def exec_(
    opts: GlobalOptions,
    service: str,
    command: tuple[str, ...],
    no_tty: bool,
    index: int,
    user: str | None,
    workdir: str | None,
    env: tuple[str, ...],
) -> None:
    """Run a command in a running container of SERVICE."""
    tty = not no_tty and sys.stdin.isatty() and sys.stdout.isatty()
    with composer(opts) as comp:
        result = comp.exec(
            service,
            command,
            index=index,
            tty=tty,
            interactive=tty,
            user=user,
            workdir=workdir,
            env=dict(e.split("=", 1) for e in env if "=" in e),
        )
    sys.stdout.buffer.write(result.output)
    sys.stdout.flush()
    sys.exit(result.exit_code)


@click.command(
    "run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.option("--rm", "remove", is_flag=True, help="Remove the container when it exits.")
@click.option("-d", "--detach", is_flag=True, help="Run in the background.")
@click.option("--no-deps", is_flag=True, help="Do not start the service's dependencies.")
@click.argument("service")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def run(
    opts: GlobalOptions,
    service: str,
    command: tuple[str, ...],
    remove: bool,
    detach: bool,
    no_deps: bool,
) -> None:
    """Run a one-off container of SERVICE (with COMMAND) and exit with its status."""
    with composer(opts, (service,)) as comp:
        name, code = comp.run(
            service,
            command,
            remove=remove,
            no_deps=no_deps,
            detach=detach,
            output=None
            if detach
            else lambda line: _print_logs([line], prefix=False, timestamps=False),
        )
    if code is None:
        click.echo(name)
        return
    sys.exit(code)


@click.command("kill")
@click.option("-s", "--signal", "signal", default="SIGKILL", show_default=True)
@services_argument
@click.pass_obj
def kill(opts: GlobalOptions, services: tuple[str, ...], signal: str) -> None:
    """Send a signal to the running containers."""
    with composer(opts) as comp:
        comp.kill(services, signal=signal)


@click.command("rm")
@click.option("-f", "--force", is_flag=True, help="Do not ask (pycompose never asks).")
@click.option("-s", "--stop", "stop_first", is_flag=True, help="Stop running containers first.")
@services_argument
@click.pass_obj
def rm(opts: GlobalOptions, services: tuple[str, ...], force: bool, stop_first: bool) -> None:
    """Remove stopped containers."""
    with composer(opts) as comp:
        comp.rm(services, stop=stop_first, force=force)


def _each(name: str, help_text: str, method: str) -> click.Command:
    def command(opts: GlobalOptions, services: tuple[str, ...]) -> None:
        with composer(opts) as comp:
            getattr(comp, method)(services)

    command.__doc__ = help_text
    return click.command(name)(services_argument(click.pass_obj(command)))


pause = _each("pause", "Pause running containers.", "pause")
unpause = _each("unpause", "Unpause paused containers.", "unpause")


@click.command("top")
@services_argument
@click.pass_obj
def top(opts: GlobalOptions, services: tuple[str, ...]) -> None:
    """Show the processes of each running container."""
    with composer(opts) as comp:
        tables = comp.top(services)
    for name, table in tables.items():
        click.echo(name)
        if table:
            print_table(table[0], table[1:])
        click.echo("")


@click.command("port")
@click.option("--protocol", type=click.Choice(["tcp", "udp"]), default="tcp")
@click.option("--index", type=int, default=1)
@click.argument("service")
@click.argument("private_port", type=int)
@click.pass_obj
def port(opts: GlobalOptions, service: str, private_port: int, protocol: str, index: int) -> None:
    """Print the host address where PRIVATE_PORT of SERVICE is published."""
    with composer(opts) as comp:
        click.echo(comp.port(service, private_port, protocol=protocol, index=index))


@click.command("images")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_obj
def images(opts: GlobalOptions, fmt: str) -> None:
    """List the images the project's containers use."""
    with composer(opts) as comp:
        rows = comp.images()
    if fmt == "json":
        print_json([{"container": c, "service": s, "image": i} for c, s, i in rows])
    else:
        print_table(["CONTAINER", "SERVICE", "IMAGE"], rows)


@click.command("ls")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_obj
def ls(opts: GlobalOptions, fmt: str) -> None:
    """List the projects on the backend (compose ones included)."""
    from orchestrator.api import list_projects

    rows = list_projects(opts.backend)
    if fmt == "json":
        print_json(rows)
    else:
        print_table(
            ["NAME", "STATUS", "CONFIG FILES"],
            [[r["name"], r["status"], r["config_files"]] for r in rows],
        )


COMMANDS: list[click.Command] = [
    up,
    down,
    ps,
    start,
    stop,
    restart,
    logs,
    exec_,
    run,
    kill,
    rm,
    pause,
    unpause,
    top,
    port,
    images,
    ls,
]
