from __future__ import annotations

import doctest

from tgstream.doubles import stub_content


def test_stub_content_examples_hold() -> None:
    result = doctest.testmod(stub_content, optionflags=doctest.NORMALIZE_WHITESPACE)

    assert result.attempted > 0
    assert result.failed == 0
