"""Convergence: whatever was up before, running reconcile's plan makes the next plan empty.

Observed states are reached by executing random earlier projects on a FakeBackend (and
stopping a few containers), never written by hand, so they are states a real engine can be in.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.executor import execute
from orchestrator.model import (
    DependsOn,
    Healthcheck,
    Network,
    Project,
    ServiceNetwork,
    ServiceVolume,
    Volume,
)
from orchestrator.plan.hashing import config_hash
from orchestrator.plan.reconcile import UpOptions, reconcile
from tests.unit.plan.helpers import RecordingIngress, fake_backend, project, svc, up

NAMES = ("a", "b", "c", "d")
NETWORKS = {
    "default": Network("default", "p_default"),
    "back": Network("back", "p_back"),
}
VOLUMES = {"data": Volume("data", "p_data")}


@st.composite
def projects(draw: st.DrawFn) -> Project:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    services = []
    for index, name in enumerate(sorted(names)):
        earlier = sorted(names)[:index]
        depends = draw(st.lists(st.sampled_from(earlier), unique=True) if earlier else st.just([]))
        conditions = {
            dep: DependsOn(draw(st.sampled_from(["service_started", "service_healthy"])))
            for dep in depends
        }
        networks = draw(st.lists(st.sampled_from(sorted(NETWORKS)), min_size=1, unique=True))
        services.append(
            svc(
                name,
                image=draw(st.sampled_from([f"img/{name}:1", f"img/{name}:2"])),
                scale=draw(st.integers(min_value=0, max_value=3)),
                depends_on=conditions,
                # every service has a healthcheck so a service_healthy gate can pass
                healthcheck=Healthcheck(test=("CMD", "true")),
                networks={key: ServiceNetwork() for key in networks},
                environment=draw(st.sampled_from([{}, {"MODE": "x"}])),
                volumes=draw(st.sampled_from([(), (ServiceVolume("volume", "/data", "data"),)])),
            )
        )
    return project(*services, networks=dict(NETWORKS), volumes=dict(VOLUMES))


@settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    history=st.lists(projects(), max_size=2),
    target_was_up=st.booleans(),
    stopped=st.sets(st.sampled_from([f"p-{n}-{i}" for n in NAMES for i in (1, 2)]), max_size=3),
    target=projects(),
    options=st.builds(
        UpOptions,
        force_recreate=st.booleans(),
        remove_orphans=st.booleans(),
    ),
)
def test_after_executing_the_plan_the_next_plan_is_empty(
    history: list[Project],
    target_was_up: bool,
    stopped: set[str],
    target: Project,
    options: UpOptions,
) -> None:
    fake = fake_backend()
    for earlier in [*history, target] if target_was_up else history:
        up(fake, earlier)
    present = {c.name for c in fake.observe("p").containers}
    for name in sorted(stopped & present):
        fake.stop_container(name)

    plan = reconcile(target, fake.observe("p"), options)
    result = execute(
        plan, fake, parallel=3, ingress=RecordingIngress(), wait_timeout=5, poll_interval=0.01
    )

    assert result.ok, result.errors
    observed = fake.observe("p")
    assert reconcile(target, observed, UpOptions(remove_orphans=options.remove_orphans)).ops == ()
    # and the state reached is the one asked for: N running replicas of the current config
    for name, service in target.services.items():
        found = [(c.number, c.status, c.config_hash) for c in observed.service_containers(name)]
        digest = config_hash(service, target)
        assert found == [(n, "running", digest) for n in range(1, service.replicas + 1)]
    if options.remove_orphans:
        assert {c.service for c in observed.containers} <= set(target.services)
