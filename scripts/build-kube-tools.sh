#!/usr/bin/env bash
# Build the real Kubernetes commands (kubeadm, kubectl, and the server components the
# harness's test cluster runs) from source, using only the Go module proxy.
#
# Usage: scripts/build-kube-tools.sh [VERSION]        (default v1.36.3)
#
# k8s.io/kubernetes replaces its staging modules (k8s.io/api, k8s.io/client-go,
# ...) with ./staging paths that are not part of its module zip, so it cannot be
# built with a plain `go install`. This script generates, in a temporary
# directory, a wrapper module that requires k8s.io/kubernetes at VERSION and
# every staging module at the matching v0.MINOR.PATCH (the published copies),
# with the same replace set pointing at versions, then builds the commands.
# Nothing fetched is kept in the repository; sources come from GOPROXY and land
# in the usual Go module and build caches (GOMODCACHE, GOCACHE).
#
# Output: ${PRIMAGE_CACHE:-~/.cache/primage}/kube-tools/VERSION/bin/<command>
# Environment:
#   PRIMAGE_CACHE     cache root (default: ${XDG_CACHE_HOME:-~/.cache}/primage)
#   KUBE_TOOLS        commands to build, space separated (default: "kubeadm kubectl"); also
#                     kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy
#   KUBE_TOOLS_FORCE  set to 1 to rebuild even if the binaries are up to date
#   GOTOOLCHAIN       honoured as usual; if the Kubernetes go.mod needs a newer
#                     Go than the installed one, export e.g. GOTOOLCHAIN=go1.27.3
set -euo pipefail

log() { printf '[build-kube-tools +%ss] %s\n' "$SECONDS" "$*" >&2; }
die() { printf '[build-kube-tools] ERROR: %s\n' "$*" >&2; exit 1; }

VERSION="${1:-v1.36.3}"
if [[ ! "$VERSION" =~ ^v1\.([0-9]+)\.([0-9]+)(-[0-9A-Za-z.]+)?$ ]]; then
    die "version must look like v1.36.3 (got '$VERSION')"
fi
MINOR="${BASH_REMATCH[1]}"
PATCH="${BASH_REMATCH[2]}"
PRERELEASE="${BASH_REMATCH[3]}"
STAGING_VERSION="v0.${MINOR}.${PATCH}${PRERELEASE}"

CACHE_ROOT="${PRIMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/primage}"
OUT_DIR="$CACHE_ROOT/kube-tools/$VERSION/bin"
read -r -a TOOLS <<<"${KUBE_TOOLS:-kubeadm kubectl}"
((${#TOOLS[@]} > 0)) || die "KUBE_TOOLS is empty"

# Print the version a built tool reports ("" if it cannot run).
tool_version() {
    local tool="$1" bin="$2"
    case "$tool" in
        kubeadm) "$bin" version -o short 2>/dev/null || true ;;
        kubectl) "$bin" version --client -o yaml 2>/dev/null |
            awk '$1 == "gitVersion:" { print $2; exit }' || true ;;
        *) "$bin" --version 2>/dev/null | awk '{ print $NF; exit }' || true ;;
    esac
}

# --- skip when everything is already built -------------------------------
todo=()
for tool in "${TOOLS[@]}"; do
    case "$tool" in
        kubeadm | kubectl | kube-apiserver | kube-controller-manager | kube-scheduler | kubelet | kube-proxy) ;;
        *) die "unsupported tool '$tool' (supported: kubeadm kubectl kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)" ;;
    esac
    if [[ "${KUBE_TOOLS_FORCE:-0}" != 1 && -x "$OUT_DIR/$tool" ]] &&
        [[ "$(tool_version "$tool" "$OUT_DIR/$tool")" == "$VERSION" ]]; then
        log "$tool $VERSION already built: $OUT_DIR/$tool"
    else
        todo+=("$tool")
    fi
