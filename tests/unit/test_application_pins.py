"""The application images' pins: exact, hashed, one version per package, defaults naming real versions."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS = ROOT / "containers"
REQUIREMENT = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+?)\s*(\\)?$")
REQUIREMENTS = sorted(CONTAINERS.glob("*/requirements*.txt"))
INPUTS = sorted(CONTAINERS.glob("*/requirements*.in"))
IMAGE_SPECS = sorted(CONTAINERS.glob("*/image.yml"))


def pinned(path: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of a compiled requirements file."""
    found: dict[str, tuple[str, int]] = {}
    current = None
    for line in path.read_text().splitlines():
        match = REQUIREMENT.match(line)
        if match:
            name = match.group(1).lower().replace("_", "-")
            assert name not in found, f"{path.name}: {name} pinned twice"
            current = name
            found[name] = (match.group(2), 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            version, hashes = found[current]
            found[current] = (version, hashes + 1)
        elif line.strip() and not line.lstrip().startswith("#"):
            pytest.fail(f"{path.relative_to(ROOT)}: unexpected line {line!r}")
    return found


def test_the_application_images_have_compiled_requirements():
    assert {p.parent.name for p in REQUIREMENTS} >= {"imaging", "segmentation", "jupyter"}


@pytest.mark.parametrize("path", REQUIREMENTS, ids=[str(p.relative_to(CONTAINERS)) for p in REQUIREMENTS])
def test_every_requirement_is_an_exact_version_with_its_hashes(path):
    pins = pinned(path)
    assert pins, f"{path.name} pins nothing"
    for name, (version, hashes) in pins.items():
        assert re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version), f"{name}=={version} is not an exact version"
        assert hashes >= 1, f"{name} has no --hash: pip's --require-hashes would refuse the file"


@pytest.mark.parametrize("path", INPUTS, ids=[str(p.relative_to(CONTAINERS)) for p in INPUTS])
def test_the_top_level_requirements_are_exact(path):
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-c "):
            continue
        assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.+!-]*", line), f"{path.name}: {line!r} is not pinned"


def test_a_package_has_one_version_across_the_images():
    versions: dict[str, dict[str, str]] = defaultdict(dict)
    for path in REQUIREMENTS:
        for name, (version, _) in pinned(path).items():
            versions[name][str(path.relative_to(CONTAINERS))] = version
    split = {name: files for name, files in versions.items() if len(set(files.values())) > 1}
    assert not split, f"one package, several versions: {split}"


def test_derived_images_default_to_the_version_of_the_image_they_build_on():
    specs = {p.parent.name: yaml.safe_load(p.read_text()) for p in IMAGE_SPECS}
    checked = 0
    for directory, spec in specs.items():
        dockerfile = (CONTAINERS / directory / "Dockerfile").read_text()
        for required in spec.get("requires") or []:
            variable = required.upper().replace("-", "_") + "_IMAGE"
            expected = f"ARG {variable}={specs[required]['name']}:{specs[required]['version']}"
            assert expected in dockerfile, f"{directory}/Dockerfile lacks `{expected}`"
            assert f"FROM ${{{variable}}}" in dockerfile
            checked += 1
    assert checked >= 2


def test_the_segmentation_image_version_is_its_applications():
    spec = yaml.safe_load((CONTAINERS / "segmentation" / "image.yml").read_text())
    source = (CONTAINERS / "segmentation" / "src" / "primage_segmentation" / "__init__.py").read_text()
    assert re.search(r'^__version__ = "([^"]+)"', source, re.M).group(1) == spec["version"]


def test_the_hub_and_the_notebooks_it_spawns_pin_one_jupyterhub():
    """jupyterhub-singleuser in the notebook image speaks the hub's API: the same release in both."""
    hub = pinned(CONTAINERS / "jupyterhub" / "requirements.txt")["jupyterhub"][0]
    notebook = pinned(CONTAINERS / "jupyter" / "requirements.txt")["jupyterhub"][0]
    assert hub == notebook
