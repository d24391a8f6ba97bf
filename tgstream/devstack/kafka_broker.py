"""Apache Kafka 4.2 for dev: one KRaft node (broker + controller) on the local JDK.

The jars come from Maven Central through a tiny pom shipped next to this module and are cached
under ``.dev/cache/kafka/libs``; a marker holding the pom's hash tells a complete download from an
interrupted one. The storage directory is formatted once, then reused across restarts.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from importlib import resources
from pathlib import Path

from tgstream.devstack import kafka_config
from tgstream.devstack.paths import DevPaths
from tgstream.devstack.service import (
    DevStackError,
    Endpoint,
    InstallError,
    Launch,
    Service,
    endpoint_from_bootstrap,
)
from tgstream.devstack.supervisor import port_in_use, tail

JVM_OPTIONS = (
    "-Xms256m",
    "-Xmx768m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)
_QUIET = logging.getLogger("tgstream.devstack.kafka_probe")
_QUIET.setLevel(logging.CRITICAL)


def _pom() -> Path:
    return Path(str(resources.files("tgstream.devstack") / "kafka-pom.xml"))


def libs_dir(paths: DevPaths) -> Path:
    return paths.cache / "kafka" / "libs"


def _pom_digest() -> str:
    return hashlib.sha256(_pom().read_bytes()).hexdigest()[:16]


def jars_present(paths: DevPaths) -> bool:
    marker = libs_dir(paths) / ".resolved"
    return marker.exists() and marker.read_text().strip() == _pom_digest()


def fetch_jars(paths: DevPaths, *, log_path: Path) -> Path:
    """Resolve the broker's runtime jars with Maven into the cache (no-op when already complete)."""
    target = libs_dir(paths)
    if jars_present(paths):
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise InstallError("Maven (mvn) is not installed; it resolves the Kafka jars: apt-get install maven")
    staging = target.with_name("libs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        mvn, "-q", "-B", "-f", str(_pom()), "dependency:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={staging.resolve()}",
    ]  # fmt: skip
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        result = subprocess.run(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        last = "\n".join(tail(log_path, 20))
        raise InstallError(f"resolving the Kafka jars with mvn failed (see {log_path}):\n{last}")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    (target / ".resolved").write_text(_pom_digest() + "\n")
    return target


class KafkaBroker(Service):
    name = "kafka"
    setting = "KAFKA_BOOTSTRAP_SERVERS"
    start_timeout_s = 120.0
    stop_timeout_s = 40.0

    @property
    def endpoint(self) -> Endpoint:
        return endpoint_from_bootstrap(self.settings.kafka_bootstrap_servers)

    @property
    def extra_ports(self) -> tuple[int, ...]:
        return (self.endpoint.port + 1,)

    @property
    def _config_dir(self) -> Path:
        return self.paths.data(self.name) / "config"

    @property
    def _log_dir(self) -> Path:
        return self.paths.data(self.name) / "log"

    def check_installed(self) -> None:
        if shutil.which("java") is None:
            raise InstallError(
                "java is not installed (a JDK 17+ runs Kafka): apt-get install default-jdk-headless"
            )
        if not jars_present(self.paths) and shutil.which("mvn") is None:
            raise InstallError("Kafka jars are not cached and mvn is missing: run scripts/install.sh")

    def prepare(self) -> None:
        fetch_jars(self.paths, log_path=self.paths.log_file(self.name))
        self._config_dir.mkdir(parents=True, exist_ok=True)
        self._log_dir.mkdir(parents=True, exist_ok=True)
        properties = kafka_config.server_properties(
            host=self.endpoint.host, port=self.endpoint.port, log_dir=self._log_dir
        )
        (self._config_dir / "server.properties").write_text(kafka_config.render_properties(properties))
        (self._config_dir / "log4j2.properties").write_text(kafka_config.log4j2_properties())
        if not (self._log_dir / "meta.properties").exists():
            self._format_storage()

    def _java(self, main_class: str, *args: str) -> list[str]:
        return [
            shutil.which("java") or "java",
            *JVM_OPTIONS,
            f"-Dlog4j2.configurationFile={self._config_dir / 'log4j2.properties'}",
            "-cp",
            f"{libs_dir(self.paths)}/*",
            main_class,
            *args,
        ]

    def _format_storage(self) -> None:
        command = self._java(
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id", kafka_config.cluster_id(),
            "--config", str(self._config_dir / "server.properties"),
            "--ignore-formatted",
        )  # fmt: skip
        log = self.paths.log_file(self.name)
        with log.open("ab") as out:
            result = subprocess.run(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False
            )
        if result.returncode != 0:
            last = "\n".join(tail(log, 20))
            raise DevStackError(f"formatting Kafka storage failed (see {log}):\n{last}")

    def launch(self) -> Launch:
        return Launch(command=tuple(self._java("kafka.Kafka", str(self._config_dir / "server.properties"))))

    def probe(self) -> bool:
        if not port_in_use(self.endpoint.host, self.endpoint.port):
            return False
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        config: dict[str, object] = {
            "bootstrap.servers": str(self.endpoint),
            "logger": _QUIET,
            "socket.connection.setup.timeout.ms": 2000,
        }
        admin = AdminClient(config)  # type: ignore[arg-type]  # the stubs omit the `logger` option
        try:
            metadata = admin.list_topics(timeout=3)
        except KafkaException:
            return False
        return bool(metadata.brokers)
