#!/bin/bash
# primage-onedata: entrypoint of the Onedata pod-mode variants (<application tag>-onedata).
#
# It starts as root under tini, mounts the Onedata space with oneclient at ONECLIENT_MOUNT_POINT,
# waits until the mount answers, then runs the application's own command as PRIMAGE_UID:PRIMAGE_GID
# with no capability left (setpriv, no_new_privs) and without the token in its environment. It
# forwards signals to the application, and unmounts the space when the application ends, so
# oneclient flushes what it buffered before the container goes away.
#
# The contract is the one the roles' pod mode renders (ansible/roles/kubernetes_app/vars/main.yml):
#   ONECLIENT_PROVIDER_HOST   the Oneprovider host (required)
#   ONECLIENT_ACCESS_TOKEN    the access token, from a Secret (or ONECLIENT_ACCESS_TOKEN_FILE, a
#                             file holding it, e.g. a mounted Secret: then no runtime shows it)
#   ONECLIENT_MOUNT_POINT     where the space is mounted (default /mnt/onedata)
#   PRIMAGE_UID, PRIMAGE_GID  the user the application runs as (default: the application image's)
# and, optionally, PRIMAGE_ONEDATA_MOUNT_TIMEOUT (seconds, default 60) and PRIMAGE_ONEDATA_OPTIONS
# (extra oneclient options, split on blanks, never the token). Needs CAP_SYS_ADMIN (mount(2)),
# CAP_SETUID and CAP_SETGID (to drop to the user) and the FUSE device; never privileged.
#
# Exit codes of its own, outside the sysexits range the applications use (64-78) and the 128+N
# of signals: 80 configuration, 81 privileges (not root, a capability missing), 82 FUSE device,
# 83 oneclient failed or died, 84 the mount did not answer in time, 85 the space could not be
# unmounted cleanly. Otherwise it exits with the application's status.
set -uo pipefail
shopt -s nullglob

readonly ME=primage-onedata
readonly SHARE=/usr/local/share/primage-onedata
readonly EX_CONFIG=80 EX_PRIVILEGES=81 EX_FUSE=82 EX_ONECLIENT=83 EX_TIMEOUT=84 EX_UNMOUNT=85
# Capability bits of linux/capability.h.
readonly CAP_SETGID=6 CAP_SETUID=7 CAP_SYS_ADMIN=21
readonly FORWARDED_SIGNALS=(HUP INT QUIT USR1 USR2 ALRM TERM WINCH)

say() { printf '%s: %s\n' "$ME" "$*" >&2; }
fail() {
  local code=$1
  shift
  say "$*"
  exit "$code"
}

