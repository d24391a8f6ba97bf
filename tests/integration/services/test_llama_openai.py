"""The real local model (llama.cpp server with SmolLM2) answers through the `openai` client."""

from __future__ import annotations

import pytest
from openai import OpenAI

from tgstream.config import Settings

pytestmark = [pytest.mark.integration, pytest.mark.llm]


def test_llama_server_answers_a_chat_completion(settings: Settings) -> None:
    with OpenAI(
        base_url=settings.openai_base_url,
        api_key=settings.openai_api_key.get_secret_value(),
        max_retries=0,
        timeout=120,
    ) as client:
        models = client.models.list()
        reply = client.chat.completions.create(
            model=settings.llm_model,
            messages=[
                {"role": "system", "content": "You are a friendly companion. Answer in one short sentence."},
                {"role": "user", "content": "Hello! How are you today?"},
            ],
            max_tokens=24,
            temperature=0,
        )

    assert settings.llm_model in [m.id for m in models.data]
    content = reply.choices[0].message.content or ""
    assert content.strip()
    assert reply.usage is not None
    assert 0 < reply.usage.completion_tokens <= 24
