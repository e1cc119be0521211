"""The foreign-style corpus (tests/fixtures/foreign/) and its oracles, shared by the unit tests
(primage agrees with the oracles) and the integration tests (the real IM server agrees too).

The oracles are the real tools, run as a user's setup runs them: IM's translator and its
check of the RADL it makes (what IM does when it creates an infrastructure), and the real
`ec3 launch ... --dry-run`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from primage import release

ROOT = Path(__file__).resolve().parents[2]
FOREIGN = ROOT / "tests" / "fixtures" / "foreign"
TOSCA = sorted((FOREIGN / "tosca").glob("*.yaml"))
RADL = sorted((FOREIGN / "radl").rglob("*.radl"))
EC3 = Path(sys.executable).parent / "ec3"


def header(path: Path, key: str) -> list[str]:
    return [value.strip() for value in re.findall(rf"^# {key}: (.*)$", path.read_text(), re.M)]


def declared(path: Path) -> bool:
    verdict = header(path, "oracle")
    assert verdict in (["accepts"], ["rejects"]), f"{path.name}: declare '# oracle: accepts' or '# oracle: rejects'"
    return verdict == ["accepts"]


def map_url_options(path: Path) -> list[str]:
    """--map-url options for primage: the template's own local copies."""
    maps = [f"{url}={local}" for url, local in url_map(path).items() if url != release.current().raw_base]
    return [arg for entry in maps for arg in ("--map-url", entry)]


def url_map(path: Path) -> dict[str, Path]:
    """URL -> local copy: the template's own (# map-url) and this repository's release, which a
    user's IM would fetch from the repository and this machine cannot."""
    maps = {release.current().raw_base: ROOT}
    for entry in header(path, "map-url"):
        url, local = entry.split("=", 1)
        maps[url] = (path.parent / local).resolve()
    return maps


def _absolute_import(location: str, folder: Path) -> str:
    return location if re.match(r"^\w{2,}://", location) or location.startswith("/") else str(folder / location)


def as_im_reads_it(path: Path) -> str:
    """The template as a user's IM would read it: remote files it fetches come from their
    local copies (file:// URLs); imports are absolute, since IM reads the template from text."""
    text = path.read_text()
    for url, local in url_map(path).items():
        text = text.replace(url, f"file://{local}/" if url.endswith("/") else f"file://{local}")
    data = yaml.safe_load(text)
    imports = data.get("imports") or []
    for index, entry in enumerate(imports):
        if isinstance(entry, str):
            imports[index] = _absolute_import(entry, path.parent)
            continue
        ((name, spec),) = entry.items()
        if isinstance(spec, str):
            entry[name] = _absolute_import(spec, path.parent)
        else:
            spec["file"] = _absolute_import(spec["file"], path.parent)
    return yaml.safe_dump(data, sort_keys=False)


def im_translates(path: Path) -> tuple[bool, str]:
    """IM's translator on the template, and IM's check of the RADL it makes (what IM does
    when it creates the infrastructure)."""
    from IM.tosca.Tosca import Tosca

    try:
        _, radl = Tosca(as_im_reads_it(path)).to_radl()
        radl.check()
    except Exception as exc:  # IM raises bare exceptions
        return False, str(exc)
    return True, ""


def site_of(path: Path) -> Path:
    return FOREIGN / "radl" / path.relative_to(FOREIGN / "radl").parts[0]


def ec3_composes(path: Path, work: Path) -> tuple[bool, str, str]:
    """The real ec3, run as the site's user runs it: the site's templates (its folder and the
    templates/ folder in it) in ./templates, the templates of `# ec3-launch` in that order.
    (accepted, what ec3 said against it, the composed RADL)."""
    (names,) = header(path, "ec3-launch")
    templates = work / "templates"
    templates.mkdir()
    (work / ".ec3").mkdir()
    site = site_of(path)
    for folder in (site / "templates", site):
        for item in folder.iterdir() if folder.is_dir() else []:
            if item.is_file():
                shutil.copy(item, templates / item.name)
    auth = work / "auth.dat"
    with os.fdopen(os.open(auth, os.O_WRONLY | os.O_CREAT, 0o600), "w") as out:
        out.write("id = im; type = InfrastructureManager; username = oracle; password = oracle\n")
    command = [str(EC3), "launch", "oracle", *names.split(), "-a", str(auth), "-u", "http://127.0.0.1:9"]
    completed = subprocess.run(
        [*command, "--dry-run", "-p", "-n", "-y"],
        cwd=work,
        env={"HOME": str(work), "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = completed.stdout + completed.stderr
    # ec3 exits 0 even when a template is missing: read what it says.
    errors = [line for line in output.splitlines() if line.startswith("Error") or "Traceback" in line]
    accepted = completed.returncode == 0 and not errors and "system front" in completed.stdout
    return accepted, "\n".join(errors), completed.stdout
