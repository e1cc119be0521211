"""Start the PRIMAGE notebook hub: check every setting and the issuer first, then run JupyterHub.

A wrong or missing setting ends the container at once with one line naming it and exit 64
(the HTC tasks' "bad input"), an unreachable issuer with exit 69, instead of a traceback in
JupyterHub's log. Nothing secret is printed.
"""

import os
import sys

sys.path.insert(0, "/opt/primage/jupyterhub")

import primage_hub

CONFIG = "/etc/jupyterhub/jupyterhub_config.py"


def main() -> int:
    try:
        settings = primage_hub.load()
    except primage_hub.SettingsError as error:
        print(f"primage-hub: {error}", file=sys.stderr)
        return 64
    try:
        primage_hub.endpoints(settings)
    except primage_hub.SettingsError as error:
        print(f"primage-hub: {error}", file=sys.stderr)
        return 69
    os.makedirs(settings.data_dir, mode=0o700, exist_ok=True)
    os.chdir(settings.data_dir)
    print(
        f"primage-hub: {settings.public_url} (HTTPS), sign-in through {settings.issuer} "
        f"admitting {settings.groups_claim} in {', '.join(sorted(settings.allowed_groups))}",
        flush=True,
    )
    os.execvp("jupyterhub", ["jupyterhub", "-f", CONFIG])  # noqa: S606 (no shell: fixed arguments)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
