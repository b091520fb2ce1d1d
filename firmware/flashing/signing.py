"""Signed configs over MQTT: Ed25519 signatures made by the site's supervisor tooling.

Why Ed25519 and not an HMAC: with an HMAC every desk would hold the secret that makes a
valid config, so one desk taken off a desk (its SD card read) could push configs to every
desk of the site. With Ed25519 a desk holds only **public** keys; the private key stays with
whoever is allowed to change configs. Signatures come from `cryptography` (also what
openssl-made keys interoperate with).

A ``cmd/config`` payload (JSON)::

    {"txid": "c-0042", "issued": 1767225600, "config": "<the TOML text>",
     "signature": "<base64 Ed25519 signature>", "key_id": "ops-2026" (optional)}

The signature covers these bytes (UTF-8, each line ending in ``\\n``)::

    deskcue-config-v1
    txid=<txid>
    issued=<issued>
    sha256=<hex SHA-256 of the UTF-8 config text>

``issued`` is an integer chosen by the signer that must grow from one config to the next for
a desk (Unix seconds of signing is the natural choice): a desk refuses a payload not newer than
the last one it accepted, so an old signed config cannot be replayed.

Key files: a public-key file holds one key per line, the base64 of the 32 raw key bytes,
optionally followed by a comment (``#`` lines are ignored), or PEM ``PUBLIC KEY`` blocks (what
``openssl pkey -pubout`` prints). Several keys may be trusted at once (for key rotation).
A private key is a PEM PKCS#8 file (``deskcue config keygen`` or
``openssl genpkey -algorithm ed25519``).
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from firmware.errors import KeyNotFound, SigningError

MAGIC = "deskcue-config-v1"
PEM_BLOCK = re.compile(r"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----", re.S)


@dataclass(frozen=True)
class TrustedKey:
    """A public key the desk trusts, with the comment from its line (for logs)."""

    key: Ed25519PublicKey
    comment: str = ""

    @property
    def fingerprint(self) -> str:
        """First 16 hex digits of the SHA-256 of the raw key (to tell keys apart in logs)."""
        raw = self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return hashlib.sha256(raw).hexdigest()[:16]


def signed_message(txid: str, issued: int, config_text: str) -> bytes:
    """The exact bytes a config signature covers."""
    digest = hashlib.sha256(config_text.encode("utf-8")).hexdigest()
    return f"{MAGIC}\ntxid={txid}\nissued={issued}\nsha256={digest}\n".encode()


def parse_public_keys(text: str, source: str = "<keys>") -> list[TrustedKey]:
    """Every key in a public-key file's ``text``; `SigningError` for a line that is not one."""
    keys = []
    for block in PEM_BLOCK.findall(text):
        try:
            key = serialization.load_pem_public_key(block.encode())
        except ValueError as exc:
            raise SigningError("bad_key", f"{source}: unreadable PEM public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise SigningError("bad_key", f"{source}: a PEM key is not an Ed25519 key")
        keys.append(TrustedKey(key, "pem"))
    rest = PEM_BLOCK.sub("", text)
    for number, raw in enumerate(rest.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, comment = line.partition(" ")
        if word == "ed25519" and comment:  # "ed25519 <base64> comment" form
            word, _, comment = comment.strip().partition(" ")
        try:
            raw_key = base64.b64decode(word, validate=True)
            keys.append(TrustedKey(Ed25519PublicKey.from_public_bytes(raw_key), comment.strip()))
        except (binascii.Error, ValueError):
            raise SigningError("bad_key", f"{source}: line {number}: not a base64 Ed25519 "
                               "public key (32 bytes)") from None
    return keys


def load_public_keys(path: Path | None) -> list[TrustedKey]:
    """The trusted keys in ``path``; [] when there is no such file (remote config is off)."""
    if path is None:
        return []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise SigningError("no_key", f"cannot read signing keys {path}: {exc}") from None
    return parse_public_keys(text, str(path))


def public_key_line(key: Ed25519PublicKey, comment: str = "") -> str:
    """A line for a public-key file."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return (base64.b64encode(raw).decode() + (f" {comment}" if comment else "")).strip()


def generate_keypair(private_path: Path, public_path: Path, comment: str = "") -> str:
    """Make a key pair: the private key as PEM (mode 0600), the public one as a key line.

    Overwrites nothing (`FileExistsError` naming the file): not an existing private key, and
    not an existing public-key file either, which may be the site's private key given by
    mistake (or the same path as ``private_path``). When the public key cannot be written
    the new private key is removed again (`OSError`): a private key whose public half no
    desk can be given is of no use, and would block the next attempt.
    Returns the public key line.
    """
    if os.path.lexists(public_path) or os.path.abspath(public_path) == os.path.abspath(
            private_path):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(public_path))
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        line = public_key_line(key.public_key(), comment)
        with open(public_path, "x", encoding="utf-8") as pub:
            pub.write(line + "\n")
    except BaseException:
        Path(private_path).unlink(missing_ok=True)
        raise
    return line


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in PEM file ``path``; `KeyNotFound` when there is no such file,
    `SigningError` (``bad_key``) when it cannot be read or is not an unencrypted PEM key."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise KeyNotFound("no_key", f"private key {path}: no such file") from None
    except OSError as exc:
        why = (exc.strerror or str(exc)).lower()
        raise SigningError("bad_key", f"private key {path}: cannot read: {why}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # the key is encrypted
        raise SigningError("bad_key", f"private key {path}: protected by a password; "
                           "deskcue needs an unencrypted PEM key") from None
    except (ValueError, UnsupportedAlgorithm):
        raise SigningError("bad_key", f"private key {path}: not a PEM private key (make one "
                           "with `deskcue config keygen`)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError("bad_key", f"{path} is not an Ed25519 private key")
    return key


def sign_config(key: Ed25519PrivateKey, config_text: str, *, txid: str, issued: int,
                key_id: str | None = None) -> dict[str, Any]:
    """A complete ``cmd/config`` payload for ``config_text``."""
    sig = key.sign(signed_message(txid, issued, config_text))
    payload: dict[str, Any] = {"txid": txid, "issued": issued, "config": config_text,
                               "signature": base64.b64encode(sig).decode()}
    if key_id:
        payload["key_id"] = key_id
    return payload


def verify(keys: list[TrustedKey], *, txid: str, issued: int, config_text: str,
           signature: str | None) -> TrustedKey:
    """The trusted key that signed this config; `SigningError` (``unsigned``, ``no_key`` or
    ``bad_signature``) otherwise."""
    if not signature:
        raise SigningError("unsigned", "config is not signed; refused")
    if not keys:
        raise SigningError("no_key", "no config-signing key is installed on this desk; remote "
                           "config is refused (see docs/field-tech.md)")
    try:
        sig = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise SigningError("bad_signature", "signature is not base64; refused") from None
    message = signed_message(txid, issued, config_text)
    for trusted in keys:
        try:
            trusted.key.verify(sig, message)
            return trusted
        except InvalidSignature:
            continue
    raise SigningError("bad_signature", "signature does not match a trusted key; refused")
