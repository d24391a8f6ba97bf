"""Print `export` lines that move every dev service to free loopback ports for this run."""

from __future__ import annotations

import random
import socket
import sys

SERVICES = ("KAFKA", "KAFKA_CONTROLLER", "REDIS", "POSTGRES", "LLM", "STUB", "TELEGRAM", "GATEWAY")


def free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main() -> None:
    base = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] else random.randrange(20000, 30000, 10)
    while not all(free(base + i) for i in range(len(SERVICES))):
        base = random.randrange(20000, 30000, 10)
    port = dict(zip(SERVICES, range(base, base + len(SERVICES)), strict=True))
    if port["KAFKA_CONTROLLER"] != port["KAFKA"] + 1:
        raise SystemExit("the Kafka controller must listen on the broker port + 1")
    print(f"export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{port['KAFKA']}")
    print(f"export REDIS_URL=redis://127.0.0.1:{port['REDIS']}/0")
    print(f"export DATABASE_URL=postgresql://postgres@127.0.0.1:{port['POSTGRES']}/tgstream")
    print(f"export OPENAI_BASE_URL=http://127.0.0.1:{port['LLM']}/v1")
    print(f"export LLM_STUB_URL=http://127.0.0.1:{port['STUB']}/v1")
    print(f"export TELEGRAM_API_URL=http://127.0.0.1:{port['TELEGRAM']}")
    print(f"export GATEWAY_PORT={port['GATEWAY']}")
    print(f"export WEBHOOK_URL=http://127.0.0.1:{port['GATEWAY']}/webhook")
    print(f"echo 'test ports: base {base}'")


if __name__ == "__main__":
    main()
