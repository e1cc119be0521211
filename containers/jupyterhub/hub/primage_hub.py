"""Settings of the PRIMAGE notebook hub: JupyterHub behind EGI Check-in, one notebook per user.

Everything comes from the environment (what the jupyter role's Deployment or `docker run -e`
sets) and from files mounted from Secrets; `load()` checks it all and raises SettingsError
naming the variable and what is expected, so the start script can say it in one line and exit
64 before JupyterHub runs. `configure(c, settings)` turns it into JupyterHub's configuration.

Access: a user is admitted only when the group claim of the issuer's userinfo (Check-in:
`eduperson_entitlement`) holds one of the allowed groups; anyone else gets the refusal page
saying so. The hub itself answers only HTTPS; the client secret is read from a private file,
never from the environment (where `docker inspect` and the pod's spec would show it).
"""

from __future__ import annotations

import json
import os
import re
import ssl
import stat
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "PRIMAGE_HUB_"
DEFAULT_SCOPES = ("openid", "profile", "email", "eduperson_entitlement")
DISCOVERY_TIMEOUT = 15
# Variables that would put the client secret where the pod's spec and `docker inspect` show it.
SECRET_IN_ENVIRONMENT = ("PRIMAGE_HUB_OIDC_CLIENT_SECRET", "OAUTH_CLIENT_SECRET")
# How the hub authenticates to the token endpoint, as the client was registered (Check-in's
# registration offers both; the first is the default).
TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
# The notebook images' user (the imaging image's fixed ids), and the Secret of a user's Onedata token.
NOTEBOOK_UID = NOTEBOOK_GID = 1000
ONEDATA_SECRET_TEMPLATE = "onedata-token-{user_server}"  # noqa: S105 (a name, not a secret)
NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class SettingsError(Exception):
    """A setting is missing or wrong; the message names the variable and what is expected."""


@dataclass(frozen=True)
class Onedata:
    """Pod mode: each notebook pod mounts the space itself, with its user's own token."""

    provider_host: str
    fuse_resource: str
    options: str
    apparmor_profile: str | None
    token_help_url: str | None


@dataclass(frozen=True)
class Spawner:
    """One notebook pod per user (KubeSpawner), in the hub's namespace."""

    image: str
    command: tuple[str, ...] | None
    namespace: str | None
    home_storage_class: str | None
    home_size: str
    space_host_path: str | None
    space_mount: str
    cpu_limit: float
    memory_limit: str
    # What the scheduler reserves for each pod (Kubernetes takes the limits when no request is set,
    # and a 2-CPU limit then fits no 2-core node beside the hub).
    cpu_guarantee: float
    memory_guarantee: str
    start_timeout: int
    service_account: str | None
    api_url: str
    onedata: Onedata | None = None


@dataclass(frozen=True)
class Settings:
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    public_url: str
    scopes: tuple[str, ...]
    groups_claim: str
    allowed_groups: frozenset[str]
    username_claim: str
    token_auth: str
    ca_file: str | None
    tls_certificate: str
    tls_key: str
    data_dir: str
    port: int
    api_port: int
    proxy_api_port: int
    login_service: str
    group_help_url: str | None
    spawner: Spawner | None

    @property
    def callback_url(self) -> str:
        return f"{self.public_url}/hub/oauth_callback"

    def refusal(self) -> str:
        """The refusal page's message for a signed-in user outside every allowed group."""
        groups = " or ".join(sorted(self.allowed_groups))
        text = (
            f"You signed in with {self.login_service}, but your account is not a member of the group "
            f"this platform admits: the {self.groups_claim} claim must hold {groups}."
        )
        if self.group_help_url:
            text += f" Ask to join the group at {self.group_help_url}, then sign in again."
        else:
            text += " Ask the group's managers to add you, then sign in again."
        return text


def _get(environ, name: str, default: str | None = None) -> str | None:
    value = environ.get(PREFIX + name, "").strip()
    return value or default


def _required(environ, name: str, expected: str) -> str:
    value = _get(environ, name)
    if value is None:
        raise SettingsError(f"{PREFIX}{name} is not set: expected {expected}")
    return value


def _https_url(environ, name: str, expected: str) -> str:
    value = _required(environ, name, expected).rstrip("/")
    if not re.match(r"^https://[^/\s?#]+(/[^\s?#]*)?$", value):
        raise SettingsError(f"{PREFIX}{name}={value!r} is not an https URL: expected {expected}")
    return value


