"""Local dev services (Kafka, Postgres+pgvector, Redis, llama.cpp, the OpenAI stub) for `tgstream dev`.

One module per service says what to run and how to probe it; `supervisor` starts and stops
detached processes; `stack` owns the lifecycle. See docs/devstack.md.
"""
