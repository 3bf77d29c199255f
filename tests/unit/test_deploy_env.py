"""The production environment example is a configuration the adapter accepts."""

from pathlib import Path

from adapter.config import load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "adapter.env.example"


def test_env_example_is_a_valid_production_configuration():
    env = {}
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    # the secret file does not exist here; everything else is taken as written
    env.pop("ADAPTER_SECRET_KEY_FILE")
    config = load_config({**env, "ADAPTER_SECRET_KEY": "test"})
    assert config.environment == "production"
    assert config.public_url.startswith("https://")