def _private_file(environ, name: str, expected: str) -> str:
    path = Path(_required(environ, name, expected))
    try:
        mode = path.stat().st_mode
        content = path.read_text().strip()
    except OSError as error:
        raise SettingsError(f"{PREFIX}{name}={path}: cannot be read ({error.strerror}): expected {expected}") from None
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        raise SettingsError(
            f"{PREFIX}{name}={path} can be read by any user (mode {stat.S_IMODE(mode):04o}): "
            "mount it with mode 0400 or 0440 (the Secret volume's defaultMode)"
        )
    if not content:
        raise SettingsError(f"{PREFIX}{name}={path} is empty: expected {expected}")
    return content


def _readable_file(path: str, what: str) -> str:
    if not os.access(path, os.R_OK):
        raise SettingsError(f"{what}: {path} cannot be read")
    return path


def _number(environ, name: str, default: str, kind=int, minimum: float = 1):
    raw = _get(environ, name, default)
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{PREFIX}{name}={raw!r} is not a number: expected a {kind.__name__}") from None
    if value < minimum:
        raise SettingsError(f"{PREFIX}{name}={raw!r} is below {minimum}")
    return value


def _choice(environ, name: str, choices: tuple[str, ...]) -> str:
    value = _get(environ, name, choices[0])
    if value not in choices:
        raise SettingsError(f"{PREFIX}{name}={value!r}: expected one of {', '.join(choices)}")
    return value


def _words(value: str) -> list[str]:
    return [word for word in re.split(r"[\s,]+", value) if word]


def load(environ=os.environ) -> Settings:
    for name in SECRET_IN_ENVIRONMENT:
        if environ.get(name):
            raise SettingsError(
                f"{name} is set: the client secret is read only from the file named by "
                f"{PREFIX}OIDC_CLIENT_SECRET_FILE (a Secret volume), never from the environment"
            )
    tls_dir = Path(_required(environ, "TLS_DIR", "the folder of the hub's tls.crt and tls.key (HTTPS only)"))
    certificate, key = tls_dir / "tls.crt", tls_dir / "tls.key"
    for path in (certificate, key):
        _readable_file(str(path), f"{PREFIX}TLS_DIR={tls_dir}: the hub serves HTTPS only and needs {path.name}")
    ca_file = _get(environ, "OIDC_CA_FILE")
    if ca_file:
        _readable_file(ca_file, f"{PREFIX}OIDC_CA_FILE")
    groups = frozenset(_words(_required(environ, "OIDC_ALLOWED_GROUPS", "the group values that admit a user")))
    claim = _get(environ, "OIDC_GROUPS_CLAIM", "eduperson_entitlement")
    scopes = tuple(_words(_get(environ, "OIDC_SCOPES", " ".join(DEFAULT_SCOPES))))
    if "openid" not in scopes:
        raise SettingsError(f"{PREFIX}OIDC_SCOPES={' '.join(scopes)!r} lacks openid: expected OpenID Connect scopes")
    return Settings(
        issuer=_https_url(environ, "OIDC_ISSUER", "the OpenID Connect issuer, e.g. https://aai.egi.eu/auth/realms/egi"),
        client_id=_required(environ, "OIDC_CLIENT_ID", "the client id the site registered at the issuer"),
        client_secret=_private_file(environ, "OIDC_CLIENT_SECRET_FILE", "a file holding the client secret"),
        public_url=_https_url(
            environ, "PUBLIC_URL", "the hub's https URL as browsers reach it, e.g. https://host:30443"
        ),
        scopes=scopes,
        groups_claim=claim,
        allowed_groups=groups,
        username_claim=_get(environ, "OIDC_USERNAME_CLAIM", "sub"),
        token_auth=_choice(environ, "OIDC_TOKEN_AUTH", TOKEN_AUTH_METHODS),
        ca_file=ca_file,
        tls_certificate=str(certificate),
        tls_key=str(key),
        data_dir=_get(environ, "DATA_DIR", "/srv/jupyterhub"),
        port=_number(environ, "PORT", "8443"),
        api_port=_number(environ, "API_PORT", "8081"),
        proxy_api_port=_number(environ, "PROXY_API_PORT", "8001"),
        login_service=_get(environ, "LOGIN_SERVICE", "EGI Check-in"),
        group_help_url=_get(environ, "GROUP_HELP_URL"),
        spawner=_spawner(environ),
    )


