"""What CI can check of the deployment without a container engine: the Dockerfile (hadolint),
the compose file (docker-compose config), the Kubernetes manifests (schema), the nginx config
(nginx -t, and a real nginx serving stored images like the sidecar), and the documentation of
every setting."""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

import aiohttp
import pytest
import yaml

from image_sidecar.config import SETTINGS
from image_sidecar.config.limits import Limits
from testkit.helpers import free_port, require_tool
from testkit.images import png_bytes
from testkit.nginx import NGINX_CONF, nginx_main_config, running_nginx

ROOT = Path(__file__).resolve().parents[2]
SETTING_NAMES = {setting.name for setting in SETTINGS}


def run(*command: str, cwd: Path = ROOT, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, **kwargs)


def test_dockerfile_passes_hadolint():
    result = run(require_tool("hadolint"), "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_broken_dockerfile(tmp_path):
    broken = tmp_path / "Dockerfile"
    broken.write_text("FROM python\nRUN apt-get install curl\nCMD image-sidecar serve\n")
    result = run(require_tool("hadolint"), str(broken))
    assert result.returncode != 0
    assert "DL3008" in result.stdout or "DL3006" in result.stdout


def _compose_config(path: Path) -> subprocess.CompletedProcess:
    environ = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "POSTGRES_PASSWORD": "example",
        "IMAGE_SIDECAR_API_TOKEN": "example",
        "GRAFANA_ADMIN_PASSWORD": "example",
    }
    return run(
        require_tool("docker-compose"),
        "-f",
        str(path),
        "config",
        "--quiet",
        cwd=path.parent,
        env=environ,
    )


def test_compose_file_is_valid():
    result = _compose_config(ROOT / "docker-compose.yml")
    assert result.returncode == 0, result.stderr


def test_compose_after_the_documented_steps_serves_pictures_through_nginx(tmp_path):
    """docs/operations.md: `cp .env.example .env`, set the secrets, `docker compose up`."""
    env = (ROOT / ".env.example").read_text()
    for secret in ("POSTGRES_PASSWORD", "IMAGE_SIDECAR_API_TOKEN", "GRAFANA_ADMIN_PASSWORD"):
        env = re.sub(rf"^{secret}=$", f"{secret}=example", env, flags=re.MULTILINE)
    (tmp_path / ".env").write_text(env)
    (tmp_path / "docker-compose.yml").write_text((ROOT / "docker-compose.yml").read_text())
    result = run(
        require_tool("docker-compose"),
        "config",
        cwd=tmp_path,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    sidecar = yaml.safe_load(result.stdout)["services"]["sidecar"]["environment"]
    assert sidecar["IMAGE_PUBLIC_BASE_URL"] == "http://127.0.0.1:8081/generated-images"
    assert sidecar["IMAGE_SIDECAR_API_TOKEN"] == "example"


def test_compose_validation_fails_a_broken_file(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        (ROOT / "docker-compose.yml").read_text().replace("condition: service_healthy", "when: up")
    )
    assert _compose_config(broken).returncode != 0


def test_compose_binds_every_port_to_loopback_and_commits_no_secret():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
    text = (ROOT / "docker-compose.yml").read_text()
    for secret in ("POSTGRES_PASSWORD", "IMAGE_SIDECAR_API_TOKEN", "GRAFANA_ADMIN_PASSWORD"):
        assert re.search(rf"\${{{secret}:\?", text), f"{secret} must come from .env"


def test_kubernetes_manifests_pass_the_schema():
    manifests = sorted(str(p) for p in (ROOT / "deploy" / "k8s").glob("*.yaml"))
    assert manifests
    result = run(require_tool("kubernetes-validate"), "--strict", *manifests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_schema_check_fails_a_broken_manifest(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        (ROOT / "deploy" / "k8s" / "migrate-job.yaml")
        .read_text()
        .replace("backoffLimit: 4", "backoffLimit: four")
    )
    result = run(require_tool("kubernetes-validate"), "--strict", str(broken))
    assert result.returncode != 0


def test_kubernetes_nginx_configmap_holds_the_nginx_config_verbatim():
    configmap = yaml.safe_load((ROOT / "deploy" / "k8s" / "nginx-configmap.yaml").read_text())
    assert configmap["data"]["default.conf"] == NGINX_CONF.read_text()


def _env_names(text: str) -> list[str]:
    """The variables a .env file names, set or commented out at their default."""
    return re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE)


def test_every_setting_is_documented_and_nothing_else():
    env_example = (ROOT / ".env.example").read_text()
    sidecar_part, compose_part = env_example.split("# --- docker compose only")
    assert set(_env_names(sidecar_part)) == SETTING_NAMES
    compose_text = (ROOT / "docker-compose.yml").read_text()
    for name in _env_names(compose_part):
        assert name not in SETTING_NAMES
        assert "${" + name in compose_text, f"{name} is documented but compose does not use it"

    compose = yaml.safe_load(compose_text)
    environment = compose["x-sidecar-environment"]
    assert set(environment) <= SETTING_NAMES
    for name in SETTING_NAMES:
        assert name in compose_text, f"{name} is neither set nor documented in compose"

    reference = (ROOT / "docs" / "configuration.md").read_text()
    assert set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", reference, flags=re.MULTILINE)) == (
        SETTING_NAMES
    )


