from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from sinks.delivery.http import check_status, retry_after_seconds
from sinks.errors import PermanentError, RateLimited, UpstreamTimeout, UpstreamUnavailable


def test_retry_after_in_seconds_or_as_an_http_date():
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= retry_after_seconds(later) <= 31


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, RateLimited), (408, UpstreamTimeout), (500, UpstreamUnavailable),
     (503, UpstreamUnavailable), (400, PermanentError), (401, PermanentError),
     (413, PermanentError)],
)  # fmt: skip
def test_statuses_map_to_error_types(status, error):
    with pytest.raises(error):
        check_status(status, {"Retry-After": "2"}, "body")


def test_success_passes_and_429_carries_retry_after():
    check_status(202, {}, "")
    with pytest.raises(RateLimited) as err:
        check_status(429, {"Retry-After": "2"}, "")
    assert err.value.retry_after == 2.0
