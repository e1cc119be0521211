"""A PNG a person can look at: the three planes through the lesion, the mask drawn over the image.

Planes are shown in the radiological convention (the patient's right on the left of the axial and
coronal views, anterior on the left of the sagittal view), each side labelled, with square
millimetres (anisotropic voxels are stretched to their true size).
"""

from __future__ import annotations

import io

import numpy as np
from nibabel.orientations import apply_orientation, io_orientation
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

PANEL_MM_PIXELS = 300  # longest side of a panel, in pixels
HEADER_PIXELS = 46
LABEL_PIXELS = 20
FILL = (255, 40, 40)
EDGE = (255, 220, 0)
CROSS = (0, 200, 255)


def overlay_png(data: np.ndarray, mask: np.ndarray, affine: np.ndarray, title: str, summary: str) -> bytes:
    orientation = io_orientation(affine)
    image = apply_orientation(data, orientation)
    lesion = apply_orientation(mask, orientation)
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))[orientation[:, 0].astype(int)]
    point = _focus(lesion)
    grey = _window(image)
    planes = [
        ("axial", f"k={point[2]}", grey[:, :, point[2]], lesion[:, :, point[2]], (spacing[0], spacing[1]), "RL", "AP"),
        (
            "coronal",
            f"j={point[1]}",
            grey[:, point[1], :],
            lesion[:, point[1], :],
            (spacing[0], spacing[2]),
            "RL",
            "SI",
        ),
        (
            "sagittal",
            f"i={point[0]}",
            grey[point[0], :, :],
            lesion[point[0], :, :],
            (spacing[1], spacing[2]),
            "AP",
            "SI",
        ),
    ]
    crosses = [(point[0], point[1]), (point[0], point[2]), (point[1], point[2])]
    scale = max(n * s for n, s in zip(image.shape, spacing, strict=True)) / PANEL_MM_PIXELS
    panels = [_panel(plane, cross, scale) for plane, cross in zip(planes, crosses, strict=True)]
    return _compose(panels, title, summary)


def _focus(lesion: np.ndarray) -> tuple[int, int, int]:
    """The lesion voxel nearest its centroid, or the volume's centre when there is no lesion."""
    if not lesion.any():
        return tuple(n // 2 for n in lesion.shape)
    points = np.argwhere(lesion)
    centre = points.mean(axis=0)
    return tuple(int(v) for v in points[np.argmin(((points - centre) ** 2).sum(axis=1))])


def _window(image: np.ndarray) -> np.ndarray:
    low, high = np.percentile(image, [0.5, 99.5])
    if high <= low:
        high = low + 1
    return (np.clip((image - low) / (high - low), 0, 1) * 255).astype(np.uint8)


def _panel(plane, cross, scale: float) -> Image.Image:
    name, where, grey, lesion, (du, dv), horizontal, vertical = plane
    # Array axes (u, v) become (columns, rows), both reversed: u grows towards R (or A), shown on
    # the left (radiological); v grows towards A (or S), shown at the top.
    grey = grey[::-1, ::-1].T
    lesion = lesion[::-1, ::-1].T
    width = max(1, round(grey.shape[1] * du / scale))
    height = max(1, round(grey.shape[0] * dv / scale))
    base = Image.fromarray(grey, "L").resize((width, height), Image.Resampling.BILINEAR).convert("RGB")
    mask = np.asarray(Image.fromarray(lesion.astype(np.uint8) * 255, "L").resize((width, height))) > 127
    pixels = np.asarray(base).astype(np.float32)
    pixels[mask] = pixels[mask] * 0.55 + np.asarray(FILL, np.float32) * 0.45
    edge = mask & ~ndimage.binary_erosion(mask, iterations=2)
    pixels[edge] = EDGE
    panel = Image.fromarray(pixels.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(panel)
    u, v = cross
    x = (grey.shape[1] - 1 - u + 0.5) * du / scale
    y = (grey.shape[0] - 1 - v + 0.5) * dv / scale
    for start, end in (
        ((x, 0), (x, 6)),
        ((x, height - 7), (x, height - 1)),
        ((0, y), (6, y)),
        ((width - 7, y), (width - 1, y)),
    ):
        draw.line([start, end], fill=CROSS, width=2)
    font = _font(13)
    letters = []
    if width >= 40:
        letters += [(horizontal[0], (3, height // 2 - 8)), (horizontal[1], (width - 13, height // 2 - 8))]
    if height >= 60:  # a one-slice volume makes strips too thin for letters above and below
        letters += [(vertical[0], (width // 2 - 5, 8)), (vertical[1], (width // 2 - 5, height - 24))]
    for text, (left, top) in letters:
        # A dark box under each letter keeps it legible over the image and the position ticks.
        draw.rectangle(draw.textbbox((left, top), text, font=font), fill=(0, 0, 0))
        draw.text((left, top), text, fill="white", font=font)
    framed = Image.new("RGB", (width, height + LABEL_PIXELS), "black")
    framed.paste(panel, (0, LABEL_PIXELS))
    ImageDraw.Draw(framed).text((2, 2), f"{name} {where}", fill=(200, 200, 200), font=_font(13))
    return framed


def _compose(panels: list[Image.Image], title: str, summary: str) -> bytes:
    gap = 8
    width = sum(p.width for p in panels) + gap * (len(panels) + 1)
    height = HEADER_PIXELS + max(p.height for p in panels) + gap
    sheet = Image.new("RGB", (max(width, 480), height), (16, 16, 16))
    draw = ImageDraw.Draw(sheet)
    draw.text((gap, 4), title, fill="white", font=_font(15))
    draw.text((gap, 24), summary, fill=(255, 210, 120), font=_font(13))
    x = gap
    for panel in panels:
        sheet.paste(panel, (x, HEADER_PIXELS))
        x += panel.width + gap
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    return buffer.getvalue()


def _font(size: int):
    return ImageFont.load_default(size=size)
