"""``python -m tests.integration.soak_worker worker``: a worker whose email sink ignores
Klaviyo's documented rate limits (the soak's ``REFSTREAM_SOAK_KLAVIYO_LIMITS=off``).

Klaviyo's single-event API allows 3,500 events/min (58/s) steady; the soak's 500 events/s
make about 215 email events/s, which only its bulk API can carry. Until the sink uses it,
a soak at that rate needs the sink paced far above the documented limits, and the emulator
not enforcing them: every other check stays as it is.
"""

import dataclasses
import runpy

from sinks import registry
from sinks.klaviyo import KLAVIYO_POLICY, KlaviyoSink

RELAXED = dataclasses.replace(KLAVIYO_POLICY, limits=((2000, 1.0),))

registry.FACTORIES["email"] = lambda s: KlaviyoSink(
    s.klaviyo_api_url, s.klaviyo_api_key, s.klaviyo_revision, policy=RELAXED
)
runpy.run_module("streams", run_name="__main__", alter_sys=True)
