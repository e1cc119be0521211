"""The Onedata variant layer (containers/onedata/) and the contract it serves: the oneclient it
installs is the oneclient role's pin, its test build installs the role's stub at that pin, the
applications the roles run in pod mode have the variant the roles default to, under the very tag the
pipeline builds and pushes, and its entrypoint reads every variable the pod mode renders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from primage import workloads
from primage.images import push, revision, spec
from support.onedata_pod import ROLE_OF

ONEDATA = ROOT / "containers" / "onedata"
ONECLIENT_DEFAULTS = ROOT / "ansible" / "roles" / "oneclient" / "defaults" / "main.yml"
ONECLIENT_STUB = ROOT / "ansible" / "roles" / "oneclient" / "molecule" / "default" / "stub-packages" / "oneclient"


def dockerfile_defaults(path: Path) -> dict[str, str | None]:
    return spec.declared_arguments(spec.parse_dockerfile(path.read_text()))


def test_the_onedata_layer_installs_what_the_oneclient_role_pins():
    role = yaml.safe_load(ONECLIENT_DEFAULTS.read_text())
    image = dockerfile_defaults(ONEDATA / "Dockerfile")
    assert image["ONECLIENT_VERSION"] == role["oneclient_version"]
    assert image["ONECLIENT_PACKAGE_REVISION"] == role["oneclient_package_revision"]
    assert image["ONECLIENT_PACKAGE"] == role["oneclient_package_name"]
    assert image["ONECLIENT_APT_URL"] == role["oneclient_apt_repository_url"]
    assert image["ONECLIENT_APT_SUITE"] == role["oneclient_apt_suite"]
    assert image["ONECLIENT_APT_COMPONENTS"] == " ".join(role["oneclient_apt_components"])
    assert image["ONECLIENT_APT_ARCHITECTURES"] == " ".join(role["oneclient_apt_architectures"])
    assert image["ONECLIENT_APT_KEY_URL"] == role["oneclient_apt_key_url"]
    assert image["ONECLIENT_APT_KEY_SHA256"] == role["oneclient_apt_key_checksum"].removeprefix("sha256:")


def test_the_test_build_installs_the_stub_at_the_pinned_version():
    role = yaml.safe_load(ONECLIENT_DEFAULTS.read_text())
    stub = yaml.safe_load((ONECLIENT_STUB / "package.yml").read_text())
    assert stub["version"] == f"{role['oneclient_version']}-{role['oneclient_package_revision']}"
    layer = spec.load_set().images["onedata"].layer
    assert layer.stub_packages == [str(ONECLIENT_STUB.relative_to(ROOT))]
    assert set(layer.apt_source.values()) <= set(dockerfile_defaults(ONEDATA / "Dockerfile"))


def test_the_applications_the_roles_run_in_pod_mode_have_an_onedata_variant():
    """htc_batch_onedata_image and jupyter_onedata_image default to <image>-onedata."""
    images = spec.load_set().images
    assert [d for d, image in sorted(images.items()) if "onedata" in image.variants] == ["jupyter", "segmentation"]
    for role, option in (("htc_batch", "htc_batch_onedata_image"), ("jupyter", "jupyter_onedata_image")):
        defaults = yaml.safe_load((ROOT / "ansible" / "roles" / role / "defaults" / "main.yml").read_text())
        assert defaults[option].endswith("-onedata"), f"{role}: {option} is no longer <image>-onedata"


REVISION = revision.Revision("1a2b3c4" + "0" * 33, "1a2b3c4", "2026-01-01T00:00:00Z")
ONEDATA_APPLICATIONS = sorted(d for d, image in spec.load_set().images.items() if "onedata" in image.variants)


def pod_mode_image(role: str, image: str) -> str:
    """The image the role's pod mode runs for application image `image`, its variant left to the default."""
    values = {f"{role}_image": image, f"{role}_onedata_mode": "pod", f"{role}_onedata_provider_host": "p"}
    values |= {"htc_batch_inputs": ["inputs/a.nii.gz"]} if role == "htc_batch" else {}
    if role == "jupyter":  # HTTPS without a certificate is refused: the stand-ins of a site's pair
        values |= {"jupyter_tls_source": "content", "jupyter_tls_certificate": "-----BEGIN CERTIFICATE-----\n"}
    secrets = {"jupyter_token": "t0ken", "jupyter_tls_private_key": "k"} if role == "jupyter" else {}
    workload = workloads.render(role, values, secrets)
    (manifest,) = workload.of_kind("Job") or workload.of_kind("StatefulSet")
    (container,) = manifest.definition["spec"]["template"]["spec"]["containers"]
    return container["image"]


