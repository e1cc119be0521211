"""What runs applications: the interface every backend implements, and how one is chosen.

A backend gets a prepared submission (`prepare.HtcPlan`, `prepare.NotebookPlan`: the inputs and
the workload rendered by primage.workloads, the same objects whatever runs them) and keeps the
application's record where it keeps its objects: the local backend on the engine's containers
(labels) and in a small state folder, a Kubernetes backend on the cluster's objects (labels and
annotations of the Job, the ConfigMap, the StatefulSet). Everything around it (the inputs, the
progress bar, the tables, the overview picture, the messages) is shared.

A Kubernetes backend implements the same methods with the official Python client against the
cluster of a kubeconfig: `run_htc` creates the Namespace, ConfigMap, Secrets and Indexed Job of
the plan and feeds the Progress from the Job's status (completedIndexes, failedIndexes) and its
pods (exit codes, the pod of each index); `logs` reads the pods' logs; `delete` deletes the
namespace's objects; `start_notebook` applies the StatefulSet, Service and token Secret.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import PrimageError, UsageError
from .model import Application

if TYPE_CHECKING:
    from .model import Submission
    from .onedata import Access
    from .prepare import HtcPlan, NotebookPlan
    from .progress import Progress

BACKENDS = ("local", "kubernetes")


@dataclass
class RunOutcome:
    """How a run of an HTC or batch application ended."""

    application: Application
    interrupted: bool = False
    stopped_because: str = ""  # a reason the run stopped early (an image that exits at once)
    notes: list[str] = field(default_factory=list)  # what was found and done (leftovers of a killed run)


@dataclass
class Output:
    """Where an application's results are."""

    root: Path | None  # the output folder, when it is on this machine
    where: str  # the output folder as the backend names it
    results: list[tuple[str, str]]  # (input, its result folder) of every completed task
    extra: list[Path] = field(default_factory=list)  # the overview picture and the report


class Backend(abc.ABC):
    name: str = ""

    # --- submitting ------------------------------------------------------------------------------

    @abc.abstractmethod
    def space_values(self, application: str, space: Path | None, onedata: Access | None) -> tuple[dict, dict]:
        """(values, secrets) of the application role that give the pods the space: a folder of this
        machine, or a Onedata space (provider and token from the private config) the cluster mounts."""

    @abc.abstractmethod
    def refuse_onedata(self, space: str, kind: str = "htc") -> None:
        """Raise, saying what to do instead, when this backend cannot mount a Onedata space itself for
        an application of this kind; called before the private config is read."""

    @abc.abstractmethod
    def submission(self, name: str) -> Submission | None:
        """What was submitted under `name`, or None when the name is free."""

    @abc.abstractmethod
    def scratch_space(self, name: str) -> Path:
        """A folder of the application's own, for a notebook started without a space."""

    @abc.abstractmethod
    def saved_token(self, name: str) -> str | None:
        """A notebook's token kept from its first start, so a restart keeps its URL's token."""

    def find_inputs(
        self, space: Path | None, onedata: Access | None, pattern: str, output: str, probe=None
    ) -> list[str]:
        """The input files of a submission, relative to the space, in task order. Here: a folder of
        this machine; a backend whose pods mount a Onedata space lists that space instead, through a
        pod of the workload `probe()` renders (the submission's own, with a stand-in input list)."""
        from . import inputs

        if space is None:
            raise PrimageError(f"the {self.name} backend finds the input files in a folder of this machine: --space")
        return inputs.find(space, pattern, output)

    @abc.abstractmethod
    def check_image(self, image: str, default: bool) -> None:
        """Refuse an image the backend cannot run, saying how to get it."""

    @abc.abstractmethod
    def run_htc(self, plan: HtcPlan, progress: Progress) -> RunOutcome:
        """Run the tasks whose results are missing, following them until they end or Ctrl-C."""

    # --- following ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def applications(self) -> list[Application]:
        """Every application this backend holds, without their tasks (fast: `apps list`)."""

    @abc.abstractmethod
    def application(self, name: str) -> Application:
        """One application with its tasks; an unknown name is an error naming the known ones."""

    @abc.abstractmethod
    def logs(self, name: str, task: str | None, follow: bool, write: Callable[[str], None]) -> None:
        """The log of one task (an index or an input), or of every task; --follow until it ends."""

    @abc.abstractmethod
    def output(self, name: str) -> Output:
        """Where the results are."""

    @abc.abstractmethod
    def delete(self, name: str, keep_output: bool) -> list[str]:
        """Stop and remove the application; its results too unless kept. Returns what was removed."""

    # --- notebooks ----------------------------------------------------------------------------------

    @abc.abstractmethod
    def notebook_values(self, name: str) -> tuple[dict, dict]:
        """(values, secrets) of the jupyter role for how this backend keeps and publishes a notebook:
        its home, its port and its HTTPS certificate."""

    @abc.abstractmethod
    def start_notebook(self, plan: NotebookPlan, progress: Callable[[str], None]) -> Application:
        """Start (or find running) the notebook and wait until it answers."""

    @abc.abstractmethod
    def notebook_url(self, name: str) -> tuple[str, Path]:
        """The notebook's URL without its token, and the private file holding the token."""

    @abc.abstractmethod
    def stop_notebook(self, name: str) -> Application:
        """Stop the notebook; its home and token are kept for the next start."""


def get(name: str, kubeconfig: str | None = None) -> Backend:
    if name == "local":
        if kubeconfig:
            raise UsageError("--kubeconfig is for --backend kubernetes; the local backend runs on the Docker engine")
        from .local import LocalBackend

        return LocalBackend()
    if name == "kubernetes":
        from .kube import KubernetesBackend

        return KubernetesBackend(kubeconfig)
    raise UsageError(f"unknown backend '{name}' (expected {' or '.join(BACKENDS)})")


def unknown_application(name: str, known: list[str]) -> PrimageError:
    listed = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
    return PrimageError(
        f"no application named {name}" + (f" (there are: {listed})" if known else " (there is none yet)")
    )
