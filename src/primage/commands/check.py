"""placeholder"""


def add_parser(subparsers):
    return subparsers.add_parser("check")


def run(args) -> int:
    raise NotImplementedError
