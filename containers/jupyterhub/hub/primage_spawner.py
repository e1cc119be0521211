"""KubeSpawner for the PRIMAGE notebook hub: in Onedata pod mode, each user's own access token.

With `onedata_provider_host` set, every user's notebook pod mounts the space itself (the image's
`-onedata` variant runs oneclient before the notebook) with the token *that user* typed into the
spawn form, never a token shared by the deployment (the seed's R3.5: storage access stays per user).

Where the token goes, and where it never goes:
- the spawn form's password field -> this spawner's memory, taken out of the form's options, so
  JupyterHub never writes it to its database (it saves `user_options` before starting);
- a Secret of the user's server (`onedata-token-<user>`), written just before the pod is created,
  read by the pod as `ONECLIENT_ACCESS_TOKEN` through a secretKeyRef, owned by the pod once it runs
  (so Kubernetes deletes it with the pod even while the hub is down), deleted when the server stops
  or fails to start;
- never the pod's spec, the hub's database, a URL (a token in the spawn URL's query is refused) or
  a log line (errors name the server and the API's status, never the value).
"""

from __future__ import annotations

import asyncio
import html

from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from sqlalchemy.orm import object_session
from traitlets import Unicode, default

TOKEN_FIELD = "onedata_token"  # noqa: S105 (the form field's name, "token" in it keeps it out of JupyterHub's logs)
TOKEN_KEY = "token"  # noqa: S105 (the Secret's key the pod reads)
MAX_TOKEN_LENGTH = 16384  # Onedata tokens with many caveats are long; anything longer is not one


class OnedataTokenError(ValueError):
    """What the user gave or did cannot start a notebook with their own token; says why, never the value."""


def check_token(value: str) -> str:
    """The token from the form, trimmed; refused (without showing it) when it cannot be a Onedata token."""
    token = value.strip()
    if not token:
        raise OnedataTokenError(
            "Give your Onedata access token: your notebook mounts the project's space with your own token"
        )
    if len(token) > MAX_TOKEN_LENGTH:
        raise OnedataTokenError(f"The Onedata access token is longer than {MAX_TOKEN_LENGTH} characters: not a token")
    if any(ch.isspace() or not ch.isprintable() or not ch.isascii() for ch in token):
        raise OnedataTokenError(
            "The Onedata access token holds a space or a character that no Onedata token has: copy it again "
            "from Onezone (the token itself is not shown here)"
        )
    return token


