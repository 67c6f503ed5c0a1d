"""The soak's figures from its samples: pure functions (unit-tested in test_soak_figures.py).

* **RSS slope**: least squares of RSS against time, in MB per hour, over each worker
  incarnation's samples after its warm-up; and a pooled slope over all incarnations (each
  with its own intercept: a restart's drop in RSS is no slope).
* **Recovery**: the time from the end of a disruption until consumer lag is back at its
  steady level: the first sample at or under the threshold after the episode's peak (the
  highest sample from its start until the next disruption starts; after a kill, lag first
  grows while the group waits out the dead worker's session). A disruption whose lag is not
  back when the next one starts is merged with it into one episode, timed from the later end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Disruption", "Episode", "episodes", "pooled_slope", "slope_per_hour"]


@dataclass
class Disruption:
    kind: str
    """``kill`` (a worker ``kill -9``-ed and started again at once) or ``outage``."""
    target: str
    """The worker's name or the vendor's."""
    start: float
    end: float
    """Seconds since the run started; a kill ends when its successor is started."""
    ready_after: float | None = None
    """A kill: seconds until the successor answered ``/readyz`` 200."""


@dataclass
class Episode:
    disruptions: list[Disruption]
    end: float
    peak_lag: int = 0
    peak_at: float = 0.0
    recovered_at: float | None = None
    """None: lag was still above the threshold at the last sample before the run ended."""
    samples_above: list[float] = field(default_factory=list)

    @property
    def recovery_seconds(self) -> float | None:
        return None if self.recovered_at is None else self.recovered_at - self.end


def slope_per_hour(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of ``(seconds, value)`` points, per hour; None below 3 points."""
    if len(points) < 3:
        return None
    return pooled_slope([points])


def pooled_slope(groups: Sequence[Sequence[tuple[float, float]]]) -> float | None:
    """One slope for several series, each around its own mean (per hour)."""
    num = den = 0.0
    for points in groups:
        if len(points) < 3:
            continue
        mx = sum(x for x, _ in points) / len(points)
        my = sum(y for _, y in points) / len(points)
        num += sum((x - mx) * (y - my) for x, y in points)
        den += sum((x - mx) ** 2 for x, _ in points)
    return num / den * 3600 if den else None


def episodes(
    disruptions: Sequence[Disruption], lag: Sequence[tuple[float, int]], threshold: int
) -> list[Episode]:
    """Group ``disruptions`` (any order) into episodes and time each one's recovery from
    ``lag`` samples ``(seconds, total lag)`` in time order."""
    ordered = sorted(disruptions, key=lambda d: d.start)
    found: list[Episode] = []
    for index, disruption in enumerate(ordered):
        if found and found[-1].recovered_at is None:
            found[-1].disruptions.append(disruption)  # still disturbed: the same episode
            found[-1].end = max(found[-1].end, disruption.end)
            episode = found[-1]
        else:
            episode = Episode([disruption], disruption.end)
            found.append(episode)
        following = ordered[index + 1].start if index + 1 < len(ordered) else float("inf")
        _settle(episode, lag, threshold, following)
    return found


def _settle(episode: Episode, lag, threshold: int, following: float) -> None:
    """Whether and when lag came back under ``threshold`` before ``following``."""
    window = [(t, v) for t, v in lag if episode.disruptions[0].start <= t < following]
    episode.peak_lag, episode.peak_at = max(((v, t) for t, v in window), default=(0, 0.0))
    episode.samples_above = [t for t, v in window if v > threshold]
    if episode.peak_lag <= threshold:
        episode.recovered_at = episode.end  # never pushed lag over it
        return
    after = max(episode.peak_at, episode.end)
    episode.recovered_at = next((t for t, v in window if t >= after and v <= threshold), None)
