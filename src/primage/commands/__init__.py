"""Sub-commands of `primage`, one module each, and the options several of them share."""


def add_input_options(parser) -> None:
    """-i/--inputs and --set: input values of TOSCA templates (see primage.tosca.input_values)."""
    parser.add_argument(
        "-i",
        "--inputs",
        action="append",
        default=[],
        metavar="FILE",
        help="YAML mapping of input values (repeatable; later files win)",
    )
    parser.add_argument(
        "--set",
        dest="set_options",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="one input value, parsed as YAML (not for secrets: use -i with a private file)",
    )
