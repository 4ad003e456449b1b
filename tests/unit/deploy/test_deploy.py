"""The Dockerfile, docker-compose.yml and the Prometheus/Grafana files it mounts.

hadolint lints the Dockerfile and ``docker-compose config`` validates the compose
file against the Compose specification, both offline (no Docker daemon); the
rest reads the files with PyYAML and checks what a user of ``docker compose up
--scale worker=3`` depends on.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from actionrelay.settings import ConsoleSettings, Settings
from tests.unit.deploy.support import (
    DEPLOY,
    ROOT,
    find,
    load_yaml,
    rendered,
    run,
    settings_from,
    tool,
)

DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
SERVICES = {"rabbitmq", "redis", "demo-api", "worker", "console", "prometheus", "grafana"}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", path.read_text())
    lines = (line.strip() for line in joined.splitlines())
    return [
        (word.upper(), rest.strip())
        for word, _, rest in (line.partition(" ") for line in lines if line)
        if not word.startswith("#")
    ]


def final_stage(path: Path) -> list[tuple[str, str]]:
    steps = instructions(path)
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE)
    return data


def service(name: str) -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"][name]
    return found


def seconds(duration: str) -> float:
    """A compose duration such as ``30s``, ``1m30s``."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    assert parts, f"not a duration: {duration}"
    return sum(float(value) * units[unit] for value, unit in parts)


# ------------------------------------------------------------------ Dockerfile


def test_dockerfile_passes_hadolint() -> None:
    run(tool("hadolint"), "--no-color", "--failure-threshold", "info", str(DOCKERFILE))


def test_image_runs_as_the_non_root_user_the_kubernetes_pods_enforce() -> None:
    users = [args for word, args in final_stage(DOCKERFILE) if word == "USER"]
    assert users, "the image must switch to a non-root USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit(), "a numeric uid, so Kubernetes can enforce runAsNonRoot"
    assert int(uid) != 0
    pod = find(rendered(""), "Deployment", "actionrelay")["spec"]["template"]["spec"][
        "securityContext"
    ]
    assert (int(uid), int(gid or uid)) == (pod["runAsUser"], pod["runAsGroup"])


