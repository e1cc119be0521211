"""`primage batch submit`: a batch application, the HTC application with one task (one input file).

Everything else is `primage htc submit`'s: the same workload (an Indexed Job of one completion),
the same backends, resuming, retries, progress, results table and overview.
"""

from __future__ import annotations

from . import htc


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "batch",
        help="batch applications: one task over one input (submit)",
        description=__doc__.split("\n\n")[0],
    )
    actions = parser.add_subparsers(dest="batch_action", metavar="ACTION")
    actions.required = True
    submit = actions.add_parser(
        "submit",
        help="run the application's image once, over one input file or DICOM series of a space",
        description="One task over the one input --files names (a pattern that matches exactly one), "
        "with the task contract's input list, index and output folder.",
    )
    htc.add_submit_options(submit, one_task=True)
    return parser


def run(args) -> int:
    return htc.submit(args, "batch")
