"""The task contract, the same wherever the application runs (a laptop, Docker, a Kubernetes Job).

Input: a path argument, or line JOB_COMPLETION_INDEX+1 of the list file PRIMAGE_INPUT_LIST (one
path per line, relative to PRIMAGE_INPUT_ROOT; default root: the list file's folder).

Output: PRIMAGE_OUTPUT_DIR/<input path relative to the input root, without .nii/.nii.gz>/
    mask.nii.gz        the lesion mask (uint8, 0/1) with the input's geometry
    segmentation.json  the record: volume, bounding box, intensities, parameters, versions, timings
    overlay.png        the three planes through the lesion, the mask drawn over the image
    _SUCCESS           written last: the task is complete (what it covers, with sizes and digests)

A task whose _SUCCESS matches the input (size, modification time), the parameters and the tool
version is skipped. Every file is written under a temporary name and renamed, so a killed task
leaves no partial file under a final name; the marker is removed before results are redone.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import __version__, overlay, record, volume
from .atomic import remove_stale_temporaries, write_bytes
from .errors import NoInput, OutputError, UsageError
from .segment import Parameters, segment

ENV_INPUT_LIST = "PRIMAGE_INPUT_LIST"
ENV_INDEX = "JOB_COMPLETION_INDEX"
ENV_INPUT_ROOT = "PRIMAGE_INPUT_ROOT"
ENV_OUTPUT_DIR = "PRIMAGE_OUTPUT_DIR"

MASK = "mask.nii.gz"
RECORD = "segmentation.json"
OVERLAY = "overlay.png"
MARKER = "_SUCCESS"
RESULTS = (MASK, OVERLAY, RECORD)


@dataclass(frozen=True)
class Task:
    input: Path  # absolute
    relative: str  # relative to the input root, POSIX separators
    output: Path  # this input's output folder


@dataclass(frozen=True)
class Outcome:
    task: Task
    skipped: bool
    summary: str


# --------------------------------------------------------------------------- resolving the task


def resolve(
    input_path: str | None,
    input_list: str | None,
    index: str | None,
    input_root: str | None,
    output_dir: str | None,
    environ: dict | None = None,
) -> Task:
    env = os.environ if environ is None else environ
    input_root = input_root or env.get(ENV_INPUT_ROOT) or None
    output_dir = output_dir or env.get(ENV_OUTPUT_DIR) or None
    if not output_dir:
        raise UsageError(f"no output folder: give --output-dir or set {ENV_OUTPUT_DIR}")
    if input_path is None:
        input_path, input_root = _from_list(
            input_list or env.get(ENV_INPUT_LIST), index or env.get(ENV_INDEX), input_root
        )
    path = Path(os.path.abspath(input_path))
    root = Path(os.path.abspath(input_root)) if input_root else path.parent
    try:
        relative = path.relative_to(root)
    except ValueError:
        raise UsageError(f"the input is not under the input root {root} ({ENV_INPUT_ROOT})", path) from None
    if not relative.parts:
        raise UsageError("the input is the input root itself; give a file or a series folder under it", path)
    output = Path(os.path.abspath(output_dir)) / _without_suffix(relative)
    if output == path or path in output.parents:
        raise UsageError(
            f"the output folder {output} would lie inside the input; choose another {ENV_OUTPUT_DIR}", path
        )
    return Task(input=path, relative=relative.as_posix(), output=output)


def _from_list(list_file: str | None, index: str | None, input_root: str | None) -> tuple[str, str]:
    if not list_file:
        raise UsageError(f"no input: give a path, or set {ENV_INPUT_LIST} and {ENV_INDEX}")
    if index is None or not str(index).strip().isdigit():
        raise UsageError(f"{ENV_INDEX} must be a task index 0, 1, 2, ... (got {index!r})", list_file)
    number = int(str(index).strip())
    try:
        lines = Path(list_file).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UsageError(f"the input list does not exist ({ENV_INPUT_LIST})", list_file) from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"unreadable input list ({error})", list_file) from None
    if number >= len(lines):
        raise UsageError(f"{ENV_INDEX}={number} is beyond the {len(lines)} lines of the input list", list_file)
    entry = lines[number].strip()
    if not entry:
        raise UsageError(f"line {number + 1} of the input list is empty", list_file)
    root = input_root or str(Path(list_file).parent)
    return (entry if os.path.isabs(entry) else os.path.join(root, entry)), root


def _without_suffix(relative: Path) -> Path:
    name = relative.name
    for suffix in volume.NIFTI_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return relative.with_name(name[: -len(suffix)])
    return relative


# --------------------------------------------------------------------------- skip check


def fingerprint(path: Path) -> dict:
    """What tells that the input changed: size and modification time (of every slice of a series)."""
    if path.is_dir():
        entries = [f.stat() for f in path.iterdir() if f.is_file() and not f.name.startswith(".")]
        return {
            "files": len(entries),
            "bytes": sum(s.st_size for s in entries),
            "mtime_ns": max((s.st_mtime_ns for s in entries), default=0),
        }
    stat = path.stat()
    return {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def parameters_digest(parameters: Parameters) -> str:
    text = json.dumps(parameters.as_record(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def completed(task: Task, parameters: Parameters) -> tuple[bool, str]:
    """(True, "") when complete results exist; else (False, why they must be made)."""
    marker = task.output / MARKER
    if not marker.is_file():
        return False, "no results yet"
    try:
        done = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False, "unreadable marker"
    if done.get("input") != task.relative:
        raise UsageError(
            f"the output folder {task.output} holds the results of another input ({done.get('input')}); "
            "two inputs differ only by their .nii/.nii.gz suffix",
            task.input,
        )
    expected = {
        "fingerprint": fingerprint(task.input),
        "parameters_digest": parameters_digest(parameters),
        "tool_version": __version__,
    }
    for key, value in expected.items():
        if done.get(key) != value:
            return False, f"the {key.replace('_', ' ')} changed"
    for name, facts in (done.get("files") or {}).items():
        path = task.output / name
        if not path.is_file() or path.stat().st_size != facts.get("bytes"):
            return False, f"{name} is missing or changed"
    return True, ""


# --------------------------------------------------------------------------- running


def run(task: Task, parameters: Parameters, force: bool = False) -> Outcome:
    started = time.perf_counter()
    if not task.input.exists():
        raise NoInput("no such file or folder", task.input)
    _prepare(task.output)
    if not force:
        done, _reason = completed(task, parameters)
        if done:
            return Outcome(task, True, f"{task.relative}: complete results exist in {task.output}, skipped")
    # Results about to be redone are no longer complete: the marker goes first.
    _remove(task.output / MARKER)
    input_fingerprint = fingerprint(task.input)

    clock = time.perf_counter()
    image = volume.load(task.input)
    timings = {"read": round(time.perf_counter() - clock, 4)}
    if parameters.seed is not None:
        _check_seed(parameters.seed, image)
    result = segment(image, parameters)
    timings.update(result.timings)

    clock = time.perf_counter()
    mask_data = volume.mask_bytes(result.mask, image)
    _write(task.output / MASK, mask_data)
    timings["write_mask"] = round(time.perf_counter() - clock, 4)

    clock = time.perf_counter()
    facts = record.build(image, result, parameters, task.relative, timings)
    picture = overlay.overlay_png(image.data, result.mask, image.affine, task.relative, _summary(facts))
    _write(task.output / OVERLAY, picture)
    timings["overlay"] = round(time.perf_counter() - clock, 4)
    timings["total"] = round(time.perf_counter() - started, 4)
    facts["timings_s"] = timings
    facts["outputs"] = {"mask": MASK, "overlay": OVERLAY, "marker": MARKER}
    record_data = (json.dumps(facts, indent=2) + "\n").encode()
    _write(task.output / RECORD, record_data)

    marker = {
        "input": task.relative,
        "fingerprint": input_fingerprint,
        "parameters_digest": parameters_digest(parameters),
        "tool_version": __version__,
        "files": {
            name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in ((MASK, mask_data), (OVERLAY, picture), (RECORD, record_data))
        },
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _write(task.output / MARKER, (json.dumps(marker, indent=2) + "\n").encode())
    return Outcome(task, False, f"{task.relative}: {_summary(facts)}, {timings['total']:.2f} s -> {task.output}")


def _summary(facts: dict) -> str:
    if not facts["lesion_found"]:
        return "no lesion found"
    return f"lesion {facts['volume_ml']:.2f} mL ({facts['voxel_count']} voxels)"


def _check_seed(seed: tuple[int, int, int], image: volume.Volume) -> None:
    if any(not 0 <= s < n for s, n in zip(seed, image.data.shape, strict=True)):
        raise UsageError(f"seed voxel {seed} lies outside the volume of shape {image.data.shape}", image.source)


def _prepare(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(folder)
    except OSError as error:
        raise OutputError(f"cannot create or clean the output folder ({error.strerror or error})", folder) from None


def _write(path: Path, data: bytes) -> None:
    try:
        write_bytes(path, data)
    except OSError as error:
        raise OutputError(f"cannot write ({error.strerror or error})", path) from None


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        raise OutputError(f"cannot remove the old marker ({error.strerror or error})", path) from None
