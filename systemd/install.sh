#!/usr/bin/env bash
# Installs deskcue on a Raspberry Pi (Raspberry Pi OS Bookworm): the one install procedure that
# README.md and docs/field-tech.md point to (tests/test_install.py follows it). From a copy of
# the repository, on the Pi:
#
#     sudo systemd/install.sh
#
# Idempotent: run it again to upgrade. The venv is reused; an existing config, the secrets, the
# unit drop-ins and the service user are kept. A running deskcue.service is stopped before its
# code is replaced and started again at the end. In order:
#
#  1. Debian packages: python3-venv, python3-dev and gcc (PyAudio is built), portaudio19-dev,
#     libsndfile1, python3-lgpio (gpiozero's pin library on Bookworm: a Debian package, which
#     the venv sees because it has the system site packages), mosquitto-clients (broker checks),
#     git (the build reads its version, the commit, from the clone's history).
#  2. A virtualenv /opt/deskcue made with --system-site-packages; deskcue installed into it
#     with pip (its other dependencies come from PyPI, or piwheels on Raspberry Pi OS). A venv
#     left by the hand-written install of earlier versions, made without them, is given them.
#  3. /usr/local/bin/deskcue -> /opt/deskcue/bin/deskcue: `deskcue` is on the PATH, and it is
#     what the units run.
#  4. The service user `deskcue`, in the groups audio and gpio: deskcue.sysusers installed as
#     /usr/lib/sysusers.d/deskcue.conf, then systemd-sysusers.
#  5. /etc/deskcue and /var/lib/deskcue (the service user's) and the empty secret files in
#     /etc/credstore (root's):
#     deskcue.tmpfiles as /usr/lib/tmpfiles.d/deskcue.conf, then systemd-tmpfiles --create.
#  6. The shipped default config as /etc/deskcue/deskcue.toml, unless one is there already,
#     and as its last good config (deskcue.toml.last-good: what the desk runs on should
#     the live file be edited into something it cannot use). A desk upgraded from a version
#     that kept no last good config gets its own config as one, when this version can run it
#     and it is not on trial.
#  7. deskcue.service and deskcue-config-import.service in /etc/systemd/system, enabled but
#     not started (the desk needs its config and broker credentials first: see
#     docs/field-tech.md §1); the field-tech guide as /usr/share/doc/deskcue/field-tech.md.
#
# Options:
#   --root DIR  install into DIR as if it were / (used by the tests): no apt-get and no
#               daemon-reload; systemd-sysusers, systemd-tmpfiles and systemctl work on DIR.
#               A venv names its own path in its scripts, so DIR is not an image to copy.
#   --no-apt    leave out the Debian packages (already there, or installed another way)
#   --from SRC  what pip installs: this repository (default), or a wheel built from it
#   --remove    take deskcue off the desk (the units, the venv, the command, the user's and
#               directories' definitions); keeps the config, the state and the secrets, as
#               apt's remove does, for a reinstall
#   --purge     --remove, and also the config, the state (the outbox's events, the usual
#               voice), the secrets in /etc/credstore, the unit drop-ins and the configs left
#               on the boot partition: what a desk being retired must not keep (see
#               docs/field-tech.md, "Retire a desk"). The user deskcue stays (files may still
#               carry its id), as Debian leaves system users.
# Environment: PYTHON (default python3) makes the venv; PIP_* variables reach pip, e.g.
# PIP_NO_INDEX=1 PIP_FIND_LINKS=/path/to/wheels on a desk without internet access.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
root=""
apt=1
src="$repo"
remove=0
purge=0
while (($#)); do
  case "$1" in
    --root) root="$(realpath -m "$2")"; shift 2 ;;
    --no-apt) apt=0; shift ;;
    --from) src="$2"; shift 2 ;;
    --remove) remove=1; shift ;;
    --purge) remove=1; purge=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
