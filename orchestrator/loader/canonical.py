"""Short syntax to long syntax, in plain data keyed as the compose spec's long forms.

Later stages (normalize, bind) and ``pycompose config`` then deal with one shape per key
instead of the two or three the spec allows. The rules are a table keyed by service key,
so adding a short form means adding one small function. Every problem found is collected
and raised together, each located through the document's positions.
"""

from __future__ import annotations

import copy
import shlex
from collections.abc import Callable
from typing import Any

from orchestrator import units
from orchestrator.errors import ConfigError, Problem
from orchestrator.loader.document import Document, PathKey, Positions, dotted, locate

_PROTOCOLS = ("tcp", "udp", "sctp")
_PROPAGATIONS = ("shared", "rshared", "slave", "rslave", "private", "rprivate")
_CONSISTENCIES = ("cached", "delegated", "consistent")
_RESTARTS = ("no", "always", "on-failure", "unless-stopped")
_RESOURCE_SECTIONS = ("networks", "volumes", "secrets", "configs")


class _Context:
    """Problems found so far, and positions rewritten where lists change shape."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[Problem] = []
        self.positions: Positions = dict(doc.positions)

    def problem(self, path: PathKey, message: str, hint: str = "") -> None:
        self.problems.append(
            Problem(message, dotted(path), locate(self.doc.positions, path), hint)
        )

    def reindex(self, list_path: PathKey, origin: list[int]) -> None:
        """Entry ``i`` of the rewritten list at ``list_path`` came from entry ``origin[i]``."""
        depth = len(list_path)
        old = {
            key: loc
            for key, loc in self.doc.positions.items()
            if len(key) > depth and key[:depth] == list_path and isinstance(key[depth], int)
        }
        for key in old:
            self.positions.pop(key, None)
        for new_index, old_index in enumerate(origin):
            for key, loc in old.items():
                if key[depth] == old_index:
                    self.positions[(*list_path, new_index, *key[depth + 1 :])] = loc


Rule = Callable[[_Context, PathKey, Any], Any]


def canonicalize(doc: Document) -> Document:
    """``doc`` with every short syntax rewritten to the spec's long syntax.

    Raises ConfigError listing every value that cannot be understood.
    """
    ctx = _Context(doc)
    data = copy.deepcopy(doc.data)
    services = data.get("services")
    if isinstance(services, dict):
        for name, service in list(services.items()):
            if service is None:
                service = services[name] = {}
            if isinstance(service, dict):
                _service(ctx, ("services", str(name)), service)
    for section in _RESOURCE_SECTIONS:
        entries = data.get(section)
        if isinstance(entries, dict):
            for key, entry in list(entries.items()):
                entries[key] = _resource(ctx, (section, str(key)), entry)
    if ctx.problems:
        raise ConfigError(ctx.problems)
    return Document(
        file=doc.file, data=data, positions=ctx.positions, directory=doc.directory
    )


def _service(ctx: _Context, path: PathKey, service: dict[str, Any]) -> None:
    for key, rule in _SERVICE_RULES.items():
        if key in service and service[key] is not None:
            service[key] = rule(ctx, (*path, key), service[key])


# --- scalars -----------------------------------------------------------------------------


def _text(value: Any) -> str:
    """A scalar as compose writes it in a string context (YAML booleans lower-case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _string_list(ctx: _Context, path: PathKey, value: Any) -> Any:
    if isinstance(value, list):
        return [_text(item) for item in value]
    return [_text(value)]


# --- ports and expose --------------------------------------------------------------------


def _port_number(ctx: _Context, path: PathKey, text: str, what: str) -> int | None:
    try:
        number = int(text)
    except ValueError:
        ctx.problem(path, f"expected a {what} port number, got {text!r}")
        return None
    if not 0 < number <= 65535:
        ctx.problem(path, f"a {what} port must be between 1 and 65535, got {number}")
        return None
    return number


def _port_range(ctx: _Context, path: PathKey, text: str, what: str) -> list[int] | None:
    start_text, sep, end_text = text.partition("-")
    start = _port_number(ctx, path, start_text.strip(), what)
    if start is None:
        return None
    if not sep:
        return [start]
    end = _port_number(ctx, path, end_text.strip(), what)
    if end is None:
        return None
    if end < start:
        ctx.problem(path, f"a {what} port range must go upwards, got {text!r}")
        return None
    return list(range(start, end + 1))


def _split_port(ctx: _Context, path: PathKey, spec: str) -> tuple[str | None, str, str, str] | None:
    """``[host_ip:][published:]target[/proto]`` into its four texts."""
    text, _, protocol = spec.strip().partition("/")
    protocol = protocol or "tcp"
    host_ip: str | None = None
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1 : end + 2] != ":":
            ctx.problem(path, f"expected '[ipv6]:published:target', got {spec!r}")
            return None
        host_ip = text[1:end]
        parts = text[end + 2 :].split(":")
        if len(parts) != 2:
            ctx.problem(path, f"expected '[ipv6]:published:target', got {spec!r}")
            return None
        published, target = parts
    else:
        parts = text.split(":")
        if len(parts) == 1:
            published, target = "", parts[0]
        elif len(parts) == 2:
            published, target = parts
        else:
            # an IPv6 host address without brackets: the last two fields are the ports
            host_ip = ":".join(parts[:-2])
            published, target = parts[-2], parts[-1]
    return host_ip or None, published.strip(), target.strip(), protocol.strip().lower()


