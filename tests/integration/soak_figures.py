"""The soak's figures from its samples: pure functions (unit-tested in test_soak_figures.py).

* **RSS slope**: least squares of RSS against time, in MB per hour, over each worker
  incarnation's samples after its warm-up; and a pooled slope over all incarnations (each
  with its own intercept: a restart's drop in RSS is no slope).
* **Recovery**: the time from the end of a disruption until its backlog is gone: every
  consumer group has committed past every record that was in its partitions when the
  disruption settled (an outage: the vendor answers again; a kill: the successor is ready).
  That is lag back to 0 for what the disruption held up, whatever the steady flow does
  meanwhile: the sum of the lag itself is never 0 under load (committed offsets trail by the
  commit intervals), and its steady spikes say nothing about the disruption. A disruption
  that starts before the previous one's backlog is gone is merged with it into one episode,
  timed from the later end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Disruption", "Episode", "LagSample", "episodes", "pooled_slope", "slope_per_hour"]

TopicPartition = tuple[str, int]


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

    @property
    def settled(self) -> float:
        """When nothing of it holds the pipeline back any more: the vendor is back, or the
        successor is ready (never, if it did not become ready)."""
        if self.kind != "kill":
            return self.end
        return float("inf") if self.ready_after is None else self.start + self.ready_after


@dataclass(frozen=True)
class LagSample:
    """The broker's view at one instant: each partition's end offset, and the offsets each
    consumer group has committed."""

    t: float
    ends: Mapping[TopicPartition, int]
    committed: Mapping[str, Mapping[TopicPartition, int]]

    def by_group(self) -> dict[str, int]:
        return {
            group: sum(max(0, self.ends[tp] - offset) for tp, offset in offsets.items()
                       if tp in self.ends)
            for group, offsets in self.committed.items()
        }  # fmt: skip

    @property
    def total(self) -> int:
        return sum(self.by_group().values())

    def past(self, backlog: LagSample) -> bool:
        """Every group has committed past every record that was in its partitions at
        ``backlog``."""
        return all(
            self.committed.get(group, {}).get(tp, -1) >= backlog.ends[tp]
            for group, offsets in backlog.committed.items()
            for tp in offsets
            if tp in backlog.ends
        )


@dataclass
class Episode:
    disruptions: list[Disruption]
    end: float
    settled: float
    peak_lag: int = 0
    peak_at: float = 0.0
    recovered_at: float | None = None
    """When its backlog was gone; None if no sample shows it."""

    @property
    def recovery_seconds(self) -> float | None:
        return None if self.recovered_at is None else self.recovered_at - self.end

    @property
    def waits(self) -> list[float]:
        """For each disruption merged in: how long the backlog before it had been waiting
        since the end of the disruptions already in (each one a recovery not yet made)."""
        return [
            later.start - max(d.end for d in self.disruptions[:k])
            for k, later in enumerate(self.disruptions) if k
        ]  # fmt: skip


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


def episodes(disruptions: Sequence[Disruption], lag: Sequence[LagSample]) -> list[Episode]:
    """Group ``disruptions`` (any order) into episodes and time each one's recovery from
    ``lag`` samples in time order."""
    found: list[Episode] = []
    for disruption in sorted(disruptions, key=lambda d: d.start):
        previous = found[-1] if found else None
        if previous and (previous.recovered_at is None or disruption.start < previous.recovered_at):
            previous.disruptions.append(disruption)  # its backlog is not gone: the same episode
            previous.end = max(previous.end, disruption.end)
            previous.settled = max(previous.settled, disruption.settled)
            episode = previous
        else:
            episode = Episode([disruption], disruption.end, disruption.settled)
            found.append(episode)
        _settle(episode, lag)
    return found


def _settle(episode: Episode, lag: Sequence[LagSample]) -> None:
    """When the backlog at the episode's settling was gone, and the highest lag till then."""
    backlog = next((s for s in lag if s.t >= episode.settled), None)
    episode.recovered_at = None
    if backlog is not None:
        later = (s for s in lag if s.t >= backlog.t and s.past(backlog))
        episode.recovered_at = next((s.t for s in later), None)
    until = float("inf") if episode.recovered_at is None else episode.recovered_at
    window = [(s.total, s.t) for s in lag if episode.disruptions[0].start <= s.t <= until]
    episode.peak_lag, episode.peak_at = max(window, default=(0, 0.0))
