"""Offline validation of deploy/: Kubernetes manifests, the compose file, Prometheus and Grafana.

Schemas come from real validators installed from PyPI: kubernetes-validate (bundled OpenAPI
schemas, strict mode rejects unknown fields) and check-jsonschema's vendored copy of the
compose-spec JSON schema. On top of the schemas, the cross-references a schema cannot see:
selectors match labels, probes name declared ports, env keys are real Settings fields, the
dataflow entrypoint computes the right Bytewax addresses, the dashboard's queries are valid PromQL
(parsed by promql-parser) and only use metrics the code defines. Nothing here runs Docker or a
cluster (neither exists on this machine).
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from dashboard_queries import UnverifiableQuery, analyse, dashboard_queries, load_dashboard
from kubernetes_validate import utils as kv

from tgstream.config import Settings

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
K8S_VERSIONS = ("1.29.0", kv.latest_version() + ".0")
SETTINGS_ENV = {name.upper() for name in Settings.model_fields}
POD_ONLY_ENV = {
    "POD_NAME",
    "POD_NAMESPACE",
    "DATAFLOW_PROCESSES",
    "DATAFLOW_INITIAL_PROCESSES",
    "DATAFLOW_WORKERS_PER_PROCESS",
    "BYTEWAX_PORT",
}


def _kustomization() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return loaded


def _resources() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for name in _kustomization()["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    return docs


def _by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in _resources() if d["kind"] == kind]


def _one(kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in _by_kind(kind) if d["metadata"]["name"] == name]
    return found


def _secret_from_example() -> dict[str, Any]:
    """The Secret kustomize's secretGenerator builds, from the committed example env file."""
    keys = [
        line.split("=", 1)[0]
        for line in (K8S / "secrets.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    (generator,) = _kustomization()["secretGenerator"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": generator["name"]},
        "type": "Opaque",
        "stringData": dict.fromkeys(keys, ""),
    }


def _pod_specs() -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for doc in _resources():
        if doc["kind"] in {"Deployment", "StatefulSet", "Job"}:
            specs.append((doc["metadata"]["name"], doc["spec"]["template"]))
    return specs


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_k8s_resource_passes_strict_schema_validation(version: str) -> None:
    resources = [*_resources(), _secret_from_example()]
    assert {d["kind"] for d in resources} >= {
        "Namespace",
        "ConfigMap",
        "Secret",
        "StatefulSet",
        "Service",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Job",
    }
    for resource in resources:
        kv.validate(resource, version, strict=True)


def test_strict_validation_really_rejects_a_misspelled_field() -> None:
    broken = copy.deepcopy(_one("Deployment", "tgstream-gateway"))
    broken["spec"]["template"]["spec"]["containers"][0]["readynessProbe"] = {"tcpSocket": {"port": 8000}}
    with pytest.raises(kv.ValidationError):
        kv.validate(broken, K8S_VERSIONS[-1], strict=True)


def test_kustomization_lists_existing_files_and_keeps_secrets_out_of_git() -> None:
    kustomization = _kustomization()
    for name in kustomization["resources"]:
        assert (K8S / name).is_file(), name
    (generator,) = kustomization["secretGenerator"]
    assert generator["envs"] == ["secrets.env"]
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(K8S / "secrets.env")], cwd=ROOT, check=False
    ).returncode
    assert ignored == 0, "deploy/k8s/secrets.env must be gitignored"
    assert kustomization["namespace"] == _one("Namespace", "tgstream")["metadata"]["name"]


def test_config_and_secret_keys_are_settings_fields() -> None:
    config = _one("ConfigMap", "tgstream-config")["data"]
    secret = _secret_from_example()["stringData"]
    assert set(config) <= SETTINGS_ENV, set(config) - SETTINGS_ENV
    assert set(secret) <= SETTINGS_ENV, set(secret) - SETTINGS_ENV
    assert not set(config) & set(secret)
    for name, field in Settings.model_fields.items():
        if "SecretStr" in str(field.annotation):
            assert name.upper() in secret, f"{name} is a secret but not in the Secret template"
            assert name.upper() not in config


