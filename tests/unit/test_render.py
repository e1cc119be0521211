"""primage render: inputs applied as defaults, imports and repositories made absolute, secrets kept safe."""

from __future__ import annotations

import stat

import yaml

from conftest import ROOT
from primage import release

CASE = ROOT / "tosca" / "ci" / "kubernetes_cluster-typical.yaml"


def test_release_render_points_at_the_pinned_release(primage):
    run = primage("render", "kubernetes_cluster", "-i", CASE, "--set", "wn_num=5")
    assert run.code == 0, run.err
    document = yaml.safe_load(run.out)
    pin = release.current()
    assert document["imports"] == [{"primage_types": pin.raw_url("tosca/types/primage_types.yaml")}]
    assert document["repositories"]["primage_platform"]["url"] == pin.raw_base
    inputs = document["topology_template"]["inputs"]
    assert inputs["wn_num"]["default"] == 5  # --set wins over the file, parsed as YAML
    assert inputs["fe_mem"]["default"] == "8 GiB"  # from the inputs file
    assert "required" not in inputs["os_image"]


def test_local_render_points_at_the_checkout(primage, tmp_path):
    out = tmp_path / "k.yaml"
    assert primage("render", "kubernetes_cluster", "-i", CASE, "--artifacts", "local", "-o", out).code == 0
    document = yaml.safe_load(out.read_text())
    assert document["imports"] == [{"primage_types": str(ROOT / "tosca" / "types" / "primage_types.yaml")}]
    assert document["repositories"]["primage_platform"]["url"] == f"file://{ROOT}/"


def test_release_urls_of_this_repository_resolve_to_the_checkout_offline(primage, tmp_path):
    template = tmp_path / "mine.yaml"
    template.write_text(
        (ROOT / "tosca" / "kubernetes_cluster.yaml")
        .read_text()
        .replace("types/primage_types.yaml", release.current().raw_url("tosca/types/primage_types.yaml"))
    )
    out = tmp_path / "out.yaml"
    assert primage("render", template, "-i", CASE, "--artifacts", "local", "-o", out).code == 0
    assert yaml.safe_load(out.read_text())["imports"][0]["primage_types"].startswith(str(ROOT))


def test_secrets_are_never_taken_from_the_command_line(primage):
    run = primage("render", "htc_batch", "--set", "onedata_token=abc")
    assert run.code == 1
    assert "the secret input 'onedata_token' cannot be given with --set" in run.err
    assert "abc" not in run.err


def test_a_secret_inputs_file_others_can_read_is_refused(primage, tmp_path):
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text("onedata_token: xyz\n")
    secrets.chmod(0o644)
    run = primage("render", "htc_batch", "-i", ROOT / "tosca/ci/htc_batch-typical.yaml", "-i", secrets)
    assert run.code == 1
    assert f"holds the secret input onedata_token but other users can read it; run: chmod 600 {secrets}" in run.err


def test_a_rendered_secret_goes_to_a_private_file_only(primage, tmp_path):
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text("onedata_token: xyz-secret\n")
    secrets.chmod(0o600)
    args = ["render", "htc_batch", "-i", ROOT / "tosca/ci/htc_batch-typical.yaml", "-i", secrets]
    refused = primage(*args)
    assert refused.code == 1
    assert "xyz-secret" not in refused.out + refused.err
    out = tmp_path / "deploy.yaml"
    written = primage(*args, "-o", out)
    assert written.code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "xyz-secret" in out.read_text()
    assert "xyz-secret" not in written.err


def test_unknown_template_names_the_known_ones(primage):
    run = primage("render", "kubernetes")
    assert run.code == 2
    assert "no TOSCA template 'kubernetes' (templates: htc_batch, jupyter, kubernetes_cluster" in run.err


def test_a_radl_template_is_pointed_at_ec3_composition(primage):
    for given in (ROOT / "radl" / "kubernetes.radl", "oneclient"):
        run = primage("render", given)
        assert run.code == 2
        assert "is an EC3 RADL template, and render takes a TOSCA topology" in run.err
        assert "ec3 launch NAME kubernetes oneclient htc_batch debian13 my_values" in run.err
        assert "radl/ci/" in run.err
        assert "YAML syntax error" not in run.err


def test_check_with_a_secret_inputs_file_others_can_read_fails_that_check_only(primage, tmp_path):
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text("onedata_token: xyz\n")
    secrets.chmod(0o644)
    run = primage("check", "tosca/htc_batch.yaml", "-i", secrets)
    assert run.code == 1
    assert "other users can read it; run: chmod 600" in run.err + run.out
    assert "internal error" not in run.err + run.out
    assert "xyz" not in run.err + run.out
