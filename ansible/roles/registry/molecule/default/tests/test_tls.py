"""TLS is served with a certificate from the generated CA, carrying the expected names."""

import pytest

from conftest import ownership

TLS_DIR = "/etc/docker/registry/tls"


@pytest.fixture(scope="module")
def sans(host):
    out = host.check_output("openssl x509 -in %s/registry.crt -noout -ext subjectAltName", TLS_DIR)
    return {item.strip() for item in out.splitlines()[1].split(",")}


def test_certificate_names(host, sans, hostname, role_vars):
    expected = {f"DNS:{hostname}", "DNS:localhost", "IP Address:127.0.0.1"}
    for extra in role_vars["registry_tls_selfsigned_san"]:
        expected.add(("IP Address:" if extra[0].isdigit() else "DNS:") + extra)
    for address in host.check_output("hostname -I").split():
        if ":" not in address:
            expected.add(f"IP Address:{address}")
    assert expected <= sans


def test_served_certificate_is_the_generated_one(host, role_vars):
    served = host.check_output(
        "openssl s_client -connect 127.0.0.1:%s -servername localhost </dev/null 2>/dev/null"
        " | openssl x509 -noout -fingerprint -sha256",
        role_vars["registry_port"],
    )
    on_disk = host.check_output("openssl x509 -in %s/registry.crt -noout -fingerprint -sha256", TLS_DIR)
    assert served == on_disk


@pytest.mark.parametrize(
    ("flag", "name"),
    [("-verify_hostname", "registry.primage.test"), ("-verify_ip", "192.0.2.10"), ("-verify_hostname", "localhost")],
)
def test_exported_ca_verifies_the_server(host, client, role_vars, flag, name):
    # Only the exported CA is trusted here (no system store), and the name is checked.
    out = host.run(
        "openssl s_client -connect 127.0.0.1:%s -verify_return_error -no-CApath -no-CAstore "
        "-CAfile %s %s %s </dev/null",
        role_vars["registry_port"],
        client["ca"],
        flag,
        name,
    )
    assert out.rc == 0, out.stdout + out.stderr
    assert "Verify return code: 0 (ok)" in out.stdout


def test_other_names_do_not_verify(host, client, role_vars):
    out = host.run(
        "openssl s_client -connect 127.0.0.1:%s -verify_return_error -no-CApath -no-CAstore "
        "-CAfile %s -verify_hostname not-a-registry.example </dev/null",
        role_vars["registry_port"],
        client["ca"],
    )
    assert out.rc != 0


def test_server_certificate_is_a_leaf_for_server_auth(host):
    text = host.check_output("openssl x509 -in %s/registry.crt -noout -text", TLS_DIR)
    assert "CA:FALSE" in text
    assert "TLS Web Server Authentication" in text
    assert host.run("openssl verify -CAfile %s/ca.crt %s/registry.crt", TLS_DIR, TLS_DIR).rc == 0


def test_plain_http_is_not_served(host, registry):
    out = host.run("curl -sS -o /dev/null -w '%%{http_code}' http://%s/v2/", registry)
    assert out.stdout.strip() not in ("200", "401")


@pytest.mark.parametrize(
    ("name", "owner", "group", "mode"),
    [
        ("registry.key", "root", "docker-registry", 0o640),
        ("ca.key", "root", "root", 0o600),
        ("registry.crt", "root", "root", 0o644),
        ("ca.crt", "root", "root", 0o644),
    ],
)
def test_tls_file_permissions(host, name, owner, group, mode):
    assert ownership(host, f"{TLS_DIR}/{name}") == (owner, group, mode)


def test_tls_dir_is_closed_to_others(host):
    assert ownership(host, TLS_DIR) == ("root", "docker-registry", 0o750)


def test_service_user_reads_the_key_but_not_the_ca_key(host):
    assert host.run("runuser -u docker-registry -- test -r %s/registry.key", TLS_DIR).rc == 0
    assert host.run("runuser -u docker-registry -- test -r %s/ca.key", TLS_DIR).rc != 0
    assert host.run("runuser -u nobody -- test -r %s/registry.key", TLS_DIR).rc != 0


def test_ca_exported_and_trusted_on_the_node(host, exported_ca):
    on_node = host.file(f"{TLS_DIR}/ca.crt").content_string
    assert exported_ca.strip() == on_node.strip()
    trusted = "/usr/local/share/ca-certificates/primage-registry-ca.crt"
    assert ownership(host, trusted) == ("root", "root", 0o644)
    assert host.file(trusted).content_string.strip() == on_node.strip()
    bundle = host.file("/etc/ssl/certs/ca-certificates.crt").content_string
    assert "".join(on_node.split()[2:-2]) in "".join(bundle.split())
