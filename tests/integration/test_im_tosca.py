"""Every TOSCA input case, rendered by primage, deployed on a real IM (Dummy cloud) with the
real IM client: created, running with the right number of VMs, its outputs there, then
destroyed with nothing left. Elastic workers are added and removed through IM."""

from __future__ import annotations

import re

import pytest
import yaml

from primage import pieces, tosca
from support.tosca_outputs import EXPECTED_OUTPUTS

pytestmark = pytest.mark.integration

CASES = [p for p in pieces.discover() if p.kind == "tosca-case"]


def render_case(primage, private_file, tmp_path, case, **overrides):
    """Render a case for the local IM; secrets come from a private file, as a user would pass them."""
    tpl = tosca.load(case.related[0])
    secrets = {name: "integration-test-throwaway-token" for name in tpl.inputs if tosca.is_secret(name)}
    secrets.update(overrides)
    inputs = [case.path]
    if secrets:
        inputs.append(private_file("secrets.yaml", yaml.safe_dump(secrets)))
    out = tmp_path / f"{case.name}.yaml"
    run = primage("render", tpl.path, *[a for i in inputs for a in ("-i", i)], "--artifacts", "local", "-o", out)
    assert run.code == 0, run.err
    return tpl, yaml.safe_load(case.path.read_text()), out


def test_every_template_has_its_three_cases():
    by_template = {}
    for case in CASES:
        by_template.setdefault(case.related[0].stem, set()).add(case.name.split("-", 1)[1])
    assert set(by_template) == set(EXPECTED_OUTPUTS)
    for template, names in by_template.items():
        assert {"smallest", "typical", "largest"} <= names, template


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_deploys_on_a_real_im(primage, private_file, tmp_path, im_client, case):
    tpl, values, document = render_case(primage, private_file, tmp_path, case)
    infrastructure = im_client.create(document)
    try:
        workers = values.get("wn_num", tpl.inputs["wn_num"]["default"])
        states = im_client.wait_running(infrastructure, 1 + workers)
        assert len(states) == 1 + workers, states  # the front end and the requested workers, no more

        outputs = im_client.outputs(infrastructure)
        assert EXPECTED_OUTPUTS[tpl.name] <= set(outputs), outputs
        # Dummy VMs have no public address; the outputs must carry what IM knows of the front end.
        front_ip = outputs["front_end_address"]
        assert outputs["api_endpoint"] == f"https://{front_ip}:6443"
        admin = values.get("kube_admin_user", tpl.inputs["kube_admin_user"]["default"])
        assert outputs["next_steps"].startswith(f"ssh {admin}@{front_ip} and run: ")
        if tpl.name == "htc_batch":
            name = values.get("htc_name", tpl.inputs["htc_name"]["default"])
            mount = values.get("onedata_mount_point", tpl.inputs["onedata_mount_point"]["default"])
            folder = values.get("htc_output_folder", tpl.inputs["htc_output_folder"]["default"])
            assert outputs["application_name"] == name
            assert outputs["output_folder"] == f"{mount}/{folder}"
            assert f"kubectl -n {name} get jobs,pods" in outputs["next_steps"]
        if tpl.name == "jupyter":
            port = values.get("notebook_port", tpl.inputs["notebook_port"]["default"])
            assert outputs["notebook_url"] == f"https://{front_ip}:{port}/"
            name = values.get("notebook_name", "jupyter")
            assert outputs["application_name"] == name
            assert outputs["notebook_ca_certificate"].endswith(f"sudo cat /etc/primage/apps/{name}/tls/ca.crt")
        assert all("integration-test-throwaway-token" not in value for value in outputs.values())

        radl = im_client.run("getradl", infrastructure)
        assert "ansible.collections.git+https://gitlab.com/primageproject/primage-platform.git#/ansible/,v0.1.0" in radl
    finally:
        im_client.destroy(infrastructure)
    assert infrastructure not in im_client.infrastructures()


def test_workers_are_elastic_through_im(primage, private_file, tmp_path, im_client):
    case = next(c for c in CASES if c.name == "kubernetes_cluster-typical")
    tpl, values, document = render_case(primage, private_file, tmp_path, case)
    infrastructure = im_client.create(document)
    try:
        before = im_client.wait_running(infrastructure, 1 + values["wn_num"])
        more = tmp_path / "more.yaml"
        run = primage(
            "render",
            tpl.path,
            "-i",
            case.path,
            "--set",
            f"wn_num={values['wn_num'] + 2}",
            "--artifacts",
            "local",
            "-o",
            more,
        )
        assert run.code == 0, run.err
        im_client.run("addresource", infrastructure, str(more))
        grown = im_client.wait_running(infrastructure, len(before) + 2)
        assert len(grown) == len(before) + 2

        worker = max(grown, key=int)
        im_client.run("removeresource", infrastructure, worker)
        shrunk = im_client.vm_states(infrastructure)
        assert len(shrunk) == len(grown) - 1
        assert worker not in shrunk
    finally:
        im_client.destroy(infrastructure)


def test_counts_beyond_the_elastic_bound_never_reach_im(primage, tmp_path):
    run = primage(
        "render",
        "kubernetes_cluster",
        "-i",
        "tosca/ci/kubernetes_cluster-typical.yaml",
        "--set",
        "wn_num=9",
        "--artifacts",
        "local",
        "-o",
        tmp_path / "x.yaml",
    )
    assert run.code == 1
    assert re.search(r"node 'wn': count 9 is above max_instances 8", run.err)
    assert not (tmp_path / "x.yaml").exists()
