# The notebook server's settings (read from /etc/jupyter): authentication always on (the token
# read from a file and never printed, or the notebook hub's sign-in when the hub spawned the
# server), HTTPS when PRIMAGE_JUPYTER_TLS_DIR holds a certificate, no call home.
import os
import sys
from pathlib import Path

sys.path.insert(0, "/opt/primage/jupyter")
import start  # (the one resolution of the token, shared with the start script)

c = get_config()  # noqa: F821  (provided by traitlets when it loads this file)

if start.spawned_by_hub(dict(os.environ)):
    pass  # jupyterhub-singleuser: the hub's OAuth identity provider guards the server
else:
    if os.environ.get(start.RESOLVED):
        token_file = Path(os.environ[start.RESOLVED])
    else:  # `jupyter lab` started by hand in the image: the same rules as the start script
        token_file, _source = start.resolve_token_file(dict(os.environ), Path.home())
    os.environ.pop("JUPYTER_TOKEN", None)  # kernels inherit the server's environment
    c.IdentityProvider.token = start.check_token(token_file.read_text(encoding="utf-8"), str(token_file))
    c.PasswordIdentityProvider.hashed_password = ""
    c.PasswordIdentityProvider.allow_password_change = False

tls = start.tls_files(dict(os.environ))
if tls:
    c.ServerApp.certfile, c.ServerApp.keyfile = (str(path) for path in tls)

c.ServerApp.ip = "0.0.0.0"  # noqa: S104  (in a container; the token guards it)
c.ServerApp.port = int(os.environ.get("PRIMAGE_JUPYTER_PORT", "8888"))
c.ServerApp.allow_remote_access = True  # behind a Kubernetes Service or a published port
c.ServerApp.open_browser = False
c.ServerApp.root_dir = str(Path.home())
# No update checks or news fetched from the internet.
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
c.LabApp.news_url = None
c.LabApp.extension_manager = "readonly"  # the virtualenv belongs to root: nothing to install from the UI
