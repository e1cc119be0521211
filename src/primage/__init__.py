"""PRIMAGE platform harness: render, check and test every template, role and image of the repository."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("primage-platform")
except PackageNotFoundError:  # running from a checkout without installation
    __version__ = "0.0.0"
