"""Install steps without the network: wheels pre-placed, fake catalog entry, conversion stubbed
only where it would need a real GGUF (the slow test covers the real conversion)."""

from __future__ import annotations

import hashlib
import zipfile

import pytest
from click.testing import CliRunner

from engine.agents import install as inst
from engine.agents.local import catalog
from engine.agents.local.catalog import CatalogModel, WheelPart
from engine.errors import ConfigError

PAYLOAD = [b"GGUF-part-one-" * 1000, b"part-two-" * 700]


@pytest.fixture
def fake_model(tmp_path, monkeypatch):
    monkeypatch.setenv("BDC_CACHE", str(tmp_path / "cache"))
    data = b"".join(PAYLOAD)
    m = CatalogModel(
        name="fake-model",
        title="Fake",
        parts=(
            WheelPart("fake-pkg-a==1.0", "fake_pkg_a/data/p1.bin"),
            WheelPart("fake-pkg-b==1.0", "fake_pkg_b/data/p2.bin"),
        ),
        gguf_name="fake.gguf",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        params="0",
    )
    monkeypatch.setitem(catalog.CATALOG, m.name, m)
    monkeypatch.setattr(inst, "CATALOG", catalog.CATALOG)
    return m


def place_wheels(m: CatalogModel, payload=PAYLOAD):
    inst.wheels_dir().mkdir(parents=True, exist_ok=True)
    for part, data in zip(m.parts, payload):
        name = part.requirement.split("==")[0].replace("-", "_")
        with zipfile.ZipFile(inst.wheels_dir() / f"{name}-1.0-py3-none-any.whl", "w") as z:
            z.writestr(part.member, data)


def fake_convert(calls):
    def convert(model, gguf, progress):
        calls.append(gguf.read_bytes())
        d = catalog.model_dir(model.name)
        d.mkdir(parents=True)
        (d / "config.json").write_text("{}")
        (d / "model.safetensors").write_bytes(b"x")
        return d

    return convert


def test_assemble_verify_convert_and_skip_when_installed(fake_model, monkeypatch):
    place_wheels(fake_model)
    calls: list[bytes] = []
    monkeypatch.setattr(inst, "_convert", fake_convert(calls))
    monkeypatch.setattr(inst, "_download", lambda *a, **k: pytest.fail("wheels are present: no download"))
    events = []
    folder = inst.install_model("fake-model", events.append)
    assert calls == [b"".join(PAYLOAD)]  # joined in order
    assert catalog.is_installed("fake-model") and folder == catalog.model_dir("fake-model")
    stages = [e.stage for e in events]
    assert "assemble" in stages and stages[-1] == "done"
    assert events[[e.stage for e in events].index("assemble")].total == fake_model.size
    assert not list(inst.wheels_dir().glob("*.whl"))  # cleaned up
    assert catalog.installed_gguf("fake-model") == inst.gguf_dir() / "fake.gguf"  # kept for llama.cpp
    inst.install_model("fake-model")  # already installed: nothing to do
    assert len(calls) == 1


def test_a_model_converted_without_its_gguf_gets_it_back_without_converting_again(fake_model, monkeypatch):
    """Older installs removed the GGUF after converting; the llama.cpp engine needs it."""
    place_wheels(fake_model)
    monkeypatch.setattr(inst, "_convert", fake_convert([]))
    inst.install_model("fake-model")
    gguf = catalog.installed_gguf("fake-model")
    assert gguf is not None
    gguf.unlink()
    assert catalog.installed_gguf("fake-model") is None and catalog.is_installed("fake-model")
    place_wheels(fake_model)  # what the download step would bring
    monkeypatch.setattr(inst, "_convert", lambda *a: pytest.fail("already converted: no second conversion"))
    events = []
    assert inst.install_model("fake-model", events.append) == catalog.model_dir("fake-model")
    assert catalog.installed_gguf("fake-model") is not None
    assert "assemble" in [e.stage for e in events] and events[-1].stage == "done"


def test_resume_reuses_verified_gguf_after_interrupted_conversion(fake_model, monkeypatch):
    place_wheels(fake_model)

    def interrupted(model, gguf, progress):
        raise KeyboardInterrupt

    monkeypatch.setattr(inst, "_convert", interrupted)
    with pytest.raises(KeyboardInterrupt):
        inst.install_model("fake-model")
    assert (inst.gguf_dir() / "fake.gguf").exists()
    for w in inst.wheels_dir().glob("*.whl"):
        w.unlink()  # the verified GGUF is enough to resume
    calls: list[bytes] = []
    monkeypatch.setattr(inst, "_convert", fake_convert(calls))
    monkeypatch.setattr(inst, "_download", lambda *a, **k: pytest.fail("no download needed"))
    inst.install_model("fake-model")
    assert calls == [b"".join(PAYLOAD)]


def test_truncated_wheel_is_downloaded_again(fake_model, monkeypatch):
    place_wheels(fake_model)
    broken = sorted(inst.wheels_dir().glob("fake_pkg_b*.whl"))[0]
    broken.write_bytes(broken.read_bytes()[:20])  # interrupted download
    downloaded = []

    def redownload(part, model, base, progress, total):
        downloaded.append(part.requirement)
        place_wheels(model)
        return inst._complete_wheel(part)

    monkeypatch.setattr(inst, "_download", redownload)
    monkeypatch.setattr(inst, "_convert", fake_convert([]))
    inst.install_model("fake-model")
    assert downloaded == ["fake-pkg-b==1.0"]


def test_hash_mismatch_is_refused(fake_model, monkeypatch):
    place_wheels(fake_model, [PAYLOAD[0], b"tampered-" * 700])
    monkeypatch.setattr(inst, "_convert", fake_convert([]))
    with pytest.raises(ConfigError, match="verification failed"):
        inst.install_model("fake-model")
    assert not catalog.is_installed("fake-model")
    assert not list(inst.gguf_dir().glob("*.part"))


def test_unreachable_index_is_a_clear_message(fake_model, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    with pytest.raises(ConfigError, match="index is unreachable"):
        inst.install_model("fake-model")


def test_unknown_model():
    with pytest.raises(ConfigError, match="installable models"):
        inst.install_model("gpt-5")


def test_cli_models_list_and_config(tmp_path, monkeypatch):
    from engine.cli import cli

    monkeypatch.setenv("BDC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("BDC_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    r = CliRunner().invoke(cli, ["models", "list"])
    assert r.exit_code == 0, r.output
    assert "smollm2-135m" in r.output and "bdc models install qwen2.5-coder-0.5b" in r.output
    r = CliRunner().invoke(cli, ["config", "--init"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "config.toml").exists() and "config.toml" in r.output
    r = CliRunner().invoke(cli, ["config"])
    assert "max_calls=1000" in r.output
    r = CliRunner().invoke(cli, ["config", "--preset", "paper"])
    assert r.exit_code != 0 and "unavailable preset" in str(r.exception)
