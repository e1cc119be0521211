"""`primage images base [TAG ...]`: bootstrap the base images (debootstrap, no registry needed)."""

from __future__ import annotations

from .. import engine


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "images",
        help="build container images (base images from the distribution archive)",
        description="Build the images the roles' Molecule platforms and the project's Dockerfiles use.",
    )
    actions = parser.add_subparsers(dest="images_action", metavar="ACTION")
    actions.required = True
    base = actions.add_parser(
        "base",
        help="bootstrap base images declared in containers/base/images.yml",
        description="Bootstrap base images with debootstrap and import them into "
        "Docker under their upstream names. Without TAG, the default "
        "ones (Debian 12 and 13). Set PRIMAGE_EXTRA_CA_BUNDLE to a PEM "
        "file to trust an intercepting proxy inside the images.",
    )
    base.add_argument("tags", nargs="*", metavar="TAG", help="image tag, e.g. debian:trixie")
    base.add_argument("--force", action="store_true", help="rebuild even when the recipe did not change")
    return parser


def run(args) -> int:
    engine.ensure_base_images(args.tags or None, force=args.force)
    return 0
