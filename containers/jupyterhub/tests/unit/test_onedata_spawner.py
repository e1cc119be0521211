"""Onedata pod mode of the hub: each user's notebook pod mounts the space with that user's own token,
typed into the spawn form, kept only in a Secret of their server (run inside the image:
`primage images test jupyterhub`). The Kubernetes API is a recorder here; the real API server
takes the same calls in tests/cluster/test_notebook_hub.py."""

from __future__ import annotations

import asyncio
import secrets
import sys
from types import SimpleNamespace

import pytest
from traitlets.config import Config

sys.path.insert(0, "/opt/primage/jupyterhub")

import primage_hub
import primage_spawner
from test_settings import ENDPOINTS
from test_settings import environ as environ  # the settings fixture, used by name

PROVIDER = "plg-cyfronet-01.datahub.egi.eu"


@pytest.fixture
def pod_mode(environ):
    environ.update(
        PRIMAGE_HUB_NOTEBOOK_IMAGE="primage/jupyter:0.1.0-onedata",
        PRIMAGE_HUB_ONEDATA_PROVIDER_HOST=PROVIDER,
        PRIMAGE_HUB_ONEDATA_TOKEN_HELP_URL="https://datahub.egi.eu",  # noqa: S106 (an address)
    )
    return environ


def refused(values) -> str:
    with pytest.raises(primage_hub.SettingsError) as error:
        primage_hub.load(values)
    return str(error.value)


def config(values) -> Config:
    c = Config()
    primage_hub.configure(c, primage_hub.load(values), ENDPOINTS)
    return c


class Recorder:
    """The CoreV1Api calls the spawner makes for Secrets, answered as the API server would."""

    POD_UID = "0b6c3f1e-5a47-4d0e-9f6e-2d5c8a1b7e90"

    def __init__(self, existing: bool = False, fail: int | None = None, failing: tuple[str, ...] = ()):
        self.calls: list[tuple[str, dict]] = []
        self.existing, self.fail, self.failing = existing, fail, failing

    def _answer(self, call: str, **kwargs):
        self.calls.append((call, kwargs))
        if self.fail and (not self.failing or call in self.failing):
            raise primage_spawner.ApiException(status=self.fail, reason="Forbidden")
        if call == "create_namespaced_secret" and self.existing:
            raise primage_spawner.ApiException(status=409, reason="Conflict")

    async def read_namespaced_pod(self, **kwargs):
        self._answer("read_namespaced_pod", **kwargs)
        return SimpleNamespace(metadata=SimpleNamespace(name=kwargs["name"], uid=self.POD_UID))

    async def patch_namespaced_secret(self, **kwargs):
        self._answer("patch_namespaced_secret", **kwargs)

    async def create_namespaced_secret(self, **kwargs):
        self._answer("create_namespaced_secret", **kwargs)

    async def replace_namespaced_secret(self, **kwargs):
        self._answer("replace_namespaced_secret", **kwargs)

    async def delete_namespaced_secret(self, **kwargs):
        self._answer("delete_namespaced_secret", **kwargs)


@pytest.fixture
def offline(monkeypatch):
    """KubeSpawner without an API server: no credentials loaded, its own start and stop recorded."""
    import kubespawner.spawner
    from kubespawner import KubeSpawner

    monkeypatch.setattr(kubespawner.spawner, "load_config", lambda **kwargs: None)
    monkeypatch.setattr(kubespawner.spawner, "shared_client", lambda *args, **kwargs: None)  # the recorder's place
    started = []

    async def start(self):
        if getattr(self, "fail_start", None):
            raise self.fail_start
        started.append(self.pod_name)
        return ("10.0.0.7", 8888)

    async def stop(self, now=False):
        started.remove(self.pod_name)

    monkeypatch.setattr(KubeSpawner, "start", start)
    monkeypatch.setattr(KubeSpawner, "stop", stop)
    return started


def spawner_of(c: Config, api: Recorder | None = None):
    spawner = primage_spawner.PrimageSpawner(config=c, _mock=True)
    spawner.api = api or Recorder()
    return spawner


