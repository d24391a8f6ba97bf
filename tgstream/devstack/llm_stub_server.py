"""The deterministic OpenAI-compatible stub as a dev service, on the LLM_STUB_URL port."""

from __future__ import annotations

import sys

from tgstream.devstack.service import Endpoint, Launch, Service, endpoint_from_url, http_get_json


class LlmStubServer(Service):
    name = "llm-stub"
    setting = "LLM_STUB_URL"
    start_timeout_s = 30.0

    @property
    def endpoint(self) -> Endpoint:
        return endpoint_from_url(self.settings.llm_stub_url, 80)

    @property
    def display_address(self) -> str:
        return self.settings.llm_stub_url

    def check_installed(self) -> None:
        """Pure Python, installed with tgstream itself."""

    def launch(self) -> Launch:
        return Launch(
            command=(
                sys.executable, "-m", "tgstream", "llm-stub",
                "--host", self.endpoint.host,
                "--port", str(self.endpoint.port),
                "--latency-ms", str(self.settings.llm_stub_latency_ms),
            ),
        )  # fmt: skip

    def probe(self) -> bool:
        health = http_get_json(f"http://{self.endpoint}/healthz")
        return isinstance(health, dict) and health.get("service") == "openai-stub"
