"""Which checks run on which kind of piece, in order."""

from __future__ import annotations

from . import NOT_RUN, Check, Result, ansible_checks, image_checks, radl_checks, tosca_checks, workload_checks


def _unknown(piece, context) -> Result:
    return Result("checks", NOT_RUN, reason=f"the harness has no checks for kind '{piece.kind}' yet")


CHECKS_BY_KIND: dict[str, list[tuple[str, Check]]] = {
    "tosca-template": tosca_checks.TEMPLATE_CHECKS,
    "tosca-case": tosca_checks.TEMPLATE_CHECKS,
    "tosca-types": tosca_checks.TYPES_CHECKS,
    "radl-template": radl_checks.TEMPLATE_CHECKS,
    "radl-composition": radl_checks.COMPOSITION_CHECKS,
    "role": ansible_checks.ROLE_CHECKS,
    "playbook": ansible_checks.PLAYBOOK_CHECKS,
    "image": image_checks.IMAGE_CHECKS,
    "manifest": image_checks.MANIFEST_CHECKS,
    "base-image": image_checks.BASE_IMAGE_CHECKS,
    "workload-case": workload_checks.CASE_CHECKS,
}


def checks_for(kind: str) -> list[tuple[str, Check]]:
    return CHECKS_BY_KIND.get(kind, [("checks", _unknown)])
