"""placeholder"""


def add_parser(subparsers):
    return subparsers.add_parser("listing")


def run(args) -> int:
    raise NotImplementedError
