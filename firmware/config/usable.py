"""What would stop a desk that runs this config: checked before any config is installed.

Two kinds of finding, each a ``(key path, one-line message)``:

- `desk_problems`: settings that are each legal but together leave the desk useless (a
  no-audio fault shorter than two audio blocks shows the fault pattern for ever; a
  voice-activity floor above ordinary speech makes the desk deaf). Always problems.
- `host_problems`: the files and directories the config names on the machine that checks it
  (state directory usable, broker credentials and TLS files readable). On the desk these are
  problems: the card import, `deskcue config apply` and a config pushed over MQTT refuse the
  config. On a tech's laptop, where ``/var/lib/deskcue`` and ``/etc/deskcue/*`` do not exist,
  `deskcue config check` reports them as warnings unless it is given ``--here``.

`firmware.config.checks.check_text` calls both, so `deskcue config check`, the card import
and the MQTT path print the same messages.
"""

from __future__ import annotations

import os
import pwd
import ssl
from pathlib import Path

from firmware.config.audio import VoiceActivitySettings
from firmware.config.settings import Settings
from firmware.platform.files import existing_ancestor

Finding = tuple[str, str]

# Calm speech on a headset tap sits around -47 to -30 dBFS per 10 ms hop (measured: RAVDESS
# neutral utterances, median -45 dBFS; the demo call's voiced hops, median -29 dBFS). A floor
# above SPEECH_FLOOR_MAX_DBFS ignores most of it: the desk never learns the usual voice.
SPEECH_FLOOR_MAX_DBFS = -40.0


def desk_problems(settings: Settings) -> list[Finding]:
    """Settings that together would stop the desk working, whatever machine it runs on."""
    out: list[Finding] = []
    a = settings.audio
    if a.no_audio_fault_s < 2 * a.block_s:
        out.append(("audio.no_audio_fault_s",
                    f"{a.no_audio_fault_s:g} s is shorter than two audio blocks "
                    f"(audio.block_s = {a.block_s:g} s): the no-audio fault would show between "
                    f"every two blocks; make it at least {2 * a.block_s:g} s (default 3)"))
    floor = settings.voice_activity.floor_dbfs
    if floor > SPEECH_FLOOR_MAX_DBFS:
        out.append(("voice_activity.floor_dbfs",
                    f"{floor:g} dBFS is above calm speech on a headset tap (about -47 to -30 "
                    f"dBFS): the desk would hear little or no speech; use "
                    f"{SPEECH_FLOOR_MAX_DBFS:g} or lower (default "
                    f"{VoiceActivitySettings().floor_dbfs:g})"))
    return out


def _dir_problem(path: Path) -> str | None:
    """Why ``path`` cannot be used as a writable directory (None when it can, or can be made)."""
    if path.exists():
        if not path.is_dir():
            return f"{path} is not a directory"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"{path} is not writable by this user"
        return None
    parent = existing_ancestor(path.parent)
    if not parent.is_dir():
        return f"{path} cannot be made: {parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{path} does not exist and cannot be made here ({parent} is not writable)"
    return None


