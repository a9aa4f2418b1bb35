"""The DNS on the namespace backend's start path, for real: what a create serves (its one
member added to the last view) is exactly what a rebuild from every container gives, and
a container resolves its peers from its first instruction on, as they resolve it.

Containers, bridge, sandboxes and the DNS daemon live under a tmp state root and are all
removed; the only traffic is DNS to the bridge's gateway, which this test created.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import labels as L
from orchestrator.backends.base import Attachment, ContainerSpec, NetworkSpec
from orchestrator.backends.namespace import NamespaceBackend
from orchestrator.backends.namespace import networking as netw
from orchestrator.model import Network, Service

pytestmark = [
    pytest.mark.root,
    pytest.mark.docker,
    pytest.mark.skipif(os.geteuid() != 0, reason="the namespace backend needs root"),
]

PROJECT = "dnsview"
NETWORK = f"{PROJECT}_default"


def spec(image: str, service: str, number: int, command: tuple[str, ...],
         links: tuple[str, ...] = ()) -> ContainerSpec:
    svc = Service(name=service, image=image, command=command, stop_grace_period=0,
                  links=links)
    return ContainerSpec(
        project=PROJECT,
        service=svc,
        name=f"{PROJECT}-{service}-{number}",
        number=number,
        labels={L.PROJECT: PROJECT, L.SERVICE: service, L.CONTAINER_NUMBER: str(number),
                L.ONEOFF: "False"},
        attachments=(Attachment(NETWORK, aliases=(service,)),),
    )


@pytest.fixture
def backend(tmp_path: Path, busybox_image: str) -> Iterator[NamespaceBackend]:
    from orchestrator.backends.factory import _docker_export

    made = NamespaceBackend(tmp_path / "state", image_source=_docker_export)
    made.ensure_image(busybox_image)
    made.create_network(NetworkSpec(Network(key="default", name=NETWORK), {L.PROJECT: PROJECT}))
    try:
        yield made
    finally:
        for container_id in made.records.container_ids():
            made.remove_container(container_id, force=True)
        made.remove_network(NETWORK)
        made.dns.stop()


def served(backend: NamespaceBackend) -> dict[str, object]:
    data = json.loads(backend.dns.files.records.read_text())
    records = data["records"]
    assert isinstance(records, dict)
    return records


def rebuilt(backend: NamespaceBackend) -> dict[str, object]:
    gateways = {n.name: n.gateway for n in backend.net.networks()}
    return netw.dns_records(list(backend._members()), gateways).to_json()


def test_a_create_serves_what_a_rebuild_would(
    backend: NamespaceBackend, busybox_image: str
) -> None:
    sleep = ("sleep", "3600")
    db = backend.create_container(spec(busybox_image, "db", 1, sleep))
    backend.start_container(db)
    web = backend.create_container(spec(busybox_image, "web", 1, sleep, links=("db:database",)))
    backend.start_container(web)
    assert served(backend) == rebuilt(backend)
    backend.stop_container(db, timeout=0)  # a full rebuild: db's names go
    extra = backend.create_container(spec(busybox_image, "db", 2, sleep))
    assert served(backend) == rebuilt(backend)
    zone = next(z for z in served(backend)["zones"] if z["network"] == NETWORK)  # type: ignore[attr-defined]
    address = backend.inspect_container(extra).addresses[NETWORK]
    assert zone["records"]["db"] == [address]
    assert zone["records"]["database"] == [address]  # web's link, onto the new replica


def test_a_container_resolves_its_peers_from_the_start(
    backend: NamespaceBackend, busybox_image: str
) -> None:
    server = backend.create_container(spec(busybox_image, "db", 1, ("sleep", "3600")))
    backend.start_container(server)
    # the first thing the client does is a lookup: it must already be served
    client = backend.create_container(
        spec(busybox_image, "web", 1, ("nslookup", f"{PROJECT}-db-1"))
    )
    backend.start_container(client)
    assert backend.wait_container(client, timeout=30) == 0
    output = "\n".join(line.text for line in backend.logs(client))
    assert backend.inspect_container(server).addresses[NETWORK] in output
    # and the peer that was there first resolves the newcomer at once
    later = backend.create_container(spec(busybox_image, "api", 1, ("sleep", "3600")))
    backend.start_container(later)
    answer = backend.exec(server, ["nslookup", "api"]).output.decode(errors="replace")
    assert backend.inspect_container(later).addresses[NETWORK] in answer
