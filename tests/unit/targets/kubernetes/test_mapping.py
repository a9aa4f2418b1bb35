"""Compose keys → Kubernetes fields, one table per mapping; every object validates strictly."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.model import (
    ConfigObject,
    DependsOn,
    Deploy,
    Healthcheck,
    Placement,
    PortConfig,
    ResourceLimits,
    ResourceReservations,
    Resources,
    RestartPolicy,
    SecretObject,
    Service,
    ServiceFile,
    ServiceVolume,
    UpdateConfig,
    Volume,
)
from orchestrator.targets.kubernetes import Rendering, problems
from tests.unit.targets.kubernetes.helpers import find, kinds, main_container, render, warned

IMG = "busybox:1.36"


def svc(name: str = "web", **kw: Any) -> Service:
    return Service(name=name, image=IMG, **kw)


def valid(rendering: Rendering) -> Rendering:
    assert problems(rendering.objects) == []
    return rendering


# -- workload kinds ------------------------------------------------------------------------

VOL = {"data": Volume(key="data", name="demo_data")}
DATA = (ServiceVolume(type="volume", source="data", target="/data"),)


@pytest.mark.parametrize(
    ("service", "volumes", "kind"),
    [
        (svc(), {}, "Deployment"),
        (svc(deploy=Deploy(mode="global")), {}, "DaemonSet"),
        (svc(deploy=Deploy(mode="replicated-job", replicas=3)), {}, "Job"),
        (svc(deploy=Deploy(mode="global-job")), {}, "Job"),
        (svc(volumes=DATA), VOL, "StatefulSet"),
        (svc(volumes=DATA, deploy=Deploy(replicas=2)), VOL, "Deployment"),
    ],
)
def test_workload_kind(service: Service, volumes: dict[str, Volume], kind: str) -> None:
    out = valid(render(service, volumes=volumes))
    assert find(out, kind, "web")["kind"] == kind


def test_a_service_waited_on_to_complete_is_a_job_with_a_kubectl_wait() -> None:
    migrate = svc("migrate", restart="no")
    web = svc("web", depends_on={"migrate": DependsOn("service_completed_successfully")})
    out = valid(render(migrate, web))
    job = find(out, "Job", "migrate")
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] == 0
    pod = find(out, "Deployment", "web")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "demo-job-waiter"
    assert pod["initContainers"][0]["command"][:3] == [
        "kubectl",
        "wait",
        "--for=condition=complete",
    ]
    assert pod["initContainers"][0]["command"][-1] == "job/migrate"
    assert ("Role", "demo-job-waiter") in kinds(out) and (
        "RoleBinding",
        "demo-job-waiter",
    ) in kinds(out)
    assert ("Service", "migrate") not in kinds(out)


def test_replicated_job_runs_replicas_completions_and_retries_on_failure() -> None:
    policy = RestartPolicy(condition="on-failure", max_attempts=4)
    out = valid(
        render(svc(deploy=Deploy(mode="replicated-job", replicas=3, restart_policy=policy)))
    )
    spec = find(out, "Job", "web")["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (3, 3, 4)
    assert spec["template"]["spec"]["restartPolicy"] == "OnFailure"


def test_statefulset_claims_its_volume_by_template_and_gets_a_headless_service() -> None:
    out = valid(render(svc(volumes=DATA), volumes=VOL))
    sts = find(out, "StatefulSet", "web")
    assert sts["spec"]["serviceName"] == "web"
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert main_container(sts)["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]
    assert find(out, "Service", "web")["spec"]["clusterIP"] == "None"
    assert ("PersistentVolumeClaim", "data") not in kinds(out)


# -- containers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entrypoint", "command", "expected"),
    [
        (None, None, {}),
        (None, ("run", "--fast"), {"args": ["run", "--fast"]}),
        (("/bin/app",), None, {"command": ["/bin/app"]}),
        (("sh", "-c"), ("echo hi",), {"command": ["sh", "-c"], "args": ["echo hi"]}),
    ],
)
def test_entrypoint_is_command_and_command_is_args(
    entrypoint: tuple[str, ...] | None, command: tuple[str, ...] | None, expected: dict[str, Any]
) -> None:
    c = main_container(
        find(render(svc(entrypoint=entrypoint, command=command)), "Deployment", "web")
    )
    assert {k: c[k] for k in ("command", "args") if k in c} == expected


def test_environment_keeps_values_and_drops_unset_variables() -> None:
    c = main_container(
        find(render(svc(environment={"A": "1", "B": "", "C": None})), "Deployment", "web")
    )
    assert c["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": ""}]


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        (
            Resources(ResourceLimits(cpus=0.5, memory=512 << 20)),
            {"limits": {"cpu": "500m", "memory": "512Mi"}},
        ),
        (
            Resources(reservations=ResourceReservations(cpus=0.25, memory=1 << 30)),
            {"requests": {"cpu": "250m", "memory": "1Gi"}},
        ),
        (Resources(ResourceLimits(memory=1000)), {"limits": {"memory": "1000"}}),
    ],
)
def test_resources(resources: Resources, expected: dict[str, Any]) -> None:
    out = valid(render(svc(deploy=Deploy(resources=resources))))
    assert main_container(find(out, "Deployment", "web"))["resources"] == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"user": "1000"}, {"runAsUser": 1000}),
        ({"user": "1000:2000"}, {"runAsUser": 1000, "runAsGroup": 2000}),
        (
            {"cap_add": ("NET_ADMIN",), "cap_drop": ("CAP_ALL",)},
            {"capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}},
        ),
        ({"privileged": True}, {"privileged": True}),
        ({"read_only": True}, {"readOnlyRootFilesystem": True}),
    ],
)
def test_security_context(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    out = valid(render(svc(**fields)))
    assert main_container(find(out, "Deployment", "web"))["securityContext"] == expected


def test_a_user_name_is_warned_about_not_rendered() -> None:
    out = render(svc(user="postgres"))
    assert "securityContext" not in main_container(find(out, "Deployment", "web"))
    assert warned(out, "services.web.user")


@pytest.mark.parametrize(
    ("test", "command"),
    [
        (("CMD", "pg_isready", "-U", "x"), ["pg_isready", "-U", "x"]),
        (
            ("CMD-SHELL", "curl -f http://localhost || exit 1"),
            ["sh", "-c", "curl -f http://localhost || exit 1"],
        ),
    ],
)
def test_healthcheck_becomes_readiness_and_liveness(
    test: tuple[str, ...], command: list[str]
) -> None:
    check = Healthcheck(test=test, interval=10, timeout=2.5, retries=5, start_period=40)
    c = main_container(find(valid(render(svc(healthcheck=check))), "Deployment", "web"))
    for probe in (c["readinessProbe"], c["livenessProbe"]):
        assert probe["exec"] == {"command": command}
        assert (probe["periodSeconds"], probe["timeoutSeconds"], probe["failureThreshold"]) == (
            10,
            3,
            5,
        )
    assert c["livenessProbe"]["initialDelaySeconds"] == 40
    assert "initialDelaySeconds" not in c["readinessProbe"]


@pytest.mark.parametrize(
    "check", [Healthcheck(test=("NONE",)), Healthcheck(test=("CMD", "x"), disable=True)]
)
def test_disabled_healthcheck_has_no_probes(check: Healthcheck) -> None:
    c = main_container(find(render(svc(healthcheck=check)), "Deployment", "web"))
    assert "readinessProbe" not in c and "livenessProbe" not in c


# -- rolling updates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "rolling", "min_ready"),
    [
        (
            UpdateConfig(parallelism=2, order="start-first"),
            {"maxSurge": 2, "maxUnavailable": 0},
            None,
        ),
        (
            UpdateConfig(parallelism=2, order="stop-first"),
            {"maxSurge": 0, "maxUnavailable": 2},
            None,
        ),
        (UpdateConfig(parallelism=0), {"maxSurge": 0, "maxUnavailable": "100%"}, None),
        (UpdateConfig(parallelism=1, delay=10.5), {"maxSurge": 0, "maxUnavailable": 1}, 11),
    ],
)
def test_update_config_is_a_rolling_update(
    config: UpdateConfig, rolling: dict[str, Any], min_ready: int | None
) -> None:
    out = valid(render(svc(deploy=Deploy(replicas=4, update_config=config))))
    spec = find(out, "Deployment", "web")["spec"]
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": rolling}
    assert spec.get("minReadySeconds") == min_ready


def test_daemonset_update_strategy_and_unrendered_update_keys_warn() -> None:
    config = UpdateConfig(order="start-first", failure_action="rollback")
    out = valid(render(svc(deploy=Deploy(mode="global", update_config=config))))
    spec = find(out, "DaemonSet", "web")["spec"]
    assert spec["updateStrategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert warned(out, "services.web.deploy.update_config.failure_action")


# -- depends_on ----------------------------------------------------------------------------


def test_depends_on_waits_with_nc_on_a_clusterip_and_nslookup_on_a_headless_service() -> None:
    db = svc("db", ports=(PortConfig(target=5432),), healthcheck=Healthcheck(test=("CMD", "x")))
    cache = svc("cache")  # no port: headless
    web = svc("web", depends_on={"db": DependsOn("service_healthy"), "cache": DependsOn()})
    out = valid(render(db, cache, web))
    init = find(out, "Deployment", "web")["spec"]["template"]["spec"]["initContainers"]
    assert [c["name"] for c in init] == ["wait-for-db", "wait-for-cache"]
    assert "nc -z -w 2 db 5432" in init[0]["command"][2]
    assert "nslookup cache.$(cat " in init[1]["command"][2]
    assert find(out, "Service", "cache")["spec"] == {
        "clusterIP": "None",
        "selector": {"app.kubernetes.io/name": "cache", "app.kubernetes.io/part-of": "demo"},
    }
    # workloads come after the services they wait for
    order = [name for kind, name in kinds(out) if kind == "Deployment"]
    assert order.index("db") < order.index("web") and order.index("cache") < order.index("web")


def test_an_optional_dependency_that_is_absent_is_skipped() -> None:
    web = svc("web", depends_on={"gone": DependsOn(required=False)})
    pod = find(render(web), "Deployment", "web")["spec"]["template"]["spec"]
    assert "initContainers" not in pod


# -- labels --------------------------------------------------------------------------------


def test_labels_are_sanitised_and_the_originals_kept_as_an_annotation() -> None:
    labels = {"tier": "front", "com.example.description": "Accounting webapp"}
    out = valid(
        render(
            svc(labels=labels, annotations={"note": "x y"}, deploy=Deploy(labels={"team": "a b"}))
        )
    )
    obj = find(out, "Deployment", "web")
    meta = obj["spec"]["template"]["metadata"]
    assert meta["labels"]["tier"] == "front"
    assert meta["labels"]["com.example.description"] == "Accounting-webapp"
    assert meta["annotations"]["note"] == "x y"
    assert meta["annotations"]["pycompose.io/original-labels"] == (
        '{"com.example.description": "Accounting webapp"}'
    )
    assert obj["metadata"]["labels"]["team"] == "a-b"


def test_compose_labels_cannot_steal_the_selector() -> None:
    out = render(svc(labels={"app.kubernetes.io/name": "other"}))
    assert (
        find(out, "Deployment", "web")["spec"]["template"]["metadata"]["labels"][
            "app.kubernetes.io/name"
        ]
        == "web"
    )


def test_service_names_are_made_dns_labels_with_a_warning() -> None:
    out = valid(render(svc("My_Web")))
    assert ("Deployment", "my-web") in kinds(out)
    assert warned(out, "services.My_Web")


# -- volumes, configs, secrets -------------------------------------------------------------


def test_mount_types() -> None:
    volumes = (
        ServiceVolume(type="volume", source="data", target="/data", read_only=True),
        ServiceVolume(type="bind", source="/srv/site", target="/site"),
        ServiceVolume(type="tmpfs", target="/scratch", tmpfs_size=64 << 20),
    )
    out = valid(render(svc(volumes=volumes, deploy=Deploy(replicas=2)), volumes=VOL))
    pod = find(out, "Deployment", "web")["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {"name": "vol-data", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}},
        {"name": "host", "hostPath": {"path": "/srv/site"}},
        {"name": "tmpfs", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
    ]
    assert find(out, "PersistentVolumeClaim", "data")["spec"]["accessModes"] == ["ReadWriteMany"]
    assert warned(out, "services.web.volumes[1]")  # the hostPath
    assert warned(out, "volumes.data")  # ReadWriteMany


def test_configs_and_secrets_become_objects_mounted_by_subpath_with_mode() -> None:
    configs = {"site": ConfigObject(key="site", name="demo_site", file="/w/site.conf")}
    secrets = {
        "token": SecretObject(key="token", name="demo_token", environment="TOKEN"),
        "ext": SecretObject(key="ext", name="shared-ext", external=True),
    }
    web = svc(
        configs=(ServiceFile(source="site", target="/etc/nginx/nginx.conf"),),
        secrets=(ServiceFile(source="token", mode=0o400), ServiceFile(source="ext")),
    )
    out = valid(render(web, configs=configs, secrets=secrets, files={"/w/site.conf": b"x=1\n"}))
    assert find(out, "ConfigMap", "site")["data"] == {"site": "x=1\n"}
    assert find(out, "Secret", "token")["data"] == {"token": "czNjcmV0"}  # base64("s3cret")
    assert ("Secret", "shared-ext") not in kinds(out)
    pod = find(out, "Deployment", "web")["spec"]["template"]["spec"]
    by_name = {v["name"]: v for v in pod["volumes"]}
    assert by_name["secret-token"]["secret"]["defaultMode"] == 0o400
    assert by_name["secret-ext"]["secret"]["secretName"] == "shared-ext"
    mounts = main_container(find(out, "Deployment", "web"))["volumeMounts"]
    assert {m["mountPath"]: m["subPath"] for m in mounts} == {
        "/etc/nginx/nginx.conf": "site",
        "/run/secrets/token": "token",
        "/run/secrets/ext": "ext",
    }


# -- Services ------------------------------------------------------------------------------


def test_published_ingress_ports_get_a_load_balancer_and_host_ports_a_host_port() -> None:
    ports = (
        PortConfig(target=80, published="8080"),
        PortConfig(target=443, published="8443", mode="host"),
        PortConfig(target=9000),
    )
    out = valid(render(svc(ports=ports)))
    cluster = find(out, "Service", "web")["spec"]
    assert cluster["type"] == "ClusterIP"
    assert [(p["port"], p["targetPort"]) for p in cluster["ports"]] == [
        (80, 80),
        (443, 443),
        (9000, 9000),
    ]
    lb = find(out, "Service", "web-published")["spec"]
    assert lb["type"] == "LoadBalancer"
    assert lb["ports"] == [{"port": 8080, "targetPort": 80, "protocol": "TCP"}]
    c = main_container(find(out, "Deployment", "web"))
    assert {"containerPort": 443, "protocol": "TCP", "hostPort": 8443} in c["ports"]


def test_dnsrr_gives_a_headless_service_with_ports() -> None:
    out = valid(render(svc(ports=(PortConfig(target=80),), deploy=Deploy(endpoint_mode="dnsrr"))))
    spec = find(out, "Service", "web")["spec"]
    assert spec["clusterIP"] == "None" and spec["ports"][0]["port"] == 80


# -- placement and warnings ----------------------------------------------------------------


def test_placement_constraints_become_node_affinity() -> None:
    placement = Placement(
        constraints=("node.labels.disk == ssd", "node.hostname != n2", "node.role == manager")
    )
    out = valid(render(svc(deploy=Deploy(placement=placement))))
    affinity = find(out, "Deployment", "web")["spec"]["template"]["spec"]["affinity"]
    terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": "disk", "operator": "In", "values": ["ssd"]},
        {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["n2"]},
    ]
    assert warned(out, "services.web.deploy.placement.constraints[2]")


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"container_name": "x"}, "services.web.container_name"),
        ({"stop_signal": "SIGINT"}, "services.web.stop_signal"),
        ({"build": None, "image": None}, "services.web.build"),
        ({"restart": "no"}, "services.web.restart"),
        ({"network_mode": "service:db"}, "services.web.network_mode"),
    ],
)
def test_what_cannot_be_rendered_is_warned_about_by_key(fields: dict[str, Any], path: str) -> None:
    service = Service(name="web", **{"image": IMG, **fields})
    assert warned(render(service), path)