def _spawner(environ) -> Spawner | None:
    image = _get(environ, "NOTEBOOK_IMAGE")
    if image is None:
        return None
    namespace = _get(environ, "NAMESPACE")
    if namespace and not NAME_PATTERN.match(namespace):
        raise SettingsError(f"{PREFIX}NAMESPACE={namespace!r} is not a Kubernetes namespace name")
    host_path = _get(environ, "SPACE_HOST_PATH")
    if host_path and not host_path.startswith("/"):
        raise SettingsError(f"{PREFIX}SPACE_HOST_PATH={host_path!r} is not an absolute path")
    space_mount = _get(environ, "SPACE_MOUNT", "/mnt/onedata")
    if not space_mount.startswith("/") or space_mount == "/":
        raise SettingsError(f"{PREFIX}SPACE_MOUNT={space_mount!r} is not an absolute path below /")
    onedata = _onedata(environ)
    if onedata and host_path:
        raise SettingsError(
            f"{PREFIX}ONEDATA_PROVIDER_HOST and {PREFIX}SPACE_HOST_PATH are both set: the notebook pods either "
            "mount the space themselves with their user's token (pod mode) or see the nodes' mount (node mode)"
        )
    return Spawner(
        image=image,
        command=tuple(_get(environ, "NOTEBOOK_COMMAND", "").split()) or None,
        namespace=namespace,
        home_storage_class=_get(environ, "HOME_STORAGE_CLASS"),
        home_size=_get(environ, "HOME_SIZE", "10Gi"),
        space_host_path=host_path,
        space_mount=space_mount,
        cpu_limit=_number(environ, "CPU_LIMIT", "2", float, 0.1),
        memory_limit=_get(environ, "MEMORY_LIMIT", "4G"),
        cpu_guarantee=_number(environ, "CPU_GUARANTEE", "0.5", float, 0.01),
        memory_guarantee=_get(environ, "MEMORY_GUARANTEE", "1G"),
        start_timeout=_number(environ, "START_TIMEOUT", "300"),
        service_account=_get(environ, "NOTEBOOK_SERVICE_ACCOUNT"),
        api_url=_get(environ, "API_URL", "http://primage-hub:8081"),
        onedata=onedata,
    )


