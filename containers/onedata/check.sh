#!/bin/bash
# primage-onedata-check: what the entrypoint of an Onedata variant relies on, checked inside the
# image (at the end of its build, and as its unit test): oneclient at the version the build pinned
# and runnable, the tools the entrypoint calls, the application's command recorded from its image.
set -uo pipefail

readonly SHARE=/usr/local/share/primage-onedata
problems=0
problem() {
  printf 'primage-onedata-check: %s\n' "$*" >&2
  problems=$((problems + 1))
}

package_spec=$(<"$SHARE/oneclient")
package=${package_spec%%=*}
pinned=${package_spec#*=}
installed=$(dpkg-query --show --showformat='${Version}' "$package" 2>/dev/null) ||
  problem "the package $package is not installed"
[[ ${installed:-} == "$pinned" ]] || problem "$package ${installed:-(none)} is installed, the build pinned $pinned"
if ! version=$(oneclient --version 2>&1); then
  problem "oneclient --version failed: $version"
fi

for tool in tini setpriv setsid findmnt umount getent timeout id install mktemp; do
  command -v "$tool" >/dev/null || problem "$tool is missing from the image (the entrypoint calls it)"
done
((BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1))) ||
  problem "bash $BASH_VERSION is older than 5.1 (the entrypoint waits with wait -n -p)"

command=()
for part in entrypoint cmd; do
  [[ -s $SHARE/$part ]] || continue
  mapfile -d '' -t words <"$SHARE/$part"
  command+=("${words[@]}")
done
if ((${#command[@]} == 0)); then
  problem "no application command was recorded (APP_ENTRYPOINT and APP_CMD were empty)"
elif ! command -v "${command[0]}" >/dev/null; then
  problem "the application's command ${command[0]} is not found in the image's PATH"
fi
[[ -d ${ONECLIENT_MOUNT_POINT:-/mnt/onedata} ]] || problem "the mount point ${ONECLIENT_MOUNT_POINT:-/mnt/onedata} is missing"
[[ -x /usr/local/sbin/primage-onedata ]] || problem "the entrypoint /usr/local/sbin/primage-onedata is missing"

if ((problems)); then
  exit 1
fi
printf 'primage-onedata-check: %s %s (%s); application command %s; ok\n' \
  "$package" "$installed" "${version%%$'\n'*}" "${command[0]}"
