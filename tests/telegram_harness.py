"""A real OpenClaw gateway whose real Telegram channel talks to the loopback fake Bot API (fake_telegram).

The gateway runs as in test_plugin_e2e (the plugin installed by ``install.sh --plugin-only``, a throw-away
OpenClaw home, the scripted Messages API) with one Telegram account, ``main-bot``, polling the fake. People:
the OWNER (in ``commands.ownerAllowFrom`` and ``allowFrom``), a GUEST (only in ``allowFrom``: admitted to
direct messages, not an owner), a MEMBER of the GROUP (in the group's own ``allowFrom`` only) and a STRANGER.

What the plugin sees (OpenClaw 2026.9.6): a command's ctx has ``senderId`` (the Telegram user id),
``channel: "telegram"``, ``accountId: "main-bot"``, ``from``/``to`` (``telegram:<user>`` in a DM;
``telegram:group:<chat>``/``telegram:<chat>`` in a group) but no ``senderIsOwner`` unless the command declares
``requiredScopes``. A tool's ctx has ``requesterSenderId``, ``senderIsOwner``, ``messageChannel: "telegram"``,
``agentAccountId`` and ``deliveryContext.to`` (``telegram:<chat>``).
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import REPO, Claw, _stop_units, wait_until
from fake_model import FakeModel
from fake_telegram import Chat, FakeTelegram, Sent, User
from notifier_harness import NotifierUnit, Recording, install_openclaw
from plugin_harness import Gateway, GatewayError, free_port, gateway_env, provision

from clawunits.notifier.gateway import gateway_state, handover_dir
from clawunits.testing.scripted_api import ScriptedAPI

CLAWUNITS = Path(sys.executable).parent / "clawunits"
ACCOUNT = "main-bot"
OWNER = User(id=1001, first_name="Olivia", username="olivia_owner")
GUEST = User(id=2002, first_name="Gus", username="gus_guest")
MEMBER = User(id=3003, first_name="Mia", username="mia_member")
STRANGER = User(id=4004, first_name="Sam", username="sam_stranger")  # in no allowlist
GROUP = Chat.group(-1_001_234_567_890, "Claw team")
READY_TIMEOUT = 120


def telegram_config(fake: FakeTelegram) -> dict[str, Any]:
    """The openclaw.json keys for the Telegram side: the channel, command owners, and the account's agent."""
    return {
        "channels": {
            "telegram": {
                "enabled": True,
                # The Bot API root (without /bot<TOKEN>); the root's keys are every account's defaults.
                "apiRoot": fake.url,
                "dmPolicy": "allowlist",
                "allowFrom": [str(OWNER.id), str(GUEST.id)],
                "groupPolicy": "allowlist",
                # The group's own allowFrom admits its members' messages and commands (root allowFrom: DMs).
                "groups": {str(GROUP.id): {"requireMention": False, "allowFrom": [str(OWNER.id), str(MEMBER.id)]}},
                "joinIntro": False,
                "streaming": {"mode": "off"},
                "defaultAccount": ACCOUNT,
                "accounts": {ACCOUNT: {"botToken": fake.token}},
            }
        },
        "commands": {"ownerAllowFrom": [f"telegram:{OWNER.id}"]},
        # Every Telegram account needs an agent that owns it, or the account stays blocked.
        "bindings": [{"agentId": "main", "match": {"channel": "telegram", "accountId": ACCOUNT}}],
    }


@dataclass
class TelegramGateway:
    gw: Gateway
    bot: FakeTelegram
    claw: Claw
    started_in: float  # seconds from `gateway run` to the first long poll

    def command(self, chat: Chat, user: User, text: str, timeout: float = 60) -> Sent:
        """``user`` types ``text`` in ``chat``; the bot's first message to that chat afterwards."""
        after = self.bot.mark()
        self.bot.user_says(chat, user, text)
        return self.bot.wait_for_message(chat.id, after=after, timeout=timeout)


