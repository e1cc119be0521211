"""PRIMAGE segmentation: a classical 3-D lesion segmentation run as one task per medical image."""

__version__ = "0.1.0"
