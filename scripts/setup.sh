#!/usr/bin/env bash
# Set up everything the project needs on a fresh Debian 12 machine, idempotently:
#   1. Debian packages: the Docker engine (docker.io), debootstrap, FUSE tools, linters' helpers,
#      the registry the image push test starts (docker-registry, its service left off);
#   2. the Python virtualenv .venv with every tool pinned in constraints.txt, and actionlint
#      (the GitHub workflow linter) built from the Go module proxy when Go is installed
#      (and checkov, pinned in constraints-checkov.txt, in its own virtualenv .venv/tools/checkov);
#   3. a running Docker engine and the base images (bootstrapped from Debian's archive);
#   4. the test cluster's binaries, built from the Go module proxy: Kubernetes of the pinned
#      version (kubeadm, kubectl, the servers), etcd, containerd, pause and the FUSE device
#      plugin (`primage cluster build`; the kubernetes role's tests validate with its kubeadm);
#   5. the test OpenID Connect provider standing in for EGI Check-in: ORY Hydra from the Go
#      module proxy (`primage oidc build`), and Debian's oidc-agent for the tests of the command.
# Options: --no-images, --no-kube-tools (e.g. for `primage check` alone).
# Environment: PRIMAGE_EXTRA_CA_BUNDLE (PEM file trusted inside base images; default: the
# certificates this machine trusts beyond Debian's own), PRIMAGE_CACHE (default ~/.cache/primage).
set -euo pipefail

cd "$(dirname "$0")/.."

with_images=1
with_kube_tools=1
for arg in "$@"; do
  case "$arg" in
    --no-images) with_images=0 ;;
    --no-kube-tools) with_kube_tools=0 ;;
    -h | --help)
      sed -n '2,16p' "$0"
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
  docker-registry  # the TLS registry with htpasswd that the image push test starts on loopback
  chromium         # headless, the tests open the applications' HTML reports in it
  ca-certificates git
  # the test cluster (primage cluster): src/primage/data/cluster.yml debian_packages, and gcc
  # for the static pause program
  runc containernetworking-plugins conntrack socat iptables
  gcc libc6-dev
  oidc-agent-cli   # what EGI users get access tokens with; the OIDC tests drive it
)
missing=()
for package in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  step "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The package starts an open registry on port 5000 where systemd runs; the tests start
  # their own (TLS, htpasswd, loopback) and nothing else should listen.
  if [[ " ${missing[*]} " == *" docker-registry "* ]] && [ -d /run/systemd/system ]; then
    as_root systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
  fi
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
# checkov (the offline policy checker of the rendered workloads) pins boto3, tabulate... exactly,
# against constraints.txt: it gets a virtualenv of its own, linked into .venv/bin. It installs in
# the background beside .venv's own tools (neither reads the other); setup waits for it below.
checkov_venv=.venv/tools/checkov
checkov_pid=
if [ ! -f "$checkov_venv/.primage-installed" ] || [ constraints-checkov.txt -nt "$checkov_venv/.primage-installed" ]; then
  step "installing checkov into its own virtualenv $checkov_venv in the background (about 1 minute)"
  checkov_log=$(mktemp)
  (
    "$python" -m venv "$checkov_venv" &&
      "$checkov_venv/bin/pip" install --quiet --disable-pip-version-check -r constraints-checkov.txt &&
      ln -sfn ../tools/checkov/bin/checkov .venv/bin/checkov &&
      touch "$checkov_venv/.primage-installed"
  ) >"$checkov_log" 2>&1 &
  checkov_pid=$!
fi

stamp=.venv/.primage-installed
if [ ! -f "$stamp" ] || [ constraints.txt -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  step "installing the pinned Python tools into .venv (about 1 minute)"
  .venv/bin/pip install --quiet -c constraints.txt -e '.[test]'
  touch "$stamp"
fi

# actionlint, the GitHub Actions workflow linter pre-commit runs, from the Go module proxy
# (its PyPI wrapper downloads a binary from GitHub). The pin lives here, the one Go-built linter.
actionlint_version=v1.7.12
if command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ]; then
  if ! .venv/bin/actionlint -version 2>/dev/null | head -n 1 | grep -qx "$actionlint_version"; then
    step "building actionlint $actionlint_version from the Go module proxy"
    cache=${PRIMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/primage}
    PATH="$PATH:/usr/local/go/bin" GOBIN="$(pwd)/.venv/bin" GOMODCACHE=${GOMODCACHE:-$cache/go/mod} \
      GOCACHE=${GOCACHE:-$cache/go/build} CGO_ENABLED=0 \
      go install "github.com/rhysd/actionlint/cmd/actionlint@$actionlint_version"
  fi
else
  echo "setup.sh: Go is not installed: the actionlint hook of the lint env will fail (install Go 1.26)" >&2
fi

# The base images (debootstrap: the network and dpkg) bootstrap in the background while the Go
# builds below use the cores; their log is shown if they fail, and setup waits for them.
images_pid=
if [ "$with_images" -eq 1 ]; then
  step "starting the Docker engine and bootstrapping base images in the background (first time: about 2 minutes each)"
  images_log=$(mktemp)
  .venv/bin/primage images base >"$images_log" 2>&1 &
  images_pid=$!
fi

if [ "$with_kube_tools" -eq 1 ]; then
  if command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ]; then
    export PATH="$PATH:/usr/local/go/bin"
    step "building the test cluster's binaries from the Go module proxy (cold: 15-25 minutes; warm: seconds)"
    .venv/bin/primage cluster build
  else
    echo "setup.sh: Go is not installed: the test cluster and kubeadm cannot be built (install Go 1.26)" >&2
    exit 1
  fi
fi
if command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ]; then
  export PATH="$PATH:/usr/local/go/bin"
  step "building the test OpenID Connect provider (ORY Hydra) from the Go module proxy (cold: 7-9 minutes; warm: a stamp check)"
  .venv/bin/primage oidc build
else
  echo "setup.sh: Go is not installed: the OIDC tests of the integration env will fail (install Go 1.26)" >&2
fi
if [ -n "$checkov_pid" ]; then
  if ! wait "$checkov_pid"; then
    cat "$checkov_log" >&2
    echo "setup.sh: installing checkov into $checkov_venv failed (its output is above)" >&2
    exit 1
  fi
  rm -f "$checkov_log"
fi
if [ -n "$images_pid" ]; then
  step "waiting for the base images"
  if ! wait "$images_pid"; then
    cat "$images_log" >&2
    echo "setup.sh: bootstrapping the base images failed (its output is above)" >&2
    exit 1
  fi
  cat "$images_log"
  rm -f "$images_log"
fi
step "ready: .venv/bin/primage --help"