def _short_port(ctx: _Context, path: PathKey, spec: str) -> list[dict[str, Any]]:
    split = _split_port(ctx, path, spec)
    if split is None:
        return []
    host_ip, published, target, protocol = split
    if protocol not in _PROTOCOLS:
        ctx.problem(path, f"expected protocol tcp, udp or sctp, got {protocol!r}")
        return []
    targets = _port_range(ctx, path, target, "container")
    hosts = _port_range(ctx, path, published, "published") if published else []
    if targets is None or hosts is None:
        return []
    if len(targets) > 1 and hosts and len(hosts) != len(targets):
        ctx.problem(
            path,
            f"the published range has {len(hosts)} ports but the container range has "
            f"{len(targets)} in {spec!r}",
            "give ranges of the same size, or no published port",
        )
        return []
    out: list[dict[str, Any]] = []
    for index, number in enumerate(targets):
        entry: dict[str, Any] = {"target": number}
        if len(targets) > 1 and hosts:
            entry["published"] = str(hosts[index])
        elif hosts:
            entry["published"] = published
        if host_ip is not None:
            entry["host_ip"] = host_ip
        entry["protocol"] = protocol
        entry["mode"] = "ingress"
        out.append(entry)
    return out


def _long_port(ctx: _Context, path: PathKey, entry: dict[str, Any]) -> list[dict[str, Any]]:
    out = dict(entry)
    target = _port_number(ctx, (*path, "target"), _text(entry.get("target", "")), "container")
    if target is None:
        return []
    out["target"] = target
    published = entry.get("published")
    if published is not None and _text(published) != "":
        text = _text(published).strip()
        if _port_range(ctx, (*path, "published"), text, "published") is None:
            return []
        out["published"] = text
    else:
        out.pop("published", None)
    protocol = _text(out.get("protocol", "tcp")).lower()
    if protocol not in _PROTOCOLS:
        ctx.problem((*path, "protocol"), f"expected tcp, udp or sctp, got {protocol!r}")
        return []
    out["protocol"] = protocol
    out.setdefault("mode", "ingress")
    return [out]


def _ports(ctx: _Context, path: PathKey, value: Any) -> Any:
    if not isinstance(value, list):
        return value
    out: list[dict[str, Any]] = []
    origin: list[int] = []
    for index, item in enumerate(value):
        item_path = (*path, index)
        if isinstance(item, dict):
            entries = _long_port(ctx, item_path, item)
        elif isinstance(item, bool) or not isinstance(item, int | str):
            ctx.problem(item_path, f"expected a port like '8080:80' or a mapping, got {item!r}")
            entries = []
        else:
            entries = _short_port(ctx, item_path, str(item))
        out.extend(entries)
        origin.extend([index] * len(entries))
    ctx.reindex(path, origin)
    return out


# --- volumes -----------------------------------------------------------------------------


def _short_volume(ctx: _Context, path: PathKey, spec: str) -> dict[str, Any] | None:
    parts = spec.split(":")
    if len(parts) > 3:
        ctx.problem(path, f"expected 'source:target[:mode]', got {spec!r}")
        return None
    if len(parts) == 1:
        return {"type": "volume", "target": parts[0]}
    source, target = parts[0], parts[1]
    modes = parts[2].split(",") if len(parts) == 3 else []
    if not target:
        ctx.problem(path, f"expected a container path after ':', got {spec!r}")
        return None
    out: dict[str, Any] = {}
    if not source:
        out.update(type="volume", target=target)
    elif source.startswith((".", "/", "~")):
        out.update(type="bind", source=source, target=target, bind={"create_host_path": True})
    else:
        out.update(type="volume", source=source, target=target)
    for mode in (m.strip() for m in modes):
        if mode in ("ro", "rw"):
            out["read_only"] = mode == "ro"
        elif mode in ("z", "Z"):
            out.setdefault("bind", {})["selinux"] = mode
        elif mode == "nocopy":
            out.setdefault("volume", {})["nocopy"] = True
        elif mode in _PROPAGATIONS:
            out.setdefault("bind", {})["propagation"] = mode
        elif mode in _CONSISTENCIES:
            out["consistency"] = mode
        elif mode:
            ctx.problem(
                path,
                f"unknown volume mode {mode!r} in {spec!r}",
                "expected ro, rw, z, Z, nocopy, a propagation (rshared, ...) or cached",
            )
    return out


