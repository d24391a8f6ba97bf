"""Redis for dev: Debian's `redis-server` in the foreground on the REDIS_URL port, loopback only.

Append-only persistence (fsync every second) keeps dedupe keys and rate-limit buckets across a
restart of the dev stack, which is what the delivery guarantees in production rely on too; RDB
snapshots are off because they fork the whole dataset on a 2-core box.
"""

from __future__ import annotations

import shutil

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tgstream.devstack.service import Endpoint, InstallError, Launch, Service, endpoint_from_url


class RedisServer(Service):
    name = "redis"
    setting = "REDIS_URL"
    start_timeout_s = 15.0

    @property
    def endpoint(self) -> Endpoint:
        return endpoint_from_url(self.settings.redis_url, 6379)

    def check_installed(self) -> None:
        if shutil.which("redis-server") is None:
            raise InstallError(
                "redis-server is not installed: run scripts/install.sh (or apt-get install redis-server)"
            )

    def launch(self) -> Launch:
        data = self.paths.data(self.name)
        data.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("redis-server") or "redis-server"
        return Launch(
            command=(
                binary,
                "--bind", self.endpoint.host,
                "--port", str(self.endpoint.port),
                "--daemonize", "no",
                "--logfile", "",
                "--dir", str(data),
                "--save", "",
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--protected-mode", "yes",
                "--maxclients", "2000",
            ),
        )  # fmt: skip

    def probe(self) -> bool:
        client = redis.Redis(
            host=self.endpoint.host,
            port=self.endpoint.port,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()
