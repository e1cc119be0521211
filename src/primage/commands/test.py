"""placeholder"""


def add_parser(subparsers):
    return subparsers.add_parser("test")


def run(args) -> int:
    raise NotImplementedError
