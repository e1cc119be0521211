"""Scenarios that run on the real test cluster: what they declare, and the cluster they get.

A Molecule scenario needs the test cluster (`primage cluster`) when a `cluster.yml` lies beside
its molecule.yml:

    images: [segmentation]      # folders of containers/ to build at this revision and load
    platforms: [debian:trixie]  # the platforms it runs on (default: every platform)

`primage test roles` then brings the cluster up before such runs (or uses the one this checkout
has up already), builds and loads the images, hands each run the variables below, and brings
the cluster down at the end if it started it. A run that needs the cluster and cannot have it
fails with the reason; it never passes without the cluster.

Variables of such a run (besides PRIMAGE_CLUSTER_KUBECONFIG and PRIMAGE_CLUSTER_SERVER):
PRIMAGE_CLUSTER_NODE_IP (NodePorts answer there), PRIMAGE_CLUSTER_KUBECTL (the pinned kubectl),
PRIMAGE_IMAGE_<DIR> (the loaded image of containers/<dir>), PRIMAGE_CLUSTER_SPACE (a fresh
folder of this host for the run, which the cluster's pods see through hostPath at the same path).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import cluster, engine, paths, yamlio
from .errors import PrimageError

CLUSTER_FILE = "cluster.yml"
_KEYS = {"images", "platforms"}


@dataclass(frozen=True)
class Needs:
    """What a scenario's cluster.yml asks for."""

    file: Path
    images: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()

    def runs_on(self, platform: str) -> bool:
        return not self.platforms or platform in self.platforms


def needs(scenario: Path) -> Needs | None:
    """The scenario's cluster.yml, checked; None when the scenario needs no cluster."""
    path = scenario / CLUSTER_FILE
    if not path.is_file():
        return None
    data, lines = yamlio.load_file(path)
    display = paths.relative(path)
    data = data or {}
    if not isinstance(data, dict):
        raise PrimageError("expected a mapping with 'images' and 'platforms'", file=display)
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        key = unknown[0]
        raise PrimageError(f"unknown key '{key}' (expected images, platforms)", file=display, line=lines.line_of(key))
    values = {}
    for key in sorted(_KEYS):
        value = data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise PrimageError(f"'{key}' must be a list of names", file=display, line=lines.line_of(key), field=key)
        values[key] = tuple(value)
    known = _buildable_images()
    for image in values["images"]:
        if image not in known:
            raise PrimageError(
                f"no image folder containers/{image} (images: {', '.join(sorted(known))})",
                file=display,
                line=lines.line_of("images"),
                field="images",
            )
    return Needs(path, values["images"], values["platforms"])


def _buildable_images() -> set[str]:
    """The image folders a scenario can ask for: every image of containers/ but the variant
    layers, which are built only on top of the images that list them."""
    from .images import spec

    known = set()
    for folder in paths.containers_dir().iterdir():
        if (folder / spec.IMAGE_FILE).is_file():
            image, _problems = spec.load(folder)
            if image is not None and not image.is_layer:
                known.add(folder.name)
    return known


def space_folder(role: str, slug: str) -> Path:
    """The host folder a run's pods and its instance share (hostPath and bind mount, one path)."""
    return paths.state_dir() / "molecule-spaces" / f"{role}-{slug}"


@dataclass
class Session:
    """The cluster of one `primage test roles`: up for the runs that need it, down if it started it."""

    needed: list[Needs]
    keep: bool = False  # --keep: the instances stay, and so does the cluster they talk to
    started: bool = False
    images: dict[str, str] = field(default_factory=dict)  # image folder -> loaded reference
    error: str = ""

    def open(self) -> None:
        if not self.needed:
            return
        try:
            self._up()
            self.images = _load(sorted({image for needs in self.needed for image in needs.images}))
        except PrimageError as exc:
            self.error = str(exc)
            self.close()

    def _up(self) -> None:
        if cluster.environment():
            engine.progress("the scenarios run on this checkout's test cluster, which is up already")
            return
        engine.progress("bringing the test cluster up for the scenarios that need it")
        cluster.up()
        self.started = True

    def close(self) -> None:
        if self.started and self.keep:
            engine.progress("the test cluster stays up with the kept instances (`primage cluster down` when done)")
            self.started = False
        if self.started:
            engine.progress("bringing down the test cluster the scenarios used")
            self.started = False
            cluster.down()

    def environment(self, needs: Needs, role: str, slug: str) -> dict[str, str]:
        """The run's variables; its space folder is made afresh (an earlier run's results would hide a failure)."""
        from .images import testing

        env = cluster.environment()
        if not env:
            raise PrimageError("the test cluster went down before the run started")
        layout = cluster.Layout()
        env["PRIMAGE_CLUSTER_NODE_IP"] = cluster.Settings().node_ip
        env["PRIMAGE_CLUSTER_KUBECTL"] = str(cluster.components.binaries()["kubectl"])
        for image in needs.images:
            env[testing.image_variable(image)] = self.images[image]
        space = space_folder(role, slug)
        release_space(space, remove=True)
        space.mkdir(parents=True, mode=0o755)
        _share(space)
        env["PRIMAGE_CLUSTER_SPACE"] = str(space)
        if not os.access(layout.admin_kubeconfig, os.R_OK):
            raise PrimageError(f"cannot read the cluster's admin kubeconfig {layout.admin_kubeconfig}: run as root")
        return env


def _share(space: Path) -> None:
    """Make the folder a mount of its own with shared propagation.

    The pods see the space with mountPropagation HostToContainer (a remount of oneclient on the
    node reaches running pods), which the runtime refuses on a private mount ("is not a shared
    or slave mount"); a node's / is shared under systemd, this host's is private (no systemd)."""
    for command in (["mount", "--bind", str(space), str(space)], ["mount", "--make-rshared", str(space)]):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            cluster.host.unmount_under(space)
            raise PrimageError(f"cannot make {space} a shared mount: {result.stderr.strip()}")


def release_space(space: Path, remove: bool) -> None:
    """Unmount the run's space folder; remove it too (the pods wrote there as their user; root removes it)."""
    cluster.host.unmount_under(space)
    if remove:
        shutil.rmtree(space, ignore_errors=True)


def _load(directories: list[str]) -> dict[str, str]:
    """Build the images at this revision (warm: the engine's layer cache) and load them into the cluster."""
    if not directories:
        return {}
    from .images import build, revision, spec

    planned = revision.plan(spec.build_order(spec.load_set(), directories, with_variants=False))
    engine.progress(f"building {', '.join(item.reference for item in planned)} for the scenarios")
    results = build.build_all(planned)
    broken = [
        f"{r.planned.image.directory} ({r.status}: {r.reason or r.problem})" for r in results if r.status != build.BUILT
    ]
    if broken:
        raise PrimageError(f"the scenarios' images did not build: {', '.join(broken)}")
    wanted = {item.image.directory: item.reference for item in planned if item.image.directory in directories}
    cluster.load_images(list(wanted.values()))
    return wanted
