"""placeholder"""


def add_parser(subparsers):
    return subparsers.add_parser("render")


def run(args) -> int:
    raise NotImplementedError