has_capability() {
  local key value effective=0
  while read -r key value _; do
    [[ $key == CapEff: ]] && effective=$value
  done </proc/self/status
  (((16#$effective >> $1) & 1))
}

check_privileges() {
  local missing=()
  if ((EUID != 0)); then
    fail "$EX_PRIVILEGES" "runs as uid $EUID, but it must start as root to mount the space (it drops to" \
      "PRIMAGE_UID afterwards); Kubernetes: runAsUser 0, as the roles' pod mode sets"
  fi
  has_capability "$CAP_SYS_ADMIN" || missing+=(SYS_ADMIN)
  has_capability "$CAP_SETUID" || missing+=(SETUID)
  has_capability "$CAP_SETGID" || missing+=(SETGID)
  if ((${#missing[@]})); then
    fail "$EX_PRIVILEGES" "missing capability ${missing[*]}: mounting the space needs SYS_ADMIN and dropping" \
      "to the user SETUID and SETGID (docker run --cap-add SYS_ADMIN; Kubernetes: securityContext" \
      "capabilities add, as the roles' pod mode renders); never run it privileged"
  fi
}

check_fuse_device() {
  local opened
  if [[ ! -e /dev/fuse ]]; then
    fail "$EX_FUSE" "missing FUSE device /dev/fuse: docker run --device /dev/fuse; Kubernetes: request the" \
      "extended resource of the cluster's FUSE device plugin (kubernetes_app_fuse_resource)"
  fi
  [[ -c /dev/fuse ]] || fail "$EX_FUSE" "/dev/fuse is not a character device"
  if ! opened=$({ : 3<>/dev/fuse; } 2>&1); then
    fail "$EX_FUSE" "cannot open the FUSE device /dev/fuse (${opened##*: }): the container's device" \
      "cgroup does not grant it, as with a hostPath /dev/fuse; grant the device itself (docker run" \
      "--device /dev/fuse; Kubernetes: the FUSE device plugin's resource)"
  fi
}

# Every setting, checked before anything is mounted; the token is read here and taken out of the
# environment, so no process started afterwards but oneclient inherits it.
read_settings() {
  provider=${ONECLIENT_PROVIDER_HOST:-}
  mount_point=${ONECLIENT_MOUNT_POINT:-/mnt/onedata}
  timeout=${PRIMAGE_ONEDATA_MOUNT_TIMEOUT:-60}
  read_token
  unset ONECLIENT_ACCESS_TOKEN ONECLIENT_ACCESS_TOKEN_FILE
  [[ -n $provider ]] || fail "$EX_CONFIG" "ONECLIENT_PROVIDER_HOST is not set: the Oneprovider to mount the space from"
  [[ $mount_point == /* && $mount_point != / ]] ||
    fail "$EX_CONFIG" "ONECLIENT_MOUNT_POINT '$mount_point' is not an absolute path below /"
  [[ $timeout =~ ^[1-9][0-9]*$ ]] ||
    fail "$EX_CONFIG" "PRIMAGE_ONEDATA_MOUNT_TIMEOUT '$timeout' is not a number of seconds"
  read -r -a extra_options <<<"${PRIMAGE_ONEDATA_OPTIONS:-}"
  local option
  for option in "${extra_options[@]}"; do
    case $option in
      -t | --token | --token=* | -H | --host | --host=*)
        fail "$EX_CONFIG" "PRIMAGE_ONEDATA_OPTIONS holds $option: the token and provider come from" \
          "ONECLIENT_ACCESS_TOKEN and ONECLIENT_PROVIDER_HOST, never from a command line" ;;
      *"$token"*) fail "$EX_CONFIG" "PRIMAGE_ONEDATA_OPTIONS holds the access token: refused (not shown)" ;;
    esac
  done
  read_user
}

read_token() {
  local file=${ONECLIENT_ACCESS_TOKEN_FILE:-}
  token=${ONECLIENT_ACCESS_TOKEN:-}
  if [[ -n $file ]]; then
    [[ -z $token ]] || fail "$EX_CONFIG" "set ONECLIENT_ACCESS_TOKEN or ONECLIENT_ACCESS_TOKEN_FILE, not both"
    [[ -f $file && -r $file ]] || fail "$EX_CONFIG" "ONECLIENT_ACCESS_TOKEN_FILE $file is not a readable file"
    token=$(<"$file")
  fi
  # A Secret made from a file often ends with a newline: white space around the token goes.
  token=${token#"${token%%[![:space:]]*}"}
  token=${token%"${token##*[![:space:]]}"}
  [[ -n $token ]] || fail "$EX_CONFIG" "no access token: set ONECLIENT_ACCESS_TOKEN (from a Secret) or" \
    "ONECLIENT_ACCESS_TOKEN_FILE"
  [[ $token != *[[:space:]]* ]] || fail "$EX_CONFIG" "the access token holds white space: not a Onedata token (not shown)"
}

# PRIMAGE_UID/PRIMAGE_GID, else the application image's own user; never root.
read_user() {
  local recorded="" entry
  [[ -s $SHARE/user ]] && recorded=$(<"$SHARE/user")
  uid=${PRIMAGE_UID:-${recorded%%:*}}
  gid=${PRIMAGE_GID:-}
  if [[ -n $uid && ! $uid =~ ^[0-9]+$ ]]; then
    entry=$(getent passwd "$uid") || fail "$EX_CONFIG" "user '$uid' is not in the image's passwd"
    uid=$(cut -d: -f3 <<<"$entry")
  fi
  if [[ -z $gid && $recorded == *:* && -z ${PRIMAGE_UID:-} ]]; then gid=${recorded#*:}; fi
  if [[ -z $gid && -n $uid ]]; then gid=$(getent passwd "$uid" | cut -d: -f4); fi
  if [[ -n $gid && ! $gid =~ ^[0-9]+$ ]]; then
    entry=$(getent group "$gid") || fail "$EX_CONFIG" "group '$gid' is not in the image's group file"
    gid=$(cut -d: -f3 <<<"$entry")
  fi
  [[ -n $uid && -n $gid ]] || fail "$EX_CONFIG" "no user to run the application as: set PRIMAGE_UID and PRIMAGE_GID"
  ((uid != 0)) || fail "$EX_CONFIG" "PRIMAGE_UID is 0: the application would run as root beside the mount; give its user"
}

# Supplementary groups of the container (Kubernetes: fsGroup, supplementalGroups) but root's.
app_groups() {
  local group kept=()
  for group in $(id -G); do ((group == 0)) || kept+=("$group"); done
  if ((${#kept[@]})); then
    local IFS=,
    printf -- '--groups=%s' "${kept[*]}"
  else
    printf -- '--clear-groups'
  fi
}

as_user() {
  setpriv --reuid="$uid" --regid="$gid" "$groups" --inh-caps=-all --no-new-privs -- "$@"
}

prepare_mount_point() {
  if [[ ! -d $mount_point ]]; then
    mkdir -p -- "$mount_point" 2>/dev/null ||
      fail "$EX_CONFIG" "cannot create the mount point $mount_point (a read-only root file system?): create it" \
        "in the image or choose an existing folder"
  fi
  if is_fuse_mount; then
    fail "$EX_CONFIG" "$mount_point is already a FUSE mount: another oneclient serves it"
  fi
  # oneclient keeps its state under HOME and logs under /tmp/oneclient/<uid>: both root-only. In a
  # pod /tmp is an emptyDir, world-writable without the sticky bit: made sticky, so that the
  # application's user cannot move root's folders there aside and put its own in their place.
  if [[ ! -k /tmp && -O /tmp ]]; then chmod +t /tmp; fi
  state=$(mktemp -d /tmp/primage-onedata.XXXXXX 2>/dev/null) ||
    fail "$EX_CONFIG" "/tmp is not writable: oneclient needs it for its state (Kubernetes: an emptyDir at /tmp)"
  install -d -m 0700 "$state/home" /tmp/oneclient
}

is_fuse_mount() {
  local type
  type=$(findmnt --mountpoint "$mount_point" --noheadings --output FSTYPE 2>/dev/null | tail -n 1)
  [[ $type == fuse* ]]
}

start_oneclient() {
  say "mounting the Onedata space of $provider at $mount_point"
  # The token reaches oneclient only, through its environment (readable by root alone, like the
  # process itself); setsid keeps it out of the terminal's signals (a ^C reaches the application),
  # and its messages go to standard error: standard output is the application's.
  HOME=$state/home ONECLIENT_ACCESS_TOKEN=$token ONECLIENT_PROVIDER_HOST=$provider \
    setsid oneclient --foreground --opt allow_other "${extra_options[@]}" "$mount_point" </dev/null >&2 &
  oneclient_pid=$!
  token=""
}

wait_for_mount() {
  local started=$SECONDS status
  while :; do
    if ! kill -0 "$oneclient_pid" 2>/dev/null; then
      wait "$oneclient_pid"
      status=$?
      cleanup_state
      fail "$EX_ONECLIENT" "oneclient exited with status $status before the space was mounted at $mount_point" \
        "(its messages are above)"
    fi
    if is_fuse_mount && timeout 10 setpriv --reuid="$uid" --regid="$gid" "$groups" -- ls -A -- "$mount_point" \
      >/dev/null 2>&1; then
      say "the space answers at $mount_point after $((SECONDS - started)) s"
      return 0
    fi
    if ((SECONDS - started >= timeout)); then
      stop_oneclient
      cleanup_state
      fail "$EX_TIMEOUT" "the space did not answer at $mount_point within $timeout s" \
        "(PRIMAGE_ONEDATA_MOUNT_TIMEOUT); is $provider reachable?"
    fi
    sleep 0.2
  done
}

# shellcheck disable=SC2016,SC2317  # run by traps; the inner script expands its own arguments
forward() {
  interrupted=1
  # No CAP_KILL: only a process of the application's user may signal it.
  [[ -n ${app_pid:-} ]] && as_user /bin/bash -c 'kill -s "$1" "$2" 2>/dev/null' signal "$1" "$app_pid"
}

run_application() {
  local entrypoint=() command=() home name sig
  # The argv the build recorded from the application image (NUL-separated words).
  [[ -s $SHARE/entrypoint ]] && mapfile -d '' -t entrypoint <"$SHARE/entrypoint"
  [[ -s $SHARE/cmd ]] && mapfile -d '' -t command <"$SHARE/cmd"
  (($#)) && command=("$@")
  command=("${entrypoint[@]}" "${command[@]}")
  ((${#command[@]})) || fail "$EX_CONFIG" "no command: the application image records none; give one as arguments"
  if home=$(getent passwd "$uid" | cut -d: -f6) && [[ -n $home ]]; then
    name=$(getent passwd "$uid" | cut -d: -f1)
    [[ ${HOME:-/root} != /root ]] || export HOME=$home
    export USER=$name LOGNAME=$name
  fi
  for sig in "${FORWARDED_SIGNALS[@]}"; do
    # shellcheck disable=SC2064  # the signal name is fixed when the trap is set
    trap "forward $sig" "$sig"
  done
  say "running ${command[0]} as $uid:$gid"
  # An explicit redirection keeps standard input (a background job would get /dev/null).
  # A simple command (not a function) so that $! is the application itself once setpriv execs it.
  setpriv --reuid="$uid" --regid="$gid" "$groups" --inh-caps=-all --no-new-privs -- "${command[@]}" <&0 &
  app_pid=$!
  local finished
  while :; do
    interrupted=0
    finished=""
    # (bash's own note of a killed job would quote this script's oneclient line: not useful)
    wait -n -p finished "$app_pid" "$oneclient_pid" 2>/dev/null
    app_status=$?
    ((interrupted)) && [[ -z ${finished:-} ]] && continue
    if [[ ${finished:-} == "$oneclient_pid" ]]; then
      oneclient_status=$app_status
      oneclient_died=1
      say "oneclient exited with status $oneclient_status while the application ran: the space is gone;" \
        "stopping the application"
      oneclient_pid=""
      forward TERM
      wait_application
      return
    fi
    break
  done
}

wait_application() {
  while :; do
    interrupted=0
    wait "$app_pid"
    app_status=$?
    ((interrupted)) || break
  done
}

# Whatever the application left behind (its children keep files of the space open).
stop_user_processes() {
  local status_file key real left=0
  for status_file in /proc/[0-9]*/status; do
    while read -r key real _; do
      [[ $key == Uid: && $real == "$uid" ]] && left=1
    done <"$status_file" 2>/dev/null
  done
  ((left)) || return 0
  say "stopping the processes the application left"
  as_user /bin/bash -c 'kill -TERM -1 2>/dev/null; sleep 2; kill -KILL -1 2>/dev/null' || true
}

stop_oneclient() {
  [[ -n ${oneclient_pid:-} ]] || return 0
  kill -TERM "$oneclient_pid" 2>/dev/null
  local waited=0
  while kill -0 "$oneclient_pid" 2>/dev/null && ((waited < 50)); do
    sleep 0.2
    waited=$((waited + 1))
  done
  kill -KILL "$oneclient_pid" 2>/dev/null
  wait "$oneclient_pid" 2>/dev/null
  oneclient_status=$?
  oneclient_pid=""
}

unmount_space() {
  local attempt
  is_fuse_mount || return 0
  for ((attempt = 0; attempt < 10; attempt++)); do
    if umount -- "$mount_point" 2>/dev/null; then
      say "unmounted the space from $mount_point"
      return 0
    fi
    sleep 0.5
  done
  umount --lazy -- "$mount_point" 2>/dev/null
  say "could not unmount $mount_point cleanly (still busy); detached it: what oneclient buffered may be lost"
  return 1
}

# A stop before the application runs: the mount goes, oneclient stops, the exit is the signal's.
# shellcheck disable=SC2317  # run by traps
stop_early() {
  say "stopped by SIG$1 before the application started"
  unmount_space || true
  stop_oneclient
  cleanup_state
  exit $((128 + $(kill -l "$1")))
}

cleanup_state() {
  [[ -n ${state:-} ]] && rm -rf -- "$state"
}

main() {
  check_privileges
  check_fuse_device
  read_settings
  groups=$(app_groups)
  prepare_mount_point
  local sig
  for sig in "${FORWARDED_SIGNALS[@]}"; do
    # shellcheck disable=SC2064  # the signal name is fixed when the trap is set
    trap "stop_early $sig" "$sig"
  done
  start_oneclient
  wait_for_mount
  app_status=0
  oneclient_status=0
  oneclient_died=0
  run_application "$@"
  stop_user_processes
  local unmounted=0
  unmount_space || unmounted=$EX_UNMOUNT
  if [[ -n ${oneclient_pid:-} ]]; then
    wait_oneclient_exit
  fi
  cleanup_state
  if ((app_status == 0 && unmounted)); then
    exit "$EX_UNMOUNT"
  fi
  if ((oneclient_died)); then
    exit "$EX_ONECLIENT"
  fi
  if ((app_status == 0 && oneclient_status != 0)); then
    say "oneclient exited with status $oneclient_status: results may not have reached the space"
    exit "$EX_ONECLIENT"
  fi
  exit "$app_status"
}

# After the unmount the FUSE daemon ends on its own; give it a moment, then stop it.
wait_oneclient_exit() {
  local waited=0
  while kill -0 "$oneclient_pid" 2>/dev/null && ((waited < 50)); do
    sleep 0.2
    waited=$((waited + 1))
  done
  if kill -0 "$oneclient_pid" 2>/dev/null; then
    stop_oneclient
    return
  fi
  wait "$oneclient_pid"
  oneclient_status=$?
  oneclient_pid=""
  say "oneclient ended with status $oneclient_status"
}

main "$@"