def _file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file (None when it can)."""
    try:
        with open(path, "rb") as f:
            f.read(1)
    except FileNotFoundError:
        return f"{path} not found"
    except IsADirectoryError:
        return f"{path} is a directory, not a file"
    except OSError as exc:
        return f"{path} cannot be read: {exc.strerror or exc}"
    return None


def _allows(st: os.stat_result, uid: int, gids: set[int], bit: int) -> bool:
    """Whether mode ``st`` grants ``bit`` (4 read, 1 search) to user ``uid`` in ``gids``."""
    if st.st_uid == uid:
        return bool(st.st_mode & (bit << 6))
    if st.st_gid in gids:
        return bool(st.st_mode & (bit << 3))
    return bool(st.st_mode & bit)


def _service_user_problem(path: Path, state_dir: Path) -> str | None:
    """Run as root (the card import, ``sudo deskcue config apply``), whether the user the desk
    runs as, the owner of its state directory, cannot read ``path``: root reads anything, so
    its own check passes a file in root's credential store that the service never can. Judged
    from the modes of the file and the directory it is in (not ACLs, not further up)."""
    if os.geteuid() != 0:
        return None
    try:
        uid = state_dir.stat().st_uid
        if uid == 0:
            return None
        try:
            entry = pwd.getpwuid(uid)
            name, gids = entry.pw_name, set(os.getgrouplist(entry.pw_name, entry.pw_gid))
        except KeyError:
            name, gids = str(uid), {state_dir.stat().st_gid}
        real = Path(os.path.realpath(path))
        if _allows(real.parent.stat(), uid, gids, 1) and _allows(real.stat(), uid, gids, 4):
            return None
    except OSError:
        return None  # what cannot be judged is left to the checks that open the file
    return (f"{path} cannot be read by the user the desk runs as ({name}, owner of "
            f"{state_dir}), only by root: make it readable to {name}, or for the broker's "
            "password leave mqtt.credentials_file out (the unit hands /etc/credstore/"
            "deskcue-mqtt to the desk itself)")


def secret_warnings(settings: Settings) -> list[Finding]:
    """The broker password file and the TLS client key that ``settings`` names, where they
    exist here and their group or others may read them (``chmod 600``): the desk uses them
    (the service alone may need them), but they should be its secrets. Warnings, not
    problems: a file made readable on purpose must not stop the desk."""
    m = settings.mqtt
    if not m.enabled:
        return []
    secrets = {"mqtt.credentials_file": m.credentials_file}
    if m.tls.enabled:
        secrets["mqtt.tls.key_file"] = m.tls.key_file
    out: list[Finding] = []
    for key, path in secrets.items():
        if path is None:
            continue
        try:
            mode = Path(path).stat().st_mode
        except OSError:
            continue  # absent or unreadable: `host_problems` says so
        if mode & 0o077:
            out.append((key, f"{path} can be read or written by others (mode "
                        f"{mode & 0o777:03o}): chmod 600 it, owned by the desk's user"))
    return out


def host_problems(settings: Settings) -> list[Finding]:
    """The directories and files ``settings`` names that are unusable on this machine."""
    out: list[Finding] = []
    why = _dir_problem(Path(settings.device.state_dir))
    if why:
        out.append(("device.state_dir", why))
    m = settings.mqtt
    if not m.enabled:
        return out
    state = Path(settings.device.state_dir)
    if m.credentials_file is not None:
        why = _file_problem(Path(m.credentials_file)) or _service_user_problem(
            Path(m.credentials_file), state)
        if why:
            out.append(("mqtt.credentials_file", why))
    tls = m.tls
    if not tls.enabled:
        return out
    files = {"ca_file": tls.ca_file, "cert_file": tls.cert_file, "key_file": tls.key_file}
    missing = False
    for name, path in files.items():
        if path is None:
            continue
        why = _file_problem(Path(path)) or _service_user_problem(Path(path), state)
        if why:
            out.append((f"mqtt.tls.{name}", why))
            missing = True
    if missing:
        return out
    # Readable: now as TLS reads them (a PEM that is not a certificate, a key that does not
    # match its certificate).
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    try:
        if tls.ca_file is not None:
            ctx.load_verify_locations(cafile=str(tls.ca_file))
    except (OSError, ssl.SSLError) as exc:
        out.append(("mqtt.tls.ca_file", f"{tls.ca_file} is not a usable CA bundle: "
                    f"{getattr(exc, 'reason', None) or exc}"))
    # Without key_file the key comes from systemd's credential `mqtt.key` when the service
    # starts: only the certificate's readability can be judged before then.
    try:
        if tls.cert_file is not None and tls.key_file is not None:
            ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    except (OSError, ssl.SSLError) as exc:
        out.append(("mqtt.tls.cert_file", f"{tls.cert_file} (with its key) is not a usable "
                    f"client certificate: {getattr(exc, 'reason', None) or exc}"))
    return out