def new_token() -> str:
    return "MDAxY2xvY2F0aW9u-test-" + secrets.token_urlsafe(48)


# ---------------------------------------------------------------------------- settings


def test_pod_mode_settings_are_read_and_checked(pod_mode):
    onedata = primage_hub.load(pod_mode).spawner.onedata
    assert (onedata.provider_host, onedata.fuse_resource) == (PROVIDER, "primage.eu/fuse")
    assert primage_hub.load(dict(pod_mode, PRIMAGE_HUB_ONEDATA_PROVIDER_HOST="")).spawner.onedata is None
    assert "is not a host name" in refused(dict(pod_mode, PRIMAGE_HUB_ONEDATA_PROVIDER_HOST="https://x/"))
    assert "both set" in refused(dict(pod_mode, PRIMAGE_HUB_SPACE_HOST_PATH="/mnt/onedata"))
    assert "not an extended resource name" in refused(dict(pod_mode, PRIMAGE_HUB_ONEDATA_FUSE_RESOURCE="fuse"))
    assert "expected one of Unconfined" in refused(dict(pod_mode, PRIMAGE_HUB_ONEDATA_APPARMOR_PROFILE="off"))
    assert "holds the token or the provider" in refused(dict(pod_mode, PRIMAGE_HUB_ONEDATA_OPTIONS="-t abc"))
    assert "is not an https URL" in refused(dict(pod_mode, PRIMAGE_HUB_ONEDATA_TOKEN_HELP_URL="http://x"))  # noqa: S106
    assert "below /" in refused(dict(pod_mode, PRIMAGE_HUB_SPACE_MOUNT="/"))


def test_the_pod_mounts_the_space_with_its_users_secret_never_a_value(pod_mode, offline):
    """KubeSpawner's own manifest: the token only by reference to the user's Secret; the pod mode's
    capabilities and the FUSE device plugin's resource, as the roles render pod mode."""
    c = config(dict(pod_mode, PRIMAGE_HUB_ONEDATA_APPARMOR_PROFILE="Unconfined"))
    assert c.JupyterHub.spawner_class == "primage_spawner.PrimageSpawner"

    async def manifest():
        spawner = spawner_of(c)
        return spawner, await spawner.get_pod_manifest()

    spawner, pod = asyncio.run(manifest())
    (container,) = pod.spec.containers
    env = {e.name: e for e in container.env}
    reference = env["ONECLIENT_ACCESS_TOKEN"].value_from["secretKeyRef"]
    assert reference == {"name": spawner.onedata_secret_name, "key": "token"}
    assert spawner.onedata_secret_name == "onedata-token-" + spawner.pod_name.removeprefix("notebook-")
    assert env["ONECLIENT_ACCESS_TOKEN"].value is None
    assert env["ONECLIENT_PROVIDER_HOST"].value == PROVIDER
    assert env["ONECLIENT_MOUNT_POINT"].value == "/mnt/onedata"
    assert (env["PRIMAGE_UID"].value, env["PRIMAGE_GID"].value) == ("1000", "1000")
    context = container.security_context
    assert context["capabilities"] == {"drop": ["ALL"], "add": ["SYS_ADMIN", "SETUID", "SETGID"]}
    assert context["privileged"] is False
    assert context["allowPrivilegeEscalation"] is False
    assert context["appArmorProfile"] == {"type": "Unconfined"}
    assert "runAsNonRoot" not in context  # it starts as root to mount, then drops to PRIMAGE_UID
    assert (context["runAsUser"], context["runAsGroup"]) == (0, 0)
    assert pod.spec.security_context["fsGroup"] == 1000
    assert container.resources.limits["primage.eu/fuse"] == "1"
    assert container.resources.requests["primage.eu/fuse"] == "1"
    assert not [v for v in pod.spec.volumes if v.host_path]  # no node mount, no hostPath device
    assert pod.spec.automount_service_account_token is False


# ---------------------------------------------------------------------------- the form


