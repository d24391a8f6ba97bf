"""Prometheus metrics of the conversation dataflow. No label ever carries a chat or user id:
label values are small fixed sets (stage, window, kind), so the series count stays bounded."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)

CONVERSATIONS = Counter(
    "telegram_conversations_total", "Turns answered, by how they were answered", ["outcome"]
)
RESPONSE_DURATION = Histogram(
    "telegram_response_duration_seconds",
    "From the gateway accepting the (first) message to the reply leaving the dataflow",
    buckets=_LATENCY_BUCKETS,
)
ACTIVE_CONVERSATIONS = Gauge(
    "telegram_active_conversations", "Chats with a context window held by this process"
)
STAGE_DURATION = Histogram(
    "tgstream_stage_duration_seconds", "Time spent per pipeline stage", ["stage"], buckets=_LATENCY_BUCKETS
)
JOBS_IN_FLIGHT = Gauge("tgstream_turn_jobs_in_flight", "Turn and command jobs running on the event loop")
LLM_CALLS_IN_FLIGHT = Gauge("tgstream_llm_calls_in_flight", "Chat completion requests awaiting an answer")
LLM_ERRORS = Counter("tgstream_llm_errors_total", "Failed chat completions (after retries)", ["kind"])
LLM_TOKENS = Counter("tgstream_llm_tokens_total", "Tokens reported by the provider", ["type"])
BREAKER_STATE = Gauge("tgstream_llm_breaker_state", "LLM circuit breaker: 0 closed, 1 half-open, 2 open")
RATE_LIMITED = Counter("tgstream_rate_limited_total", "Messages dropped by a rate window", ["window"])
SPAM_BLOCKED = Counter("tgstream_spam_blocked_total", "Messages dropped as spam")
DEAD_LETTERS = Counter("tgstream_dead_letters_total", "Inbound records sent to the dead-letter topic")
DEGRADED = Counter("tgstream_degraded_total", "Work done without a dependency, by what was skipped", ["what"])
BACKGROUND_WRITES = Counter(
    "tgstream_background_writes_total",
    "Batched background writes, by target and outcome",
    ["target", "outcome"],
)
MEMORY_CANDIDATES = Counter(
    "tgstream_memory_candidates_total",
    "Answered exchanges considered for long-term memory: queued to be stored, or skipped as unimportant",
    ["decision"],
)
SOURCE_PAUSED = Counter(
    "tgstream_source_paused_total", "Source polls skipped because too many jobs were in flight"
)
ERASED_TURNS = Counter(
    "tgstream_erased_turns_total", "Context-window turns dropped by `tgstream forget --user` requests"
)
REPLAYED = Counter(
    "tgstream_replayed_jobs_total", "Jobs answered from the replies a previous run already sent"
)
