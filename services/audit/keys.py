"""The deployment's Ed25519 checkpoint key: loaded from DUALRANDOM_AUDIT_SIGNING_KEY, DUALRANDOM_AUDIT_SIGNING_KEY_FILE
or var/, and its public form.

Key names and ids follow C2SP signed-note: the key id is the first 4 bytes of
SHA-256(name || 0x0A || 0x01 || 32-byte public key), and the verifier key is ``name+<id hex>+<base64(0x01 || key)>``.
"""

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.infra.settings import Settings, SettingsError

KEY_FILE = "audit-signing.key"
ED25519 = b"\x01"  # signed-note algorithm byte


def origin_of(settings: Settings) -> str:
    """The log's name in checkpoints and the key's name: ``dualrandom/<deployment>``."""
    return "dualrandom/" + (re.sub(r"[\s+]", "-", settings.deployment) or "deployment")


@dataclass(frozen=True)
class PublicKey:
    """What a partner needs to check checkpoint signatures."""

    name: str
    raw: bytes  # 32 bytes

    @property
    def key_id(self) -> bytes:
        return hashlib.sha256(self.name.encode() + b"\n" + ED25519 + self.raw).digest()[:4]

    @property
    def vkey(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(ED25519 + self.raw).decode()}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def view(self) -> dict[str, Any]:
        return {
            "algorithm": "Ed25519",
            "key_name": self.name,
            "key_id": self.key_id.hex(),
            "public_key": base64.b64encode(self.raw).decode(),
            "public_key_hex": self.raw.hex(),
            "vkey": self.vkey,
        }

    @classmethod
    def parse(cls, text: str, name: str) -> "PublicKey":
        """A public key given as base64 or hex of its 32 bytes, or as a ``vkey``."""
        text = text.strip()
        if "+" in text and text.count("+") >= 2:
            vname, _, rest = text.partition("+")
            _, _, b64 = rest.partition("+")
            raw = base64.b64decode(b64)
            if raw[:1] != ED25519 or len(raw) != 33:
                raise ValueError("not an Ed25519 verifier key")
            return cls(vname, raw[1:])
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_")
        if len(raw) != 32:
            raise ValueError("an Ed25519 public key has 32 bytes")
        return cls(name, raw)


class Signer:
    """Signs checkpoint bodies with the deployment's private key."""

    def __init__(self, name: str, private: Ed25519PrivateKey) -> None:
        self._private = private
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public = PublicKey(name, raw)

    @property
    def name(self) -> str:
        return self.public.name

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> "Signer":
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))


def _decode_seed(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_")


def load_signer(settings: Settings) -> Signer:
    """The signer from DUALRANDOM_AUDIT_SIGNING_KEY, else from ``var/audit-signing.key`` (created once, 0600)."""
    name = origin_of(settings)
    if settings.audit_signing_key and settings.audit_signing_key_file:
        raise SettingsError("DUALRANDOM_AUDIT_SIGNING_KEY and DUALRANDOM_AUDIT_SIGNING_KEY_FILE: give one, not both")
    if settings.audit_signing_key:
        return Signer.from_seed(name, _decode_seed(settings.audit_signing_key))
    if settings.audit_signing_key_file:
        key_path = Path(settings.audit_signing_key_file)
        try:
            text = key_path.read_text(encoding="ascii").strip()
            seed = _decode_seed(text)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise SettingsError(f"DUALRANDOM_AUDIT_SIGNING_KEY_FILE: {key_path} cannot be read: "
                                f"{type(exc).__name__}") from None
        if len(seed) != 32:
            raise SettingsError(f"DUALRANDOM_AUDIT_SIGNING_KEY_FILE: {key_path} does not hold a base64 32-byte "
                                "Ed25519 key")
        if key_path.resolve().is_relative_to(settings.var_dir.resolve()):
            raise SettingsError(f"DUALRANDOM_AUDIT_SIGNING_KEY_FILE: {key_path} is inside the data directory "
                                f"{settings.var_dir}: keep the key where a copy of the data does not take it along")
        return Signer.from_seed(name, seed)
    path = settings.var_dir / KEY_FILE
    if not path.exists():
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it meanwhile
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(base64.b64encode(os.urandom(32)).decode() + "\n")
    seed = _decode_seed(path.read_text().strip())
    if len(seed) != 32:
        raise SettingsError(f"DUALRANDOM_AUDIT_SIGNING_KEY: {path} does not hold a base64 32-byte Ed25519 key")
    return Signer.from_seed(name, seed)
