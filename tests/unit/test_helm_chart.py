"""Static checks of the Helm chart (helm/codeq) and the Dockerfile, without helm or docker.

There is no helm binary here, so the templates are checked by an approximate
rendering: simple ``.Values`` references are substituted from values.yaml, other
template actions become placeholders, and control-flow lines are dropped (both
branches of an ``if`` stay in). That is enough to parse every manifest as YAML
and to look at probes, security contexts and mounts. ``helm lint`` remains the
release gate (see helm/codeq/README.md).
"""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from codeq.core.config import KEYS, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "codeq"
TEMPLATES = CHART / "templates"
MANIFESTS = sorted(p for p in TEMPLATES.iterdir() if p.suffix in {".yaml", ".yml"})
ALL_TEMPLATE_FILES = sorted(p for p in TEMPLATES.iterdir() if p.is_file())

ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.DOTALL)
ONLY_ACTIONS = re.compile(r"^(\s*\{\{.*?\}\}\s*)+$")
VALUES_REF = re.compile(r"\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
TO_YAML_LINE = re.compile(
    r"^\s*\{\{-?\s*toYaml\s+\$?\.Values\.([\w.]+)\s*\|\s*nindent\s+(\d+)\s*-?\}\}\s*$")
SIMPLE_REF = re.compile(r'^\$?\.Values\.([\w.]+)((?:\s*\|\s*(?:quote|default\s+"[^"]*"))*)$')
DEFAULT = re.compile(r'default\s+"([^"]*)"')
BLOCK_OPEN = re.compile(r"\{\{-?\s*(if|range|with|define|block)\b")
BLOCK_END = re.compile(r"\{\{-?\s*end\s*-?\}\}")
COMMENT = re.compile(r"\{\{-?\s*/\*.*?\*/\s*-?\}\}", re.DOTALL)

#: Settings that are secrets: never in values.config / the ConfigMap.
SECRET_KEYS = {"webhookHmacSecret", "redisPassword", "producerTokens"}

PROD_CONFIG = {
    "workerJwksUrl": "https://id.example.com/.well-known/jwks.json",
    "workerIssuer": "https://id.example.com/",
    "identityJwksUrl": "https://id.example.com/.well-known/jwks.json",
}


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    data = yaml.safe_load((CHART / "values.yaml").read_text())
    assert isinstance(data, dict)
    return data


def lookup(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def render_approx(text: str, values: dict[str, Any]) -> str:
    """Substitute what can be substituted, neutralise the rest (see module docstring)."""
    text = COMMENT.sub("", text)
    out: list[str] = []
    for line in text.splitlines():
        block = TO_YAML_LINE.match(line)
        if block:
            value = lookup(values, block.group(1))
            if value in ({}, [], None):
                continue
            dumped = yaml.safe_dump(value, default_flow_style=False, sort_keys=False)
            out.extend(" " * int(block.group(2)) + row for row in dumped.splitlines())
            continue
        if ONLY_ACTIONS.match(line):
            continue

        def replace(match: re.Match[str]) -> str:
            simple = SIMPLE_REF.match(match.group(1))
            if simple:
                value = lookup(values, simple.group(1))
                fallback = DEFAULT.search(simple.group(2))
                if fallback and value in ("", None):
                    value = fallback.group(1)
                if not isinstance(value, (dict, list)):
                    return str(value).lower() if isinstance(value, bool) else str(value)
            return "PLACEHOLDER"

        out.append(ACTION.sub(replace, line))
    return "\n".join(out)


VALIDATED = '{{- include "codeq.validate" . }}'


def validate_block(helpers: str) -> str:
    """The text of the ``codeq.validate`` helper (up to the next ``define``)."""
    start = helpers.index('define "codeq.validate"')
    end = helpers.find("{{- define", start + 1)
    return helpers[start:end if end != -1 else len(helpers)]


def documents(path: Path, values: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(render_approx(path.read_text(), values)) if d]


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def config_file(values: dict[str, Any]) -> dict[str, Any]:
    """What the chart's ``codeq.configFile`` helper renders into the ConfigMap."""
    config = {k: v for k, v in values["config"].items() if v is not None and v != ""}
    if values["kvrocks"]["enabled"]:
        config["redisAddr"] = f"release-codeq-kvrocks:{values['kvrocks']['port']}"
    return config


# -- Chart.yaml, values.yaml ------------------------------------------------------------

def test_chart_yaml_has_the_required_fields() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "codeq" == CHART.name
    assert chart.get("type", "application") == "application"
    semver = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"
    assert re.match(semver, str(chart["version"])), chart["version"]
    assert isinstance(chart["appVersion"], str) and chart["appVersion"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"], "appVersion should be the codeq release"


def test_values_yaml_parses_with_the_documented_sections(values: dict[str, Any]) -> None:
    for section in ("image", "config", "secrets", "kvrocks", "persistence", "service",
                    "ingress", "autoscaling", "serviceAccount", "securityContext",
                    "podSecurityContext", "resources"):
        assert section in values, section
    assert values["kvrocks"]["enabled"] is True
    assert values["kvrocks"]["image"]["repository"] == "apache/kvrocks"
    assert values["ingress"]["enabled"] is False
    assert values["autoscaling"]["enabled"] is False


def test_every_config_key_is_a_codeq_setting(values: dict[str, Any]) -> None:
    unknown = set(values["config"]) - set(KEYS)
    assert not unknown, f"values.config has keys codeq does not know: {sorted(unknown)}"


def test_no_secret_is_written_into_values_config(values: dict[str, Any]) -> None:
    assert not SECRET_KEYS & set(values["config"])
    assert {"webhookHmacSecret", "redisPassword", "producerTokens",
            "existingSecret"} <= set(values["secrets"])


# -- templates ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", ALL_TEMPLATE_FILES, ids=lambda p: p.name)
def test_template_actions_are_balanced(path: Path) -> None:
    text = COMMENT.sub("", path.read_text())
    assert text.count("{{") == text.count("}}"), "unbalanced {{ }}"
    opened = len(BLOCK_OPEN.findall(text))
    ended = len(BLOCK_END.findall(text))
    assert opened == ended, f"{opened} if/range/with/define blocks but {ended} end"


def test_every_included_template_is_defined() -> None:
    texts = [p.read_text() for p in ALL_TEMPLATE_FILES]
    defined = {name for text in texts for name in re.findall(r'define\s+"([^"]+)"', text)}
    used = {name for text in texts for name in re.findall(r'include\s+"([^"]+)"', text)}
    assert used and used <= defined, sorted(used - defined)
    files = {p.name for p in ALL_TEMPLATE_FILES}
    for text in texts:
        for name in re.findall(r'\$\.Template\.BasePath\s+"/([^"]+)"', text):
            assert name in files, name


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_templates_parse_as_kubernetes_objects(path: Path,
                                                        values: dict[str, Any]) -> None:
    docs = documents(path, values)
    assert docs, f"{path.name} renders no object"
    for doc in docs:
        assert isinstance(doc, dict)
        assert doc.get("apiVersion") and doc.get("kind"), doc
        assert doc["metadata"]["name"]


def test_every_values_path_used_by_a_template_exists(values: dict[str, Any]) -> None:
    missing = set()
    for path in ALL_TEMPLATE_FILES:
        for match in VALUES_REF.finditer(path.read_text()):
            dotted = match.group(1).lstrip(".")
            try:
                lookup(values, dotted)
            except KeyError:
                missing.add(f"{path.name}: .Values.{dotted}")
    assert not missing, sorted(missing)


def test_the_chart_has_the_expected_objects(values: dict[str, Any]) -> None:
    kinds = {doc["kind"] for path in MANIFESTS for doc in documents(path, values)}
    assert {"Deployment", "Service", "ConfigMap", "Secret", "StatefulSet",
            "HorizontalPodAutoscaler", "Ingress", "ServiceAccount",
            "PersistentVolumeClaim"} <= kinds
    assert (TEMPLATES / "NOTES.txt").is_file() and (TEMPLATES / "_helpers.tpl").is_file()


@pytest.fixture(scope="module")
def deployment(values: dict[str, Any]) -> dict[str, Any]:
    (doc,) = documents(TEMPLATES / "deployment.yaml", values)
    assert doc["kind"] == "Deployment"
    return doc


def test_probes_check_healthz_and_readyz(deployment: dict[str, Any]) -> None:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["periodSeconds"] > 0
    (port,) = container["ports"]
    assert port["name"] == "http" and port["containerPort"] == 8080


def test_server_runs_with_the_config_file_from_the_configmap(
        deployment: dict[str, Any], values: dict[str, Any]) -> None:
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    args = container["args"]
    assert args[args.index("--config") + 1] == "/etc/codeq/config.yaml"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["config"] == "/etc/codeq"
    assert mounts["data"] == values["config"]["dataDir"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["config"]["configMap"]["items"] == [{"key": "config.yaml",
                                                         "path": "config.yaml"}]
    assert container["envFrom"][0]["secretRef"]["name"]


def test_containers_run_as_non_root(deployment: dict[str, Any], values: dict[str, Any]) -> None:
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    for context in (spec["securityContext"], container["securityContext"]):
        assert context["runAsNonRoot"] is True
        assert context["runAsUser"] > 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    kvrocks = values["kvrocks"]
    for context in (kvrocks["podSecurityContext"], kvrocks["securityContext"]):
        assert context["runAsNonRoot"] is True and context["runAsUser"] > 0


def test_secrets_reach_the_pod_as_environment_not_the_configmap() -> None:
    configmap = (TEMPLATES / "configmap.yaml").read_text()
    assert ".Values.secrets" not in configmap
    helpers = (TEMPLATES / "_helpers.tpl").read_text()
    configfile = helpers[helpers.index('define "codeq.configFile"'):]
    configfile = configfile[:configfile.index("{{- end }}\n\n")]
    assert ".Values.secrets" not in configfile
    secret = (TEMPLATES / "secret.yaml").read_text()
    for name in ("WEBHOOK_HMAC_SECRET", "REDIS_PASSWORD", "PRODUCER_TOKENS", "CODEQ_STORAGE"):
        assert f"{name}:" in secret
    assert "existingSecret" in secret
    # the chart refuses secrets written into config: codeq.validate (which the Deployment
    # includes) fails for each secret key found in .Values.config
    refusal = re.search(r'range \$key := list ((?:"\w+"\s*)+)\}\}\s*'
                        r'\{\{- if hasKey \$\.Values\.config \$key \}\}\s*\{\{- fail ',
                        validate_block(helpers))
    assert refusal, "codeq.validate does not refuse secrets in values.config"
    assert set(re.findall(r'"(\w+)"', refusal.group(1))) == SECRET_KEYS
    assert VALIDATED in (TEMPLATES / "deployment.yaml").read_text()


def test_kvrocks_statefulset_service_and_volume(values: dict[str, Any]) -> None:
    (sts,) = documents(TEMPLATES / "kvrocks-statefulset.yaml", values)
    assert sts["kind"] == "StatefulSet" and sts["spec"]["replicas"] == 1
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("apache/kvrocks:")
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["data"] == "/var/lib/kvrocks"
    services = documents(TEMPLATES / "kvrocks-service.yaml", values)
    assert {s["kind"] for s in services} == {"Service"}
    assert any(s["spec"].get("clusterIP") == "None" for s in services)
    conf = (TEMPLATES / "kvrocks-configmap.yaml").read_text()
    assert re.search(r"^\s*lua-strict-key-accessing yes$", conf, re.MULTILINE)
    # the option exists from KVRocks 2.14 on; an older server refuses the file
    major, minor = (int(n) for n in values["kvrocks"]["image"]["tag"].split(".")[:2])
    assert (major, minor) >= (2, 14)
    assert "requirepass" not in re.sub(r"#.*", "", conf), "the password stays out of the ConfigMap"
    helpers = (TEMPLATES / "_helpers.tpl").read_text()
    assert 'set $config "redisAddr"' in helpers


def test_helm_validation_mirrors_codeqs_production_requirements() -> None:
    validate = validate_block((TEMPLATES / "_helpers.tpl").read_text())
    # each requirement is a condition that adds to $missing, which then fails the release
    conditions = re.findall(r'\{\{- if not (.+?) \}\}\{\{- \$missing = append \$missing "', validate)
    assert re.search(r"\{\{- if \$missing \}\}\s*\{\{- fail ", validate)
    assert VALIDATED in (TEMPLATES / "deployment.yaml").read_text()
    items = Settings(env="prod").missing_for_production()
    assert items
    for item in items:
        keys = re.findall(r"\b([a-z]+[A-Z]\w*)\b(?= \()", item)
        assert keys, item
        assert any(f".Values.config.{k}" in condition or f".Values.secrets.{k}" in condition
                   for condition in conditions for k in keys), item


# -- the rendered configuration is one codeq accepts ---------------------------------

def test_default_config_file_with_prod_settings_loads(values: dict[str, Any],
                                                       tmp_path: Path) -> None:
    config = config_file(deep_merge(values, {"config": PROD_CONFIG}))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    settings = load_settings(path, environ={"WEBHOOK_HMAC_SECRET": "s3cret",
                                            "REDIS_PASSWORD": "pw"})
    assert settings.env == "prod"
    assert settings.bind_host == "0.0.0.0"
    assert settings.storage_url == "redis://:pw@release-codeq-kvrocks:6666"
    assert settings.webhook_hmac_secret == "s3cret"


def test_default_config_without_identity_settings_is_refused_like_the_chart(
        values: dict[str, Any], tmp_path: Path) -> None:
    from codeq.core.errors import ConfigError

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_file(values)))
    with pytest.raises(ConfigError, match="workerJwksUrl"):
        load_settings(path, environ={})


def test_dev_config_without_kvrocks_uses_sqlite_in_the_data_dir(values: dict[str, Any],
                                                                tmp_path: Path) -> None:
    merged = deep_merge(values, {"config": {"env": "dev"}, "kvrocks": {"enabled": False}})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_file(merged)))
    settings = load_settings(path, environ={})
    assert settings.storage_url == "sqlite:////var/lib/codeq/codeq.db"