def _volumes(ctx: _Context, path: PathKey, value: Any) -> Any:
    if not isinstance(value, list):
        return value
    out: list[Any] = []
    for index, item in enumerate(value):
        if isinstance(item, str):
            entry = _short_volume(ctx, (*path, index), item)
            out.append(entry if entry is not None else item)
        else:
            out.append(item)
    return out


# --- lists that become mappings ----------------------------------------------------------


def _environment(ctx: _Context, path: PathKey, value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _optional_text(v) for k, v in value.items()}
    if isinstance(value, list):
        out: dict[str, str | None] = {}
        for item in value:
            key, sep, val = _text(item).partition("=")
            out[key] = val if sep else None
        return out
    return value


def _labels(ctx: _Context, path: PathKey, value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): "" if v is None else _text(v) for k, v in value.items()}
    if isinstance(value, list):
        out: dict[str, str] = {}
        for item in value:
            key, _, val = _text(item).partition("=")
            out[key] = val
        return out
    return value


def _extra_hosts(ctx: _Context, path: PathKey, value: Any) -> Any:
    pairs: list[tuple[PathKey, str, str]] = []
    if isinstance(value, dict):
        for host, ips in value.items():
            for ip in ips if isinstance(ips, list) else [ips]:
                pairs.append(((*path, str(host)), str(host), _text(ip)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            text = _text(item)
            sep = "=" if "=" in text else ":"
            host, _, ip = text.partition(sep)
            pairs.append(((*path, index), host, ip))
    else:
        return value
    out: list[str] = []
    for item_path, host, ip in pairs:
        host, ip = host.strip(), ip.strip()
        if ip.startswith("[") and ip.endswith("]"):
            ip = ip[1:-1]
        if not host or not ip:
            ctx.problem(item_path, f"expected 'host:ip' or 'host=ip', got {host}:{ip}")
            continue
        out.append(f"{host}:{ip}")
    return out


def _service_networks(ctx: _Context, path: PathKey, value: Any) -> Any:
    if isinstance(value, list):
        return {_text(name): {} for name in value}
    if isinstance(value, dict):
        return {str(k): {} if v is None else v for k, v in value.items()}
    return value


def _depends_on(ctx: _Context, path: PathKey, value: Any) -> Any:
    defaults = {"condition": "service_started", "required": True, "restart": False}
    if isinstance(value, list):
        return {_text(name): dict(defaults) for name in value}
    if isinstance(value, dict):
        return {str(k): {**defaults, **(v or {})} for k, v in value.items()}
    return value


# --- the rest of the service keys --------------------------------------------------------


def _healthcheck(ctx: _Context, path: PathKey, value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    out = dict(value)
    test = out.get("test")
    if isinstance(test, str):
        out["test"] = ["CMD-SHELL", test]
    elif isinstance(test, list):
        out["test"] = [_text(part) for part in test]
    if out.get("disable") is True:
        out["test"] = ["NONE"]
    return out


def _command(ctx: _Context, path: PathKey, value: Any) -> Any:
    if isinstance(value, list):
        return [_text(part) for part in value]
    try:
        return shlex.split(_text(value))
    except ValueError as exc:
        ctx.problem(path, f"cannot split the command into words: {exc}", "check the quotes")
        return value


def _env_file(ctx: _Context, path: PathKey, value: Any) -> Any:
    items = value if isinstance(value, list) else [value]
    out: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            out.append({**item, "required": item.get("required", True)})
        else:
            out.append({"path": _text(item), "required": True})
    return out


def _ulimits(ctx: _Context, path: PathKey, value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for name, limit in value.items():
        out[str(name)] = limit if isinstance(limit, dict) else {"soft": limit, "hard": limit}
    return out


def _build(ctx: _Context, path: PathKey, value: Any) -> Any:
    if isinstance(value, str):
        return {"context": value}
    if not isinstance(value, dict):
        return value
    out = dict(value)
    if "args" in out and out["args"] is not None:
        out["args"] = _environment(ctx, (*path, "args"), out["args"])
    if "labels" in out and out["labels"] is not None:
        out["labels"] = _labels(ctx, (*path, "labels"), out["labels"])
    return out


def _service_files(ctx: _Context, path: PathKey, value: Any) -> Any:
    if not isinstance(value, list):
        return value
    return [{"source": item} if isinstance(item, str) else item for item in value]


def _restart(ctx: _Context, path: PathKey, value: Any) -> Any:
    text = "no" if value is False else _text(value)
    policy, sep, retries = text.partition(":")
    if policy not in _RESTARTS or (sep and (policy != "on-failure" or not retries.isdigit())):
        ctx.problem(
            path,
            f"expected no, always, on-failure, on-failure:N or unless-stopped, got {text!r}",
        )
    return text


def _number(ctx: _Context, path: PathKey, value: Any, kind: type[int] | type[float]) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    try:
        number = kind(value)
    except (TypeError, ValueError):
        ctx.problem(path, f"expected a number, got {value!r}")
        return value
    if kind is int and isinstance(value, float) and value != number:
        ctx.problem(path, f"expected a whole number, got {value!r}")
    return number


def _duration(ctx: _Context, path: PathKey, value: Any) -> Any:
    try:
        return round(units.parse_duration(value), 9)
    except (TypeError, ValueError) as exc:
        ctx.problem(path, str(exc))
        return value


def _size(ctx: _Context, path: PathKey, value: Any) -> Any:
    try:
        return units.parse_size(value)
    except (TypeError, ValueError) as exc:
        ctx.problem(path, str(exc))
        return value


_UPDATE_FIELDS: dict[str, Rule] = {
    "parallelism": lambda c, p, v: _number(c, p, v, int),
    "delay": _duration,
    "monitor": _duration,
    "max_failure_ratio": lambda c, p, v: _number(c, p, v, float),
}
_RESTART_POLICY_FIELDS: dict[str, Rule] = {
    "delay": _duration,
    "window": _duration,
    "max_attempts": lambda c, p, v: _number(c, p, v, int),
}
_RESOURCE_FIELDS: dict[str, Rule] = {
    "cpus": lambda c, p, v: _number(c, p, v, float),
    "memory": _size,
    "pids": lambda c, p, v: _number(c, p, v, int),
}


def _apply(ctx: _Context, path: PathKey, value: Any, rules: dict[str, Rule]) -> Any:
    if not isinstance(value, dict):
        return value
    out = dict(value)
    for key, rule in rules.items():
        if out.get(key) is not None:
            out[key] = rule(ctx, (*path, key), out[key])
    return out


def _deploy(ctx: _Context, path: PathKey, value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    out = dict(value)
    if out.get("replicas") is not None:
        out["replicas"] = _number(ctx, (*path, "replicas"), out["replicas"], int)
    if out.get("labels") is not None:
        out["labels"] = _labels(ctx, (*path, "labels"), out["labels"])
    for key in ("update_config", "rollback_config"):
        if out.get(key) is not None:
            out[key] = _apply(ctx, (*path, key), out[key], _UPDATE_FIELDS)
    if out.get("restart_policy") is not None:
        out["restart_policy"] = _apply(
            ctx, (*path, "restart_policy"), out["restart_policy"], _RESTART_POLICY_FIELDS
        )
    resources = out.get("resources")
    if isinstance(resources, dict):
        resources = dict(resources)
        for key in ("limits", "reservations"):
            if resources.get(key) is not None:
                resources[key] = _apply(
                    ctx, (*path, "resources", key), resources[key], _RESOURCE_FIELDS
                )
        out["resources"] = resources
    return out


_SERVICE_RULES: dict[str, Rule] = {
    "build": _build,
    "command": _command,
    "entrypoint": _command,
    "environment": _environment,
    "env_file": _env_file,
    "ports": _ports,
    "expose": _string_list,
    "volumes": _volumes,
    "networks": _service_networks,
    "depends_on": _depends_on,
    "labels": _labels,
    "annotations": _labels,
    "sysctls": _labels,
    "extra_hosts": _extra_hosts,
    "healthcheck": _healthcheck,
    "dns": _string_list,
    "dns_search": _string_list,
    "tmpfs": _string_list,
    "ulimits": _ulimits,
    "secrets": _service_files,
    "configs": _service_files,
    "restart": _restart,
    "deploy": _deploy,
}


# --- top-level networks, volumes, secrets, configs ---------------------------------------


def _resource(ctx: _Context, path: PathKey, entry: Any) -> Any:
    if entry is None:
        return {}
    if not isinstance(entry, dict):
        return entry
    out = dict(entry)
    external = out.get("external")
    if isinstance(external, dict):
        legacy = external.get("name")
        if legacy is not None and out.get("name") not in (None, legacy):
            ctx.problem(
                (*path, "external", "name"),
                f"conflicting names {out['name']!r} and {legacy!r}",
                "keep only `name`; `external.name` is the old spelling",
            )
        out["external"] = True
        if legacy is not None:
            out["name"] = _text(legacy)
    if out.get("labels") is not None:
        out["labels"] = _labels(ctx, (*path, "labels"), out["labels"])
    if isinstance(out.get("driver_opts"), dict):
        out["driver_opts"] = {str(k): _text(v) for k, v in out["driver_opts"].items()}
    return out
