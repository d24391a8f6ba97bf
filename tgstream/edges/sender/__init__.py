"""The sender: Kafka ``telegram_responses`` -> Telegram, in per-chat order, within shared rate limits."""
