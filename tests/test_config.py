"""Configuration (SPEC I4) and the encryption key ring (K3)."""

from __future__ import annotations

import base64

import pytest

from app.config import Config, ConfigError, normalise_database_url
from app.security import DecryptionError, KeyRing, generate_key

CONFIG_VARS = [
    "SLOTBOOK_ENV", "SECRET_KEY", "SLOTBOOK_ENCRYPTION_KEYS", "DATABASE_URL", "REDIS_URL",
    "SLOTBOOK_BASE_URL", "SLOTBOOK_ALLOW_PRIVATE_URLS", "MAIL_PORT", "MAIL_USE_TLS",
    "MAIL_USE_SSL", "MAIL_OUTBOX_DIR", "SLOTBOOK_OUTBOX_SWEEP_AFTER",
    "SLOTBOOK_OUTBOX_MAX_ATTEMPTS",
]  # fmt: skip
STRONG_SECRET = "k" * 20 + "Zx9-Qw3_Lm7Pt2Rv5Ys8"  # 40 characters, not a known weak value


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean environment whose instance folder is a temporary directory."""
    for name in CONFIG_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLOTBOOK_INSTANCE_DIR", str(tmp_path))
    return monkeypatch


def production(env, **values):
    env.setenv("SLOTBOOK_ENV", "production")
    for name, value in values.items():
        env.setenv(name, value)
    return Config()


# --- production refuses unsafe settings ---------------------------------------------


def test_production_requires_secret_key(env):
    with pytest.raises(ConfigError, match="SECRET_KEY must be set"):
        production(env, SLOTBOOK_ENCRYPTION_KEYS=generate_key())


@pytest.mark.parametrize("weak", ["changeme", "secret", "short-but-random-x7Q"])
def test_production_refuses_weak_or_short_secret_key(env, weak):
    with pytest.raises(ConfigError, match="at least 32 characters"):
        production(env, SECRET_KEY=weak, SLOTBOOK_ENCRYPTION_KEYS=generate_key())


def test_production_requires_encryption_keys(env):
    with pytest.raises(ConfigError, match="SLOTBOOK_ENCRYPTION_KEYS must be set in production"):
        production(env, SECRET_KEY=STRONG_SECRET)


def test_malformed_encryption_keys_are_refused_at_start(env):
    with pytest.raises(ConfigError, match="SLOTBOOK_ENCRYPTION_KEYS is not usable"):
        production(env, SECRET_KEY=STRONG_SECRET, SLOTBOOK_ENCRYPTION_KEYS="changeme")


def test_production_starts_with_real_keys_and_writes_no_instance_secrets(env, tmp_path):
    key = generate_key()
    config = production(
        env, SECRET_KEY=STRONG_SECRET, SLOTBOOK_ENCRYPTION_KEYS=key, REDIS_URL="redis://r:6379/0"
    )
    secret, keys = config.SECRET_KEY, config.SLOTBOOK_ENCRYPTION_KEYS
    assert (secret, keys) == (STRONG_SECRET, key)
    assert config.SESSION_COOKIE_SECURE is True
    assert not (tmp_path / "secret_key").exists()
    assert not (tmp_path / "encryption_keys").exists()


def test_unknown_environment_name_is_refused(env):
    env.setenv("SLOTBOOK_ENV", "staging")
    with pytest.raises(ConfigError, match="SLOTBOOK_ENV"):
        Config()


# --- development defaults ------------------------------------------------------------


def test_development_creates_instance_secrets_once_and_reuses_them(env, tmp_path):
    first = Config()
    assert first.ENV == "development"
    secret_file, keys_file = tmp_path / "secret_key", tmp_path / "encryption_keys"
    assert secret_file.read_text().strip() == first.SECRET_KEY
    assert keys_file.read_text().strip() == first.SLOTBOOK_ENCRYPTION_KEYS
    assert oct(secret_file.stat().st_mode & 0o777) == "0o600"
    assert len(first.SECRET_KEY) >= 32
    KeyRing.from_config(first.SLOTBOOK_ENCRYPTION_KEYS)  # a usable key

    second = Config()
    assert second.SECRET_KEY == first.SECRET_KEY
    assert second.SLOTBOOK_ENCRYPTION_KEYS == first.SLOTBOOK_ENCRYPTION_KEYS


def test_development_defaults_live_in_the_instance_folder(env, tmp_path):
    expected = {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'slotbook.db'}",
        "MAIL_OUTBOX_DIR": str(tmp_path / "mail"),
        "REDIS_URL": None,
        "SLOTBOOK_ALLOW_PRIVATE_URLS": False,
        "SLOTBOOK_BASE_URL": "http://127.0.0.1:5000",
        "MS_AUTHORITY_HOST": "https://login.microsoftonline.com",
        "MS_GRAPH_URL": "https://graph.microsoft.com/v1.0",
        "GOOGLE_AUTH_URI": "https://accounts.google.com/o/oauth2/v2/auth",
        "GOOGLE_TOKEN_URI": "https://oauth2.googleapis.com/token",
        "GOOGLE_CALENDAR_API_URL": "https://www.googleapis.com/calendar/v3",
        "OUTBOX_SWEEP_AFTER_SECONDS": 60,
        "OUTBOX_MAX_ATTEMPTS": 8,
    }
    config = vars(Config())
    assert {name: config[name] for name in expected} == expected


def test_environment_secret_wins_over_instance_file(env, tmp_path):
    env.setenv("SECRET_KEY", STRONG_SECRET)
    assert Config().SECRET_KEY == STRONG_SECRET
    assert not (tmp_path / "secret_key").exists()


# --- typed parsing -------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("yes", True), ("0", False),
                                               ("off", False), ("", False)])  # fmt: skip
def test_booleans(env, raw, expected):
    env.setenv("SLOTBOOK_ALLOW_PRIVATE_URLS", raw)
    assert Config().SLOTBOOK_ALLOW_PRIVATE_URLS is expected


def test_bad_boolean_is_a_config_error(env):
    env.setenv("SLOTBOOK_ALLOW_PRIVATE_URLS", "maybe")
    with pytest.raises(ConfigError, match=r"SLOTBOOK_ALLOW_PRIVATE_URLS must be 0 or 1 .*maybe"):
        Config()


def test_bad_integer_is_a_config_error(env):
    env.setenv("MAIL_PORT", "twenty-five")
    with pytest.raises(ConfigError, match="MAIL_PORT must be a whole number"):
        Config()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/slotbook", "postgresql+psycopg://u:p@db:5432/slotbook"),
        ("postgresql://u@db/slotbook", "postgresql+psycopg://u@db/slotbook"),
        ("postgresql+psycopg://u@db/slotbook", "postgresql+psycopg://u@db/slotbook"),
        ("sqlite:////srv/slotbook.db", "sqlite:////srv/slotbook.db"),
    ],
)
def test_database_urls_are_normalised(env, given, expected):
    assert normalise_database_url(given) == expected
    env.setenv("DATABASE_URL", given)
    assert vars(Config())["SQLALCHEMY_DATABASE_URI"] == expected


# --- key ring ------------------------------------------------------------------------


def test_key_ring_round_trip():
    ring = KeyRing.from_config(generate_key())
    sealed = ring.encrypt("app-password 123 ✓")
    assert "app-password" not in sealed
    assert ring.decrypt(sealed) == "app-password 123 ✓"
    assert not ring.needs_rotation(sealed)


def test_old_key_still_decrypts_after_a_new_key_is_put_first():
    old, new = generate_key(), generate_key()
    sealed_with_old = KeyRing.from_config(old).encrypt("caldav secret")

    rotated = KeyRing.from_config(f"{new},{old}")
    assert rotated.decrypt(sealed_with_old) == "caldav secret"
    assert rotated.needs_rotation(sealed_with_old)

    resealed = rotated.encrypt("caldav secret")
    assert not rotated.needs_rotation(resealed)
    assert rotated.decrypt(resealed) == "caldav secret"


def test_tampering_is_detected():
    ring = KeyRing.from_config(generate_key())
    prefix, key_id, body = ring.encrypt("secret").split(".", 2)
    blob = bytearray(base64.urlsafe_b64decode(body))
    blob[14] ^= 0x01  # one bit of the ciphertext, after the 12-byte nonce
    flipped = base64.urlsafe_b64encode(bytes(blob)).decode()
    with pytest.raises(DecryptionError, match="failed authentication"):
        ring.decrypt(f"{prefix}.{key_id}.{flipped}")
    with pytest.raises(DecryptionError):
        ring.decrypt("not a sealed value")


def test_unknown_key_id_is_refused():
    sealed = KeyRing.from_config(generate_key()).encrypt("secret")
    other = KeyRing.from_config(generate_key())
    with pytest.raises(DecryptionError, match="no longer configured"):
        other.decrypt(sealed)


def test_key_ring_rejects_bad_keys():
    with pytest.raises(ValueError, match="32 bytes"):
        KeyRing.from_config("c2hvcnQ")
    with pytest.raises(ValueError, match="no key"):
        KeyRing.from_config(" , ")
