"""The EC3 compositions of radl/ci: composed by the real ec3, created on a real IM (Dummy
cloud) with the real IM client and with `ec3 launch` itself, then destroyed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from primage import pieces, radl, yamlio
from primage.checks import radl_checks

pytestmark = pytest.mark.integration

COMPOSITIONS = [p for p in pieces.discover() if p.kind == "radl-composition"]
EC3 = str(Path(sys.executable).parent / "ec3")


def composition_of(piece):
    data, _ = yamlio.load_file(piece.path)
    templates = radl.expand(data["templates"])
    features = radl_checks._merge(
        data.get("features") or {},
        radl.throwaway_secrets(radl.missing_features(templates, data.get("features") or {})),
    )
    return data["templates"], features


def test_there_is_a_composition_per_application():
    names = {p.name.split("-")[0] for p in COMPOSITIONS}
    assert {"kubernetes", "htc_batch", "jupyter"} <= names


@pytest.mark.parametrize("piece", COMPOSITIONS, ids=lambda p: p.name)
def test_composed_radl_deploys_on_a_real_im(piece, im_client, tmp_path):
    names, features = composition_of(piece)
    composition = radl.compose(names, features, piece.display_path)
    assert not composition.problems, composition.problems
    document = tmp_path / "composed.radl"
    document.write_text(composition.radl)
    document.chmod(0o600)
    infrastructure = im_client.create(document)
    try:
        # EC3 deploys the front end only; workers are powered on on demand, up to ec3_max_instances.
        states = im_client.wait_running(infrastructure, 1)
        assert len(states) == 1
        stored = im_client.run("getradl", infrastructure)
        assert "role: primage.platform.kubernetes" in stored
        assert re.search(r"system wn \(.*?ec3_max_instances = 4", stored, re.S)
        for template in names:
            if template in ("oneclient", "htc_batch", "jupyter"):
                assert f"role: primage.platform.{template}" in stored
    finally:
        im_client.destroy(infrastructure)
    assert infrastructure not in im_client.infrastructures()


def test_ec3_launches_and_destroys_a_cluster_on_the_local_im(im_client, local_im, tmp_path):
    piece = next(p for p in COMPOSITIONS if p.name.startswith("htc_batch"))
    names, features = composition_of(piece)
    templates = tmp_path / "templates"
    templates.mkdir()
    for folder in radl.template_dirs():
        for template in folder.glob("*.radl"):
            shutil.copy(template, templates)
    private = templates / "my_htc.radl"
    private.write_text(radl.private_template(features))
    private.chmod(0o600)
    env = dict(os.environ, HOME=str(tmp_path))

    def ec3(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [EC3, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
        )

    launched = ec3("launch", "primage-it", *names, "my_htc", "-a", str(im_client.auth), "-u", local_im.url, "-y")
    output = launched.stdout + launched.stderr
    match = re.search(r"Infrastructure successfully created with ID: (\S+)", output)
    assert match, output
    infrastructure = match.group(1)
    # Dummy VMs cannot be contextualized: ec3 reports it, and the cluster is still IM's to destroy.
    assert infrastructure in im_client.infrastructures()
    shown = ec3("show", "primage-it", "-r")
    assert re.search(r"ec3_templates = '[^']*htc_batch", shown.stdout), shown.stdout + shown.stderr
    assert "role: primage.platform.htc_batch" in im_client.run("getradl", infrastructure)
    destroyed = ec3("destroy", "primage-it", "-y", "--force", "-u", local_im.url)
    assert "Success deleting the cluster" in destroyed.stdout, destroyed.stdout + destroyed.stderr
    assert infrastructure not in im_client.infrastructures()