APPARMOR_PROFILES = ("Unconfined", "RuntimeDefault")
RESOURCE_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def _onedata(environ) -> Onedata | None:
    host = _get(environ, "ONEDATA_PROVIDER_HOST")
    if host is None:
        return None
    if not re.match(r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?(:[0-9]+)?$", host):
        raise SettingsError(
            f"{PREFIX}ONEDATA_PROVIDER_HOST={host!r} is not a host name: expected the Oneprovider's host, "
            "e.g. plg-cyfronet-01.datahub.egi.eu"
        )
    resource = _get(environ, "ONEDATA_FUSE_RESOURCE", "primage.eu/fuse")
    if not RESOURCE_PATTERN.match(resource):
        raise SettingsError(
            f"{PREFIX}ONEDATA_FUSE_RESOURCE={resource!r} is not an extended resource name: expected the "
            "cluster's FUSE device plugin's resource, e.g. primage.eu/fuse"
        )
    profile = _get(environ, "ONEDATA_APPARMOR_PROFILE")
    if profile is not None and profile not in APPARMOR_PROFILES:
        raise SettingsError(
            f"{PREFIX}ONEDATA_APPARMOR_PROFILE={profile!r}: expected one of {', '.join(APPARMOR_PROFILES)} or unset"
        )
    options = _get(environ, "ONEDATA_OPTIONS", "")
    if re.search(r"(^|\s)(-t|--token|-H|--host)(=|\s|$)", options):
        raise SettingsError(
            f"{PREFIX}ONEDATA_OPTIONS holds the token or the provider option: each user's token comes from "
            f"their spawn form, the provider from {PREFIX}ONEDATA_PROVIDER_HOST"
        )
    help_url = _get(environ, "ONEDATA_TOKEN_HELP_URL")
    if help_url is not None:
        help_url = _https_url(environ, "ONEDATA_TOKEN_HELP_URL", "the Onezone where users create tokens")
    return Onedata(host, resource, options, profile, help_url)


# ---------------------------------------------------------------------------- the issuer


@dataclass(frozen=True)
class Endpoints:
    authorize: str
    token: str
    userinfo: str
    end_session: str | None


def endpoints(settings: Settings) -> Endpoints:
    """The issuer's endpoints from its discovery document (trusting OIDC_CA_FILE when given)."""
    url = f"{settings.issuer}/.well-known/openid-configuration"
    context = ssl.create_default_context(cafile=settings.ca_file)
    try:
        with urllib.request.urlopen(url, timeout=DISCOVERY_TIMEOUT, context=context) as answer:  # noqa: S310 (https only)
            document = json.load(answer)
    except urllib.error.HTTPError as error:
        raise SettingsError(f"the issuer's discovery document {url} answered HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise SettingsError(f"the issuer's discovery document {url} cannot be read: {reason}") from None
    except ValueError:
        raise SettingsError(f"the issuer's discovery document {url} is not JSON") from None
    if not isinstance(document, dict) or document.get("issuer", "").rstrip("/") != settings.issuer:
        found = document.get("issuer") if isinstance(document, dict) else None
        raise SettingsError(f"{url} names issuer {found!r}, not {settings.issuer!r} ({PREFIX}OIDC_ISSUER)")
    required = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint")
    missing = [key for key in required if not document.get(key)]
    if missing:
        raise SettingsError(f"the issuer's discovery document {url} lacks {', '.join(missing)}")
    return Endpoints(
        document["authorization_endpoint"],
        document["token_endpoint"],
        document["userinfo_endpoint"],
        document.get("end_session_endpoint"),
    )


# ---------------------------------------------------------------------------- JupyterHub


def configure(c, settings: Settings, issuer: Endpoints) -> None:
    """Set JupyterHub's configuration object `c` from the settings."""
    data = Path(settings.data_dir)
    c.JupyterHub.bind_url = f"https://:{settings.port}"
    c.JupyterHub.ssl_cert = settings.tls_certificate
    c.JupyterHub.ssl_key = settings.tls_key
    c.JupyterHub.db_url = f"sqlite:///{data / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(data / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(data / "jupyterhub.pid")
    c.ConfigurableHTTPProxy.pid_file = str(data / "jupyterhub-proxy.pid")
    # The hub's API and the proxy's API stay on loopback unless notebook pods must reach the hub.
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.proxy_api_port}"
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{settings.api_port}"
    c.JupyterHub.authenticator_class = "generic-oauth"
    # The hub's own pages only: no server is started before the user asks for it.
    c.JupyterHub.default_url = "/hub/home"

    auth = c.GenericOAuthenticator
    auth.client_id = settings.client_id
    auth.client_secret = settings.client_secret
    auth.basic_auth = settings.token_auth == TOKEN_AUTH_METHODS[0]
    auth.oauth_callback_url = settings.callback_url
    auth.authorize_url = issuer.authorize
    auth.token_url = issuer.token
    auth.userdata_url = issuer.userinfo
    auth.scope = list(settings.scopes)
    auth.username_claim = settings.username_claim
    auth.login_service = settings.login_service
    auth.manage_groups = True
    auth.auth_state_groups_key = _groups_of(settings.groups_claim, settings.allowed_groups)
    auth.allowed_groups = set(settings.allowed_groups)
    auth.custom_403_message = settings.refusal()
    auth.enable_auth_state = False
    if settings.ca_file:
        auth.http_request_kwargs = {"ca_certs": settings.ca_file}
    if issuer.end_session:
        auth.logout_redirect_url = issuer.end_session
    if settings.spawner:
        _configure_spawner(c, settings.spawner, settings.api_port)


def _groups_of(claim: str, allowed: frozenset[str]):
    """Only the allowed groups a user holds become hub groups (Check-in lists many entitlements)."""

    def groups(auth_state: dict) -> list[str]:
        values = (auth_state.get("oauth_user") or {}).get(claim) or []
        if isinstance(values, str):
            values = [values]
        return sorted(value for value in values if isinstance(value, str) and value in allowed)

    return groups


def _configure_spawner(c, spawner: Spawner, api_port: int) -> None:
    # KubeSpawner, with each user's own Onedata token in pod mode (primage_spawner).
    c.JupyterHub.spawner_class = "primage_spawner.PrimageSpawner"
    # Notebook pods reach the hub's API through its Service, inside the cluster (plain HTTP
    # never leaves the cluster: the proxy's public side is the hub's HTTPS port).
    c.JupyterHub.hub_bind_url = f"http://:{api_port}"
    c.JupyterHub.hub_connect_url = spawner.api_url
    k = c.KubeSpawner
    k.image = spawner.image
    k.image_pull_policy = "IfNotPresent"
    if spawner.namespace:
        k.namespace = spawner.namespace
    # The image's own command by default: the jupyter image's start script (and the Jupyter
    # Docker Stacks' images) run jupyterhub-singleuser when the spawner's variables are set.
    k.cmd = list(spawner.command) if spawner.command else None
    k.uid = NOTEBOOK_UID
    k.gid = NOTEBOOK_GID
    k.fs_gid = NOTEBOOK_GID
    k.cpu_limit = spawner.cpu_limit
    k.mem_limit = spawner.memory_limit
    k.cpu_guarantee = spawner.cpu_guarantee
    k.mem_guarantee = spawner.memory_guarantee
    k.start_timeout = spawner.start_timeout
    k.automount_service_account_token = False
    if spawner.service_account:
        k.service_account = spawner.service_account
    k.container_security_context = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
    }
    k.pod_name_template = "notebook-{user_server}"
    volumes = []
    mounts = []
    if spawner.home_storage_class:
        k.storage_pvc_ensure = True
        k.storage_class = spawner.home_storage_class
        k.storage_capacity = spawner.home_size
        k.pvc_name_template = "home-{user_server}"
        volumes.append({"name": "home", "persistentVolumeClaim": {"claimName": "home-{user_server}"}})
    else:
        volumes.append({"name": "home", "emptyDir": {"sizeLimit": spawner.home_size}})
    mounts.append({"name": "home", "mountPath": "/home/primage"})
    if spawner.space_host_path:
        volumes.append({"name": "space", "hostPath": {"path": spawner.space_host_path, "type": "Directory"}})
        mounts.append({"name": "space", "mountPath": spawner.space_mount, "mountPropagation": "HostToContainer"})
    if spawner.onedata:
        _configure_onedata(c, spawner, spawner.onedata)
    k.volumes = volumes
    k.volume_mounts = mounts


