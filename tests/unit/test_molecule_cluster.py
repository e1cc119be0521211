"""Scenarios that declare they need the test cluster (cluster.yml): what they ask for is checked,
they run on their declared platforms only, and one that cannot have the cluster fails saying why."""

from __future__ import annotations

import subprocess

import pytest

from conftest import ROOT
from primage import molecule, molecule_cluster, paths, roles
from primage.errors import PrimageError

ON_CLUSTER = ["htc_batch", "jupyter", "kubernetes_app"]


def test_the_application_scenarios_run_on_the_cluster_with_their_images():
    needs = {name: molecule_cluster.needs(roles.find(name).scenarios()[0]) for name in ON_CLUSTER}
    assert needs["htc_batch"].images == ("segmentation",)
    assert needs["jupyter"].images == ("jupyter",)
    assert needs["kubernetes_app"].images == ()
    assert {n.platforms for n in needs.values()} == {("debian:trixie",)}
    others = [r.name for r in roles.discover() if r.name not in ON_CLUSTER and r.scenarios()]
    assert others
    assert all(molecule_cluster.needs(roles.find(name).scenarios()[0]) is None for name in others)


def test_other_platforms_are_not_run_with_the_reason():
    runs = {
        (r.role, r.platform): r for r in molecule.plan([*ON_CLUSTER, "oneclient"], ["debian:bookworm", "debian:trixie"])
    }
    assert runs[("htc_batch", "debian:bookworm")].reason == (
        "runs on the test cluster on debian:trixie only (ansible/roles/htc_batch/molecule/default/cluster.yml)"
    )
    assert runs[("htc_batch", "debian:trixie")].reason == ""
    assert runs[("htc_batch", "debian:trixie")].cluster is not None
    assert runs[("oneclient", "debian:bookworm")].reason == ""
    assert runs[("oneclient", "debian:bookworm")].cluster is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "images: [segmentaton]\n",
            "no image folder containers/segmentaton (images: imaging, jupyter, jupyterhub, segmentation)",
        ),
        ("image: [segmentation]\n", "unknown key 'image' (expected images, platforms)"),
        ("platforms: debian:trixie\n", "'platforms' must be a list of names"),
        ("- images\n", "expected a mapping with 'images' and 'platforms'"),
    ],
)
def test_a_bad_cluster_file_names_the_field(tmp_path, text, message):
    (tmp_path / "cluster.yml").write_text("---\n" + text)
    with pytest.raises(PrimageError) as error:
        molecule_cluster.needs(tmp_path)
    assert error.value.problem.message == message
    assert error.value.problem.file.endswith("cluster.yml")


def test_a_scenario_that_cannot_have_the_cluster_fails_with_the_reason(primage, tmp_path, monkeypatch):
    """No binaries built (an empty cache): the run fails before any stage, saying why and what to do."""
    monkeypatch.setenv("PRIMAGE_CACHE", str(tmp_path / "cache"))
    run = primage("test", "roles", "kubernetes_app", "--platform", "debian:trixie")
    assert run.code == 1
    assert "kubernetes_app on debian:trixie: FAIL: needs the test cluster " in run.out
    assert "(ansible/roles/kubernetes_app/molecule/default/cluster.yml), which cannot run: " in run.out
    assert "run `primage cluster build`" in run.out
    assert "1 runs, 1 failed: kubernetes_app on debian:trixie" in run.out
    assert not (paths.state_dir() / "molecule-logs" / "kubernetes_app-debian-trixie-create.log").exists()


def test_every_cluster_file_lives_beside_a_molecule_file():
    for path in (ROOT / "ansible" / "roles").glob("*/molecule/*/cluster.yml"):
        assert (path.parent / "molecule.yml").is_file(), path


def test_a_space_folder_is_a_shared_mount_until_released(tmp_path):
    """HostToContainer hostPath volumes need a shared (or slave) source; this host's / is private."""
    space = tmp_path / "space"
    space.mkdir()
    molecule_cluster._share(space)
    try:
        propagation = subprocess.run(
            ["findmnt", "-n", "-o", "PROPAGATION", "--mountpoint", str(space)], capture_output=True, text=True
        ).stdout.split()
        assert propagation == ["shared"]
    finally:
        molecule_cluster.release_space(space, remove=False)
    assert subprocess.run(["findmnt", "--mountpoint", str(space)], capture_output=True).returncode != 0
    assert space.is_dir()
    molecule_cluster.release_space(space, remove=True)
    assert not space.exists()


@pytest.mark.parametrize(
    ("state", "left"),
    [
        (None, False),
        ("# Molecule managed\n\n---\ncreated: true\nprepared: true\n", True),
        ("---\ncreated: false\nprepared: false\n", False),
        ("created: [\n", True),  # unreadable: destroy, which is safe
    ],
    ids=["no-state", "interrupted", "destroyed", "unreadable"],
)
def test_an_interrupted_runs_instance_is_destroyed_before_create(tmp_path, state, left):
    """Else Molecule skips create and prepare ("already created") and converge meets a dead container."""
    if state is not None:
        (tmp_path / "state.yml").write_text(state)
    assert molecule.left_created(tmp_path) is left
