"""Broker secrets: read from a credentials file or systemd credentials, never from the config.

A credentials file has ``key = value`` lines (``#`` starts a comment; values may be quoted;
a byte-order mark and CRLF line ends, as Windows Notepad saves, are accepted)::

    username = site1-desk1
    password = s3cret

Where it is looked for, first match wins:

1. ``mqtt.credentials_file`` from the config (a path, not the secret itself);
2. ``$CREDENTIALS_DIRECTORY/mqtt``: the unit's ``LoadCredential=mqtt:deskcue-mqtt`` copies
   ``/etc/credstore/deskcue-mqtt`` there (or ``LoadCredentialEncrypted=``), readable only by
   the service;
3. outside systemd (a command run by hand on the desk, such as ``deskcue selftest``):
   ``/etc/credstore/deskcue-mqtt``, the file the unit loads as ``mqtt`` (root's: ``sudo``);
   ``$DESKCUE_CREDSTORE`` names another directory (tests);
4. none: connect without a username (anonymous, or identified by a client certificate).

The client certificate's key may likewise come from ``$CREDENTIALS_DIRECTORY/mqtt.key`` when
``mqtt.tls.key_file`` is not set (outside systemd: ``/etc/credstore/deskcue-mqtt.key``).
`Secret` never shows its value in ``repr``/``str``/logs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path

from firmware.config.mqtt import MqttSettings
from firmware.errors import CredentialsError

log = logging.getLogger(__name__)

CREDENTIAL_NAME = "mqtt"
KEY_CREDENTIAL_NAME = "mqtt.key"


class Secret:
    """A string that does not show itself in ``repr``, ``str`` or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value (pass it straight to the library that needs it)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Credentials:
    """Username and password for the broker (either may be None), and where they came from."""

    username: str | None = None
    password: Secret | None = None
    source: str = "none"


def parse_credentials(text: str, source: str = "<credentials>") -> Credentials:
    """Parse ``key = value`` lines (keys: username, password); raise on anything else.

    A leading UTF-8 byte-order mark (Windows Notepad writes one) is dropped, and lines may
    end in CRLF: neither shows in an editor and neither can be part of a name or password.
    """
    text = text.removeprefix("\ufeff")
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or key not in ("username", "password"):
            # Never echo the line: it may be a password written without its key.
            raise CredentialsError(
                f"{source}: line {number}: expected `username = ...` or `password = ...`"
            )
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    if "password" in values and not values.get("username"):
        raise CredentialsError(f"{source}: a password needs a username")
    password = values.get("password")
    return Credentials(
        username=values.get("username") or None,
        password=Secret(password) if password is not None else None,
        source=source,
    )


def _credentials_dir() -> Path | None:
    d = os.environ.get("CREDENTIALS_DIRECTORY")
    return Path(d) if d else None


CREDSTORE_FILE = "deskcue-mqtt"
"""The file in /etc/credstore that deskcue.service loads as its credential ``mqtt``."""
KEY_CREDSTORE_FILE = "deskcue-mqtt.key"
"""The client certificate's key in /etc/credstore, loaded as ``mqtt.key`` by the drop-in in
docs/field-tech.md §1."""


def credstore() -> Path:
    """Where the desk's secrets are kept (``$DESKCUE_CREDSTORE``, default /etc/credstore)."""
    return Path(os.environ.get("DESKCUE_CREDSTORE") or "/etc/credstore")


def credentials_path(settings: MqttSettings) -> Path | None:
    """The credentials file that applies (config first, then systemd's, then the file systemd
    loads it from, for a command run by hand on the desk), or None."""
    if settings.credentials_file is not None:
        return Path(settings.credentials_file)
    d = _credentials_dir()
    if d is not None and (d / CREDENTIAL_NAME).is_file():
        return d / CREDENTIAL_NAME
    if d is None:
        # Outside the unit (`deskcue selftest` with the service stopped): the desk logs in as
        # the service does, not anonymously, which a broker with accounts refuses.
        stored = credstore() / CREDSTORE_FILE
        try:
            if stored.is_file():
                return stored
        except PermissionError:
            return stored  # root's: reading it says to run the command with sudo
    return None


def load_credentials(settings: MqttSettings) -> Credentials:
    """Read the username/password that apply to ``settings``; `CredentialsError` if unusable.

    A file that others can read is used but logged as a warning (by path only).
    """
    path = credentials_path(settings)
    if path is None:
        return Credentials()
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CredentialsError(f"credentials file {path} not found") from None
    except PermissionError:
        raise CredentialsError(f"cannot read credentials file {path}: permission denied (it "
                               "is root's: run the command with sudo)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"cannot read credentials file {path}: {exc}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("credentials file %s is readable by others; chmod 600 it", path)
    return parse_credentials(text, str(path))


@dataclass(frozen=True)
class TlsFiles:
    """The files TLS uses: CA bundle (None = system CAs), client cert and key (or None)."""

    ca_file: Path | None
    cert_file: Path | None
    key_file: Path | None


def tls_files(settings: MqttSettings) -> TlsFiles | None:
    """The TLS files for ``settings`` (None when TLS is off); `CredentialsError` if missing."""
    tls = settings.tls
    if not tls.enabled:
        return None
    key = tls.key_file
    if tls.cert_file is not None and key is None:
        d = _credentials_dir()
        if d is not None and (d / KEY_CREDENTIAL_NAME).is_file():
            key = d / KEY_CREDENTIAL_NAME
        elif d is None:
            # Outside the unit, as for the password: the file the unit's drop-in loads.
            stored = credstore() / KEY_CREDSTORE_FILE
            try:
                if stored.is_file():
                    key = stored
            except PermissionError:
                raise CredentialsError(f"cannot read {stored}: permission denied (it is "
                                       "root's: run the command with sudo)") from None
    for what, p in (("ca_file", tls.ca_file), ("cert_file", tls.cert_file), ("key_file", key)):
        if p is not None and not Path(p).is_file():
            raise CredentialsError(f"mqtt.tls.{what}: {p} not found")
    with contextlib.suppress(OSError):
        if key is not None and Path(key).stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("TLS client key %s is readable by others; chmod 600 it", key)
    return TlsFiles(tls.ca_file, tls.cert_file, key)


def ssl_context(files: TlsFiles) -> ssl.SSLContext:
    """A client SSL context that verifies the broker's certificate and host name.

    TLS 1.2 or newer; the CA bundle from ``files.ca_file`` or the system's; the client
    certificate when given. Raises `CredentialsError` for unreadable or mismatched files.
    """
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        if files.ca_file is not None:
            ctx.load_verify_locations(cafile=str(files.ca_file))
        if files.cert_file is not None:
            ctx.load_cert_chain(
                str(files.cert_file), str(files.key_file) if files.key_file else None
            )
    except (OSError, ssl.SSLError) as exc:
        if files.cert_file is not None and files.key_file is None and isinstance(
                exc, ssl.SSLError):
            raise CredentialsError(
                f"mqtt.tls.cert_file: {files.cert_file} holds no private key for its "
                "certificate, and none is given elsewhere: set mqtt.tls.key_file, or give the "
                f"service the credential {KEY_CREDENTIAL_NAME} (docs/field-tech.md, section 1)"
            ) from None
        raise CredentialsError(f"TLS files unusable: {exc}") from None
    return ctx