def test_workloads_reference_only_defined_config_and_env() -> None:
    config_maps = {d["metadata"]["name"] for d in _by_kind("ConfigMap")}
    secrets = {_secret_from_example()["metadata"]["name"]}
    for name, template in _pod_specs():
        spec = template["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps
        for container in spec.get("initContainers", []) + spec["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["resources"]["requests"]
            assert container["resources"]["limits"]["memory"]
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets
            for env in container.get("env", []):
                assert env["name"] in SETTINGS_ENV | POD_ONLY_ENV, f"{name}: unknown env {env['name']}"


def test_long_running_pods_have_probes_on_declared_ports_and_scrape_annotations() -> None:
    for name, template in _pod_specs():
        if name == "tgstream-init":
            continue
        (container,) = template["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe in ("livenessProbe", "readinessProbe"):
            http = container[probe]["httpGet"]
            assert http["port"] in ports, f"{name} {probe} uses undeclared port {http['port']}"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) in ports.values()
        assert annotations["prometheus.io/path"] == "/metrics"


def test_selectors_hpas_and_pdbs_point_at_real_pods() -> None:
    workloads = {d["metadata"]["name"]: d for d in _by_kind("Deployment") + _by_kind("StatefulSet")}
    pod_labels = [w["spec"]["template"]["metadata"]["labels"] for w in workloads.values()]
    for workload in workloads.values():
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selector.items() <= workload["spec"]["template"]["metadata"]["labels"].items()
    for service in _by_kind("Service"):
        assert any(service["spec"]["selector"].items() <= labels.items() for labels in pod_labels)
    for pdb in _by_kind("PodDisruptionBudget"):
        matches = pdb["spec"]["selector"]["matchLabels"]
        assert any(matches.items() <= labels.items() for labels in pod_labels), pdb["metadata"]["name"]
    hpas = _by_kind("HorizontalPodAutoscaler")
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas} == {"tgstream-gateway", "tgstream-sender"}
    for hpa in hpas:
        target = workloads[hpa["spec"]["scaleTargetRef"]["name"]]
        assert target["kind"] == hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert hpa["spec"]["minReplicas"] <= target["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]


def test_dataflow_statefulset_is_a_bytewax_cluster_with_recovery_volumes() -> None:
    sts = _one("StatefulSet", "tgstream-dataflow")
    service = _one("Service", sts["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    assert not any(
        h["spec"]["scaleTargetRef"]["name"] == "tgstream-dataflow"
        for h in _by_kind("HorizontalPodAutoscaler")
    )
    template = sts["spec"]["template"]["spec"]
    (container,) = template["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert int(env["DATAFLOW_PROCESSES"]) == sts["spec"]["replicas"]
    assert int(env["DATAFLOW_INITIAL_PROCESSES"]) <= int(
        _one("ConfigMap", "tgstream-config")["data"]["RECOVERY_PARTITIONS"]
    )
    bytewax_port = {p["name"]: p["containerPort"] for p in container["ports"]}["bytewax"]
    assert int(env["BYTEWAX_PORT"]) == bytewax_port
    claims = {c["metadata"]["name"] for c in sts["spec"]["volumeClaimTemplates"]}
    recovery_dir = _one("ConfigMap", "tgstream-config")["data"]["RECOVERY_DIR"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts[recovery_dir] in claims
    (init,) = template["initContainers"]
    assert {m["mountPath"]: m["name"] for m in init["volumeMounts"]}[recovery_dir] in claims


def _run_entrypoint(
    tmp_path: Path, script: str, pod: str, processes: int
) -> subprocess.CompletedProcess[str]:
    """Run the ConfigMap's shell script with a stand-in `tgstream` that prints its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "tgstream"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    script_path = tmp_path / "script.sh"
    script_path.write_text(script)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "POD_NAME": pod,
        "POD_NAMESPACE": "tgstream",
        "DATAFLOW_PROCESSES": str(processes),
        "DATAFLOW_INITIAL_PROCESSES": "2",
        "DATAFLOW_WORKERS_PER_PROCESS": "1",
        "BYTEWAX_PORT": "2101",
    }
    return subprocess.run(["sh", str(script_path)], env=env, capture_output=True, text=True, check=False)


def test_dataflow_entrypoint_derives_process_id_and_all_addresses(tmp_path: Path) -> None:
    scripts = _one("ConfigMap", "tgstream-dataflow-entrypoint")["data"]
    result = _run_entrypoint(tmp_path, scripts["run.sh"], "tgstream-dataflow-2", 3)
    assert result.returncode == 0, result.stderr
    args = result.stdout.splitlines()
    assert args[0] == "dataflow"
    assert args[args.index("--process-id") + 1] == "2"
    addresses = args[args.index("--addresses") + 1].split(";")
    assert addresses == [
        f"tgstream-dataflow-{i}.tgstream-dataflow.tgstream.svc.cluster.local:2101" for i in range(3)
    ]
    assert args[args.index("--metrics-host") + 1] == "0.0.0.0"

    init = _run_entrypoint(tmp_path, scripts["init-recovery.sh"], "tgstream-dataflow-1", 3)
    assert init.stdout.splitlines() == ["recovery", "init", "--process-id", "1", "--initial-processes", "2"]


def test_dataflow_entrypoint_refuses_an_ordinal_beyond_the_cluster(tmp_path: Path) -> None:
    scripts = _one("ConfigMap", "tgstream-dataflow-entrypoint")["data"]
    result = _run_entrypoint(tmp_path, scripts["run.sh"], "tgstream-dataflow-3", 3)
    assert result.returncode == 2
    assert "DATAFLOW_PROCESSES=3" in result.stderr
    assert result.stdout == ""


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return loaded


def test_compose_file_matches_the_compose_spec_schema() -> None:
    schema_file = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(_compose()), key=lambda e: list(e.path))
    assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]

    broken = _compose()
    broken["services"]["gateway"]["restrat"] = "always"
    assert list(validator.iter_errors(broken)), "the schema must reject unknown service keys"


def test_compose_references_resolve_and_secrets_come_from_env_file() -> None:
    compose = _compose()
    services = compose["services"]
    volumes = set(compose["volumes"])
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            if not source.startswith("."):
                assert source in volumes, f"{name} mounts undeclared volume {source}"
            else:
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
    text = (DEPLOY / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    example = {
        line.split("=", 1)[0]
        for line in (DEPLOY / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert required <= example, required - example
    secret_fields = {n.upper() for n, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation)}
    assert secret_fields <= example
    assert not re.search(r"(TOKEN|SECRET|API_KEY|SALT|PASSWORD):\s*['\"]?[A-Za-z0-9]", text), "literal secret"


def test_compose_tgstream_services_use_settings_env_and_scrape_ports() -> None:
    services = _compose()["services"]
    ours = {n: s for n, s in services.items() if s.get("build") or "tgstream" in str(s.get("image"))}
    assert set(ours) == {"init", "gateway", "dataflow", "sender"}
    for name, service in ours.items():
        assert {e["path"] for e in service["env_file"]} == {".env"}
        assert set(service["environment"]) <= SETTINGS_ENV, (name, set(service["environment"]) - SETTINGS_ENV)
        assert service.get("read_only") is True
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    scraped = {
        cfg["names"][0]: cfg["port"]
        for job in prometheus["scrape_configs"]
        for cfg in job.get("dns_sd_configs", [])
    }
    assert scraped == {
        "gateway": int(ours["gateway"]["environment"]["GATEWAY_PORT"]),
        "dataflow": int(ours["dataflow"]["environment"]["METRICS_PORT"]),
        "sender": int(ours["sender"]["environment"]["METRICS_PORT"]),
    }
    assert "--metrics-host" in ours["dataflow"]["command"]
    assert ours["gateway"]["environment"]["GATEWAY_HOST"] == "0.0.0.0"


def test_dockerfile_is_multi_stage_non_root_and_context_is_minimal() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)", dockerfile, flags=re.MULTILINE)
    assert stages == ["build", "runtime"]
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in dockerfile
    user = re.findall(r"^USER (\S+)", dockerfile, flags=re.MULTILINE)
    assert user
    assert not user[-1].startswith(("0", "root"))
    install_lines = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert install_lines
    assert not any("llama" in line for line in install_lines), "no LLM server in the image"
    ignore = set((ROOT / ".dockerignore").read_text().splitlines())
    assert {"**", "!pyproject.toml", "!README.md", "!tgstream/"} <= ignore


def _defined_metric_names() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "tgstream").rglob("*.py"):
        names.update(
            re.findall(r'["\']((?:telegram|tgstream|conversation)_[a-z0-9_]+)["\']', path.read_text())
        )
    return names


def test_dashboard_uses_the_provisioned_datasource_and_only_defined_metrics() -> None:
    """Offline half of the metric check; tests/integration/ops/test_dashboard_metrics.py scrapes the
    real processes for the same names."""
    datasource = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "tgstream.yml").read_text()
    )["providers"][0]
    grafana = _compose()["services"]["grafana"]
    assert any(v.endswith(":" + provider["options"]["path"] + ":ro") for v in grafana["volumes"])
    assert datasource["url"] == "http://prometheus:9090"

    dashboard = load_dashboard()
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        assert panel["description"], panel["title"]
        assert all(t["datasource"]["uid"] == datasource["uid"] for t in panel["targets"]), panel["title"]
        assert not any("chat_id" in t.get("legendFormat", "") for t in panel["targets"]), panel["title"]

    defined = _defined_metric_names()
    queries = dashboard_queries(dashboard)
    used: set[str] = set()
    for query in queries:
        assert "chat_id" not in query.labels, f"{query.panel}: no per-chat series"
        for metric in query.metrics:
            base = re.sub(r"_(bucket|sum|count|total|created)$", "", metric)
            used.add(base)
            assert base in defined or base + "_total" in defined, f"{query.panel}: {metric} undefined"
    seed = {
        "telegram_conversations",
        "telegram_response_duration_seconds",
        "telegram_active_conversations",
        "conversation_memory_usage_mb",
    }
    assert seed <= used
    lag = [q for q in queries if q.metrics == {"tgstream_source_consumer_lag"}]
    assert any(q.labels == {"partition"} for q in lag), "the dataflow's lag, by partition"


@pytest.mark.parametrize(
    "expr",
    [
        "sum(rate(tgstream_spam_blocked_total[$__rate_interval])",
        "sum(rat(tgstream_spam_blocked_total[$__rate_interval]))",
        "rate(tgstream_spam_blocked_total)",
        "histogram_quantile(sum by (le) (rate(tgstream_stage_duration_seconds_bucket[5m])))",
        "sum by (le) rate(tgstream_stage_duration_seconds_bucket[5m])",
    ],
)
def test_the_promql_check_refuses_queries_prometheus_would_refuse(expr: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the parser's only error type
        analyse(expr)


@pytest.mark.parametrize("expr", ['{__name__=~"tgstream_.*"}', "rate(tgstream_spam_blocked_total[$custom])"])
def test_the_promql_check_refuses_metric_names_it_cannot_verify(expr: str) -> None:
    with pytest.raises(UnverifiableQuery):
        analyse(expr)


def test_metric_names_come_from_selectors_not_from_label_values() -> None:
    query = analyse(
        'sum by (stage) (rate(tgstream_stage_duration_seconds_count{stage="telegram_fake_total"}[5m]))'
        ' / on () group_left {__name__="telegram_active_conversations"}'
    )
    assert query.metrics == {"tgstream_stage_duration_seconds_count", "telegram_active_conversations"}
    assert query.labels == {"stage"}


def test_dashboard_panels_fit_the_grid_without_overlapping() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in load_dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells.get((x, y))}"
                cells[(x, y)] = panel["title"]


def test_no_file_under_deploy_is_world_writable_or_holds_a_real_secret() -> None:
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            assert not path.stat().st_mode & stat.S_IWOTH, path
            text = path.read_text(errors="replace")
            assert not re.search(r"\d{6,}:[A-Za-z0-9_-]{30,}", text), f"bot token shape in {path}"
    assert os.path.exists(DEPLOY / ".env.example")
