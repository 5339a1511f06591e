"""`bench ls backends`: usable here or not, why, and what to install; nothing heavy imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.backends import BACKENDS, availability, backend_status


def test_every_registered_backend_has_a_line() -> None:
    rows = backend_status()
    assert [r[0] for r in rows] == BACKENDS.names()
    assert set(BACKENDS.names()) == {
        "fake",
        "llamacpp",
        "onnxruntime-genai",
        "openai",
        "transformers",
        "vllm",
    }
    assert all(why for _, _, why in rows)


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("llamacpp", "pip install 'bench[cpu]'"),
        ("transformers", "pip install 'bench[transformers]'"),
        ("onnxruntime-genai", "pip install 'bench[onnx]'"),
        ("vllm", "pip install 'bench[vllm]'"),
    ],
)
def test_missing_engines_say_what_to_install(monkeypatch: pytest.MonkeyPatch, name: str, hint: str) -> None:
    monkeypatch.setattr(availability, "_has", lambda module: False)
    ok, why = availability.check(name)
    assert not ok and hint in why


def test_vllm_without_a_gpu_points_at_vllm_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(availability, "_has", lambda module: True)
    monkeypatch.setattr(availability, "_gpu", lambda: None)
    ok, why = availability.check("vllm")
    assert not ok and "no NVIDIA GPU" in why and "vllm serve" in why


def test_cli_lists_backends_without_importing_engines() -> None:
    code = (
        "import sys; from bench.cli import main\n"
        "try:\n    main(['ls', 'backends'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'vllm', 'llama_cpp', 'transformers', 'onnxruntime_genai') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout
    for name in ("llamacpp", "openai", "transformers", "onnxruntime-genai", "vllm", "fake"):
        assert any(line.startswith(name + " ") for line in r.stdout.splitlines()), name
