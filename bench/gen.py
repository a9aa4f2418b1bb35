"""Generated compose files for benchmarks: N services, chains, replicas.

Shared by every bench script so that pycompose and its peers load the very same files.
"""

from __future__ import annotations

from typing import Any


def many_services(
    count: int, image: str = "pycompose-test/busybox:1", *, rich: bool = True
) -> dict[str, Any]:
    """``count`` services, each with the keys real files use (ports, env, volumes, deps)."""
    services: dict[str, Any] = {}
    for i in range(count):
        service: dict[str, Any] = {
            "image": image,
            "command": ["sleep", "3600"],
        }
        if rich:
            service.update(
                {
                    "environment": {"INDEX": str(i), "NAME": f"svc{i}"},
                    "labels": [f"bench.index={i}"],
                    "expose": ["80"],
                    "volumes": [f"data{i % 10}:/data"],
                    "healthcheck": {"test": "true", "interval": "30s", "retries": 3},
                    "deploy": {"resources": {"limits": {"memory": "64m"}}},
                }
            )
            if i:
                service["depends_on"] = [f"svc{i - 1}"] if i % 10 else []
        services[f"svc{i}"] = service
    doc: dict[str, Any] = {"services": services}
    if rich:
        doc["volumes"] = {f"data{i}": {} for i in range(min(count, 10))}
    return doc


def chain(depth: int, image: str = "pycompose-test/busybox:1") -> dict[str, Any]:
    """A depends_on chain: svc0 ← svc1 ← ... ← svc{depth-1}."""
    services: dict[str, Any] = {}
    for i in range(depth):
        service: dict[str, Any] = {"image": image, "command": ["sleep", "3600"]}
        if i:
            service["depends_on"] = [f"svc{i - 1}"]
        services[f"svc{i}"] = service
    return {"services": services}


def replicated(
    services: int, replicas: int, image: str = "pycompose-test/busybox:1"
) -> dict[str, Any]:
    return {
        "services": {
            f"svc{i}": {
                "image": image,
                "command": ["sleep", "3600"],
                "deploy": {"replicas": replicas},
            }
            for i in range(services)
        }
    }