def test_nginx_accepts_the_config(tmp_path, storage_dir):
    nginx = require_tool("nginx")
    main = nginx_main_config(tmp_path, storage_dir, free_port())
    result = run(nginx, "-t", "-c", str(main), "-p", str(tmp_path))
    assert result.returncode == 0, result.stderr


@pytest.fixture
async def nginx_base(tmp_path, storage_dir):
    async with running_nginx(tmp_path, storage_dir) as base, aiohttp.ClientSession() as session:
        yield base, session


SHARED_HEADERS = ("Content-Type", "Cache-Control", "X-Content-Type-Options", "Content-Length")


async def test_nginx_serves_stored_images_exactly_like_the_sidecar(nginx_base, client, upload):
    base, session = nginx_base
    for seed in range(3):
        record = await (await upload(image=png_bytes(seed=seed, size=40))).json()
        url = record["image_url"]
        from_sidecar = await client.get(url)
        async with session.get(base + url) as from_nginx:
            assert from_nginx.status == 200
            assert await from_nginx.read() == await from_sidecar.read() == png_bytes(seed, 40)
            for header in SHARED_HEADERS:
                assert from_nginx.headers[header] == from_sidecar.headers[header], header
        async with session.get(base + url, headers={"Range": "bytes=5-14"}) as partial:
            assert partial.status == 206
            assert await partial.read() == png_bytes(seed, 40)[5:15]
        async with session.head(base + url) as head:
            assert head.status == 200
            assert head.headers["Content-Length"] == str(record["size_bytes"])
        assert record["renditions"]
        for rendition in record["renditions"]:  # served with the original's headers too
            from_sidecar = await client.get(rendition["url"])
            async with session.get(base + rendition["url"]) as from_nginx:
                assert from_nginx.status == 200, rendition["url"]
                assert await from_nginx.read() == await from_sidecar.read()
                for header in SHARED_HEADERS:
                    assert from_nginx.headers[header] == from_sidecar.headers[header], header
                assert from_nginx.headers["Content-Type"] == rendition["content_type"]


@pytest.mark.parametrize(
    "path",
    [
        "/generated-images/",
        "/generated-images/game-ABCD/",
        "/generated-images/game-ABCD/round-1/",
        "/generated-images/../../etc/passwd",
        "/generated-images/%2e%2e/%2e%2e/etc/passwd",
        "/generated-images/game-ABCD/round-1/.tmp-partial.part",
        "/generated-images/game-ABCD/round-1/player-x.png",
        "/etc/passwd",
        "/",
    ],
)
async def test_nginx_lists_nothing_and_serves_nothing_outside_the_images(
    nginx_base, upload, storage_dir, path
):
    base, session = nginx_base
    await upload()
    legacy_round = storage_dir / "game-ABCD" / "round-1"  # the layout before game ids
    legacy_round.mkdir(parents=True)
    (legacy_round / ".tmp-partial.part").write_bytes(b"partial")
    async with session.get(base + path) as response:
        assert response.status in (400, 404)
        body = await response.read()
    assert b"partial" not in body
    assert b"root:" not in body
    assert b"Index of" not in body


