"""A local Telegram Bot API server for tests, the demo and load tests (``tgstream fake-telegram``)."""

from tgstream.doubles.telegram_api.client import FakeTelegramControl
from tgstream.doubles.telegram_api.server import FakeTelegramServer, create_app

__all__ = ["FakeTelegramControl", "FakeTelegramServer", "create_app"]
