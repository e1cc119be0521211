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


def add_map_url_option(parser) -> None:
    """--map-url: local copies of remote TOSCA imports and artifacts (see primage.tosca_types.UrlMap)."""
    parser.add_argument(
        "--map-url",
        dest="map_url",
        action="append",
        default=[],
        metavar="URL=PATH",
        help="read URL from a local file (a URL ending in / from a folder) instead of fetching it, e.g. "
        "custom types imported by URL; repeatable",
    )