@contextmanager
def telegram_gateway(
    root: Path,
    user_manager: dict[str, str],
    scripted_api: ScriptedAPI,
    claude_config_dir: Path,
    model: FakeModel | None = None,
    configure: Callable[[dict[str, Any]], None] | None = None,
) -> Iterator[TelegramGateway]:
    """Start the fake Bot API and a gateway polling it; stop both (and the sessions' units) at the end.

    With ``model`` (started) the agents run on it, so plain messages get agent turns that can call tools;
    without it only commands are answered. ``configure`` may change openclaw.json (a dict) before the start.
    """
    assert CLAWUNITS.exists(), f"{CLAWUNITS}: the tests run from the virtualenv install.sh made"
    workspace, project = root / "ws-main", root / "projects" / "app"
    for d in (root / "home", root / "tmp", workspace, project):
        d.mkdir(parents=True, exist_ok=True)
    env = gateway_env(root, user_manager, scripted_api, claude_config_dir)
    claw = Claw(
        env=env,
        state_dir=root / "state",
        config_path=root / "config" / "config.toml",
        workdir=project,
        api=scripted_api,
    )
    bot = FakeTelegram().start()
    gw = Gateway(toolchain=provision(), home=root / "home", env=env, port=free_port(), token=uuid.uuid4().hex)
    try:
        proc = subprocess.run(
            [str(REPO / "install.sh"), "--plugin-only"], env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        config = gw.read_config()
        # Port and token in the config too: CLI calls such as `openclaw message send` (the notifier's) reach
        # the gateway with them.
        config.setdefault("gateway", {}).update(
            {"mode": "local", "port": gw.port, "auth": {"mode": "token", "token": gw.token}}
        )
        config["update"] = {"checkOnStart": False}
        config["agents"] = {"entries": {"main": {"workspace": str(workspace)}}}
        config.update(telegram_config(bot))
        config["plugins"]["entries"]["clawunits"]["config"].update(
            {"agentChannels": {str(project.parent): f"telegram|{ACCOUNT}|{OWNER.id}"}, "stopTimeoutSec": 10}
        )
        if model is not None:
            extra = model.model_config()
            config["models"] = extra["models"]
            config["agents"]["defaults"] = extra["agents"]["defaults"]
            config.setdefault("tools", {}).update(extra["tools"])
        if configure is not None:
            configure(config)
        gw.write_config(config)
        began = time.monotonic()
        gw.start()
        # Ready once the channel long-polls (a getUpdates with a timeout: the first one has timeout 0).
        deadline = began + READY_TIMEOUT
        while not any(c.method == "getUpdates" and int(c.params.get("timeout") or 0) > 0 for c in list(bot.calls)):
            if gw.process is not None and gw.process.poll() is not None:
                raise GatewayError(f"the gateway exited {gw.process.returncode}:\n{gw.log_tail()}")
            if time.monotonic() > deadline:
                raise GatewayError(
                    f"the Telegram channel did not poll within {READY_TIMEOUT}s (calls: {bot.methods_called()}):\n"
                    f"{gw.log_tail()}"
                )
            time.sleep(0.2)
        yield TelegramGateway(gw=gw, bot=bot, claw=claw, started_in=time.monotonic() - began)
    finally:
        gw.stop()
        bot.stop()
        _stop_units(claw)


@contextmanager
def delivering_gateway(
    root: Path,
    user_manager: dict[str, str],
    scripted_api: ScriptedAPI,
    claude_config_dir: Path,
    **plugin_config: Any,
) -> Iterator[tuple[TelegramGateway, NotifierUnit, Recording]]:
    """A gateway whose plugin's delivery service is up, and the real notifier in its user unit beside it: the
    notifier hands its messages over to the gateway (the CLI it falls back to is the recording stand-in)."""
    (root / "state").mkdir(parents=True, exist_ok=True)
    probe = Claw(env={}, state_dir=root / "state", config_path=root / "config" / "config.toml",
                 workdir=root, api=scripted_api)  # fmt: skip
    openclaw, rec = install_openclaw(probe)

    def configure(config: dict[str, Any]) -> None:
        config["plugins"]["entries"]["clawunits"]["config"].update({"openclawPath": str(openclaw), **plugin_config})

    with telegram_gateway(root, user_manager, scripted_api, claude_config_dir, configure=configure) as t:
        wait_until(lambda: gateway_state(handover_dir(t.claw.state_dir)).status == "up", timeout=60,
                   what="the plugin's delivery service")  # fmt: skip
        notifier = NotifierUnit(t.claw, rec).start()
        try:
            yield t, notifier, rec
        finally:
            notifier.close()
