"""The test cluster's binaries and images: their pins, where they are cached, how they are built.

Everything comes from the Go module proxy and Debian's archive (no Kubernetes download site,
no registry is reachable where this project is built). Versions are read from the one place
for each: the kubernetes role's defaults (Kubernetes, pause) and `data/cluster.yml` (the rest).
Builds land in the user's cache folder, keyed by what they were built from, so a second
`primage cluster build` only checks stamps and takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path

from .. import engine, paths, release, roles, yamlio
from ..errors import PrimageError
from . import oci

PINS_FILE = Path(__file__).resolve().parent.parent / "data" / "cluster.yml"
GO_FALLBACK = Path("/usr/local/go/bin")
DEVICE_PLUGIN_IMAGE = "primage/fuse-device-plugin"


@dataclass(frozen=True)
class GoModule:
    name: str
    module: str
    version: str
    commands: dict[str, str]
    tags: tuple[str, ...] = ()
    version_variable: str = ""
    check: tuple[str, ...] = ()
    expect: str = ""
    # module path -> module@version: the replace directives of the module's own go.mod, which a
    # wrapper module must repeat (Go ignores a dependency's replace directives).
    replace: tuple[tuple[str, str], ...] = ()
    cgo: bool = False  # built with cgo (Debian's gcc); static Go builds otherwise

    def recipe(self) -> str:
        """What its build depends on: the fields' repr, leaving out replace and cgo while unset (they
        came later: adding them must not rebuild the modules that have neither)."""
        shown = [f for f in fields(self) if f.name not in ("replace", "cgo") or getattr(self, f.name) != f.default]
        return f"GoModule({', '.join(f'{f.name}={getattr(self, f.name)!r}' for f in shown)})"


@dataclass(frozen=True)
class Pins:
    kubernetes_version: str  # without the leading v, as the role writes it
    pause_version: str
    kubernetes_commands: tuple[str, ...]
    go_modules: tuple[GoModule, ...]
    pause_source: str
    debian_packages: tuple[str, ...]
    image_repository: str = "registry.k8s.io"

    @property
    def pause_image(self) -> str:
        return f"{self.image_repository}/pause:{self.pause_version}"

    def module(self, name: str) -> GoModule:
        return next(module for module in self.go_modules if module.name == name)


@cache
def pins() -> Pins:
    data, _ = yamlio.load_file(PINS_FILE)
    defaults = roles.find("kubernetes").defaults()
    return Pins(
        kubernetes_version=str(defaults["kubernetes_version"]),
        pause_version=str(defaults["kubernetes_pause_version"]),
        kubernetes_commands=tuple(data["kubernetes_commands"]),
        go_modules=go_modules(PINS_FILE),
        pause_source=data["pause"]["source"],
        debian_packages=tuple(data["debian_packages"]),
        image_repository=str(defaults.get("kubernetes_image_repository", "registry.k8s.io")),
    )


def go_modules(pins_file: Path) -> tuple[GoModule, ...]:
    """The `go_modules` of a pins file (cluster.yml, oidc.yml)."""
    data, lines = yamlio.load_file(pins_file)
    modules = []
    for name, entry in (data.get("go_modules") or {}).items():
        missing = [key for key in ("module", "version", "commands") if key not in entry]
        if missing:
            raise PrimageError(
                f"Go module '{name}' lacks {', '.join(missing)}", file=pins_file, line=lines.line_of("go_modules", name)
            )
        modules.append(
            GoModule(
                name=name,
                module=entry["module"],
                version=entry["version"],
                commands=dict(entry["commands"]),
                tags=tuple(entry.get("tags") or ()),
                version_variable=entry.get("version_variable", ""),
                check=tuple(entry.get("check") or ()),
                expect=entry.get("expect", ""),
                replace=tuple(sorted((entry.get("replace") or {}).items())),
                cgo=bool(entry.get("cgo", False)),
            )
        )
    return tuple(modules)


# --------------------------------------------------------------------------- where things live


def tools_dir() -> Path:
    return paths.cache_dir() / "cluster-tools"


def kube_bin_dir() -> Path:
    """scripts/build-kube-tools.sh's output folder (the Molecule harness finds kubeadm there too)."""
    return paths.cache_dir() / "kube-tools" / f"v{pins().kubernetes_version}" / "bin"


def module_bin_dir(module: GoModule, base: Path | None = None) -> Path:
    return (base or tools_dir()) / f"{module.name}-{module.version}" / "bin"


def pause_dir() -> Path:
    return tools_dir() / f"pause-{pins().pause_version}"


def device_plugin_source() -> Path:
    return paths.containers_dir() / "fuse-device-plugin"


def device_plugin_dir() -> Path:
    return tools_dir() / f"fuse-device-plugin-{_device_plugin_recipe()[:12]}"