def test_the_form_asks_for_the_token_and_keeps_it_out_of_the_options(pod_mode, offline):
    spawner = spawner_of(config(pod_mode))
    form = asyncio.run(spawner.get_options_form())
    assert 'type="password"' in form
    assert 'name="onedata_token"' in form
    assert 'autocomplete="off"' in form
    assert PROVIDER in form
    assert 'href="https://datahub.egi.eu"' in form
    token = new_token()
    options = spawner.run_options_from_form({"onedata_token": [f"  {token}\n"]})
    # JupyterHub saves the options in its database before the start: the token is not among them.
    assert options == {}
    assert spawner._onedata_token == token


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "Give your Onedata access token"),
        ("   ", "Give your Onedata access token"),
        ("MDAx abc", "holds a space"),
        ("MDAx\x00abc", "holds a space or a character"),
        ("MDAx" + "a" * 20000, "longer than"),
    ],
)
def test_a_token_that_cannot_be_one_is_refused_without_showing_it(pod_mode, offline, value, message):
    spawner = spawner_of(config(pod_mode))
    with pytest.raises(primage_spawner.OnedataTokenError) as error:
        spawner.run_options_from_form({"onedata_token": [value]})
    assert message in str(error.value)
    assert not value.strip() or value.strip()[:10] not in str(error.value).replace("Onedata", "")
    assert spawner._onedata_token is None


def test_a_token_in_the_spawn_address_is_refused(pod_mode, offline):
    spawner = spawner_of(config(pod_mode))
    with pytest.raises(primage_spawner.OnedataTokenError, match="in the address is refused"):
        spawner.options_from_query({"onedata_token": [new_token()]})


def test_without_pod_mode_the_spawner_is_kubespawner_as_it_is(environ, offline):
    environ["PRIMAGE_HUB_NOTEBOOK_IMAGE"] = "primage/jupyter:0.1.0"
    spawner = spawner_of(config(environ))
    assert spawner.onedata_provider_host == ""
    assert asyncio.run(spawner.get_options_form()) == ""
    from kubespawner import KubeSpawner

    assert spawner.options_from_form.__func__ is KubeSpawner._options_from_form  # KubeSpawner's own
    assert asyncio.run(spawner.start()) == ("10.0.0.7", 8888)
    assert spawner.api.calls == []


# ---------------------------------------------------------------------------- start and stop


def test_start_writes_the_users_secret_and_stop_deletes_it(pod_mode, offline):
    spawner = spawner_of(config(pod_mode))
    token = new_token()
    spawner.run_options_from_form({"onedata_token": [token]})
    assert asyncio.run(spawner.start()) == ("10.0.0.7", 8888)
    names = [name for name, _ in spawner.api.calls]
    assert names == ["create_namespaced_secret", "read_namespaced_pod", "patch_namespaced_secret"]
    arguments = spawner.api.calls[0][1]
    secret = arguments["body"]
    assert secret["metadata"]["name"] == spawner.onedata_secret_name
    assert secret["metadata"]["namespace"] == spawner.namespace == arguments["namespace"]
    assert secret["stringData"] == {"token": token}
    assert secret["metadata"]["labels"]["app.kubernetes.io/component"] == "onedata-token"
    assert spawner._onedata_token is None  # the hub's memory lets it go once the Secret holds it
    assert offline == [spawner.pod_name]
    asyncio.run(spawner.stop())
    assert spawner.api.calls[-1] == (
        "delete_namespaced_secret",
        {"name": spawner.onedata_secret_name, "namespace": spawner.namespace},
    )
    assert offline == []


def test_once_the_pod_runs_it_owns_the_secret_so_that_the_secret_goes_with_it(pod_mode, offline):
    """Kubernetes' garbage collector deletes the Secret with its owner, also while the hub is down."""
    spawner = spawner_of(config(pod_mode))
    spawner.run_options_from_form({"onedata_token": [new_token()]})
    asyncio.run(spawner.start())
    read, patch = spawner.api.calls[1:]
    assert read[1] == {"name": spawner.pod_name, "namespace": spawner.namespace}
    assert patch[1]["name"] == spawner.onedata_secret_name
    assert patch[1]["body"] == {
        "metadata": {
            "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": spawner.pod_name, "uid": Recorder.POD_UID}]
        }
    }
    assert "stringData" not in patch[1]["body"]  # the token is sent once, at the creation