done
if ((${#todo[@]} == 0)); then
    log "nothing to do"
    exit 0
fi

# --- Go -------------------------------------------------------------------
command -v go >/dev/null 2>&1 ||
    die "Go is not installed or not on PATH (need Go >= the 'go' line of k8s.io/kubernetes@$VERSION go.mod; 1.26 for v1.36)"
log "using $(go version) (GOTOOLCHAIN=$(go env GOTOOLCHAIN), GOPROXY=$(go env GOPROXY))"
export CGO_ENABLED=0 # static, like upstream's kubeadm and kubectl (the servers need no cgo either)

WORK="$(mktemp -d "${TMPDIR:-/tmp}/build-kube-tools.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# --- fetch k8s.io/kubernetes and read its go.mod ---------------------------
log "fetching k8s.io/kubernetes@$VERSION from the Go module proxy"
mkdir -p "$WORK/wrapper"
cd "$WORK/wrapper"
K8S_GOMOD=""
if go mod download -json "k8s.io/kubernetes@$VERSION" >"$WORK/download.json" 2>"$WORK/download.err"; then
    K8S_GOMOD="$(awk -F'"' '$2 == "GoMod" { print $4 }' "$WORK/download.json")"
fi
if [[ -z "$K8S_GOMOD" || ! -f "$K8S_GOMOD" ]]; then
    # go mod download -json reports the error in the JSON "Error" field
    sed -n 's/^[[:space:]]*"Error": *//p' "$WORK/download.json" >&2 || true
    cat "$WORK/download.err" >&2 || true
    die "cannot fetch module k8s.io/kubernetes@$VERSION (GOPROXY=$(go env GOPROXY)); is the version published?"
fi
go mod edit -print "$K8S_GOMOD" >"$WORK/kubernetes.go.mod"

GO_DIRECTIVE="$(awk '$1 == "go" { print $2; exit }' "$WORK/kubernetes.go.mod")"
GODEBUG_DIRECTIVE="$(awk '$1 == "godebug" && NF == 2 { print $2; exit }' "$WORK/kubernetes.go.mod")"
LOCAL_GO="$(go env GOVERSION)"
LOCAL_GO="${LOCAL_GO#go}"
if [[ -n "$GO_DIRECTIVE" ]] &&
    [[ "$(printf '%s\n%s\n' "$GO_DIRECTIVE" "${LOCAL_GO%%[-+ ]*}" | sort -V | head -n1)" != "$GO_DIRECTIVE" ]]; then
    die "k8s.io/kubernetes@$VERSION needs Go >= $GO_DIRECTIVE but Go $LOCAL_GO runs; export GOTOOLCHAIN=go1.27.3 (or newer, served by the Go module proxy) and retry"
fi

# Modules k8s.io/kubernetes requires (module path per line).
awk '
    $1 == "require" && $2 == "(" { inblock = 1; next }
    inblock && $1 == ")"         { inblock = 0; next }
    inblock                      { print $1; next }
    $1 == "require"              { print $2 }
' "$WORK/kubernetes.go.mod" | sort -u >"$WORK/required.txt"

# Replace directives: "old new [version]" per line.
awk '
    function emit(start,  i, s) { s = ""; for (i = start; i <= NF; i++) if ($i != "=>") s = s (s == "" ? "" : " ") $i; print s }
    $1 == "replace" && $2 == "(" { inblock = 1; next }
    inblock && $1 == ")"         { inblock = 0; next }
    inblock                      { emit(1); next }
    $1 == "replace"              { emit(2) }
' "$WORK/kubernetes.go.mod" >"$WORK/replaces.txt"

# --- generate the wrapper module -------------------------------------------
edit_args=("-go=$GO_DIRECTIVE" "-require=k8s.io/kubernetes@$VERSION")
[[ -z "$GODEBUG_DIRECTIVE" ]] || edit_args+=("-godebug=$GODEBUG_DIRECTIVE")
n_staging=0
while read -r old new newver; do
    [[ -n "$old" ]] || continue
    old_path="${old%@*}"
    if [[ "$new" == ./* || "$new" == ../* ]]; then
        # staging module: use the published copy at the matching version
        grep -qxF "$old_path" "$WORK/required.txt" || continue
        edit_args+=("-require=$old_path@$STAGING_VERSION" "-replace=$old=$old_path@$STAGING_VERSION")
        n_staging=$((n_staging + 1))
    else
        edit_args+=("-replace=$old=$new${newver:+@$newver}")
    fi
done <"$WORK/replaces.txt"
((n_staging > 0)) || die "found no staging replace directives in k8s.io/kubernetes@$VERSION go.mod; layout changed?"
for tool in "${todo[@]}"; do
    edit_args+=("-tool=k8s.io/kubernetes/cmd/$tool")
done

go mod init primage.invalid/kube-tools-wrapper >/dev/null 2>&1
go mod edit "${edit_args[@]}"
log "wrapper module: k8s.io/kubernetes@$VERSION + $n_staging staging modules @ $STAGING_VERSION (go $GO_DIRECTIVE)"

log "resolving and downloading dependencies (go mod tidy)"
if ! go mod tidy 2>"$WORK/tidy.err"; then
    cat "$WORK/tidy.err" >&2
    die "go mod tidy failed: a module could not be fetched or resolved (see above; GOPROXY=$(go env GOPROXY))"
fi

# --- build -----------------------------------------------------------------
BUILD_DATE="$(go list -m -f '{{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' "k8s.io/kubernetes")"
ldflags="-s -w -buildid="
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$VERSION"
    ldflags+=" -X $pkg.gitMajor=1 -X $pkg.gitMinor=$MINOR"
    ldflags+=" -X $pkg.gitTreeState=archive"
    ldflags+=" -X $pkg.gitCommit="
    [[ -z "$BUILD_DATE" ]] || ldflags+=" -X $pkg.buildDate=$BUILD_DATE"
done

mkdir -p "$OUT_DIR"
for tool in "${todo[@]}"; do
    log "building $tool $VERSION (this takes several minutes on a cold cache)"
    start=$SECONDS
    go build -trimpath -ldflags "$ldflags" -o "$WORK/$tool" "k8s.io/kubernetes/cmd/$tool" ||
        die "building $tool failed"
    got="$(tool_version "$tool" "$WORK/$tool")"
    [[ "$got" == "$VERSION" ]] || die "$tool reports version '$got', expected $VERSION"
    mv -f "$WORK/$tool" "$OUT_DIR/$tool"
    log "built $OUT_DIR/$tool ($((SECONDS - start))s)"
done
log "done: $OUT_DIR"
