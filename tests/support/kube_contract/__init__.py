"""kube_contract: a stdlib-only stand-in for the Kubernetes API server, for tests without a cluster.

It speaks the subset of the Kubernetes REST API that the official Python client's dynamic
client (and so the kubernetes.core Ansible collection) uses: discovery, and get / list /
create / replace / patch (JSON merge, strategic merge approximated, server-side apply) /
delete for Namespaces, Secrets, ConfigMaps, Services, Jobs (batch/v1) and StatefulSets
(apps/v1), with the Status errors, metadata and defaulting of the real server. It records
every request to a JSON Lines log and can dump the stored objects, so tests can check both
what a client sent and what a cluster would hold.

Run it with plain python3 (3.11+, no third-party packages):

    python3 -m kube_contract serve --port 6443 --request-log requests.jsonl --state-file objects.json

See README.md for the contract and its known simplifications.
"""

from .server import ContractServer

__all__ = ["ContractServer"]