def test_a_pod_that_cannot_own_the_secret_leaves_the_server_running_and_says_so(pod_mode, offline, caplog):
    spawner = spawner_of(config(pod_mode), Recorder(fail=403, failing=("patch_namespaced_secret",)))
    token = new_token()
    spawner.run_options_from_form({"onedata_token": [token]})
    assert asyncio.run(spawner.start()) == ("10.0.0.7", 8888)
    assert offline == [spawner.pod_name]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "HTTP 403" in warning
    assert "patch on secrets" in warning
    assert token not in caplog.text


@pytest.mark.parametrize("failure", [RuntimeError("pod did not start in 300 seconds!"), asyncio.CancelledError()])
def test_a_start_that_fails_deletes_the_secret_it_wrote(pod_mode, offline, failure):
    spawner = spawner_of(config(pod_mode))
    spawner.fail_start = failure
    spawner.run_options_from_form({"onedata_token": [new_token()]})
    with pytest.raises(type(failure)):
        asyncio.run(spawner.start())
    assert [name for name, _ in spawner.api.calls] == ["create_namespaced_secret", "delete_namespaced_secret"]
    assert spawner.api.calls[1][1] == {"name": spawner.onedata_secret_name, "namespace": spawner.namespace}
    assert offline == []


def test_a_new_start_replaces_the_secret_left_by_the_last(pod_mode, offline):
    spawner = spawner_of(config(pod_mode), Recorder(existing=True))
    token = new_token()
    spawner.run_options_from_form({"onedata_token": [token]})
    asyncio.run(spawner.start())
    assert [name for name, _ in spawner.api.calls][:2] == ["create_namespaced_secret", "replace_namespaced_secret"]
    assert spawner.api.calls[1][1]["body"]["stringData"] == {"token": token}


def test_a_start_without_the_form_is_refused_and_starts_nothing(pod_mode, offline):
    """An API start, an admin starting the user's server, a start after the hub restarted: no token."""
    spawner = spawner_of(config(pod_mode))
    with pytest.raises(primage_spawner.OnedataTokenError, match="whose form asks for it"):
        asyncio.run(spawner.start())
    assert spawner.api.calls == []
    assert offline == []


def test_a_token_sent_in_the_options_is_taken_out_of_the_database_and_refused(pod_mode, offline, tmp_path):
    """JupyterHub saves a REST start's JSON options before the spawner runs: the spawner takes the
    token out of JupyterHub's own database again (its ORM, on SQLite) and refuses the start."""
    from jupyterhub import orm

    url = f"sqlite:///{tmp_path / 'jupyterhub.sqlite'}"
    db = orm.new_session_factory(url)()
    user = orm.User(name="member")
    db.add(user)
    saved = orm.Spawner(user=user, name="")
    db.add(saved)
    token = new_token()
    saved.user_options = {"onedata_token": token, "profile": "small"}  # what JupyterHub saved
    db.commit()
    spawner = spawner_of(config(pod_mode))
    spawner.orm_spawner = saved
    spawner.user_options = dict(saved.user_options)
    with pytest.raises(primage_spawner.OnedataTokenError, match="is refused") as error:
        asyncio.run(spawner.start())
    assert token not in str(error.value)
    other = orm.new_session_factory(url)()
    assert other.query(orm.Spawner).one().user_options == {"profile": "small"}
    assert spawner.api.calls == []
    assert offline == []


def test_an_api_refusal_names_the_secret_and_the_role_never_the_token(pod_mode, offline):
    spawner = spawner_of(config(pod_mode), Recorder(fail=403))
    token = new_token()
    spawner.run_options_from_form({"onedata_token": [token]})
    with pytest.raises(RuntimeError) as error:
        asyncio.run(spawner.start())
    message = str(error.value)
    assert spawner.onedata_secret_name in message
    assert "HTTP 403" in message
    assert "secrets" in message
    assert token not in message
    assert offline == []
