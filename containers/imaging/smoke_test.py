"""Smoke test of the imaging virtualenv: run at build time (after slimming) and as the image's unit test.

Checks that every pin of requirements.txt is the installed version, that no build tool is left
in the virtualenv, and that each library does its job: linear algebra through the bundled
OpenBLAS (the stripped shared objects load), a 3-D filter and labelling, a NIfTI round trip,
the example MR volume and CT slice the applications' tests read, a PNG with text.
"""

from __future__ import annotations

import importlib.metadata
import io
import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)")


class CheckFailed(Exception):
    pass


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def pins(requirements: Path) -> dict[str, str]:
    found = {}
    for line in requirements.read_text().splitlines():
        match = PIN.match(line)
        if match:
            found[match.group(1).lower()] = match.group(2)
    if not found:
        raise CheckFailed(f"{requirements}: no pinned requirement")
    return found


def check_versions() -> None:
    for name, version in pins(HERE / "requirements.txt").items():
        installed = importlib.metadata.version(name)
        expect(installed == version, f"{name}: installed {installed}, pinned {version}")
    for tool in ("pip", "setuptools", "wheel"):
        try:
            importlib.metadata.version(tool)
        except importlib.metadata.PackageNotFoundError:
            continue
        raise CheckFailed(f"{tool} is installed in the virtualenv; build tools stay in the build stage")


def check_numerics() -> None:
    import numpy as np
    from scipy import ndimage

    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(64, 64))
    expect(np.allclose(np.linalg.inv(matrix) @ matrix, np.eye(64), atol=1e-8), "numpy's OpenBLAS")
    from scipy import linalg

    expect(np.allclose(linalg.solve(matrix, matrix), np.eye(64), atol=1e-8), "scipy's OpenBLAS")
    volume = np.zeros((20, 20, 20), np.float32)
    volume[2:6, 2:6, 2:6] = 1
    volume[10:18, 10:18, 10:18] = 1
    _labels, count = ndimage.label(ndimage.gaussian_filter(volume, 0.5) > 0.5)
    expect(count == 2, f"scipy.ndimage found {count} components, expected 2")


def check_nifti_and_dicom() -> None:
    import nibabel
    import numpy as np
    import pydicom
    from pydicom.data import get_testdata_file

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "roundtrip.nii.gz"
        affine = np.diag([0.8, 0.8, 2.5, 1.0])
        nibabel.save(nibabel.Nifti1Image(np.arange(60, dtype=np.int16).reshape(3, 4, 5), affine), path)
        loaded = nibabel.load(path)
        expect(np.array_equal(np.asarray(loaded.dataobj), np.arange(60).reshape(3, 4, 5)), "NIfTI round trip")
        expect(np.allclose(loaded.affine, affine), "NIfTI affine round trip")
    anatomical = Path(nibabel.__file__).parent / "tests" / "data" / "anatomical.nii"
    expect(nibabel.load(anatomical).shape == (33, 41, 25), "nibabel's example MR volume")
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    expect(ct.pixel_array.shape == (128, 128), "pydicom's example CT slice")


def check_png() -> None:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (120, 40), "black")
    ImageDraw.Draw(image).text((4, 4), "axial", fill="white", font=ImageFont.load_default(size=14))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    again = Image.open(io.BytesIO(buffer.getvalue()))
    expect(again.size == (120, 40), "PNG round trip")
    expect(again.convert("L").getextrema()[1] > 128, "text drawn with the bundled FreeType")


def main() -> int:
    checks = [check_versions, check_numerics, check_nifti_and_dicom, check_png]
    failed = 0
    for check in checks:
        try:
            check()
        except CheckFailed as failure:
            failed += 1
            print(f"FAILED {check.__name__}: {failure}")
        else:
            print(f"ok {check.__name__}")
    print(f"{len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
