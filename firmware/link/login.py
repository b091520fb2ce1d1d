"""How a client of the broker logs in, and what the broker's refusal means, in words.

The desk's link (`firmware.link.mqtt_client`) and the supervisor's tools
(`firmware.link.supervisor_client`) log in the same way: the user and password from the
credentials file (`firmware.link.credentials`), TLS when the settings name it. A refusal that
names this client's own settings (a bad password, an unknown client id) is said as that
setting, so a person knows what to change; any other refusal is left to the caller.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from firmware.config.mqtt import MqttSettings
from firmware.link.credentials import (
    CREDENTIAL_NAME,
    CREDSTORE_FILE,
    Credentials,
    credstore,
    load_credentials,
    ssl_context,
    tls_files,
)

# CONNACK reason codes (MQTT 5; paho maps 3.1.1's return codes onto them) that say this desk's
# own settings are wrong, not that the broker is busy or away: retrying will not help until a
# person changes the credentials, the client id or the broker's accounts.
_REFUSED_FOR_CONFIG = {
    0x84: "the broker does not speak this MQTT version (mqtt.protocol)",
    0x85: "the broker refuses this client id (mqtt.client_id)",
    0x86: "bad user name or password ({login})",
    0x87: "not authorized ({login}; or the broker's accounts and ACL)",
    0x8A: "this client is banned by the broker",
    0x8C: "the broker wants another authentication method",
}


def login_words(creds: Credentials) -> str:
    """How the desk logged in, for a refusal: the user and the credentials file by path
    (never the password), or that it logged in anonymously and where a file belongs."""
    if creds.source == "none":
        return (f"logged in anonymously: no credentials file; put one at "
                f"{credstore() / CREDSTORE_FILE} or name it in mqtt.credentials_file")
    source = creds.source
    if Path(source).name == CREDENTIAL_NAME and os.environ.get("CREDENTIALS_DIRECTORY"):
        source += f", systemd's copy of {credstore() / CREDSTORE_FILE}"
    if creds.username is None:
        return f"logged in anonymously: the credentials file {source} names no user"
    return f"user {creds.username!r} from the credentials file {source}"


def refusal(reason_code: Any, login: str) -> str | None:
    """A refusal for the desk's settings in words, or None for any other reason code."""
    why = _REFUSED_FOR_CONFIG.get(getattr(reason_code, "value", -1))
    return why.format(login=login) if why is not None else None


def reason_failed(reason_code: Any) -> bool:
    """Whether a paho reason code (MQTT 5) or return code (3.1.1) says the request failed."""
    try:
        return bool(reason_code.is_failure)
    except AttributeError:
        return bool(reason_code)


def log_in(client: Any, settings: MqttSettings) -> str:
    """Give paho's ``client`` the user, password and TLS context that ``settings`` name;
    returns how it logs in, in words (`login_words`), for a refusal. Raises
    `CredentialsError` when the credentials or TLS files cannot be used."""
    creds = load_credentials(settings)
    words = login_words(creds)
    if creds.username is not None:
        client.username_pw_set(creds.username,
                               creds.password.reveal() if creds.password else None)
    files = tls_files(settings)
    if files is not None:
        client.tls_set_context(ssl_context(files))
    return words

