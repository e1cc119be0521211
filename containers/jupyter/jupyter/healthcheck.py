"""Health check of the notebook server: its /api answers with a version (no token needed there).

Over HTTPS when PRIMAGE_JUPYTER_TLS_DIR is set, as the server then speaks only that. The check
asks its own loopback address, which the site's certificate need not name: it proves the server
answers, not who it is, so it does not verify the certificate.
"""

import json
import os
import ssl
import sys
import urllib.request

PORT = os.environ.get("PRIMAGE_JUPYTER_PORT", "8888")


def main() -> int:
    context = None
    scheme = "http"
    if os.environ.get("PRIMAGE_JUPYTER_TLS_DIR", "").strip():
        scheme = "https"
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # its own loopback address: liveness, not identity
    try:
        with urllib.request.urlopen(f"{scheme}://127.0.0.1:{PORT}/api", timeout=5, context=context) as response:  # noqa: S310
            version = json.load(response).get("version")
    except (OSError, ValueError) as error:
        print(f"unhealthy: {error}", file=sys.stderr)
        return 1
    if not version:
        print("unhealthy: /api answered without a version", file=sys.stderr)
        return 1
    print(f"healthy: jupyter_server {version} over {scheme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