def test_image_probes_healthz_on_the_port_it_exposes() -> None:
    stage = final_stage(DOCKERFILE)
    healthchecks = [args for word, args in stage if word == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    assert "/healthz" in healthchecks[0]
    exposed = {args for word, args in stage if word == "EXPOSE"}
    port = Settings.model_fields["http_port"].default
    assert exposed == {str(port)}
    assert f"ACTIONRELAY_HTTP_PORT={port}" in " ".join(a for w, a in stage if w == "ENV")


def test_base_images_are_pinned_and_nothing_is_fetched_by_url() -> None:
    for word, args in instructions(DOCKERFILE):
        if word == "FROM":
            image = args.split()[0]
            assert ":" in image, f"{image}: pin a tag"
            assert not image.endswith(":latest"), image
        assert word != "ADD", "COPY local files; no ADD (remote URLs, auto-extraction)"
        if word == "RUN" and "pip install" in args:
            assert "--no-cache-dir" in args


# ------------------------------------------------------------------ compose


def test_compose_file_is_valid_for_docker_compose() -> None:
    # Parses, interpolates and checks against the Compose specification; no daemon needed.
    run(tool("docker-compose"), "--file", str(COMPOSE), "config", "--quiet")


def test_compose_runs_the_whole_stack() -> None:
    assert set(compose()["services"]) >= SERVICES


def test_worker_can_be_scaled() -> None:
    worker = service("worker")
    for fixed in ("ports", "container_name", "hostname"):
        assert fixed not in worker, f"worker {fixed} would clash under --scale worker=3"
    assert "9464" in {str(port) for port in worker["expose"]}


def test_worker_reaches_the_other_services_by_their_names() -> None:
    env = {k: str(v) for k, v in service("worker")["environment"].items()}
    settings = settings_from(env)
    hosts = {
        urlsplit(settings.amqp_url).hostname,
        urlsplit(settings.redis_url or "").hostname,
        urlsplit(env["DEMO_API_URL"]).hostname,
    }
    assert hosts == {"rabbitmq", "redis", "demo-api"}
    assert hosts <= set(compose()["services"])
    assert settings.allow_http_hosts == "demo-api"
    assert settings.allow_private_networks
    assert settings.http_port == 9464


def test_worker_gets_its_shutdown_grace_and_five_seconds_more() -> None:
    worker = service("worker")
    grace = settings_from(dict(worker["environment"])).shutdown_grace_seconds
    assert seconds(worker["stop_grace_period"]) >= grace + 5


def test_every_service_has_a_healthcheck() -> None:
    image_has_one = any(word == "HEALTHCHECK" for word, _ in final_stage(DOCKERFILE))
    for name, spec in compose()["services"].items():
        check = spec.get("healthcheck")
        if check is None:
            assert spec.get("build") == ".", f"{name}: no healthcheck"
            assert image_has_one, f"{name}: the image has no HEALTHCHECK"
        else:
            assert not check.get("disable"), f"{name}: healthcheck disabled"
            assert check["test"], name


def test_dependencies_exist_and_published_ports_do_not_clash() -> None:
    services = compose()["services"]
    published: list[str] = []
    for name, spec in services.items():
        assert set(spec.get("depends_on", ())) <= set(services), name
        published += [str(port).split(":")[0] for port in spec.get("ports", ())]
    assert len(published) == len(set(published)), published


def test_mounted_files_exist() -> None:
    for name, spec in compose()["services"].items():
        for volume in spec.get("volumes", ()):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


# ------------------------------------------------------------------ Prometheus and Grafana


def test_prometheus_scrapes_every_worker_replica() -> None:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "actionrelay")
    assert job.get("metrics_path", "/metrics") == "/metrics"
    (discovery,) = job["dns_sd_configs"]
    assert discovery["names"] == ["worker"]
    assert discovery.get("type", "SRV") == "A"  # one A record per replica
    assert str(discovery["port"]) in {str(p) for p in service("worker")["expose"]}


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    (source,) = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    url = urlsplit(source["url"])
    assert (source["type"], url.hostname) == ("prometheus", "prometheus")
    assert f"{url.port}:{url.port}" in service("prometheus")["ports"]
    (provider,) = load_yaml(provisioning / "dashboards" / "actionrelay.yml")["providers"]
    mounts = dict(v.split(":")[:2] for v in service("grafana")["volumes"])
    target = Path(mounts["./deploy/grafana/actionrelay.json"])
    assert target.parent == Path(provider["options"]["path"])


def test_console_reads_the_workers_broker_and_actions_behind_a_token() -> None:
    console = service("console")
    env = {k: str(v) for k, v in console["environment"].items()}
    given = {
        k.removeprefix("ACTIONRELAY_").lower(): v
        for k, v in env.items()
        if k.startswith("ACTIONRELAY_")
    }
    options = ConsoleSettings.model_validate(
        {k: v for k, v in given.items() if k in ConsoleSettings.model_fields}
    )
    Settings.model_validate(
        {k: v for k, v in given.items() if k not in ConsoleSettings.model_fields}
    )
    worker = {k: str(v) for k, v in service("worker")["environment"].items()}
    assert env["ACTIONRELAY_AMQP_URL"] == worker["ACTIONRELAY_AMQP_URL"]
    assert env["ACTIONRELAY_ACTIONS_DIR"] == worker["ACTIONRELAY_ACTIONS_DIR"]
    assert options.console_token is not None
    assert urlsplit(options.prometheus_url or "").hostname == "prometheus"
    port = console["command"][console["command"].index("--port") + 1]
    assert f"{port}:{port}" in console["ports"]
    assert port in " ".join(console["healthcheck"]["test"])
    assert "/healthz" in " ".join(console["healthcheck"]["test"])
