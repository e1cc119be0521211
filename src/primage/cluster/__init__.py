"""A real one-node Kubernetes cluster for tests and trials, built from source and run by the harness.

Not a production cluster: one node, processes of the host, certificates generated per run,
no cluster DNS. Other code uses it through these names:

- `build()`: the pinned binaries and images, cached (components.py);
- `up(images=...)` / `down()`: start and stop, the host restored (lifecycle.py);
- `load_images(tags)`: copy images from the local Docker engine into the cluster;
- `dry_run(manifests)`: server-side dry run of manifests, one Problem per refused object;
- `kubectl(layout, *args)`, `container_access()`, `environment()`, `status()` (workloads.py).
"""

from .components import build, pins
from .config import Layout, Settings
from .lifecycle import down, fuse_resource_name, kubectl, load_images, up
from .workloads import container_access, dry_run, environment, require_up, status

__all__ = [
    "Layout",
    "Settings",
    "build",
    "container_access",
    "down",
    "dry_run",
    "environment",
    "fuse_resource_name",
    "kubectl",
    "load_images",
    "pins",
    "require_up",
    "status",
    "up",
]
