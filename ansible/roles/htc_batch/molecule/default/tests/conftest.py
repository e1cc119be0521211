"""Verifier fixtures: the contract server's stored objects and request log (tests/support/kube_contract)."""

import os
import sys

sys.path.insert(0, os.path.join(os.environ["PRIMAGE_ROOT"], "tests", "support"))

from kube_contract.verify import contract_objects, contract_requests  # noqa: F401

NAMESPACE = "htc-batch"
