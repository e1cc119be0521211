"""A submission made ready for any backend: its inputs found, its image checked, its workload rendered.

The workload comes from primage.workloads (the roles' templates, the one source), with the
values the developer gave and those the backend adds to give the pods the space. Rendering ten
thousand inputs is one Namespace, one ConfigMap and one Job, whatever the count.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .. import workloads
from ..errors import UsageError
from . import inputs, model
from .backend import Backend

HTC_ROLE, NOTEBOOK_ROLE = "htc_batch", "jupyter"
NOTEBOOK_HOME = "/home/primage"  # the imaging images' user's home
NOTEBOOK_HOME_SIZE = "1Gi"  # a claim: the local backend keeps it as an engine volume across restarts


@dataclass
class HtcPlan:
    submission: model.Submission
    space: Path | None  # the space folder on this machine (the local backend's, or a mounted one)
    inputs: list[str]
    workload: workloads.Workload
    secrets: dict = field(default_factory=dict, repr=False)

    @property
    def job(self) -> dict:
        return self.workload.of_kind("Job")[0].definition

    def objects(self) -> dict[tuple[str, str], dict]:
        return {(m.kind, m.name): m.definition for m in self.workload.manifests}

    def tasks(self) -> list[model.Task]:
        output = self.submission.output
        return [model.Task(i, path, inputs.result_folder(output, path)) for i, path in enumerate(self.inputs)]


@dataclass
class NotebookPlan:
    submission: model.Submission
    space: Path | None
    workload: workloads.Workload
    token: str = field(repr=False)

    @property
    def statefulset(self) -> dict:
        return self.workload.of_kind("StatefulSet")[0].definition

    def objects(self) -> dict[tuple[str, str], dict]:
        return {(m.kind, m.name): m.definition for m in self.workload.manifests}


def default_image(directory: str) -> str:
    """The exact reference of an image of containers/ at this revision, as the pipeline builds it."""
    from ..images import revision, spec

    planned = revision.plan(spec.build_order(spec.load_set(), [directory], with_variants=False))
    return next(item.reference for item in planned if item.image.directory == directory)


def check_pinned(image: str) -> str:
    if not workloads.image_pattern().match(image):
        raise UsageError(
            f"--image '{image}' is not pinned: give a tag other than latest or a digest (e.g. "
            f"primage/segmentation:0.1.0-g1a2b3c4, as `primage images build` tags it)"
        )
    return image


def _split_pattern(pattern: str) -> tuple[str, str]:
    """The folder part of a pattern and the rest, for the ConfigMap's annotations."""
    parts = PurePosixPath(pattern).parts
    fixed = [p for p in parts[:-1] if not inputs.GLOB_CHARACTERS & set(p)]
    folder = str(PurePosixPath(*fixed)) if fixed and len(fixed) == len(parts) - 1 else "."
    return folder, pattern if folder == "." else parts[-1]


def htc(submission: model.Submission, backend: Backend, space: Path | None, onedata=None) -> HtcPlan:
    """`onedata`: the access (onedata.Access) of a space the cluster mounts, for backends that can."""
    output = inputs.check_relative(submission.output, "--output")
    if output in (".", ""):
        raise UsageError("--output must be a folder of the space, not the space itself")
    values, secret_values = backend.space_values(HTC_ROLE, space, onedata)
    folder, pattern = _split_pattern(submission.files)
    values.update(
        {
            "htc_batch_name": submission.name,
            "htc_batch_image": submission.image,
            "htc_batch_input_folder": folder,
            "htc_batch_input_pattern": pattern,
            "htc_batch_output_folder": output,
            "htc_batch_parallelism": submission.parallelism,
            "htc_batch_backoff_limit_per_index": submission.retries,
        }
    )

    def probe() -> workloads.Workload:
        return workloads.render(HTC_ROLE, {**values, "htc_batch_inputs": [submission.files]}, secret_values)

    found = backend.find_inputs(space, onedata, submission.files, output, probe)
    if submission.kind == "batch" and len(found) != 1:
        raise UsageError(
            f"a batch application runs one task, and {len(found)} inputs match --files '{submission.files}' "
            f"(e.g. {found[0]}, {found[1]}): name one file, or use `primage htc submit` for one task per file"
        )
    workload = workloads.render(HTC_ROLE, {**values, "htc_batch_inputs": found}, secret_values)
    return HtcPlan(submission, space, found, workload, secret_values)


def notebook(
    submission: model.Submission, backend: Backend, space: Path | None, token: str | None, onedata=None
) -> NotebookPlan:
    token = token or secrets.token_hex(24)
    values, secret_values = backend.space_values(NOTEBOOK_ROLE, space, onedata)
    values.update(
        {
            "jupyter_name": submission.name,
            "jupyter_image": submission.image,
            "jupyter_home_dir": NOTEBOOK_HOME,
        }
    )
    published, published_secrets = backend.notebook_values(submission.name)
    values.update(published)
    secret_values = {**secret_values, **published_secrets, "jupyter_token": token}
    workload = workloads.render(NOTEBOOK_ROLE, values, secret_values)
    return NotebookPlan(submission, space, workload, token)