def device_plugin_image() -> str:
    """Tagged with the project's release (the DaemonSet manifest of the repository names it)."""
    return f"{DEVICE_PLUGIN_IMAGE}:{release.current().version}"


@dataclass
class Binaries:
    """Absolute paths of every program the cluster runs."""

    paths: dict[str, Path] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Path:
        return self.paths[name]

    def missing(self) -> list[str]:
        return [name for name, path in self.paths.items() if not os.access(path, os.X_OK)]


def binaries() -> Binaries:
    found = Binaries()
    for command in pins().kubernetes_commands:
        found.paths[command] = kube_bin_dir() / command
    for module in pins().go_modules:
        for command in module.commands:
            found.paths[command] = module_bin_dir(module) / command
    found.paths["pause"] = pause_dir() / "bin" / "pause"
    found.paths["fuse-device-plugin"] = device_plugin_dir() / "bin" / "fuse-device-plugin"
    for program in ("runc", "iptables", "iptables-save", "conntrack", "socat", "ip"):
        found.paths[program] = Path(shutil.which(program, path=_system_path()) or f"/usr/sbin/{program}")
    for plugin in ("bridge", "host-local", "loopback", "portmap", "firewall"):
        found.paths[f"cni/{plugin}"] = cni_bin_dir() / plugin
    return found


def cni_bin_dir() -> Path:
    """Debian's containernetworking-plugins install here (upstream's /opt/cni/bin elsewhere)."""
    return Path("/usr/lib/cni")


def archive_image(archive: Path) -> tuple[str, str]:
    """The full name and manifest digest of a built archive (recorded beside it when written)."""
    recorded = json.loads((archive.parent / "recipe.json").read_text())
    return oci.full_name(recorded["image"]), recorded["digest"]


def pause_archive() -> Path:
    return pause_dir() / "image.tar"


def device_plugin_archive() -> Path:
    return device_plugin_dir() / "image.tar"


def require_built() -> Binaries:
    """The binaries, or a clear error naming what is missing and how to get it."""
    found = binaries()
    missing = found.missing()
    archives = [archive for archive in (pause_archive(), device_plugin_archive()) if not archive.is_file()]
    if missing or archives:
        built = [name for name in missing if not name.startswith("cni/") and name not in _DEBIAN_PROGRAMS]
        debian = [name for name in missing if name.startswith("cni/") or name in _DEBIAN_PROGRAMS]
        parts = []
        if built or archives:
            names = built + [archive.parent.name + "/" + archive.name for archive in archives]
            parts.append(f"not built: {', '.join(names)} (run `primage cluster build`)")
        if debian:
            parts.append(
                f"not installed: {', '.join(debian)} (Debian packages {', '.join(pins().debian_packages)}; "
                "scripts/setup.sh installs them)"
            )
        raise PrimageError("the cluster cannot start: " + "; ".join(parts))
    return found


_DEBIAN_PROGRAMS = {"runc", "iptables", "iptables-save", "conntrack", "socat", "ip"}


def _system_path() -> str:
    return os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin:/bin"


# --------------------------------------------------------------------------- building


@dataclass
class Outcome:
    component: str
    version: str
    status: str  # built | up to date
    seconds: float

    def row(self) -> list[str]:
        return [self.component, self.version, self.status, f"{self.seconds:.1f}"]


def go_environment() -> dict[str, str]:
    """Go with its module and build caches in the user's cache folder (as scripts/setup.sh sets)."""
    env = dict(os.environ)
    go = shutil.which("go") or (str(GO_FALLBACK / "go") if (GO_FALLBACK / "go").exists() else "")
    if not go:
        raise PrimageError("Go is not installed (need Go 1.26 or newer to build the cluster; scripts/setup.sh checks)")
    env["PATH"] = f"{Path(go).parent}:{env.get('PATH', '')}"
    env.setdefault("GOMODCACHE", str(paths.cache_dir() / "go" / "mod"))
    env.setdefault("GOCACHE", str(paths.cache_dir() / "go" / "build"))
    env["CGO_ENABLED"] = "0"
    env["GOFLAGS"] = "-mod=mod"
    return env


def _go_version(env: dict[str, str]) -> str:
    return subprocess.run(
        ["go", "env", "GOVERSION"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def _log_file(name: str) -> Path:
    folder = tools_dir() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.log"


def _run_logged(command: list[str], log: Path, what: str, **kwargs) -> None:
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(command)}\n".encode())
        out.flush()
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False, **kwargs)
    if result.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-6:]
        raise PrimageError(f"{what} failed (exit {result.returncode}): " + " | ".join(tail), file=log)


