"""deploy/kubernetes: rendered by kubectl kustomize, validated by kubernetes-validate.

Both variants are rendered exactly as ``kubectl apply -k`` would: the default
(KEDA) and ``hpa/``. Built-in kinds are checked against the Kubernetes OpenAPI
schemas (strict: unknown fields fail) of the oldest and newest versions
kubernetes-validate knows; KEDA's CRDs, which it does not know, against the
minimal schemas below. Then the wiring between resources is checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from kubernetes_validate.utils import all_versions

from actionrelay.catalog.loader import load_action
from actionrelay.core.errors import CatalogError
from tests.unit.deploy.support import KUBERNETES, find, rendered, settings_from

VARIANTS = ["", "hpa"]  # deploy/kubernetes and deploy/kubernetes/hpa
LABEL = {"type": "string", "minLength": 1}
REF = {"type": "object", "required": ["name"], "properties": {"name": LABEL}}
KEDA_SCHEMAS: dict[str, dict[str, Any]] = {
    # The fields we use, from keda.sh/v1alpha1; unknown fields are refused to catch typos.
    "ScaledObject": {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["scaleTargetRef", "triggers"],
                "properties": {
                    "scaleTargetRef": REF,
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "pollingInterval": {"type": "integer", "minimum": 1},
                    "cooldownPeriod": {"type": "integer", "minimum": 0},
                    "advanced": {"type": "object"},
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["type", "metadata"],
                            "properties": {
                                "type": LABEL,
                                "metadata": {
                                    "type": "object",
                                    "additionalProperties": {"type": "string"},
                                },
                                "authenticationRef": REF,
                            },
                        },
                    },
                },
            }
        },
    },
    "TriggerAuthentication": {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "secretTargetRef": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["parameter", "name", "key"],
                            "properties": {"parameter": LABEL, "name": LABEL, "key": LABEL},
                        },
                    }
                },
            }
        },
    },
}


def pod(docs: tuple[dict[str, Any], ...], name: str = "actionrelay") -> dict[str, Any]:
    spec: dict[str, Any] = find(docs, "Deployment", name)["spec"]["template"]
    return spec


def container(docs: tuple[dict[str, Any], ...], name: str = "actionrelay") -> dict[str, Any]:
    (only,) = pod(docs, name)["spec"]["containers"]
    found: dict[str, Any] = only
    return found


def worker_env(docs: tuple[dict[str, Any], ...], *, with_secret: bool = True) -> dict[str, str]:
    """The environment a worker pod gets from its envFrom ConfigMap and Secret."""
    env: dict[str, str] = {}
    for source in container(docs)["envFrom"]:
        if "configMapRef" in source:
            env |= find(docs, "ConfigMap", source["configMapRef"]["name"])["data"]
        elif with_secret:
            env |= find(docs, "Secret", source["secretRef"]["name"])["stringData"]
    return env


def schema_problem(doc: dict[str, Any], version: str) -> str | None:
    """Why ``doc`` is not a valid resource for Kubernetes ``version``; None if it is."""
    try:
        if doc["apiVersion"].startswith("keda.sh/"):
            jsonschema.validate(doc, KEDA_SCHEMAS[doc["kind"]])
        else:
            kubernetes_validate.validate(doc, version, strict=True)
    except jsonschema.ValidationError as exc:  # kubernetes-validate's error subclasses it
        path = ".".join(map(str, exc.absolute_path))
        return f"{doc['kind']}/{doc['metadata']['name']}: {path}: {exc.message}"
    return None


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("version", [all_versions()[0], kubernetes_validate.latest_version()])
def test_manifests_are_valid_kubernetes_resources(variant: str, version: str) -> None:
    problems = [schema_problem(doc, version) for doc in rendered(variant)]
    assert not [p for p in problems if p], "\n".join(p for p in problems if p)


def test_keda_scales_the_deployment_on_request_queue_depth() -> None:
    docs = rendered("")
    scaled = find(docs, "ScaledObject")["spec"]
    assert (
        scaled["scaleTargetRef"]["name"]
        == find(docs, "Deployment", "actionrelay")["metadata"]["name"]
    )
    assert scaled["minReplicaCount"] <= scaled["maxReplicaCount"]
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["mode"] == "QueueLength"
    assert trigger["metadata"]["queueName"] == settings_from(worker_env(docs)).request_queue
    auth = find(docs, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    (host,) = auth["spec"]["secretTargetRef"]
    assert host["parameter"] == "host"
    assert host["key"] == "ACTIONRELAY_AMQP_URL"
    assert host["key"] in find(docs, "Secret", host["name"])["stringData"]


def test_hpa_variant_replaces_keda() -> None:
    docs = rendered("hpa")
    assert not [d for d in docs if d["apiVersion"].startswith("keda.sh/")]
    target = find(docs, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "actionrelay")


@pytest.mark.parametrize("variant", VARIANTS)
def test_replica_count_is_left_to_the_autoscaler(variant: str) -> None:
    assert "replicas" not in find(rendered(variant), "Deployment", "actionrelay")["spec"]


def test_termination_grace_covers_the_shutdown_grace() -> None:
    docs = rendered("")
    grace = settings_from(worker_env(docs)).shutdown_grace_seconds
    assert pod(docs)["spec"]["terminationGracePeriodSeconds"] == grace + 5


def test_probes_and_metrics_service_use_the_health_port() -> None:
    docs = rendered("")
    port = settings_from(worker_env(docs)).http_port
    worker = container(docs)
    ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
    for probe, path in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]:
        assert worker[probe]["httpGet"]["path"] == path
        assert ports[worker[probe]["httpGet"]["port"]] == port
    service = find(docs, "Service", "actionrelay-metrics")
    (exposed,) = service["spec"]["ports"]
    assert (exposed["port"], ports[exposed["targetPort"]]) == (port, port)
    for annotated in (service["metadata"], pod(docs)["metadata"]):
        assert annotated["annotations"]["prometheus.io/port"] == str(port)
        assert annotated["annotations"]["prometheus.io/path"] == "/metrics"


def test_service_and_disruption_budget_select_the_worker_pods() -> None:
    docs = rendered("")
    labels = pod(docs)["metadata"]["labels"].items()
    assert find(docs, "Service", "actionrelay-metrics")["spec"]["selector"].items() <= labels
    budget = find(docs, "PodDisruptionBudget")["spec"]
    assert budget["selector"]["matchLabels"].items() <= labels
    assert budget["maxUnavailable"] == 1


def test_worker_runs_locked_down_with_resources() -> None:
    docs = rendered("")
    security = pod(docs)["spec"]["securityContext"]
    assert security["runAsNonRoot"]
    assert security["runAsUser"] != 0
    worker = container(docs)
    assert worker["securityContext"]["readOnlyRootFilesystem"]
    assert not worker["securityContext"]["allowPrivilegeEscalation"]
    assert worker["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= worker["resources"]["requests"].keys()
    assert "memory" in worker["resources"]["limits"]


def test_actions_are_mounted_for_hot_reload() -> None:
    docs = rendered("")
    mounts = {m["name"]: m for m in container(docs)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod(docs)["spec"]["volumes"]}
    (name,) = [n for n, v in volumes.items() if "configMap" in v]
    actions = find(docs, "ConfigMap", volumes[name]["configMap"]["name"])
    # A fixed name (no content hash) and no subPath: edits reach running pods.
    assert actions["metadata"]["name"] == "actionrelay-actions"
    assert "subPath" not in mounts[name]
    assert Path(mounts[name]["mountPath"]) == settings_from(worker_env(docs)).actions_dir


def test_settings_are_worker_settings() -> None:
    settings = settings_from(worker_env(rendered("")))
    assert settings.amqp_url.startswith("amqp")
    assert settings.redis_url


def test_actions_load_with_the_pod_environment(tmp_path: Path) -> None:
    docs = rendered("")
    data = find(docs, "ConfigMap", "actionrelay-actions")["data"]
    assert set(data) == {p.name for p in (KUBERNETES / "base" / "actions").iterdir()}
    for filename, text in data.items():
        (tmp_path / filename).write_text(text)
    loaded = {load_action(tmp_path / f, worker_env(docs))[0].name for f in data}
    assert loaded == {Path(f).stem for f in data}
    # Credentials come from the Secret: without it the OAuth2 action cannot load.
    with pytest.raises(CatalogError, match="SMS_CLIENT_SECRET"):
        load_action(tmp_path / "sendSmsOAuth2.yaml", worker_env(docs, with_secret=False))


def test_the_console_is_its_own_deployment_behind_its_token() -> None:
    docs = rendered("")
    console = container(docs, "actionrelay-console")
    port = console["args"][console["args"].index("--port") + 1]
    assert console["args"][:3] == ["console", "--host", "0.0.0.0"]
    assert {p["name"]: p["containerPort"] for p in console["ports"]} == {"http": int(port)}
    env = {e["name"]: e for e in console["env"]}
    ref = env["ACTIONRELAY_CONSOLE_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref["key"] in find(docs, "Secret", ref["name"])["stringData"]
    assert env["ACTIONRELAY_PROMETHEUS_URL"]["value"].startswith("http")
    for probe in ("readinessProbe", "livenessProbe"):
        assert console[probe]["httpGet"]["path"] == "/healthz"
    service = find(docs, "Service", "actionrelay-console")
    assert (
        service["spec"]["selector"].items()
        <= pod(docs, "actionrelay-console")["metadata"]["labels"].items()
    )
    assert console["securityContext"]["readOnlyRootFilesystem"]
    # The same broker, queues and actions as the workers.
    assert console["envFrom"] == container(docs)["envFrom"]
    mounts = {m["mountPath"] for m in console["volumeMounts"]}
    assert str(settings_from(worker_env(docs)).actions_dir) in mounts
    # The worker pods must not be selected by the console's Service, nor the reverse.
    assert pod(docs)["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
