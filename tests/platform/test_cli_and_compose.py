"""The `aiops` CLI and the docker-compose file, exercised for real."""

from __future__ import annotations

import shutil
import subprocess

import yaml

from services.worker.celery_app import QUEUE_GROUPS, QUEUES
from tests.conftest import FIXTURES, ROOT, run_cli


def test_migrate_then_status(tmp_path):
    env = {"AIOPS_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    unmigrated = run_cli("status", env=env)
    assert unmigrated.returncode == 1 and "aiops migrate" in unmigrated.stdout
    migrated = run_cli("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert "database migrated: empty ->" in migrated.stdout
    status = run_cli("status", env=env)
    assert status.returncode == 0 and "embedded" in status.stdout


def test_ingest_replays_a_file_through_the_api(platform_env):
    import threading

    import uvicorn

    from services.api.app import create_app
    from tests.conftest import free_port, wait_for

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(start_workers=False), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, message="uvicorn started")
    try:
        tmp = ROOT / "var" / "test-ingest.jsonl"
        tmp.parent.mkdir(exist_ok=True)
        tmp.write_text((FIXTURES / "alerts" / "alertmanager_2_alerts.json").read_text().replace("\n", " ") + "\n"
                       + '{"name": "DiskFull", "node": "n9"}\n')
        result = run_cli("ingest", str(tmp), "--url", f"http://127.0.0.1:{port}", env=platform_env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "'accepted': 3" in result.stdout and "'new': 3" in result.stdout
        bad = tmp.with_suffix(".bad.json")
        bad.write_text('{"foo": 1}')
        rejected = run_cli("ingest", str(bad), "--url", f"http://127.0.0.1:{port}", env=platform_env)
        assert rejected.returncode == 1 and "unrecognised alert format" in rejected.stdout
    finally:
        server.should_exit = True
        thread.join(10)


def test_compose_file_is_valid_and_matches_the_code():
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose (Debian package) is installed by `make test`"
    check = subprocess.run([compose, "config", "-q"], cwd=ROOT, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = spec["services"]
    assert {"postgres", "redis", "chroma", "api", "beat", "flower"} <= set(services)
    served = set()
    for name, service in services.items():
        command = service.get("command") or []
        if "worker" in command:
            queues = command[command.index("--queues") + 1].split(",")
            assert tuple(queues) in QUEUE_GROUPS.values(), (name, queues)
            served |= set(queues)
        if "healthcheck" not in service and name not in {"migrate", "beat", "flower"} and not name.startswith("worker"):
            raise AssertionError(f"{name} has no health check")
    assert served == set(QUEUES)


def test_compose_app_services_share_no_local_disk():
    """Each app container may run on its own machine: no volume or bind mount, no shared path setting."""
    check = subprocess.run([shutil.which("docker-compose") or "docker-compose", "config"], cwd=ROOT,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    services = yaml.safe_load(check.stdout)["services"]
    app = {name: s for name, s in services.items() if s.get("image", "").startswith("aiops-platform")}
    assert {"api", "beat", "worker-agents", "worker-jobs", "migrate"} <= set(app)
    for name, service in app.items():
        assert not service.get("volumes"), f"{name} mounts {service['volumes']}: shared state belongs in the database"
        env = service.get("environment", {})
        assert env["AIOPS_DATABASE_URL"].startswith("postgresql"), name
        assert env.get("AIOPS_CHROMA_HOST"), f"{name}: memory must use the Chroma server, not a local directory"
        assert env["AIOPS_BROKER_URL"].startswith("redis://"), name


def test_compose_prometheus_and_alertmanager_use_the_shipped_configs():
    """The compose services mount deploy/, and those files pass the tools' own checks."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    assert "./deploy/alertmanager:/etc/alertmanager:ro" in services["alertmanager"]["volumes"]
    promtool, amtool = shutil.which("promtool"), shutil.which("amtool")
    assert promtool and amtool, "promtool and amtool come with the Debian prometheus / prometheus-alertmanager packages"
    for args in ([promtool, "check", "config", "deploy/prometheus/prometheus.yml"],
                 [amtool, "check-config", "deploy/alertmanager/alertmanager.yml"]):
        check = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    am = yaml.safe_load((ROOT / "deploy/alertmanager/alertmanager.yml").read_text())
    hooks = [h for r in am["receivers"] for h in r.get("webhook_configs", [])]
    assert hooks and all(h["url"] == "http://api:8000/api/v1/alerts" and h["send_resolved"] for h in hooks)