def _configure_onedata(c, spawner: Spawner, onedata: Onedata) -> None:
    """Pod mode, as the roles render it for the applications' pods (kubernetes_app): the `-onedata`
    variant starts as root with SYS_ADMIN, SETUID and SETGID only and the FUSE device of the
    cluster's device plugin, mounts the space with oneclient, then drops to the notebook's user;
    never privileged. The token is the user's own, from their Secret (primage_spawner)."""
    p = c.PrimageSpawner
    p.onedata_provider_host = onedata.provider_host
    if onedata.token_help_url:
        p.onedata_token_help = onedata.token_help_url
    k = c.KubeSpawner
    k.uid = 0
    k.gid = 0
    context = {
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN", "SETUID", "SETGID"]},
    }
    if onedata.apparmor_profile:
        context["appArmorProfile"] = {"type": onedata.apparmor_profile}
    k.container_security_context = context
    k.extra_resource_limits = {onedata.fuse_resource: "1"}
    k.extra_resource_guarantees = {onedata.fuse_resource: "1"}
    environment = {
        "ONECLIENT_PROVIDER_HOST": onedata.provider_host,
        # KubeSpawner fills {user_server} in as it does in the Secret's name.
        "ONECLIENT_ACCESS_TOKEN": {
            "valueFrom": {"secretKeyRef": {"name": ONEDATA_SECRET_TEMPLATE, "key": "token"}},
        },
        "ONECLIENT_MOUNT_POINT": spawner.space_mount,
        "PRIMAGE_UID": str(NOTEBOOK_UID),
        "PRIMAGE_GID": str(NOTEBOOK_GID),
    }
    if onedata.options:
        environment["PRIMAGE_ONEDATA_OPTIONS"] = onedata.options
    k.environment = environment
    p.onedata_secret_template = ONEDATA_SECRET_TEMPLATE
