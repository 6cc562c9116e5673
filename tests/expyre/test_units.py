"""Times and memory sizes as users write them."""

import pytest

from expyre.units import format_time, parse_memory, parse_time


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90),
        (1.5, 2),
        ("90", 90),
        ("30m", 1800),
        ("24h", 86400),
        ("2d", 172800),
        ("1-00:00:00", 86400),
        ("1-12", 129600),
        ("2:03:04", 7384),
        ("03:04", 184),
        ("10s", 10),
        ("1.5h", 5400),
    ],
)
def test_parse_time(text, seconds):
    assert parse_time(text) == seconds


@pytest.mark.parametrize("bad", ["abc", "1:75:00", "-5", -5, "5x", None, True, "1:2:3:4"])
def test_parse_time_rejects_with_clear_message(bad):
    with pytest.raises(ValueError, match="max_time"):
        parse_time(bad, "max_time")


def test_format_time_round_trips():
    for s in (0, 59, 3600, 86399, 86400 + 3661, 10 * 86400):
        assert parse_time(format_time(s)) == s
    assert format_time(86400 + 3661) == "1-01:01:01"


@pytest.mark.parametrize(
    ("text", "kb"),
    [
        (4096, 4096),
        ("4096kB", 4096),
        ("512MB", 512 * 1024),
        ("50GB", 50 * 1024**2),
        ("2T", 2 * 1024**3),
        ("1.5gb", 1572864),
        ("8GiB", 8 * 1024**2),
    ],
)
def test_parse_memory(text, kb):
    assert parse_memory(text) == kb


@pytest.mark.parametrize("bad", ["lots", "5 PB", "-1GB", -3, 1.5, None])
def test_parse_memory_rejects(bad):
    with pytest.raises(ValueError, match="max_mem"):
        parse_memory(bad, "max_mem")
