"""The namespace backend's records (names, metadata, networks, volumes) and the shim's
health status file, on a tmp state root. No root needed: plain files."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.backends.factory import open_backend
from orchestrator.backends.namespace import NamespaceBackend
from orchestrator.backends.namespace.store import Meta, Records
from orchestrator.errors import Conflict, NotFound
from orchestrator.runtime.container import HealthStatus, parse_health


def meta(container_id: str, name: str) -> Meta:
    return Meta(container_id, name, "img", {"k": "v"}, 1.0, {"net": ["a"]})


def test_names_are_unique_and_stale_claims_are_taken_over(tmp_path: Path) -> None:
    records = Records(tmp_path)
    records.claim_name("p-web-1", "a" * 64)
    records.save_meta(meta("a" * 64, "p-web-1"))
    with pytest.raises(Conflict, match="already in use"):
        records.claim_name("p-web-1", "b" * 64)
    # a claim whose container has no metadata is left from an interrupted create
    records.claim_name("p-old-1", "c" * 64)
    records.claim_name("p-old-1", "d" * 64)
    assert records.name_owner("p-old-1") == "d" * 64


def test_release_only_drops_ones_own_claim(tmp_path: Path) -> None:
    records = Records(tmp_path)
    records.claim_name("p-web-1", "a" * 64)
    records.release_name("p-web-1", "b" * 64)
    assert records.name_owner("p-web-1") == "a" * 64
    records.release_name("p-web-1", "a" * 64)
    assert records.name_owner("p-web-1") is None


@pytest.mark.parametrize("name", ["", "../x", "a/b", "-lead"])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(Conflict, match="invalid"):
        Records(tmp_path).claim_name(name, "a" * 64)


def test_meta_round_trips_and_missing_is_not_found(tmp_path: Path) -> None:
    records = Records(tmp_path)
    records.save_meta(meta("a" * 64, "p-web-1"))
    assert records.load_meta("a" * 64) == meta("a" * 64, "p-web-1")
    assert records.container_ids() == ["a" * 64]
    records.drop_meta("a" * 64)
    with pytest.raises(NotFound):
        records.load_meta("a" * 64)
    records.drop_meta("a" * 64)  # idempotent


def test_networks_and_volumes(tmp_path: Path) -> None:
    records = Records(tmp_path)
    records.save_network("p_front", "id1", {"l": "1"})
    with pytest.raises(Conflict):
        records.save_network("p_front", "id2", {})
    records.save_volume("p_data", {"l": "2"})
    records.save_volume("p_data", {"ignored": "x"})  # creating it again does nothing
    assert list(records.networks_all()) == [("p_front", "id1", {"l": "1"})]
    assert list(records.volumes_all()) == [("p_data", {"l": "2"})]
    assert records.volume_path("p_data").is_dir()
    records.drop_network("p_front")
    records.drop_volume("p_data")
    assert not (tmp_path / "volumes" / "p_data").exists()
    with pytest.raises(NotFound):
        records.drop_network("p_front")
    with pytest.raises(NotFound):
        records.drop_volume("p_data")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("healthy 0 0 1700000000000000000\n", HealthStatus("healthy", 0, 0, 1.7e9)),
        ("starting 0 -1 1700000000000000000", HealthStatus("starting", 0, None, 1.7e9)),
        ("unhealthy 3 137 1700000000000000000", HealthStatus("unhealthy", 3, 137, 1.7e9)),
        ("", None),
        ("healthy 0", None),
        ("sick 0 0 1", None),
        ("healthy x 0 1", None),
    ],
)
def test_parse_health(text: str, expected: HealthStatus | None) -> None:
    assert parse_health(text) == expected


def test_factory_opens_the_namespace_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYCOMPOSE_ROOT", str(tmp_path))
    backend = open_backend("namespace")
    assert isinstance(backend, NamespaceBackend)
    assert backend.root == tmp_path
    assert backend.capabilities().name == "namespace"
    assert backend.observe("nothing").containers == ()
    assert "devices" in backend.capabilities().unsupported_keys
