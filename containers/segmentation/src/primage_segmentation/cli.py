"""`primage-segment`: run one segmentation task, or write sample volumes with known masks.

primage-segment run [INPUT] [options]     one task (INPUT, or line JOB_COMPLETION_INDEX+1 of
                                          PRIMAGE_INPUT_LIST); exit codes in errors.py
primage-segment sample FOLDER [options]   phantoms with known masks, laid out like a space
"""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from pathlib import Path

from . import __version__, errors, task
from .atomic import remove_open_temporaries
from .segment import Parameters


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise errors.UsageError(f"{message} (see {self.prog} --help)")


def _triple(kind):
    def parse(text: str):
        parts = text.replace(" ", "").split(",")
        try:
            values = tuple(kind(p) for p in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected three comma-separated numbers, got {text!r}") from None
        if len(values) != 3:
            raise argparse.ArgumentTypeError(f"expected three comma-separated numbers, got {text!r}")
        return values

    return parse


def _window(text: str):
    low, sep, high = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected LOW:HIGH (either side may be empty), got {text!r}")
    try:
        bounds = tuple(float(v) if v.strip() else None for v in (low, high))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers in LOW:HIGH, got {text!r}") from None
    if bounds == (None, None):
        raise argparse.ArgumentTypeError("a window needs at least one bound")
    if None not in bounds and bounds[0] > bounds[1]:
        raise argparse.ArgumentTypeError(f"the window's low bound exceeds its high bound in {text!r}")
    return bounds


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def parser() -> argparse.ArgumentParser:
    main = _Parser(prog="primage-segment", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    main.add_argument("--version", action="version", version=f"primage-segmentation {__version__}")
    commands = main.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    run = commands.add_parser(
        "run",
        help="segment one input (a task)",
        description=task.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("input", nargs="?", help="a .nii/.nii.gz file or a DICOM series folder")
    run.add_argument("--input-list", help=f"list of inputs, one per line (default ${task.ENV_INPUT_LIST})")
    run.add_argument("--index", help=f"task index: line INDEX+1 of the list (default ${task.ENV_INDEX})")
    run.add_argument("--input-root", help=f"folder the inputs are relative to (default ${task.ENV_INPUT_ROOT})")
    run.add_argument("--output-dir", help=f"folder of the results (default ${task.ENV_OUTPUT_DIR})")
    run.add_argument(
        "--window",
        type=_window,
        metavar="LOW:HIGH",
        help="intensity window in the image's units instead of the automatic threshold, e.g. 40:200",
    )
    run.add_argument(
        "--smoothing-mm",
        type=_non_negative,
        default=Parameters.smoothing_mm,
        help="Gaussian denoising sigma in mm (default %(default)s)",
    )
    run.add_argument(
        "--opening-mm",
        type=_non_negative,
        default=Parameters.opening_mm,
        help="radius of the morphological opening in mm (default %(default)s)",
    )
    run.add_argument("--no-fill-holes", action="store_true", help="keep holes inside the lesion")
    run.add_argument(
        "--seed",
        type=_triple(int),
        metavar="I,J,K",
        help="voxel inside the lesion: keep the component holding it instead of the largest",
    )
    run.add_argument("--force", action="store_true", help="redo even when complete results exist")

    sample = commands.add_parser(
        "sample", help="write phantoms with known masks into a space-like folder", aliases=["phantoms"]
    )
    sample.add_argument("folder", type=Path)
    sample.add_argument("--count", type=int, default=4, help="number of cases (default %(default)s)")
    sample.add_argument("--shape", type=_triple(int), metavar="X,Y,Z", help="voxels of every case")
    sample.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    return main


def _terminate(signum, frame):
    raise errors.Terminated()


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    try:
        args = parser().parse_args(argv)
        if args.command == "run":
            return _run(args)
        return _sample(args)
    except errors.TaskError as error:
        print(error.line(), file=sys.stderr, flush=True)
        return error.code
    except (errors.Terminated, KeyboardInterrupt):
        remove_open_temporaries()
        print("stopped: no partial result left under a final name", file=sys.stderr, flush=True)
        return errors.TERMINATED
    except Exception:
        remove_open_temporaries()
        traceback.print_exc()
        print(f"internal error (exit {errors.INTERNAL}): please report it with the traceback above", file=sys.stderr)
        return errors.INTERNAL


def _run(args) -> int:
    which = task.resolve(args.input, args.input_list, args.index, args.input_root, args.output_dir)
    parameters = Parameters(
        smoothing_mm=args.smoothing_mm,
        window=args.window,
        opening_mm=args.opening_mm,
        fill_holes=not args.no_fill_holes,
        seed=args.seed,
    )
    outcome = task.run(which, parameters, force=args.force)
    print(outcome.summary, flush=True)
    return errors.OK


def _sample(args) -> int:
    from .phantoms import write_sample_space

    if args.count < 1:
        raise errors.UsageError(f"--count must be at least 1, got {args.count}")
    if args.shape is not None and min(args.shape) < 8:
        raise errors.UsageError(f"--shape needs at least 8 voxels per axis, got {args.shape}")
    try:
        manifest = write_sample_space(args.folder, count=args.count, shape=args.shape, seed=args.seed)
    except OSError as error:
        raise errors.OutputError(f"cannot write the sample ({error.strerror or error})", args.folder) from None
    for case in manifest["cases"]:
        print(f"{case['input']}: lesion {case['truth_volume_ml']:.2f} mL (truth: {case['truth']})", flush=True)
    print(f"{len(manifest['cases'])} cases in {args.folder}; input list {args.folder / manifest['list']}")
    return errors.OK


if __name__ == "__main__":
    sys.exit(main())
