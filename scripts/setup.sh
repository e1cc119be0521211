#!/usr/bin/env bash
# Set up everything the project needs on a fresh Debian 12 machine, idempotently:
#   1. Debian packages: the Docker engine (docker.io), debootstrap, FUSE tools, linters' helpers;
#   2. the Python virtualenv .venv with every tool pinned in constraints.txt;
#   3. a running Docker engine and the base images (bootstrapped from Debian's archive);
#   4. the real kubeadm/kubectl of the pinned Kubernetes version, built from the Go module
#      proxy (the kubernetes role's tests validate its rendered configuration with it).
# Options: --no-images, --no-kube-tools (e.g. for `primage check` alone).
# Environment: PRIMAGE_EXTRA_CA_BUNDLE (PEM file trusted inside base images; default: the
# certificates this machine trusts beyond Debian's own), PRIMAGE_CACHE (default .cache).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)

with_images=1
with_kube_tools=1
for arg in "$@"; do
  case "$arg" in
    --no-images) with_images=0 ;;
    --no-kube-tools) with_kube_tools=0 ;;
    -h | --help)
      sed -n '2,12p' "$0"
      exit 0
      ;;
    *)
      echo "setup.sh: unknown option '$arg' (see --help)" >&2
      exit 2
      ;;
  esac
done

step() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "setup.sh: '$*' needs root and sudo is not installed" >&2
    exit 1
  fi
}

debian_packages=(
  docker.io        # the container engine for Molecule and image builds
  debootstrap      # base images without a registry
  bindfs fuse3     # FUSE on the host (tests drive mounts through it)
  shellcheck       # lint of shell scripts
  python3-venv     # the project virtualenv
  gnupg dpkg-dev   # signed stub apt repositories for Molecule scenarios
  ca-certificates git
)
missing=()
for package in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  step "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "setup.sh: the project runs on Python 3.11; $python is $("$python" --version 2>&1) (set PYTHON=...)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  step "creating the virtualenv .venv"
  "$python" -m venv .venv
fi
stamp=.venv/.primage-installed
if [ ! -f "$stamp" ] || [ constraints.txt -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  step "installing the pinned Python tools into .venv (about 1 minute)"
  .venv/bin/pip install --quiet -c constraints.txt -e '.[test]'
  touch "$stamp"
fi

if [ "$with_images" -eq 1 ]; then
  step "starting the Docker engine and bootstrapping base images (first time: about 2 minutes each)"
  .venv/bin/primage images base
fi

if [ "$with_kube_tools" -eq 1 ]; then
  if command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ]; then
    export PATH="$PATH:/usr/local/go/bin"
    cache=${PRIMAGE_CACHE:-$root/.cache}
    export GOMODCACHE=${GOMODCACHE:-$cache/go/mod} GOCACHE=${GOCACHE:-$cache/go/build}
    kube_version=v$(sed -n 's/^kubernetes_version: *"\{0,1\}\([0-9.]*\)"\{0,1\}.*/\1/p' ansible/roles/kubernetes/defaults/main.yml)
    step "building the real kubeadm and kubectl $kube_version from the Go module proxy (cold: 2-7 minutes)"
    KUBE_TOOLS="kubeadm kubectl" scripts/build-kube-tools.sh "$kube_version"
  else
    echo "setup.sh: Go is not installed: the kubernetes role's kubeadm validation will fail (install Go 1.26)" >&2
    exit 1
  fi
fi
step "ready: .venv/bin/primage --help"