def test_every_application_with_an_onedata_variant_has_the_role_that_runs_it():
    assert set(ROLE_OF) == set(ONEDATA_APPLICATIONS)
    assert sorted(set(ROLE_OF.values())) == workloads.applications()


@pytest.mark.parametrize("dirty", [(), ("application",)], ids=["clean", "application-dirty"])
@pytest.mark.parametrize("application", ONEDATA_APPLICATIONS)
def test_the_pod_mode_default_is_the_variant_tag_the_pipeline_pushes(monkeypatch, application, dirty):
    """Given the application as `primage images push` names it in a registry, the role's pod mode runs
    exactly the variant that push names beside it (`<image>-onedata` against `<tag>-<suffix>`)."""
    order = spec.build_order(spec.load_set(), [application])
    keys = {"application": [application, f"{application}{spec.VARIANT_SEPARATOR}onedata"]}
    monkeypatch.setattr(revision, "dirty_images", lambda _order: {k for part in dirty for k in keys[part]})
    planned = {item.image.directory: item for item in revision.plan(order, REVISION)}
    app, variant = planned[application], planned[f"{application}{spec.VARIANT_SEPARATOR}onedata"]
    registry = push.parse_registry("registry.example.eu:5000/primage-site")
    pushed_application = f"{registry.remote(app)}:{app.tag}"
    assert pod_mode_image(ROLE_OF[application], pushed_application) == f"{registry.remote(variant)}:{variant.tag}"


def test_a_changed_layer_is_never_the_variant_the_roles_default_to(monkeypatch):
    """Built from an uncommitted layer on a committed application, the variant is tagged -dirty, so
    the roles' default (the committed variant of that application tag) never names it silently."""
    application = ONEDATA_APPLICATIONS[0]
    order = spec.build_order(spec.load_set(), [application])
    variant_key = f"{application}{spec.VARIANT_SEPARATOR}onedata"
    monkeypatch.setattr(revision, "dirty_images", lambda _order: {variant_key})
    planned = {item.image.directory: item for item in revision.plan(order, REVISION)}
    app, variant = planned[application], planned[variant_key]
    assert variant.tag == f"{app.image.version}-g{REVISION.short}-dirty-onedata"
    assert pod_mode_image(ROLE_OF[application], app.reference) != variant.reference


def test_the_entrypoint_reads_every_variable_the_pod_mode_sets():
    workload = workloads.render(
        "htc_batch",
        {
            "htc_batch_image": "registry.example:5000/primage/segmentation:0.1.0-g1a2b3c4",
            "htc_batch_inputs": ["inputs/a.nii.gz"],
            "htc_batch_onedata_mode": "pod",
            "htc_batch_onedata_provider_host": "provider.example",
        },
    )
    (job,) = workload.of_kind("Job")
    (container,) = job.definition["spec"]["template"]["spec"]["containers"]
    entrypoint = (ONEDATA / "entrypoint.sh").read_text()
    onedata = [e["name"] for e in container["env"] if re.match(r"ONECLIENT_|PRIMAGE_[UG]ID$", e["name"])]
    assert sorted(onedata) == [
        "ONECLIENT_ACCESS_TOKEN", "ONECLIENT_MOUNT_POINT", "ONECLIENT_PROVIDER_HOST", "PRIMAGE_GID", "PRIMAGE_UID"
    ]  # fmt: skip
    for name in onedata:
        assert f"${{{name}" in entrypoint, f"the entrypoint never reads {name}"
    assert "command" not in container, "the pod keeps the variant's entrypoint"
