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


ROOT = Path(__file__).resolve().parents[2]


def _config_variables() -> set[str]:
    """Every ADAPTER_ variable the configuration reads, the generated throttle names included."""
    import re
    from dataclasses import fields

    from adapter.config import Throttles

    # adapter/config.py, and the wallets' own sections it loads (adapter/wallet/*/config.py)
    sources = [ROOT / "adapter" / "config.py", *sorted(ROOT.glob("adapter/wallet/*/config.py"))]
    text = "\n".join(path.read_text(encoding="utf-8") for path in sources)
    names = set(re.findall(r'"(ADAPTER_[A-Z0-9_]*[A-Z0-9])"', text))
    names |= {f"ADAPTER_THROTTLE_{item.name.upper()}" for item in fields(Throttles)}
    return names


def _readme_variables() -> set[str]:
    """Variables in README's configuration tables; `_SUFFIX` after a name shares its prefix."""
    import re

    names: set[str] = set()
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if not line.lstrip().startswith("| `ADAPTER_"):
            continue
        cell = line.split("|")[1]
        full = re.findall(r"`(ADAPTER_[A-Z0-9_]+)`", cell)
        names.update(full)
        for suffix in re.findall(r"`(_[A-Z0-9_]+)`", cell):
            # `ADAPTER_THROTTLE_SIGN_IN_PER_IP` / `_SIGN_IN_PER_ACCOUNT`: the prefix up to the
            # part the suffix replaces
            first = full[0]
            stem = first[: first.index("_", len("ADAPTER_"))]
            names.add(stem + suffix)
    return names


def _example_variables() -> set[str]:
    """Variables the example sets or shows commented out (`# ADAPTER_X=...`)."""
    import re

    text = EXAMPLE.read_text(encoding="utf-8")
    return set(re.findall(r"^#? ?(ADAPTER_[A-Z0-9_]+)=", text, flags=re.MULTILINE))


def test_every_variable_the_adapter_reads_is_in_readmes_configuration_table():
    missing = _config_variables() - _readme_variables()
    assert not missing, f"README's configuration table lacks {sorted(missing)}"


def test_every_documented_variable_is_in_the_environment_example():
    missing = _readme_variables() - _example_variables()
    assert not missing, f"deploy/adapter.env.example lacks {sorted(missing)}"


def _unit(path: Path) -> dict[str, list[str]]:
    """A systemd unit's assignments by key (keys repeat, so not configparser)."""
    keys: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            keys.setdefault(key.strip(), []).append(value.strip())
    return keys


def test_every_role_has_a_templated_unit_that_runs_what_the_package_installs():
    units = ROOT / "deploy" / "systemd"
    roles = {"web": "gunicorn", "listener": "hospital-adapter listener",
             "worker": "hospital-adapter worker"}
    for role, command in roles.items():
        unit = _unit(units / f"hospital-adapter-{role}@.service")
        (exec_start,) = unit["ExecStart"]
        assert exec_start.startswith("/opt/hospital-adapter/venv/bin/")
        assert exec_start.removeprefix("/opt/hospital-adapter/venv/bin/").startswith(command)
        assert unit["EnvironmentFile"] == ["/etc/hospital-adapter/adapter.env"]
        assert unit["User"] == ["hospital-adapter"] and unit["NoNewPrivileges"] == ["true"]
        assert unit["PartOf"] == ["hospital-adapter.target"]
        for path in exec_start.split():
            if path.startswith("/opt/hospital-adapter/deploy/"):
                assert (ROOT / path.removeprefix("/opt/hospital-adapter/")).is_file(), path
    # the instance name is the port each web and listener instance binds
    web = _unit(units / "hospital-adapter-web@.service")
    assert "ADAPTER_WEB_LISTEN=127.0.0.1:%i" in web["Environment"]
    assert "ADAPTER_MLLP_LISTEN=0.0.0.0:%i" in _unit(
        units / "hospital-adapter-listener@.service")["Environment"]
    backup = _unit(units / "hospital-adapter-backup.service")
    assert (ROOT / backup["ExecStart"][0].removeprefix("/opt/hospital-adapter/")).is_file()
