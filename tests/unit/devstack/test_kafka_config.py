from __future__ import annotations

import base64
from pathlib import Path

from tgstream.devstack import kafka_config


def test_controller_listens_on_the_next_port_and_only_the_broker_port_is_advertised(tmp_path: Path) -> None:
    props = kafka_config.server_properties(host="127.0.0.1", port=29092, log_dir=tmp_path / "log")

    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:29092"
    assert props["controller.quorum.voters"] == f"{props['node.id']}@127.0.0.1:29093"
    assert props["process.roles"] == "broker,controller"
    assert props["log.dirs"] == str(tmp_path / "log")


def test_single_node_settings_never_ask_for_more_than_one_replica(tmp_path: Path) -> None:
    props = kafka_config.server_properties(host="127.0.0.1", port=39092, log_dir=tmp_path)

    replication_keys = [key for key in props if "replication.factor" in key or key.endswith("min.isr")]
    assert replication_keys, "expected replication settings for the internal topics"
    assert all(props[key] == "1" for key in replication_keys)
    assert props["auto.create.topics.enable"] == "false"
    assert props["group.initial.rebalance.delay.ms"] == "0"


def test_rendered_properties_parse_back_to_the_same_mapping(tmp_path: Path) -> None:
    props = kafka_config.server_properties(host="127.0.0.1", port=39092, log_dir=tmp_path)

    text = kafka_config.render_properties(props)

    parsed = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert parsed == props


def test_cluster_id_is_kafkas_22_char_urlsafe_base64_of_16_bytes() -> None:
    ids = {kafka_config.cluster_id() for _ in range(2000)}

    assert len(ids) == 2000
    for value in ids:
        assert len(value) == 22
        assert len(base64.urlsafe_b64decode(value + "==")) == 16
        # A leading "-" is read as an option by the storage tool (1 in 64 random ids had one).
        assert not value.startswith("-")
