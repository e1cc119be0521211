"""ORY Hydra from the Go module proxy: its pin (data/oidc.yml), where it is cached, how it is built.

Built like the test cluster's Go modules (a generated wrapper module, stamps keyed by what it
was built from) into the user's cache folder, so a second build only checks the stamp.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from .. import paths
from ..cluster import components
from ..errors import PrimageError

PINS_FILE = Path(__file__).resolve().parent.parent / "data" / "oidc.yml"
HYDRA = "hydra"


@cache
def hydra_module() -> components.GoModule:
    modules = {module.name: module for module in components.go_modules(PINS_FILE)}
    if HYDRA not in modules:
        raise PrimageError(f"no go_modules entry '{HYDRA}'", file=PINS_FILE)
    return modules[HYDRA]


def tools_dir() -> Path:
    return paths.cache_dir() / "oidc-tools"


def hydra_binary() -> Path:
    return components.module_bin_dir(hydra_module(), tools_dir()) / HYDRA


def build(force: bool = False) -> components.Outcome:
    """Build Hydra when missing or stale (cold: minutes; warm: a stamp check)."""
    tools_dir().mkdir(parents=True, exist_ok=True)
    return components.build_go_module(hydra_module(), force, tools_dir())


def require_built() -> Path:
    binary = hydra_binary()
    if not binary.is_file():
        raise PrimageError(
            f"ORY Hydra {hydra_module().version} is not built (run `primage oidc build`; scripts/setup.sh does)",
            file=binary,
        )
    return binary