@pytest.mark.parametrize("path", sorted((CHART / "ci").glob("*.yaml")), ids=lambda p: p.name)
def test_ci_values_files_use_known_keys_and_load(path: Path, values: dict[str, Any],
                                                 tmp_path: Path) -> None:
    override = yaml.safe_load(path.read_text()) or {}
    free_form = {"queues", "annotations", "podAnnotations", "podLabels", "nodeSelector",
                 "affinity", "resources"}

    def check(node: dict[str, Any], base: dict[str, Any], where: str) -> None:
        for key, value in node.items():
            assert key in base, f"{path.name}: {where}{key} is not in values.yaml"
            if isinstance(value, dict) and isinstance(base[key], dict) and key not in free_form:
                check(value, base[key], f"{where}{key}.")

    check(override, values, "")
    merged = deep_merge(values, override)
    # the chart's own refusals (codeq.validate) for a single-process store or dev keys
    multi = merged["autoscaling"]["enabled"] or merged["replicaCount"] > 1
    sqlite = not (merged["kvrocks"]["enabled"] or merged["config"].get("storage")
                  or merged["config"].get("redisAddr") or merged["secrets"]["storage"])
    assert not (multi and (sqlite or merged["config"]["env"] == "dev")), path.name
    assert not SECRET_KEYS & set(merged["config"])
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(config_file(merged)))
    environ = {"WEBHOOK_HMAC_SECRET": merged["secrets"]["webhookHmacSecret"] or "x",
               "PRODUCER_TOKENS": ",".join(merged["secrets"]["producerTokens"])}
    load_settings(config, environ=environ)


