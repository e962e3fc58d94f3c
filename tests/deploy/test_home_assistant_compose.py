"""The Home Assistant compose example starts the service the CLI would: its command parses
with the real argument parser and gives settings the server accepts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "home-assistant" / "docker-compose.yml"


def test_the_compose_command_is_one_the_server_accepts() -> None:
    from assistant.cli import build_parser
    from serving.config import load
    from serving.server import check_exposure

    service = yaml.safe_load(COMPOSE.read_text())["services"]["voice-assistant"]
    # What the container runs: the compose entrypoint (or the image's) and the command.
    dockerfile = (REPO / service["build"]["dockerfile"]).read_text()
    image_entrypoint = re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.MULTILINE)
    assert image_entrypoint is not None
    argv = [*(service.get("entrypoint") or json.loads(image_entrypoint.group(1))),
            *service["command"]]
    assert argv[0] == "assistant"
    args = build_parser().parse_args(argv[1:])
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
    # The volume's directory exists in the image, owned by the user the service runs as.
    volume = next(v.split(":")[1] for v in service["volumes"])
    assert f"mkdir -p {volume} && chown assistant {volume}" in dockerfile
    assert "USER 10001" in dockerfile and "--uid 10001 assistant" in dockerfile
    assert "10300" in service["expose"] and "ports" not in service  # not published
