"""`primage deploy`, `primage infra ...` and `primage undeploy` against a real IM server (Dummy
cloud, a USER_DB of two users): every TOSCA input case and an EC3 composition deployed,
listed, inspected, scaled, reconfigured and deleted with nothing left, the real im_client
checking what IM holds. Every bad input gets its exact message and exit code, and the IM
password shows in no output."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from primage import cli, im_auth, infra, infra_scale, pieces, radl, tosca
from primage.checks import radl_checks
from primage.im_rest import IMClient
from primage.im_server import free_port
from support.tosca_outputs import EXPECTED_OUTPUTS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CASES = [p for p in pieces.discover() if p.kind == "tosca-case"]
COMPOSITION = next(p for p in pieces.discover() if p.kind == "radl-composition" and p.name.startswith("htc_batch"))
THROWAWAY_TOKEN = "integration-test-throwaway-token"  # noqa: S105 (not a real token)
PRIMAGE = str(Path(sys.executable).parent / "primage")


@pytest.fixture(autouse=True)
def private_state(tmp_path, monkeypatch):
    """Each test its own record of infrastructures, and no IM from the environment."""
    monkeypatch.setenv("PRIMAGE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv(infra.ENV_URL, raising=False)
    monkeypatch.delenv(infra.ENV_AUTH, raising=False)
    return tmp_path / "state"


@pytest.fixture
def run(primage, im_client):
    """primage in-process; no output ever holds an IM password or the Onedata token."""

    def call(*argv):
        result = primage(*argv)
        for secret in ("test-only-password", THROWAWAY_TOKEN):
            assert secret not in result.out + result.err, argv
        return result

    return call


@pytest.fixture
def im(local_im, im_client):
    return ["--im", local_im.url, "--auth", str(im_client.auth)]


def secrets_file(private_file, tpl):
    secrets = {name: THROWAWAY_TOKEN for name in tpl.inputs if tosca.is_secret(name)}
    return ["-i", private_file("secrets.yaml", yaml.safe_dump(secrets))] if secrets else []


def deploy_case(run, im, private_file, case, *extra):
    tpl = tosca.load(case.related[0])
    return run(
        "deploy", tpl.name, "-i", case.path, *secrets_file(private_file, tpl), "--artifacts", "local", *im, *extra
    )


def records(state_dir):
    path = state_dir / infra.RECORDS_FILE
    return json.loads(path.read_text())["infrastructures"] if path.exists() else {}


def value_of(tpl, values, name):
    return values.get(name, tpl.inputs[name].get("default"))


# --------------------------------------------------------------------------- the whole session


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_deploys_lists_shows_and_undeploys(run, im, im_client, private_file, private_state, case):
    tpl = tosca.load(case.related[0])
    values = yaml.safe_load(case.path.read_text())
    deployed = deploy_case(run, im, private_file, case, "--json")
    assert deployed.out, deployed.err
    shown = deployed.json()
    infrastructure = shown["id"]
    try:
        # Dummy VMs cannot be contextualized: IM ends unconfigured, and primage says so (exit 1).
        assert deployed.code == 1, deployed.err
        assert (
            f"primage: infrastructure {infrastructure} is unconfigured; its contextualization log: "
            f"primage infra show {infrastructure}" in deployed.err
        )
        assert re.search(rf"==> \[0:\d\d\] deploying {infrastructure}: running: ", deployed.err)
        workers = value_of(tpl, values, "wn_num")
        assert [vm["node"] for vm in shown["vms"]] == ["front"] + ["wn"] * workers
        assert {vm["state"] for vm in shown["vms"]} == {"unconfigured"}
        assert im_client.vm_states(infrastructure) == {vm["id"]: "unconfigured" for vm in shown["vms"]}
        assert EXPECTED_OUTPUTS[tpl.name] <= set(shown["outputs"])
        assert shown["vms"][0]["cpus"] == value_of(tpl, values, "fe_cpus")

        record = records(private_state)[infrastructure]
        assert record == {
            "id": infrastructure,
            "im_url": im[1],
            "auth_file": str(im_client.auth.resolve()),
            "source": f"tosca/{tpl.name}.yaml",
            "kind": "tosca",
            "created": record["created"],
            "artifacts": "local",
        }
        state_file = private_state / infra.RECORDS_FILE
        assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
        assert "password" not in state_file.read_text()

        # Neither --im nor --auth from here on: the record says where the infrastructure lives.
        listed = run("infra", "list", "--json")
        assert listed.code == 0, listed.err
        row = next(r for r in listed.json() if r["id"] == infrastructure)
        assert row == {
            "id": infrastructure,
            "state": "unconfigured",
            "vms": 1 + workers,
            "source": f"tosca/{tpl.name}.yaml",
            "im_url": im[1],
            "created": record["created"],
        }

        show = run("infra", "show", infrastructure, "--json")
        assert show.code == 0, show.err
        assert "credentials" not in show.out  # IM's VM descriptions carry the VMs' passwords: never shown
        details = show.json()
        assert details["vms"] == shown["vms"]
        assert details["outputs"]["api_endpoint"] == f"https://{details['outputs']['front_end_address']}:6443"
        assert "ERROR: Max contextualization time passed." in details["contmsg"]

        table = run("infra", "show", infrastructure, "--log-lines", "3")
        assert table.code == 0
        assert re.search(r"^0\s+front\s+unconfigured\s", table.out, re.M)
        assert len(re.findall(r"^\d+\s+wn\s+unconfigured\s", table.out, re.M)) == workers
        assert re.search(r"^  api_endpoint\s+https://", table.out, re.M)
        assert re.search(r"^  front_end_address\s+\(none\)$", table.out, re.M)  # Dummy VMs have no public address
        assert re.search(r"^contextualization log \(last 3 of \d+ lines; --log-lines 0 for all\)$", table.out, re.M)
    finally:
        undeployed = run("undeploy", infrastructure)
    assert undeployed.code == 0, undeployed.err
    assert undeployed.out == f"{infrastructure} deleted\n"
    assert infrastructure not in im_client.infrastructures()
    assert infrastructure not in records(private_state)


def test_tosca_workers_are_added_and_removed(run, im, im_client, private_file, local_im):
    case = next(c for c in CASES if c.name == "kubernetes_cluster-typical")  # wn_num 3, wn_max 8
    deployed = deploy_case(run, im, private_file, case, "--no-wait", "--json")
    assert deployed.code == 0, deployed.err
    infrastructure = deployed.json()["id"]
    client = IMClient(local_im.url, im_auth.load(im_client.auth))

    def stored_count():
        return infra_scale.stored_template(client, infrastructure).inputs["wn_num"]["default"]

    try:
        im_client.wait_running(infrastructure, 4)
        added = run("infra", "add", infrastructure, "--workers", "2", "--json")
        assert added.code == 1, added.err  # unconfigured again, as always with Dummy
        assert added.json()["added"] == ["4", "5"]
        assert f"==> {infrastructure}: 2 workers of node 'wn' added: VMs 4, 5" in added.err
        assert sorted(im_client.vm_states(infrastructure), key=int) == ["0", "1", "2", "3", "4", "5"]
        assert stored_count() == 5  # IM's template agrees with its VMs

        removed = run("infra", "remove", infrastructure, "--workers", "3", "--json")
        assert removed.json()["removed"] == ["3", "4", "5"]  # the newest workers go
        assert sorted(im_client.vm_states(infrastructure), key=int) == ["0", "1", "2"]
        assert stored_count() == 2

        beyond = run("infra", "add", infrastructure, "--workers", "7")
        assert beyond.code == 1
        assert beyond.err == (
            f"primage: infrastructure {infrastructure}'s template at IM (wn): node 'wn': count 9 is above "
            "max_instances 8 (raise the maximum or deploy fewer)\n"
        )
        too_many = run("infra", "remove", infrastructure, "--workers", "3")
        assert too_many.code == 1
        assert too_many.err == (
            f"primage: infrastructure {infrastructure} has 2 workers of node 'wn'; cannot remove 3\n"
        )
        wrong_node = run("infra", "add", infrastructure, "--workers", "1", "--node", "front")
        assert wrong_node.code == 2
        assert wrong_node.err == (
            f"primage: error: --node front: not a scalable node of infrastructure {infrastructure}'s template at IM "
            "(scalable: wn)\n"
        )
        assert sorted(im_client.vm_states(infrastructure), key=int) == ["0", "1", "2"]  # refusals changed nothing
    finally:
        run("undeploy", infrastructure)
    assert infrastructure not in im_client.infrastructures()


def test_reconfigure_applies_new_inputs(run, im, im_client, private_file, local_im):
    case = next(c for c in CASES if c.name == "htc_batch-typical")
    deployed = deploy_case(run, im, private_file, case)
    infrastructure = re.search(r"^infrastructure\s+(\S+)$", deployed.out, re.M).group(1)
    try:
        again = run("infra", "reconfigure", infrastructure, "--no-wait", "--json")
        assert again.code == 0, again.err
        assert again.json()["state"] == "running"  # IM contextualizes again at once

        renamed = run(
            "infra", "reconfigure", infrastructure, "--set", "htc_name=tumour-seg", "--set", "htc_parallelism=7"
        )
        assert renamed.code == 1, renamed.err  # unconfigured in the end, as always with Dummy
        assert re.search(rf"==> \[0:\d\d\] reconfiguring {infrastructure}: running: ", renamed.err)
        assert re.search(r"^  application_name\s+tumour-seg$", renamed.out, re.M)
        assert im_client.outputs(infrastructure)["application_name"] == "tumour-seg"
        assert "tumour-seg" in im_client.run("getradl", infrastructure)

        wrong = run("infra", "reconfigure", infrastructure, "--set", "htc_parallelism=0")
        assert wrong.code == 1
        assert wrong.err == (
            "primage: --set (htc_parallelism): input 'htc_parallelism': The value \"0\" of property "
            '"htc_parallelism" is out of range "(min:1, max:1000)".' + tosca.UNCHECKED_CONSTRAINT + "\n"
        )
        secret = run("infra", "reconfigure", infrastructure, "--set", "onedata_token=x")
        assert secret.code == 1
        assert "the secret input 'onedata_token' cannot be given with --set" in secret.err
        assert im_client.outputs(infrastructure)["application_name"] == "tumour-seg"
    finally:
        run("undeploy", infrastructure)


def test_a_radl_composition_deploys_scales_and_undeploys(run, im, im_client, tmp_path, private_state):
    data = yaml.safe_load(COMPOSITION.path.read_text())
    templates = radl.expand(data["templates"])
    features = radl_checks._merge(
        data.get("features") or {}, radl.throwaway_secrets(radl.missing_features(templates, data.get("features") or {}))
    )
    composition = radl.compose(data["templates"], features, COMPOSITION.display_path)
    assert not composition.problems, composition.problems
    document = tmp_path / "htc.radl"
    document.write_text(composition.radl)
    document.chmod(0o644)
    shared = run("deploy", document, *im)
    assert shared.code == 1
    assert shared.err == (
        f"primage: {document}: holds auth, primage_onedata_token (EC3 puts the whole auth file in 'auth') but other "
        f"users can read it; run: chmod 600 {document}\n"
    )
    document.chmod(0o600)

    deployed = run("deploy", document, *im, "--json")
    infrastructure = deployed.json()["id"]
    try:
        assert deployed.code == 1, deployed.err  # EC3's configure steps cannot run on Dummy VMs
        assert [vm["node"] for vm in deployed.json()["vms"]] == ["front"]  # EC3 starts with the front end
        assert deployed.json()["outputs"] is None
        assert records(private_state)[infrastructure]["kind"] == "radl"

        added = run("infra", "add", infrastructure, "--workers", "3", "--json")
        assert added.json()["added"] == ["1", "2", "3"]
        assert [vm["node"] for vm in added.json()["vms"]] == ["front", "wn", "wn", "wn"]
        assert len(im_client.vm_states(infrastructure)) == 4

        beyond = run("infra", "add", infrastructure, "--workers", "2")
        assert beyond.code == 1
        assert beyond.err == (
            f"primage: infrastructure {infrastructure}: system 'wn' may have at most 4 instances "
            "(ec3_max_instances) and has 3; 2 more would be 5\n"
        )
        removed = run("infra", "remove", infrastructure, "--workers", "2", "--no-wait", "--json")
        assert removed.code == 0, removed.err
        assert removed.json()["removed"] == ["2", "3"]
        assert sorted(im_client.vm_states(infrastructure), key=int) == ["0", "1"]

        inputs = run("infra", "reconfigure", infrastructure, "--set", "wn_num=2")
        assert inputs.code == 2
        assert inputs.err == (
            f"primage: error: infrastructure {infrastructure} was created from RADL, which has no inputs; run "
            f"`primage infra reconfigure {infrastructure}` without -i/--set to contextualize it again\n"
        )
        again = run("infra", "reconfigure", infrastructure, "--json")
        assert again.json()["state"] == "unconfigured"
        assert (
            "ERROR: Max contextualization time passed."
            in run("infra", "show", infrastructure, "--json").json()["contmsg"]
        )
    finally:
        undeployed = run("undeploy", infrastructure)
    assert undeployed.code == 0, undeployed.err
    assert infrastructure not in im_client.infrastructures()
    assert records(private_state) == {}


# --------------------------------------------------------------------------- where IM comes from


def test_environment_names_the_im_and_overrides_the_record(run, im_client, local_im, monkeypatch, private_state):
    monkeypatch.setenv(infra.ENV_URL, local_im.url)
    monkeypatch.setenv(infra.ENV_AUTH, str(im_client.auth))
    deployed = run("deploy", _tiny_radl(private_state), "--no-wait", "--json")
    assert deployed.code == 0, deployed.err
    infrastructure = deployed.json()["id"]
    try:
        closed = f"http://127.0.0.1:{free_port()}"
        monkeypatch.setenv(infra.ENV_URL, closed)
        elsewhere = run("infra", "show", infrastructure)
        assert elsewhere.code == 3
        assert elsewhere.err.startswith(f"primage: IM at {closed} is not answering")
        monkeypatch.delenv(infra.ENV_URL)
        monkeypatch.delenv(infra.ENV_AUTH)
        assert run("infra", "show", infrastructure).code == 0  # the record again
    finally:
        undeployed = run("undeploy", infrastructure, "--json")
        assert undeployed.code == 0, undeployed.err
        assert undeployed.json()["state"] == "deleted"


def _tiny_radl(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder.parent / "tiny.radl"
    path.write_text(
        "network public (outbound = 'yes')\n"
        "system front (cpu.count >= 1 and memory.size >= 1g and net_interface.0.connection = 'public' and "
        "disk.0.os.name = 'linux' and disk.0.image.url = 'one://cloud.example.eu/1')\n"
        "deploy front 1\ncontextualize ()\n"
    )
    return path


def test_list_without_any_record_says_how_to_name_an_im(run):
    listed = run("infra", "list", "--json")
    assert listed.code == 0
    assert listed.json() == []
    assert "give --im URL --auth FILE to list an IM's" in listed.err


def test_a_slow_deployment_times_out_with_a_pointer(run, im, private_state):
    deployed = run("deploy", _tiny_radl(private_state), *im, "--timeout", "0")
    infrastructure = next(iter(records(private_state)))
    try:
        assert deployed.code == 6
        assert re.fullmatch(
            rf"primage: gave up waiting after 0 s: infrastructure {infrastructure} is still \w+ at IM, which goes on; "
            rf"follow it with: primage infra show {infrastructure}\n",
            deployed.err.splitlines(keepends=True)[-1],
        )
    finally:
        run("undeploy", infrastructure)


def test_ctrl_c_stops_waiting_and_im_goes_on(im, im_client, private_state, private_file):
    case = next(c for c in CASES if c.name == "kubernetes_cluster-smallest")
    env = dict(os.environ, PRIMAGE_STATE_DIR=str(private_state))
    process = subprocess.Popen(
        [PRIMAGE, "deploy", "kubernetes_cluster", "-i", str(case.path), "--artifacts", "local", *map(str, im)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines = []
    for line in process.stderr:  # wait until primage follows IM
        lines.append(line)
        if "] deploying " in line:
            break
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=60)
    infrastructure = next(iter(records(private_state)))
    try:
        assert process.returncode == 130, "".join(lines) + rest
        assert rest.splitlines()[-1] == (
            f"primage: stopped waiting; infrastructure {infrastructure} goes on at IM: follow it with "
            f"`primage infra show {infrastructure}`, delete it with `primage undeploy {infrastructure}`"
        )
        assert "Traceback" not in rest
        assert infrastructure in im_client.infrastructures()
    finally:
        subprocess.run([PRIMAGE, "undeploy", infrastructure], env=env, capture_output=True, timeout=120, check=False)
    assert infrastructure not in im_client.infrastructures()


def test_list_forgets_what_im_no_longer_has(run, im, im_client, private_state):
    deployed = run("deploy", _tiny_radl(private_state), *im, "--json")
    infrastructure = deployed.json()["id"]
    im_client.destroy(infrastructure)  # deleted behind primage's back
    listed = run("infra", "list", "--json")
    assert listed.code == 0
    assert infrastructure not in [row["id"] for row in listed.json()]
    assert f"primage: IM at {im[1]} no longer has {infrastructure}: forgotten\n" in listed.err
    assert records(private_state) == {}


def test_head_of_list_and_show_ends_quietly(run, im, private_state):
    deployed = run("deploy", _tiny_radl(private_state), *im, "--no-wait", "--json")
    infrastructure = deployed.json()["id"]
    try:
        for argv in (["infra", "list"], ["infra", "show", infrastructure], ["infra", "list", "--json"]):
            process = subprocess.Popen(
                [PRIMAGE, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ)
            )
            process.stdout.close()  # the reader is gone before the first line
            _, err = process.communicate(timeout=120)
            assert (process.returncode, err) == (cli.EXIT_PIPE_CLOSED, b""), argv  # as a shell reports SIGPIPE
    finally:
        run("undeploy", infrastructure)


# --------------------------------------------------------------------------- bad input


def test_im_not_answering(run, im_client):
    url = f"http://127.0.0.1:{free_port()}"
    for argv in (
        ["infra", "list"],
        ["deploy", "kubernetes_cluster", "-i", "tosca/ci/kubernetes_cluster-smallest.yaml"],
    ):
        result = run(*argv, "--im", url, "--auth", im_client.auth)
        assert result.code == 3, argv
        assert result.err == (
            f"primage: IM at {url} is not answering (connection refused); check the URL (--im or PRIMAGE_IM_URL) "
            "and that the server is running\n"
        )


def test_a_url_that_is_no_im_says_so_with_the_http_status(run, local_im, im_client):
    url = f"{local_im.url}/im"  # IM answers, but not at that path
    result = run("infra", "list", "--im", url, "--auth", im_client.auth)
    assert result.code == 1
    assert result.err == (
        f"primage: {url} answered HTTP 404 Not Found to the list, and not with IM's JSON: is it an IM REST endpoint?\n"
    )
    bad = run("infra", "list", "--im", "im.example.eu:8800", "--auth", im_client.auth)
    assert bad.code == 2
    assert bad.err == (
        "primage: error: 'im.example.eu:8800' is not an IM URL (expected http://HOST:PORT or https://HOST:PORT[/PATH])\n"
    )


def test_credentials_refused(run, local_im, auth_file, private_state):
    wrong = auth_file(password="not-the-password")  # noqa: S106 (a wrong one, on purpose)
    result = run("infra", "list", "--im", local_im.url, "--auth", wrong)
    assert result.code == 4
    assert result.err == (
        f"primage: IM at {local_im.url} refused the credentials of {wrong}: Invalid InfrastructureManager "
        "credentials (check the username and password of its InfrastructureManager line)\n"
    )
    refused = run("deploy", _tiny_radl(private_state), "--im", local_im.url, "--auth", wrong)
    assert refused.code == 4
    assert records(private_state) == {}


def test_infrastructure_of_other_credentials(run, im, local_im, auth_file, private_state):
    deployed = run("deploy", _tiny_radl(private_state), *im, "--no-wait", "--json")
    infrastructure = deployed.json()["id"]
    try:
        other = auth_file("other", name="other.dat")
        for argv in (["infra", "show", infrastructure], ["undeploy", infrastructure]):
            result = run(*argv, "--auth", other)
            assert result.code == 4, argv
            assert result.err.endswith(  # after undeploy's "==> deleting ..."
                f"primage: IM at {local_im.url}: infrastructure {infrastructure} belongs to other credentials than "
                f"those of {other}\n"
            )
    finally:
        assert run("undeploy", infrastructure).code == 0


def test_auth_file_others_can_read_is_refused_before_im_is_asked(run, auth_file):
    shared = auth_file()
    shared.chmod(0o644)
    closed = f"http://127.0.0.1:{free_port()}"  # were IM asked first, this would say it is not answering
    for argv in (["infra", "list"], ["deploy", "kubernetes_cluster"], ["infra", "show", "some-id"]):
        result = run(*argv, "--im", closed, "--auth", shared)
        assert result.code == 1, argv
        assert (
            result.err
            == f"primage: {shared}: other users can read this IM auth file (mode 0644); run: chmod 600 {shared}\n"
        )


def test_unknown_infrastructure(run, im, local_im):
    for argv in (
        ["infra", "show", "no-such-id"],
        ["infra", "add", "no-such-id", "--workers", "1"],
        ["infra", "remove", "no-such-id", "--workers", "1"],
        ["infra", "reconfigure", "no-such-id"],
        ["undeploy", "no-such-id"],
    ):
        result = run(*argv, *im)
        assert result.code == 5, (argv, result.err)
        assert result.err.endswith(
            f"primage: IM at {local_im.url} has no infrastructure no-such-id (Invalid infrastructure ID or access not "
            "granted.)\n"
        )


def test_unrecorded_infrastructure_without_an_im(run):
    result = run("infra", "show", "no-such-id")
    assert result.code == 2
    assert result.err == (
        f"primage: error: infrastructure no-such-id is not in {infra.records_file()} (deployed elsewhere?); give "
        "--im URL and --auth FILE (or set PRIMAGE_IM_URL and PRIMAGE_IM_AUTH)\n"
    )


def test_template_im_refuses_gets_ims_own_line(run, im, im_client, private_state):
    before = set(im_client.infrastructures())
    broken = ROOT / "tests" / "fixtures" / "broken"
    tosca_error = run("deploy", broken / "tosca" / "property_wrong_type.yaml", "--artifacts", "local", *im)
    assert tosca_error.code == 1
    assert tosca_error.err == (
        f"primage: tests/fixtures/broken/tosca/property_wrong_type.yaml: IM at {im[1]} refused it: Error parsing "
        "TOSCA template: '>=' not supported between instances of 'str' and 'int'\n"
    )
    radl_error = run("deploy", broken / "radl" / "syntax_error.radl", *im)
    assert radl_error.code == 1
    assert radl_error.err == (
        f"primage: {broken / 'radl' / 'syntax_error.radl'}:11: IM at {im[1]} refused it: Parse error in: "
        "LexToken(GE,'>=',11,343)\n"
    )
    # What primage's own checks catch never reaches IM, and reads better than IM's answer.
    caught = run("deploy", broken / "tosca" / "unknown_node_type.yaml", "--artifacts", "local", *im)
    assert caught.code == 1
    assert caught.err == (
        "primage: tests/fixtures/broken/tosca/unknown_node_type.yaml:14 (front): node 'front' has unknown type "
        "'tosca.nodes.primage.Comptue'; did you mean 'tosca.nodes.primage.Compute'?\n"
    )
    assert set(im_client.infrastructures()) == before
    assert records(private_state) == {}


def test_release_artifacts_im_cannot_fetch_say_what_to_do(run, im, im_client):
    case = next(c for c in CASES if c.name == "kubernetes_cluster-smallest")
    result = run("deploy", "kubernetes_cluster", "-i", case.path, *im, "--no-wait", "--json")  # --artifacts release
    if result.code == 0:  # an IM that reaches the release host deploys it
        run("undeploy", result.json()["id"])
        assert result.json()["id"] not in im_client.infrastructures()
        return
    assert result.code == 1, result.err
    assert (
        'URLException: Failed to reach server "https://gitlab.com/primageproject/primage-platform/-/raw/v0.1.0/'
        'tosca/types/primage_types.yaml"' in result.err
    )
    assert result.err.rstrip().endswith(
        "(IM fetches the release's types and playbooks from the repository's host; an IM that cannot reach it needs "
        "--artifacts local, with this checkout at the same path on IM's machine)"
    )


def test_types_imported_from_elsewhere_are_left_to_im(run, im, im_client, tmp_path):
    template = tmp_path / "remote.yaml"
    template.write_text(
        "tosca_definitions_version: tosca_simple_yaml_1_0\n"
        "imports:\n"
        "  - indigo: https://raw.githubusercontent.com/indigo-dc/tosca-types/v7.0.0/custom_types.yaml\n"
        "topology_template:\n"
        "  node_templates:\n"
        "    server:\n"
        "      type: tosca.nodes.indigo.Compute\n"
    )
    result = run("deploy", template, "--artifacts", "local", *im, "--no-wait", "--json")
    if result.code == 0:  # an IM that reaches GitHub deploys it
        run("undeploy", result.json()["id"])
        return
    assert "has unknown type" not in result.err  # primage cannot know those types: it does not guess
    assert result.err.startswith(f"primage: {template}: IM at {im[1]} refused it: Error parsing TOSCA template: ")