def _stamp_matches(folder: Path, recipe: str, outputs: list[Path]) -> bool:
    stamp = folder / "recipe.json"
    if not stamp.is_file() or not all(path.exists() for path in outputs):
        return False
    return json.loads(stamp.read_text()).get("recipe") == recipe


def _write_stamp(folder: Path, recipe: str, detail: dict) -> None:
    (folder / "recipe.json").write_text(json.dumps({"recipe": recipe, **detail}, indent=2) + "\n")


def _recipe(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def build_kubernetes(force: bool) -> Outcome:
    """kube-apiserver ... kubeadm, by scripts/build-kube-tools.sh (it skips what is current)."""
    start = time.monotonic()
    version = f"v{pins().kubernetes_version}"
    commands = pins().kubernetes_commands
    before = {c: _mtime(kube_bin_dir() / c) for c in commands}
    env = go_environment()
    env["KUBE_TOOLS"] = " ".join(commands)
    env["PRIMAGE_CACHE"] = str(paths.cache_dir())
    if force:
        env["KUBE_TOOLS_FORCE"] = "1"
    log = _log_file("kubernetes")
    log.write_text("")
    _run_logged([str(paths.root() / "scripts" / "build-kube-tools.sh"), version], log, "building Kubernetes", env=env)
    rebuilt = [c for c in commands if _mtime(kube_bin_dir() / c) != before[c]]
    return Outcome("kubernetes", version, "built" if rebuilt else "up to date", time.monotonic() - start)


def _mtime(path: Path) -> float | None:
    return path.stat().st_mtime if path.exists() else None


def build_go_module(module: GoModule, force: bool, base: Path | None = None) -> Outcome:
    """Build a module's commands in a generated wrapper module that requires it at its pin
    (under `base`, default the cluster's tools folder)."""
    start = time.monotonic()
    env = go_environment()
    if module.cgo:
        if not shutil.which("gcc"):
            raise PrimageError(f"gcc is not installed: {module.name} is built with cgo (Debian packages gcc libc6-dev)")
        env["CGO_ENABLED"] = "1"
    bin_dir = module_bin_dir(module, base)
    ldflags = "-s -w -buildid="
    if module.version_variable:
        ldflags += f" -X {module.version_variable}={module.version}"
    recipe = _recipe(module.recipe(), ldflags, _go_version(env))
    outputs = [bin_dir / command for command in module.commands]
    if not force and _stamp_matches(bin_dir.parent, recipe, outputs):
        return Outcome(module.name, module.version, "up to date", time.monotonic() - start)
    log = _log_file(module.name)
    log.write_text("")
    bin_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"primage-{module.name}-") as work:
        _run_logged(
            ["go", "mod", "init", f"primage.invalid/{module.name}-wrapper"], log, "go mod init", cwd=work, env=env
        )
        tools = [f"-tool={package}" for package in module.commands.values()]
        replacements = [f"-replace={path}={target}" for path, target in module.replace]
        _run_logged(
            ["go", "mod", "edit", f"-require={module.module}@{module.version}", *tools, *replacements],
            log,
            "go mod edit",
            cwd=work,
            env=env,
        )
        _run_logged(["go", "mod", "tidy"], log, f"resolving {module.module}@{module.version}", cwd=work, env=env)
        for command, package in module.commands.items():
            engine.progress(f"{module.name}: building {command} {module.version}")
            build = ["go", "build", "-trimpath", "-ldflags", ldflags, "-o", str(bin_dir / f".{command}.new")]
            if module.tags:
                build += ["-tags", ",".join(module.tags)]
            _run_logged([*build, package], log, f"building {command}", cwd=work, env=env)
            (bin_dir / f".{command}.new").replace(bin_dir / command)
    _check_version(module, bin_dir, log)
    _write_stamp(bin_dir.parent, recipe, {"module": module.module, "version": module.version})
    return Outcome(module.name, module.version, "built", time.monotonic() - start)


def _check_version(module: GoModule, bin_dir: Path, log: Path) -> None:
    if not module.check:
        return
    command = [str(bin_dir / module.check[0]), *module.check[1:]]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if module.expect not in result.stdout + result.stderr:
        raise PrimageError(
            f"{module.check[0]} reports {(result.stdout + result.stderr).strip()!r}, expected {module.expect!r}",
            file=log,
        )


