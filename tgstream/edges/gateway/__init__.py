"""The webhook gateway: Telegram -> POST /webhook -> Kafka ``telegram_messages``, 200 only after the ack."""
