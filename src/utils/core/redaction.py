"""Secrets kept out of what is logged and shown: config keys that name a secret, the password in a URI, and the
random tokens the scripts make for the servers they start. Standard library only (the scripts run it with
`python -S`); imports nothing else of src.

    python -m src.utils.core.redaction token        # a new random token (passwords, Jupyter's token)
    python -m src.utils.core.redaction uri URI      # URI with its password as ***
"""

from __future__ import annotations

import re
import secrets
import sys
from collections.abc import Mapping
from typing import Any

# Words of a key's name that make its value a secret (the name split at _, -, . and camelCase: api_key, apiKey,
# KAGGLE_KEY, db_password); a word that only contains one does not (tokenizer, max_tokens, monkey, keyword).
SECRET_WORDS = frozenset({"key", "apikey", "token", "secret", "secrets", "password", "passwords", "passwd", "pwd",
                          "passphrase", "credential", "credentials"})


def is_secret_name(name: str) -> bool:
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).lower()
    return any(word in SECRET_WORDS for word in re.split(r"[^a-z0-9]+", words))


def redact(cfg: Any) -> Any:
    """A copy of a (resolved) config container with the values of secret-named keys replaced by ***."""
    if isinstance(cfg, Mapping):
        return {k: "***" if is_secret_name(str(k)) else redact(v) for k, v in cfg.items()}
    if isinstance(cfg, list | tuple):
        return [redact(v) for v in cfg]
    return cfg


def redact_uri(uri: str) -> str:
    """A storage URI without its password (postgresql://user:pw@host/db -> postgresql://user:***@host/db)."""
    if "://" in uri and "@" in uri:
        scheme, rest = uri.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        if ":" in cred:
            cred = cred.split(":", 1)[0] + ":***"
        return f"{scheme}://{cred}@{host}"
    return uri


def token() -> str:
    """A random URL-safe token (192 bits): a server's password, Jupyter's token."""
    return secrets.token_urlsafe(24)


def main(argv: list[str]) -> int:
    if argv == ["token"]:
        print(token())
    elif len(argv) == 2 and argv[0] == "uri":
        print(redact_uri(argv[1]))
    else:
        print("usage: python -m src.utils.core.redaction token | uri URI", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
