"""Which checks run on which kind of piece, in order."""

from __future__ import annotations

from . import Check, NOT_RUN, Result
from . import radl_checks, tosca_checks


def _unknown(piece, context) -> Result:
    return Result("checks", NOT_RUN, reason=f"the harness has no checks for kind '{piece.kind}' yet")


CHECKS_BY_KIND: dict[str, list[tuple[str, Check]]] = {
    "tosca-template": tosca_checks.TEMPLATE_CHECKS,
    "tosca-case": tosca_checks.TEMPLATE_CHECKS,
    "tosca-types": tosca_checks.TYPES_CHECKS,
    "radl-template": radl_checks.TEMPLATE_CHECKS,
    "radl-composition": radl_checks.COMPOSITION_CHECKS,
}


def checks_for(kind: str) -> list[tuple[str, Check]]:
    return CHECKS_BY_KIND.get(kind, [("checks", _unknown)])
