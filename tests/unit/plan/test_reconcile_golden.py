"""Golden plans: (what was up before, what is asked now) → the rendered plan, line by line.

The observed state of each case is reached the honest way: earlier projects are planned
and executed on a FakeBackend, then the case's own project is planned against it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pytest

from orchestrator.backends.base import ObservedState
from orchestrator.backends.fake import FakeBackend
from orchestrator.errors import NotFound, UsageError
from orchestrator.executor import execute
from orchestrator.ingress.routes import Route
from orchestrator.model import (
    DependsOn,
    Healthcheck,
    Network,
    PortConfig,
    Project,
    ServiceNetwork,
    ServiceVolume,
    Volume,
)
from orchestrator.plan.ops import Plan
from orchestrator.plan.reconcile import (
    UpOptions,
    ingress_routes,
    plan_down,
    plan_restart,
    plan_start,
    plan_stop,
    reconcile,
)
from orchestrator.plan.render import render_json, render_text
from tests.unit.plan.helpers import fake_backend, project, svc, up

HEALTHY = Healthcheck(test=("CMD", "true"))
DB = svc("db", healthcheck=HEALTHY)
WEB = svc("web", depends_on={"db": DependsOn("service_healthy")})
CACHE = svc("cache")
BASE = project(DB, WEB, CACHE)


def with_service(base: Project, **changes: object) -> Project:
    """``base`` with each named service replaced by ``replace(service, **fields)``."""
    services = dict(base.services)
    for name, fields in changes.items():
        services[name] = replace(services[name], **fields)  # type: ignore[arg-type]
    return replace(base, services=services)


def stop(name: str) -> Callable[[FakeBackend], None]:
    return lambda fake: fake.stop_container(name)


@dataclass(frozen=True)
class Case:
    before: tuple[Project, ...]
    target: Project
    expected: list[str]
    options: UpOptions = field(default_factory=UpOptions)
    then: Callable[[FakeBackend], None] | None = None  # a change made after `before`
    warnings: int = 0
    # the plan of a second identical `up`: empty (a job that completed is not run again)
    second: tuple[str, ...] = ()


FRESH = [
    "Create network p_default (missing)",
    "Ensure image img/cache:1 (pull policy missing)",
    "Create container p-cache-1 (missing)",
    "Start container p-cache-1 (missing)",
    "Ensure image img/db:1 (pull policy missing)",
    "Create container p-db-1 (missing)",
    "Start container p-db-1 (missing)",
    "Wait for service db to be healthy (web depends on it)",
    "Ensure image img/web:1 (pull policy missing)",
    "Create container p-web-1 (missing)",
    "Start container p-web-1 (missing)",
]

CASES: dict[str, Case] = {
    "fresh up": Case((), BASE, FRESH),
    "up twice is a no-op": Case((BASE,), BASE, []),
    "edit of one service recreates only it": Case(
        (BASE,),
        with_service(BASE, cache={"environment": {"MODE": "fast"}}),
        [
            "Ensure image img/cache:1 (pull policy missing)",
            "Recreate container p-cache-1 (config changed)",
            "Start container p-cache-1 (config changed)",
        ],
    ),
    "edit of a dependent waits for its dependency": Case(
        (BASE,),
        with_service(BASE, web={"image": "img/web:2"}),
        [
            "Wait for service db to be healthy (web depends on it)",
            "Ensure image img/web:2 (pull policy missing)",
            "Recreate container p-web-1 (config changed)",
            "Start container p-web-1 (config changed)",
        ],
    ),
    "a recreated dependency restarts dependents that ask for it": Case(
        (
            with_service(
                BASE, web={"depends_on": {"db": DependsOn("service_healthy", restart=True)}}
            ),
        ),
        with_service(
            BASE,
            db={"environment": {"V": "2"}},
            web={"depends_on": {"db": DependsOn("service_healthy", restart=True)}},
        ),
        [
            "Ensure image img/db:1 (pull policy missing)",
            "Recreate container p-db-1 (config changed)",
            "Start container p-db-1 (config changed)",
            "Wait for service db to be healthy (web depends on it)",
            "Stop container p-web-1 (dependency db recreated)",
            "Start container p-web-1 (dependency db recreated)",
        ],
    ),
    "a recreated dependency leaves other dependents running": Case(
        (BASE,),
        with_service(BASE, db={"environment": {"V": "2"}}),
        [
            "Ensure image img/db:1 (pull policy missing)",
            "Recreate container p-db-1 (config changed)",
            "Start container p-db-1 (config changed)",
        ],
    ),
    "a key outside the hash changes nothing": Case(
        (BASE,), with_service(BASE, cache={"pull_policy": "always", "profiles": ("x",)}), []
    ),
    "scale up": Case(
        (BASE,),
        BASE,
        [
            "Ensure image img/cache:1 (pull policy missing)",
            "Create container p-cache-2 (missing)",
            "Start container p-cache-2 (missing)",
            "Create container p-cache-3 (missing)",
            "Start container p-cache-3 (missing)",
        ],
        UpOptions(scale={"cache": 3}),
    ),
    "scale down removes the highest numbers first": Case(
        (with_service(BASE, cache={"scale": 3}),),
        BASE,
        [
            "Stop container p-cache-3 (scale 3→1)",
            "Remove container p-cache-3 (scale 3→1)",
            "Stop container p-cache-2 (scale 3→1)",
            "Remove container p-cache-2 (scale 3→1)",
        ],
    ),
    "a stopped container is started": Case(
        (BASE,), BASE, ["Start container p-cache-1 (stopped)"], then=stop("p-cache-1")
    ),
    "a stopped dependency is started, its dependent left alone": Case(
        (BASE,), BASE, ["Start container p-db-1 (stopped)"], then=stop("p-db-1")
    ),
    "orphans are warned about": Case((BASE,), project(DB, WEB), [], warnings=1),
    "orphans are removed when asked": Case(
        (BASE,),
        project(DB, WEB),
        ["Stop container p-cache-1 (orphan)", "Remove container p-cache-1 (orphan)"],
        UpOptions(remove_orphans=True),
    ),
    "force recreate": Case(
        (project(CACHE),),
        project(CACHE),
        [
            "Ensure image img/cache:1 (pull policy missing)",
            "Recreate container p-cache-1 (forced)",
            "Start container p-cache-1 (forced)",
        ],
        UpOptions(force_recreate=True),
    ),
    "no recreate keeps a changed container": Case(
        (BASE,),
        with_service(BASE, cache={"image": "img/cache:2"}),
        [],
        UpOptions(no_recreate=True),
    ),
    "selection pulls in dependencies": Case(
        (),
        BASE,
        [
            "Create network p_default (missing)",
            "Ensure image img/db:1 (pull policy missing)",
            "Create container p-db-1 (missing)",
            "Start container p-db-1 (missing)",
            "Wait for service db to be healthy (web depends on it)",
            "Ensure image img/web:1 (pull policy missing)",
            "Create container p-web-1 (missing)",
            "Start container p-web-1 (missing)",
        ],
        UpOptions(services=("web",)),
    ),
    "selection with no_deps touches only the named service": Case(
        (),
        BASE,
        [
            "Create network p_default (missing)",
            "Ensure image img/web:1 (pull policy missing)",
            "Create container p-web-1 (missing)",
            "Start container p-web-1 (missing)",
        ],
        UpOptions(services=("web",), no_deps=True),
    ),
    "external network is never created": Case(
        (),
        project(
            svc("api", networks={"shared": ServiceNetwork()}),
            networks={"shared": Network("shared", "corp-net", external=True)},
        ),
        [
            "Ensure image img/api:1 (pull policy missing)",
            "Create container p-api-1 (missing)",
            "Start container p-api-1 (missing)",
        ],
    ),
    "volumes are created, external ones are not": Case(
        (),
        project(
            svc(
                "api",
                volumes=(
                    ServiceVolume("volume", "/data", "data"),
                    ServiceVolume("volume", "/keys", "keys"),
                ),
            ),
            volumes={
                "data": Volume("data", "p_data"),
                "keys": Volume("keys", "vault", external=True),
            },
        ),
        [
            "Create network p_default (missing)",
            "Create volume p_data (missing)",
            "Ensure image img/api:1 (pull policy missing)",
            "Create container p-api-1 (missing)",
            "Start container p-api-1 (missing)",
        ],
    ),
    "a renamed network recreates its users": Case(
        (project(CACHE),),
        project(CACHE, networks={"default": Network("default", "p_front")}),
        [
            "Create network p_front (missing)",
            "Ensure image img/cache:1 (pull policy missing)",
            "Recreate container p-cache-1 (config changed)",
            "Start container p-cache-1 (config changed)",
        ],
    ),
    "completed dependency and optional dependency": Case(
        (),
        project(
            svc("init"),
            svc("side"),
            svc(
                "app",
                depends_on={
                    "init": DependsOn("service_completed_successfully"),
                    "side": DependsOn(required=False),
                },
            ),
        ),
        [
            "Create network p_default (missing)",
            "Ensure image img/init:1 (pull policy missing)",
            "Create container p-init-1 (missing)",
            "Start container p-init-1 (missing)",
            "Ensure image img/side:1 (pull policy missing)",
            "Create container p-side-1 (missing)",
            "Start container p-side-1 (missing)",
            "Wait for service init to be completed successfully (app depends on it)",
            "Wait for service side to be started (app depends on it, optional)",
            "Ensure image img/app:1 (pull policy missing)",
            "Create container p-app-1 (missing)",
            "Start container p-app-1 (missing)",
        ],
        # the job exited 0: done, not run again (see reconcile._service_ops)
        second=(),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_up_plan(case: Case) -> None:
    fake = fake_backend()
    fake.add_network("corp-net")
    for earlier in case.before:
        up(fake, earlier)
    if case.then is not None:
        case.then(fake)

    plan = reconcile(case.target, fake.observe("p"), case.options)

    assert render_text(plan) == case.expected
    assert len(plan.warnings) == case.warnings


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_second_up_is_empty(case: Case) -> None:
    fake = fake_backend()
    fake.add_network("corp-net")
    fake.add_volume("vault")
    for earlier in case.before:
        up(fake, earlier)
    if case.then is not None:
        case.then(fake)
    up(fake, case.target, case.options)

    again = replace(case.options, force_recreate=False)
    assert tuple(render_text(reconcile(case.target, fake.observe("p"), again))) == case.second


WEB_PORTS = svc("web", ports=(PortConfig(80, "8080"), PortConfig(53, "5300-5301", protocol="udp")))
ROUTES = (
    Route("web", 5300, 53, "udp"),
    Route("web", 5301, 53, "udp"),
    Route("web", 8080, 80),
)


@pytest.mark.parametrize(
    ("served", "expected"),
    [
        (
            (),
            [
                "Publish ingress 0.0.0.0:5300/udp→web:53, 0.0.0.0:5301/udp→web:53, "
                "0.0.0.0:8080/tcp→web:80 (missing)"
            ],
        ),
        (ROUTES, []),
        (
            ROUTES[:1],
            [
                "Publish ingress 0.0.0.0:5300/udp→web:53, 0.0.0.0:5301/udp→web:53, "
                "0.0.0.0:8080/tcp→web:80 (routes changed)"
            ],
        ),
    ],
    ids=["not served yet", "served already", "served partly"],
)
def test_ingress_routes_in_the_plan(served: tuple[Route, ...], expected: list[str]) -> None:
    lines = render_text(reconcile(project(WEB_PORTS), FakeBackend().observe("p"), ingress=served))

    assert [line for line in lines if "ingress" in line] == expected


@pytest.mark.parametrize(
    ("ports", "expected"),
    [
        ((PortConfig(80, "8080"),), [Route("web", 8080, 80)]),
        (
            (PortConfig(80, "8000-8001", host_ip="127.0.0.1"),),
            [
                Route("web", 8000, 80, host_ip="127.0.0.1"),
                Route("web", 8001, 80, host_ip="127.0.0.1"),
            ],
        ),
        ((PortConfig(80, "8080", mode="host"),), []),
        ((PortConfig(80),), []),  # no published port: each container binds a random one
        ((PortConfig(80, "8080", protocol="sctp"),), []),
    ],
    ids=["one port", "range expands", "host mode", "unpublished", "sctp"],
)
def test_ingress_routes(ports: tuple[PortConfig, ...], expected: list[Route]) -> None:
    assert ingress_routes(project(svc("web", ports=ports))) == expected


def test_scale_down_of_an_ingress_service_drains_first() -> None:
    fake = fake_backend()
    scaled = project(svc("web", ports=(PortConfig(80, "8080"),), scale=2))
    up(fake, scaled)

    plan = reconcile(
        project(svc("web", ports=(PortConfig(80, "8080"),))),
        fake.observe("p"),
        ingress=(Route("web", 8080, 80),),
    )

    assert [(op.id, getattr(op, "drain", None)) for op in plan.ops] == [
        ("stop:p-web-2", True),
        ("remove:p-web-2", True),
    ]


DOWN_BASE = project(
    DB,
    WEB,
    svc(
        "api",
        networks={"shared": ServiceNetwork()},
        volumes=(
            ServiceVolume("volume", "/data", "data"),
            ServiceVolume("volume", "/keys", "keys"),
        ),
    ),
    networks={
        "default": Network("default", "p_default"),
        "shared": Network("shared", "corp-net", external=True),
    },
    volumes={"data": Volume("data", "p_data"), "keys": Volume("keys", "vault", external=True)},
)
DOWN_CONTAINERS = [
    "Stop container p-web-1 (down)",
    "Remove container p-web-1 (down)",
    "Stop container p-api-1 (down)",
    "Remove container p-api-1 (down)",
    "Stop container p-db-1 (down)",
    "Remove container p-db-1 (down)",
    "Remove network p_default (down)",
]


@pytest.mark.parametrize(
    ("remove_volumes", "served", "expected"),
    [
        (False, (), DOWN_CONTAINERS),
        (True, (), [*DOWN_CONTAINERS, "Remove volume p_data (down)"]),
        (False, ROUTES, ["Remove ingress all routes (down)", *DOWN_CONTAINERS]),
    ],
    ids=["keeps volumes", "-v removes project volumes", "removes the ingress first"],
)
def test_down_plan(remove_volumes: bool, served: tuple[Route, ...], expected: list[str]) -> None:
    fake = fake_backend()
    fake.add_network("corp-net")
    fake.add_volume("vault")
    up(fake, DOWN_BASE)

    plan = plan_down(DOWN_BASE, fake.observe("p"), remove_volumes=remove_volumes, ingress=served)

    assert render_text(plan) == expected


def test_down_stops_dependents_before_their_dependencies() -> None:
    fake = fake_backend()
    fake.add_network("corp-net")
    fake.add_volume("vault")
    up(fake, DOWN_BASE)

    plan = plan_down(DOWN_BASE, fake.observe("p"))

    assert "stop:p-web-1" in plan.needs("stop:p-db-1")
    assert plan.needs("network-remove:p_default") == {
        "remove:p-api-1",
        "remove:p-web-1",
        "remove:p-db-1",
    }


@pytest.mark.parametrize(
    ("remove_orphans", "expected", "warnings"),
    [
        (
            False,
            [
                "Stop container p-web-1 (down)",
                "Remove container p-web-1 (down)",
                "Stop container p-db-1 (down)",
                "Remove container p-db-1 (down)",
                "Remove network p_default (down)",
            ],
            1,
        ),
        (
            True,
            [
                "Stop container p-web-1 (down)",
                "Remove container p-web-1 (down)",
                "Stop container p-db-1 (down)",
                "Remove container p-db-1 (down)",
                "Stop container p-cache-1 (orphan)",
                "Remove container p-cache-1 (orphan)",
                "Remove network p_default (down)",
            ],
            0,
        ),
    ],
    ids=["orphans kept", "orphans removed"],
)
def test_down_orphans(remove_orphans: bool, expected: list[str], warnings: int) -> None:
    fake = fake_backend()
    up(fake, BASE)

    plan = plan_down(project(DB, WEB), fake.observe("p"), remove_orphans=remove_orphans)

    assert render_text(plan) == expected
    assert len(plan.warnings) == warnings


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (
            lambda o: plan_stop(BASE, o),
            [
                "Stop container p-web-1 (requested)",
                "Stop container p-cache-1 (requested)",
                "Stop container p-db-1 (requested)",
            ],
        ),
        (lambda o: plan_stop(BASE, o, ["db"]), ["Stop container p-db-1 (requested)"]),
        (lambda o: plan_start(BASE, o), []),
        (
            lambda o: plan_restart(BASE, o, ["db", "web"]),
            [
                "Stop container p-db-1 (requested)",
                "Start container p-db-1 (requested)",
                "Wait for service db to be healthy (web depends on it)",
                "Stop container p-web-1 (requested)",
                "Start container p-web-1 (requested)",
            ],
        ),
    ],
    ids=["stop all", "stop one", "start with all running", "restart two"],
)
def test_stop_start_restart_plans(
    make: Callable[[ObservedState], Plan], expected: list[str]
) -> None:
    fake = fake_backend()
    up(fake, BASE)

    assert render_text(make(fake.observe("p"))) == expected


def test_start_after_stop_waits_on_dependencies() -> None:
    fake = fake_backend()
    up(fake, BASE)
    execute(plan_stop(BASE, fake.observe("p")), fake)

    plan = plan_start(BASE, fake.observe("p"))

    assert render_text(plan) == [
        "Start container p-cache-1 (requested)",
        "Start container p-db-1 (requested)",
        "Wait for service db to be healthy (web depends on it)",
        "Start container p-web-1 (requested)",
    ]
    assert plan.needs("start:p-web-1") == {"await:db:service_healthy"}
    assert execute(plan, fake).ok
    assert reconcile(BASE, fake.observe("p")).ops == ()


def test_shared_network_mode_is_resolved_when_the_target_runs() -> None:
    fake = fake_backend()
    target = project(svc("vpn"), svc("app", network_mode="service:vpn", networks={}))

    up(fake, target)

    vpn = fake.container("p-vpn-1").id
    assert fake.container("p-app-1").spec.network_mode == f"container:{vpn}"
    assert reconcile(target, fake.observe("p")).ops == ()


def test_render_json() -> None:
    plan = reconcile(project(svc("web")), FakeBackend().observe("p"))

    assert render_json(plan)[-1] == {
        "id": "start:p-web-1",
        "op": "StartContainer",
        "action": "Start",
        "resource": "container",
        "name": "p-web-1",
        "reason": "missing",
        "needs": ["create:p-web-1"],
    }


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: UpOptions(force_recreate=True, no_recreate=True), UsageError),
        (lambda: UpOptions(scale={"web": -1}), UsageError),
        (lambda: reconcile(BASE, ObservedState("p"), UpOptions(services=("nope",))), NotFound),
        (lambda: reconcile(BASE, ObservedState("p"), UpOptions(scale={"nope": 2})), NotFound),
    ],
    ids=["force and no recreate", "negative scale", "unknown service", "unknown scale"],
)
def test_refusals(call: Callable[[], object], error: type[Exception]) -> None:
    with pytest.raises(error):
        call()