def build_pause(force: bool) -> Outcome:
    """Upstream's pause.c (from the k8s.io/kubernetes module) compiled statically, and its image."""
    start = time.monotonic()
    version = pins().pause_version
    env = go_environment()
    folder = pause_dir()
    gcc = shutil.which("gcc")
    if not gcc:
        raise PrimageError("gcc is not installed: it compiles the pause program (Debian packages gcc libc6-dev)")
    gcc_version = subprocess.run([gcc, "-dumpfullversion"], capture_output=True, text=True, check=False).stdout.strip()
    recipe = _recipe(
        "pause", version, pins().kubernetes_version, pins().pause_source, gcc_version, pins().pause_image, _writer()
    )
    if not force and _stamp_matches(folder, recipe, [folder / "bin" / "pause", pause_archive()]):
        return Outcome("pause", version, "up to date", time.monotonic() - start)
    log = _log_file("pause")
    log.write_text("")
    module = f"k8s.io/kubernetes@v{pins().kubernetes_version}"
    result = subprocess.run(
        ["go", "mod", "download", "-json", module],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=tools_dir(),
    )
    source_dir = json.loads(result.stdout or "{}").get("Dir")
    if result.returncode != 0 or not source_dir:
        raise PrimageError(f"cannot fetch {module} from the Go module proxy: {result.stdout.strip() or result.stderr}")
    source = Path(source_dir) / pins().pause_source
    (folder / "bin").mkdir(parents=True, exist_ok=True)
    output = folder / "bin" / "pause"
    # As upstream's build/pause/Makefile: -Os -static, the version compiled in.
    _run_logged(
        [gcc, "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{version}", "-o", str(output), str(source)],
        log,
        "compiling pause",
    )
    _run_logged(["strip", str(output)], log, "stripping pause")
    digest = oci.write_archive(
        pause_archive(),
        pins().pause_image,
        [oci.ImageFile("/pause", output)],
        {"Entrypoint": ["/pause"], "User": "65535:65535"},
    )
    _write_stamp(
        folder, recipe, {"source": f"{module}/{pins().pause_source}", "image": pins().pause_image, "digest": digest}
    )
    return Outcome("pause", version, "built", time.monotonic() - start)


def _writer() -> str:
    """The archive writer's own source: a change to it rewrites the images."""
    return hashlib.sha256(Path(oci.__file__).read_bytes()).hexdigest()


@cache
def _device_plugin_recipe() -> str:
    source = device_plugin_source()
    files = sorted(p for p in source.iterdir() if p.is_file() and p.suffix in {".go", ".mod", ".sum"})
    return _recipe([(p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in files])


def build_device_plugin(force: bool) -> Outcome:
    """The project's FUSE device plugin (containers/fuse-device-plugin), static, and its image."""
    start = time.monotonic()
    folder = device_plugin_dir()
    output = folder / "bin" / "fuse-device-plugin"
    env = go_environment()
    recipe = _recipe(_device_plugin_recipe(), _go_version(env), device_plugin_image(), _writer())
    if not force and _stamp_matches(folder, recipe, [output, device_plugin_archive()]):
        return Outcome("fuse-device-plugin", _device_plugin_recipe()[:12], "up to date", time.monotonic() - start)
    log = _log_file("fuse-device-plugin")
    log.write_text("")
    output.parent.mkdir(parents=True, exist_ok=True)
    _run_logged(
        ["go", "build", "-trimpath", "-ldflags", "-s -w -buildid=", "-o", str(output), "."],
        log,
        "building the FUSE device plugin",
        cwd=device_plugin_source(),
        env={**env, "GOFLAGS": "-mod=readonly"},
    )
    digest = oci.write_archive(
        device_plugin_archive(),
        device_plugin_image(),
        [oci.ImageFile("/fuse-device-plugin", output)],
        {"Entrypoint": ["/fuse-device-plugin"]},
    )
    _write_stamp(folder, recipe, {"image": device_plugin_image(), "digest": digest})
    return Outcome("fuse-device-plugin", _device_plugin_recipe()[:12], "built", time.monotonic() - start)


COMPONENTS = ("kubernetes", "etcd", "containerd", "pause", "fuse-device-plugin")


def build(only: list[str] | None = None, force: bool = False) -> list[Outcome]:
    """Build what is missing or stale (every component by default), with progress."""
    wanted = only or list(COMPONENTS)
    unknown = [name for name in wanted if name not in COMPONENTS]
    if unknown:
        raise PrimageError(f"unknown component {', '.join(unknown)} (known: {', '.join(COMPONENTS)})")
    tools_dir().mkdir(parents=True, exist_ok=True)
    outcomes = []
    for name in COMPONENTS:
        if name not in wanted:
            continue
        engine.progress(f"{name}: checking (log: {paths.relative(_log_file(name))})")
        if name == "kubernetes":
            outcome = build_kubernetes(force)
        elif name == "pause":
            outcome = build_pause(force)
        elif name == "fuse-device-plugin":
            outcome = build_device_plugin(force)
        else:
            outcome = build_go_module(pins().module(name), force)
        engine.progress(f"{name} {outcome.version}: {outcome.status} ({outcome.seconds:.1f} s)")
        outcomes.append(outcome)
    return outcomes