python="${PYTHON:-python3}"
venv=/opt/deskcue
step() { echo "deskcue install: $*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run it as root (sudo systemd/install.sh)" >&2
  exit 1
fi

if ((remove)); then
  units=(deskcue.service deskcue-config-import.service)
  step "units ${units[*]}: stopped, disabled and removed"
  if [ -z "$root" ]; then
    systemctl disable --now "${units[@]}" 2>/dev/null || true
  else
    systemctl --root="$root" disable "${units[@]}" 2>/dev/null || true
  fi
  for unit in "${units[@]}"; do
    # /usr/lib/systemd/system: where the hand-written install of earlier versions allowed them
    rm -f "$root/etc/systemd/system/$unit" "$root/usr/lib/systemd/system/$unit"
  done
  step "$venv, /usr/local/bin/deskcue, the user's and directories' definitions, the guide"
  if [ "$(readlink "$root/usr/local/bin/deskcue" 2>/dev/null)" = "$venv/bin/deskcue" ]; then
    rm -f "$root/usr/local/bin/deskcue"
  fi
  rm -rf "$root$venv" "$root/usr/share/doc/deskcue"
  # without them, no boot makes the empty secret files or the directories again
  rm -f "$root/usr/lib/sysusers.d/deskcue.conf" "$root/usr/lib/tmpfiles.d/deskcue.conf"
  if ((purge)); then
    step "purge: /etc/deskcue, /var/lib/deskcue, /run/deskcue, the secrets in /etc/credstore, the drop-ins, the card's configs"
    rm -rf "$root/etc/deskcue" "$root/var/lib/deskcue" "$root/run/deskcue" \
      "$root/etc/systemd/system/deskcue.service.d" \
      "$root/etc/systemd/system/deskcue-config-import.service.d"
    rm -f "$root"/etc/credstore/deskcue-* "$root"/boot/firmware/deskcue.toml* \
      "$root"/boot/deskcue.toml*
    # /etc/credstore is systemd's, shared with other services: removed only when empty
    rmdir "$root/etc/credstore" 2>/dev/null || true
  fi
  [ -z "$root" ] && systemctl daemon-reload
  if ((purge)); then
    echo "deskcue is removed, with its config, state and secrets."
    echo "Delete the desk's account on the broker too (docs/field-tech.md, \"Retire a desk\")."
  else
    echo "deskcue is removed; its config, state and secrets are kept (--purge removes them)."
  fi
  exit 0
fi

if ((apt)) && [ -z "$root" ]; then
  step "Debian packages"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    python3-venv python3-dev gcc portaudio19-dev libsndfile1 python3-lgpio mosquitto-clients \
    git
fi

step "virtualenv $venv (with the system site packages) and deskcue in it"
if [ ! -x "$root$venv/bin/python" ]; then
  "$python" -m venv --system-site-packages "$root$venv"
elif ! grep -qx 'include-system-site-packages = true' "$root$venv/pyvenv.cfg" 2>/dev/null; then
  # Made by the hand-written install of earlier versions, without them: gpiozero would not
  # see Debian's python3-lgpio, and the desk would have no pins.
  step "$venv was made without the system site packages: it sees them now"
  "$python" -m venv --upgrade --system-site-packages "$root$venv"
fi
# A running appliance would go on with its old code while pip replaces the files under it
# (a module it imports later could be missing or new): stopped first, started at the end.
was_running=0
if [ -z "$root" ] && systemctl is-active --quiet deskcue.service; then
  was_running=1
  step "deskcue.service stopped for the upgrade (started again at the end)"
  systemctl stop deskcue.service
  # also when a later step fails: a desk left dark by its upgrade helps nobody
  trap 'step "deskcue.service started again"; systemctl start deskcue.service' EXIT
fi
"$root$venv/bin/python" -m pip install -q "$src"
if [ -f "$src" ]; then
  # pip takes a wheel whose version is installed already as installed ("already installed
  # with the same version"), whatever code it holds: an upgrade or a downgrade between two
  # builds of one version would change nothing. A directory is always built and installed.
  "$root$venv/bin/python" -m pip install -q --no-deps --force-reinstall "$src"
fi
installed="$("$root$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("deskcue"))')"
step "deskcue $installed installed (info's firmware, Home Assistant's firmware version)"
if [ "$installed" = "0.1.0" ]; then
  # pyproject.toml's fallback: built from files without git history (no .git and no sdist's
  # PKG-INFO: a plain copy, or a `git archive`), so the version cannot say which build this is
  echo "deskcue install: WARNING: built from a copy without its git history: it says 0.1.0" \
       "as every build up to 2026-12-05 did; install from a git clone, an sdist" \
       "or a wheel built from either, so supervisors can tell this build apart" >&2