# -- Dockerfile, docs -------------------------------------------------------------------

def test_dockerfile_is_slim_non_root_and_builds_from_the_checkout() -> None:
    text = (ROOT / "Dockerfile").read_text()
    instructions = [line.strip() for line in text.splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]
    froms = [line for line in instructions if line.upper().startswith("FROM ")]
    assert froms and all("-slim" in line for line in froms)
    assert "ARG PYTHON_VERSION=3.1" in text
    version = re.search(r"ARG PYTHON_VERSION=3\.(\d+)", text)
    assert version and int(version.group(1)) >= 11
    users = [line.split(None, 1)[1] for line in instructions if line.upper().startswith("USER ")]
    assert users, "no USER instruction"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert not re.search(r"^\s*ADD\s+(--\S+\s+)*https?://", text, re.MULTILINE | re.IGNORECASE)
    assert re.search(r"pip install \"?\.\[redis\]\"?", text)
    assert "EXPOSE 8080" in instructions
    assert 'ENTRYPOINT ["codeq", "serve"]' in instructions


def test_dockerignore_keeps_what_the_build_needs() -> None:
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    assert ".git" in ignored
    for needed in ("pyproject.toml", "README.md", "codeq", "plugins"):
        assert needed not in ignored and f"{needed}/" not in ignored


def test_chart_readme_has_install_commands_and_the_lint_gate() -> None:
    readme = (CHART / "README.md").read_text()
    assert "helm install" in readme and "helm upgrade" in readme
    assert "helm lint" in readme
