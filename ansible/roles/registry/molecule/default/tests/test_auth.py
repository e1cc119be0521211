"""Without credentials, or with a wrong password, the registry answers 401."""

import pytest

from conftest import IMAGE_REPO, IMAGE_TAG, ownership, refused


def _status(host, client, url, *curl_args):
    args = " ".join(["%s"] * len(curl_args))
    out = host.check_output(
        f"curl -sS -o /dev/null -w '%%{{http_code}}' --cacert %s {args} %s", client["ca"], *curl_args, url
    )
    return out.strip()


@pytest.mark.parametrize("path", ["/v2/", f"/v2/{IMAGE_REPO}/tags/list", "/v2/_catalog"])
def test_anonymous_requests_are_refused(host, client, registry, path):
    assert _status(host, client, f"https://{registry}{path}") == "401"


def test_challenge_is_basic_with_the_realm(host, client, registry, role_vars):
    headers = host.check_output("curl -sS -o /dev/null -D - --cacert %s https://%s/v2/", client["ca"], registry)
    assert f'Basic realm="{role_vars["registry_auth_realm"]}"' in headers


def test_wrong_password_is_refused(host, client, registry, user):
    assert _status(host, client, f"https://{registry}/v2/", "-u", f"{user['name']}:not-the-password") == "401"
    login = host.run(
        "skopeo login --authfile %s/wrong.json --cert-dir %s -u %s -p not-the-password %s",
        client["dir"],
        client["certs"],
        user["name"],
        registry,
    )
    assert login.rc != 0
    assert "invalid username/password" in login.stderr or refused(login.stderr), login.stderr


def test_unknown_user_is_refused(host, client, registry):
    assert _status(host, client, f"https://{registry}/v2/", "-u", "nobody:nothing") == "401"


def test_anonymous_push_is_refused(host, client, local_image, registry):
    push = host.run(
        "skopeo copy --dest-no-creds --dest-cert-dir %s oci:%s:%s docker://%s/%s:anonymous",
        client["certs"],
        local_image["path"],
        IMAGE_TAG,
        registry,
        IMAGE_REPO,
    )
    assert push.rc != 0
    assert refused(push.stderr), push.stderr


def test_valid_credentials_are_accepted(host, client, registry):
    # The password goes through a 0600 netrc-style header file, not the command line.
    ok = host.run(
        "curl -sS -o /dev/null -w '%%{http_code}' --cacert %s -H @%s/basic-header https://%s/v2/",
        client["ca"],
        client["dir"],
        registry,
    )
    assert ok.stdout.strip() == "200", ok.stderr


def test_htpasswd_holds_bcrypt_hashes_only(host, role_vars, user):
    assert ownership(host, role_vars["registry_htpasswd_path"]) == ("root", "docker-registry", 0o640)
    htpasswd = host.file(role_vars["registry_htpasswd_path"])
    entries = dict(line.split(":", 1) for line in htpasswd.content_string.splitlines() if line)
    assert set(entries) == {u["name"] for u in role_vars["registry_users"]}
    assert entries[user["name"]].startswith(("$2b$", "$2y$", "$2a$"))
    assert user["password"] not in htpasswd.content_string
