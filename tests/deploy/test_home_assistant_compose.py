"""The Home Assistant compose example starts the service the CLI would: its command parses
with the real argument parser and gives settings the server accepts."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "home-assistant" / "docker-compose.yml"


def test_the_compose_command_is_one_the_server_accepts() -> None:
    from assistant.cli import build_parser
    from serving.config import load
    from serving.server import check_exposure

    service = yaml.safe_load(COMPOSE.read_text())["services"]["voice-assistant"]
    args = build_parser().parse_args(service["command"])
    assert args.command == "wyoming" and args.wyoming_uri == "tcp://0.0.0.0:10300"
    (source,) = args.sources
    kind, given = source
    name, _, path = given.partition("=")
    assert (kind, name) == ("context", "ha")
    # The image copies the repository to /app: the context is the shipped one.
    assert (REPO / Path(path).relative_to("/app")).is_file()
    env = {"ASSISTANT_API_KEYS": "k", "ASSISTANT_HOST": "0.0.0.0"}  # from the Dockerfile
    settings = load(args, env)
    check_exposure(settings)  # keys for HTTP, --insecure for Wyoming: allowed
    assert settings.server.slots_file == "/data/slots.yaml"
    assert "10300" in service["expose"] and "ports" not in service  # not published
