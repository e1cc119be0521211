"""The registry runs from Debian's package, enabled, with the rendered configuration."""

import yaml

from conftest import ownership


def test_package_is_distribution_2_8(host):
    pkg = host.package("docker-registry")
    assert pkg.is_installed
    assert pkg.version.startswith("2.8.")


def test_service_enabled_and_running(host):
    service = host.service("docker-registry")
    assert service.is_enabled
    assert service.is_running


def test_process_runs_as_the_service_user(host):
    users = host.check_output("ps -o user= -C docker-registry").split()
    assert users
    assert set(users) == {"docker-registry"}


def test_listens_on_the_configured_port(host, role_vars):
    assert (
        host.socket(f"tcp://0.0.0.0:{role_vars['registry_port']}").is_listening
        or host.socket(f"tcp://:::{role_vars['registry_port']}").is_listening
    )


def test_config_values_rendered(host, role_vars):
    assert ownership(host, "/etc/docker/registry/config.yml") == ("root", "docker-registry", 0o640)
    f = host.file("/etc/docker/registry/config.yml")
    config = yaml.safe_load(f.content_string)
    assert str(config["version"]) == "0.1"
    assert config["storage"]["filesystem"]["rootdirectory"] == role_vars["registry_storage_dir"]
    assert config["storage"]["delete"]["enabled"] is role_vars["registry_delete_enabled"]
    assert config["http"]["addr"] == f"{role_vars['registry_listen_address']}:{role_vars['registry_port']}"
    assert config["http"]["tls"] == {
        "certificate": "/etc/docker/registry/tls/registry.crt",
        "key": "/etc/docker/registry/tls/registry.key",
    }
    assert config["auth"] == {
        "htpasswd": {"realm": role_vars["registry_auth_realm"], "path": role_vars["registry_htpasswd_path"]}
    }
    assert config["log"]["level"] == role_vars["registry_log_level"]


def test_storage_dir_owned_by_the_service_user(host, role_vars):
    expected = ("docker-registry", "docker-registry", 0o750)
    assert ownership(host, role_vars["registry_storage_dir"]) == expected


def test_systemd_hardening_applied(host):
    props = dict(
        line.split("=", 1)
        for line in host.check_output(
            "systemctl show docker-registry -p NoNewPrivileges -p ProtectSystem -p ProtectHome -p PrivateTmp "
            "-p Restart -p User -p EnvironmentFiles"
        ).splitlines()
    )
    assert props["NoNewPrivileges"] == "yes"
    assert props["ProtectSystem"] == "full"
    assert props["ProtectHome"] == "yes"
    assert props["PrivateTmp"] == "yes"
    assert props["Restart"] == "on-failure"
    assert props["User"] == "docker-registry"
    assert "/etc/docker/registry/http-secret.env" in props["EnvironmentFiles"]


def test_stable_http_secret_in_a_root_only_file(host):
    assert ownership(host, "/etc/docker/registry/http-secret.env") == ("root", "root", 0o600)
    f = host.file("/etc/docker/registry/http-secret.env")
    assert f.content_string.startswith("REGISTRY_HTTP_SECRET=")
    assert len(f.content_string.strip().split("=", 1)[1]) >= 32
    log = host.check_output("journalctl -u docker-registry -b --no-pager -o cat")
    since_last_start = log.rsplit("Started docker-registry", 1)[-1]
    assert "level=info" in since_last_start
    assert "No HTTP secret provided" not in since_last_start