class PrimageSpawner(KubeSpawner):
    """KubeSpawner with the user's own Onedata token for pod mode (see the module's description)."""

    onedata_provider_host = Unicode(
        "",
        config=True,
        help="Oneprovider the notebook pods mount the space from; empty: no Onedata pod mode",
    )
    onedata_secret_template = Unicode(
        "onedata-token-{user_server}",
        config=True,
        help="Name of the Secret holding a user's token while their server runs (KubeSpawner's fields)",
    )
    onedata_token_help = Unicode(
        "",
        config=True,
        help="Where users create a token (their Onezone's address), shown on the spawn form",
    )

    _onedata_token: str | None = None

    @property
    def onedata_secret_name(self) -> str:
        return self._expand_user_properties(self.onedata_secret_template)

    # ------------------------------------------------------------------ the form

    @default("options_form")
    def _options_form_default(self):
        if not self.onedata_provider_host:
            return super()._options_form_default()
        return self._onedata_form

    def _onedata_form(self, spawner) -> str:
        where = ""
        if self.onedata_token_help:
            link = html.escape(self.onedata_token_help, quote=True)
            where = f' Create one in <a href="{link}" target="_blank" rel="noopener">Onezone</a> (Tokens, Access).'
        provider = html.escape(self.onedata_provider_host)
        return (
            '<div class="form-group">'
            f'<label for="onedata-token">Your Onedata access token</label>'
            f'<input type="password" class="form-control" id="onedata-token" name="{TOKEN_FIELD}" '
            'autocomplete="off" spellcheck="false" required>'
            '<p class="help-block">Your notebook mounts the project\'s space from '
            f"{provider} with your own token, limited to the space (a data.path caveat) and to oneclient."
            f"{where} It is kept in a Secret of your server while it runs and deleted when it stops; "
            "it is never saved by the hub.</p></div>"
        )

    @default("options_from_form")
    def _options_from_form_default(self):
        if not self.onedata_provider_host:
            return super()._options_from_form_default()
        return self._onedata_options_from_form

    def _onedata_options_from_form(self, formdata: dict) -> dict:
        values = formdata.get(TOKEN_FIELD) or [""]
        self._onedata_token = check_token(values[0])
        # Nothing of the form goes into user_options: JupyterHub saves those in its database.
        return {}

    def options_from_query(self, query_data: dict) -> dict:
        if self.onedata_provider_host and TOKEN_FIELD in query_data:
            raise OnedataTokenError(
                "A Onedata token in the address is refused (browsers keep addresses in their history): "
                "type it into the form of the hub's Start page"
            )
        return super().options_from_query(query_data)

    # ------------------------------------------------------------------ start and stop

    async def start(self):
        if not self.onedata_provider_host:
            return await super().start()
        token = self._take_token()
        await self._write_token_secret(token)
        try:
            started = await super().start()
        except (Exception, asyncio.CancelledError):
            await self._delete_token_secret()  # no server, no token left behind
            raise
        await self._tie_token_secret_to_pod()
        return started

    async def stop(self, now=False):
        await super().stop(now=now)
        if self.onedata_provider_host:
            await self._delete_token_secret()

    def _take_token(self) -> str:
        token, self._onedata_token = self._onedata_token, None
        if TOKEN_FIELD in (self.user_options or {}):
            # Sent as JSON to the REST API: JupyterHub has already saved it with the options. Take it
            # out of the database again and refuse, so that no token is kept there.
            self.user_options = {k: v for k, v in self.user_options.items() if k != TOKEN_FIELD}
            orm = getattr(self, "orm_spawner", None)
            session = object_session(orm) if orm is not None else None
            if session is not None:
                orm.user_options = dict(self.user_options)
                session.commit()
            raise OnedataTokenError(
                f"A Onedata token in the server's options is refused (the hub would save it): start "
                f"{self._log_name} from the hub's Start page, whose form asks for the token"
            )
        if not token:
            raise OnedataTokenError(
                f"{self._log_name} mounts the space with its user's own Onedata token, and none was given: "
                "start it from the hub's Start page, whose form asks for it"
            )
        return token

    def _secret(self, token: str) -> dict:
        labels = self._build_common_labels(self._expand_all(self.extra_labels))
        labels["app.kubernetes.io/component"] = "onedata-token"
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": self.onedata_secret_name, "namespace": self.namespace, "labels": labels},
            "type": "Opaque",
            "stringData": {TOKEN_KEY: token},
        }

    def _secret_failure(self, doing: str, error: ApiException, advice: str) -> str:
        """What the API refused with the user's Secret: its name and the API's status only (the API's
        answer may quote what it was sent, the token)."""
        return (
            f"the Secret {self.namespace}/{self.onedata_secret_name} of {self._log_name}'s Onedata token could not "
            f"be {doing} (Kubernetes API: HTTP {error.status} {error.reason}): {advice}"
        )

    async def _write_token_secret(self, token: str) -> None:
        body = self._secret(token)
        name = self.onedata_secret_name
        try:
            try:
                await self.api.create_namespaced_secret(namespace=self.namespace, body=body)
            except ApiException as error:
                if error.status != 409:
                    raise
                await self.api.replace_namespaced_secret(name=name, namespace=self.namespace, body=body)
        except ApiException as error:
            advice = "the hub's Role needs create and update on secrets in its namespace"
            raise RuntimeError(self._secret_failure("written", error, advice)) from None
        self.log.info("Onedata token of %s kept in Secret %s/%s", self._log_name, self.namespace, name)

    async def _tie_token_secret_to_pod(self) -> None:
        """The pod becomes the Secret's owner: Kubernetes' garbage collector deletes the Secret with the
        pod, also when the pod goes while the hub is down and cannot stop the server itself."""
        name = self.onedata_secret_name
        try:
            pod = await self.api.read_namespaced_pod(name=self.pod_name, namespace=self.namespace)
            owner = {"apiVersion": "v1", "kind": "Pod", "name": pod.metadata.name, "uid": pod.metadata.uid}
            await self.api.patch_namespaced_secret(
                name=name, namespace=self.namespace, body={"metadata": {"ownerReferences": [owner]}}
            )
        except ApiException as error:
            # The server runs and its stop deletes the Secret; only the hub-down case is not covered.
            advice = (
                "it is deleted when the server stops, not if the pod goes while the hub is down; the hub's Role "
                "needs get on pods and patch on secrets"
            )
            self.log.warning("%s", self._secret_failure("given its pod as owner", error, advice))
            return
        self.log.info("Secret %s/%s goes with pod %s", self.namespace, name, self.pod_name)

    async def _delete_token_secret(self) -> None:
        name = self.onedata_secret_name
        try:
            await self.api.delete_namespaced_secret(name=name, namespace=self.namespace)
        except ApiException as error:
            if error.status != 404:
                self.log.error("%s", self._secret_failure("deleted", error, "delete it by hand"))
                return
        self.log.info("Onedata token of %s deleted (Secret %s/%s)", self._log_name, self.namespace, name)
