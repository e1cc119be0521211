"""The foreign-style corpus (tests/fixtures/foreign/) on a real IM server with the Dummy
cloud: the server gives the verdict the unit tests' oracles give, and what primage accepts
deploys. Every TOSCA template is created as a user's IM would read it (refused ones must
be refused by the server); those primage accepts are also rendered by primage and created;
every RADL composition ec3 accepts is created from what ec3 composed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from support.foreign_corpus import FOREIGN, RADL, TOSCA, as_im_reads_it, declared, ec3_composes, header, map_url_options

pytestmark = pytest.mark.integration


def _private_copy(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def _created_and_destroyed(im_client, document: Path) -> None:
    infrastructure = im_client.create(document)
    try:
        states = im_client.wait_running(infrastructure, 1)
        assert states, states
    finally:
        im_client.destroy(infrastructure)
    # Seen once on a loaded machine: IM's list still showed the infrastructure just after its
    # synchronous destroy answered (a thread of IM's own saving it late is the likely cause; not
    # proved). A moment more is allowed, never long.
    deadline = time.monotonic() + 15
    while infrastructure in im_client.infrastructures():
        assert time.monotonic() < deadline, f"IM still lists {infrastructure} 15 s after destroying it"
        time.sleep(0.5)


@pytest.mark.parametrize("template", TOSCA, ids=lambda path: path.stem)
def test_the_im_server_agrees_with_the_oracle(template, tmp_path, im_client):
    document = _private_copy(tmp_path / template.name, as_im_reads_it(template))
    if declared(template):
        _created_and_destroyed(im_client, document)
    else:
        output = im_client.run("create", str(document), check=False)
        assert "successfully created" not in output, output


@pytest.mark.parametrize(
    "template",
    [path for path in TOSCA if declared(path) and not header(path, "breaks")],
    ids=lambda path: path.stem,
)
def test_what_primage_accepts_deploys_as_primage_renders_it(primage, template, tmp_path, im_client):
    rendered = tmp_path / "rendered.yaml"
    run = primage("render", template, "--artifacts", "local", *map_url_options(template), "-o", rendered)
    assert run.code == 0, run.err
    _created_and_destroyed(im_client, rendered)


@pytest.mark.parametrize(
    "template", [path for path in RADL if declared(path)], ids=lambda path: str(path.relative_to(FOREIGN / "radl"))
)
def test_what_ec3_composes_deploys(template, tmp_path, im_client):
    work = tmp_path / "ec3"
    work.mkdir()
    accepted, said, composed = ec3_composes(template, work)
    assert accepted, said
    document = _private_copy(tmp_path / "composed.radl", composed)
    _created_and_destroyed(im_client, document)