@pytest.fixture
async def nginx_before_the_sidecar(tmp_path, storage_dir, sidecar_server, make_app):
    """The shipped nginx config in front of a sidecar on loopback: (nginx base, access log)."""
    server = await sidecar_server(make_app())
    async with running_nginx(tmp_path, storage_dir, server.port) as base:
        yield base, tmp_path / "access.log"


async def test_nginx_passes_share_pages_only_and_logs_no_share_id_in_full(
    nginx_before_the_sidecar, client, upload
):
    base, access_log = nginx_before_the_sidecar
    record = await (await upload()).json()
    share = await (await client.post("/api/shares", json={"game_code": "ABCD"})).json()
    share_id = share["share_id"]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/s/{share_id}") as page:
            assert page.status == 200
            assert "Content-Security-Policy" in page.headers
            assert record["completed_sentence"] in await page.text()
        async with session.get(f"{base}/s/{share_id}/images.zip") as archive:
            assert archive.status == 200
            assert archive.headers["Content-Type"] == "application/zip"
        async with session.get(f"{base}/s/{share_id}/images/{record['image_id']}") as download:
            assert download.status == 200
        for private in ("/api/stats", "/api/games/ABCD/images", "/metrics", "/api/shares"):
            async with session.get(base + private) as refused:
                assert refused.status == 404, private
    logged = access_log.read_text()
    assert f"/s/{share_id[:4]}..." in logged
    assert share_id not in logged


def _k8s(name: str) -> list[dict]:
    return list(yaml.safe_load_all((ROOT / "deploy" / "k8s" / name).read_text()))


def test_the_sidecar_runs_as_a_native_sidecar_that_starts_before_the_game_server():
    (deployment, _service) = _k8s("deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    sidecars = {c["name"]: c for c in pod["initContainers"]}
    assert set(sidecars) == {"image-sidecar", "images"}
    for sidecar in sidecars.values():
        assert sidecar["restartPolicy"] == "Always"  # a native sidecar, not a one-off init
        assert "startupProbe" in sidecar
        assert sidecar["lifecycle"]["preStop"]
    probes = sidecars["image-sidecar"]
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert [c["name"] for c in pod["containers"]] == ["game-server"]
    shutdown = {e["name"]: e["value"] for e in probes["env"] if "value" in e}
    pause = probes["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert (
        pause + float(shutdown["IMAGE_SIDECAR_SHUTDOWN_SECONDS"])
        < (pod["terminationGracePeriodSeconds"])
    )


@pytest.mark.parametrize("manifest", ["deployment.yaml", "migrate-job.yaml"])
def test_every_container_is_locked_down(manifest):
    workload = _k8s(manifest)[0]
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod.get("initContainers", []) + pod["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["capabilities"] == {"drop": ["ALL"]}, container["name"]
        if container["name"] != "game-server":  # ours: nothing writes outside its volumes
            assert context["readOnlyRootFilesystem"] is True, container["name"]


def test_the_sidecar_says_what_it_runs_and_it_fits_its_limits():
    """Workers, picture processes and pool size are set, not found on the node; the workers fit
    the CPU limit and the memory limit holds them as `auto` would count (config.limits)."""
    (deployment, _service) = _k8s("deployment.yaml")
    sidecar = next(
        c
        for c in deployment["spec"]["template"]["spec"]["initContainers"]
        if c["name"] == "image-sidecar"
    )
    env = {e["name"]: e["value"] for e in sidecar["env"] if "value" in e}
    workers = int(env["IMAGE_SIDECAR_WORKERS"])
    assert int(env["IMAGE_PROCESSING_WORKERS"]) >= workers  # at least one each
    assert int(env["DATABASE_POOL_SIZE"]) >= workers
    limits = sidecar["resources"]["limits"]
    assert workers <= math.ceil(float(limits["cpu"]))
    memory = int(limits["memory"].removesuffix("Mi")) * 2**20
    assert workers <= Limits(cpus=workers, memory_bytes=memory).workers()
    requested = int(sidecar["resources"]["requests"]["memory"].removesuffix("Mi")) * 2**20
    assert requested <= memory