fi

step "/usr/local/bin/deskcue -> $venv/bin/deskcue"
install -d "$root/usr/local/bin"
ln -sfn "$venv/bin/deskcue" "$root/usr/local/bin/deskcue"

step "service user deskcue (groups audio, gpio), /etc/deskcue, /var/lib/deskcue and the secret files"
install -d "$root/etc"
install -D -m 0644 "$here/deskcue.sysusers" "$root/usr/lib/sysusers.d/deskcue.conf"
install -D -m 0644 "$here/deskcue.tmpfiles" "$root/usr/lib/tmpfiles.d/deskcue.conf"
systemd-sysusers ${root:+--root="$root"}
systemd-tmpfiles ${root:+--root="$root"} --create deskcue.conf

if [ ! -e "$root/etc/deskcue/deskcue.toml" ]; then
  step "the shipped default config as /etc/deskcue/deskcue.toml"
  # ids from the installed system's own user database (with --root, not this machine's)
  uid="$(awk -F: '$1 == "deskcue" {print $3}' "$root/etc/passwd")"
  gid="$(awk -F: '$1 == "deskcue" {print $3}' "$root/etc/group")"
  install -m 0644 -o "$uid" -g "$gid" "$repo/config/deskcue.toml" "$root/etc/deskcue/deskcue.toml"
  install -m 0644 -o "$uid" -g "$gid" "$repo/config/deskcue.toml" \
    "$root/etc/deskcue/deskcue.toml.last-good"
elif [ ! -e "$root/etc/deskcue/deskcue.toml.last-good" ]; then
  # Installed by a version that kept no last good config: the desk's own config becomes it,
  # if this version runs it and it is not on trial (an unproven config pushed over MQTT).
  live="$root/etc/deskcue/deskcue.toml"
  if [ -e "$root/etc/deskcue/deskcue.toml.trial" ]; then
    step "no last good config kept: $live is on trial, so none is made (docs/field-tech.md)"
  elif "$root$venv/bin/deskcue" config check --no-warnings "$live" >/dev/null 2>&1; then
    step "its own config kept as its last good config, /etc/deskcue/deskcue.toml.last-good"
    cp -p "$live" "$live.last-good.tmp"
    mv -f "$live.last-good.tmp" "$live.last-good"
  else
    echo "deskcue install: WARNING: this version cannot run /etc/deskcue/deskcue.toml" \
      "(deskcue config check /etc/deskcue/deskcue.toml lists why); mend it before the" \
      "desk starts: it has no last good config to run on instead" >&2
  fi
fi

step "units deskcue.service and deskcue-config-import.service (enabled, not started)"
install -D -m 0644 -t "$root/etc/systemd/system" \
  "$here/deskcue.service" "$here/deskcue-config-import.service"
install -D -m 0644 "$repo/docs/field-tech.md" "$root/usr/share/doc/deskcue/field-tech.md"
if [ -z "$root" ]; then
  systemctl daemon-reload
  systemctl enable deskcue.service deskcue-config-import.service
else
  systemctl --root="$root" enable deskcue.service deskcue-config-import.service
fi

if ((was_running)); then
  echo "deskcue is upgraded: 'deskcue' runs $venv/bin/deskcue; check it with: deskcue status"
  exit 0
fi

cat <<EOF

deskcue is installed: 'deskcue' runs $venv/bin/deskcue. Next (docs/field-tech.md §1):
  1. the broker's credentials into /etc/credstore/deskcue-mqtt (root only)
  2. the desk's config: sudo deskcue config apply d07.toml (or flash it on the SD card)
  3. sudo systemctl start deskcue, then: sudo systemctl stop deskcue && sudo deskcue selftest
EOF
