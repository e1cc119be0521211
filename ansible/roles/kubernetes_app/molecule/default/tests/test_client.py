"""The pinned Kubernetes Python client in its own virtualenv."""

from pathlib import Path

import yaml

VENV = "/opt/primage/kubernetes-client"
DEFAULTS = Path(__file__).resolve().parents[3] / "defaults" / "main.yml"


def _pins(host):
    return yaml.safe_load(DEFAULTS.read_text(encoding="utf-8"))["kubernetes_app_client_packages"]


def test_virtualenv_holds_exactly_the_pinned_packages(host):
    freeze = host.check_output(f"{VENV}/bin/python -m pip freeze --all").splitlines()
    installed = {line.split("==")[0].lower(): line for line in freeze if "==" in line}
    for pin in _pins(host):
        assert installed.get(pin.split("==")[0].lower(), "").lower() == pin.lower()
    assert set(installed) - {p.split("==")[0].lower() for p in _pins(host)} <= {"pip", "setuptools"}


def test_client_is_new_enough_for_kubernetes_core(host):
    version = host.check_output(f"{VENV}/bin/python -c 'import kubernetes; print(kubernetes.__version__)'")
    assert tuple(int(part) for part in version.split(".")[:2]) >= (24, 2)


def test_kubernetes_tasks_run_with_the_virtualenv(facts):
    assert facts["python"] == f"{VENV}/bin/python"


def test_client_is_not_installed_system_wide(host):
    assert host.run("/usr/bin/python3 -c 'import kubernetes'").rc != 0
