# JupyterHub's configuration in the PRIMAGE notebook hub: every value comes from the
# PRIMAGE_HUB_* environment and the mounted Secret files, read and checked by primage_hub.
import sys

sys.path.insert(0, "/opt/primage/jupyterhub")

import primage_hub

settings = primage_hub.load()
primage_hub.configure(c, settings, primage_hub.endpoints(settings))  # noqa: F821 (JupyterHub's config object)
