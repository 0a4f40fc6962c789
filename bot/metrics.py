"""Counters and a latency histogram, rendered in the Prometheus text format
(https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format).

Written by hand: four metric families do not justify a dependency. The numbers are
per process: under gunicorn each worker counts its own requests from its own start,
and a scrape of ``/metrics`` sees whichever worker answered it. That is enough for
rates and latency shapes; for exact totals use the question log (``policybot log``).
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

#: Upper bounds (seconds) of the answer latency buckets; WeChat's passive-reply window is 5 s.
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


class Metrics:
    """Thread-safe counters for one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str], int] = defaultdict(int)
        self._abstentions: dict[str, int] = defaultdict(int)
        self._retries: dict[str, int] = defaultdict(int)
        self._buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self._latency_sum = 0.0
        self._latency_count = 0

    def record_answer(self, channel: str, outcome: str, seconds: float, *, abstained: bool) -> None:
        """Count one computed answer: its outcome (the dialog path, or ``error``) and latency."""
        with self._lock:
            self._requests[channel, outcome] += 1
            if abstained:
                self._abstentions[channel] += 1
            self._buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            self._latency_sum += seconds
            self._latency_count += 1

    def record_retry(self, channel: str) -> None:
        """Count a platform retry answered from the stored reply (not computed again)."""
        with self._lock:
            self._retries[channel] += 1

    def totals(self) -> dict[str, int]:
        """Answers computed, abstentions and retries served from storage, over all channels."""
        with self._lock:
            return {"requests": sum(self._requests.values()), "abstentions": sum(self._abstentions.values()),
                    "retries": sum(self._retries.values())}

    def render(self, *, index_version: str | None) -> str:
        """All metrics in the Prometheus text exposition format (version 0.0.4)."""
        with self._lock:
            lines = self._counters() + self._histogram()
        lines += [
            "# HELP policybot_index_info The index version this process serves (1 while loaded).",
            "# TYPE policybot_index_info gauge",
            f'policybot_index_info{{version="{_escape(index_version or "")}"}} {1 if index_version else 0}',
        ]
        return "\n".join(lines) + "\n"

    def _counters(self) -> list[str]:
        requests = {f'channel="{_escape(c)}",outcome="{_escape(o)}"': n
                    for (c, o), n in self._requests.items()}
        return (
            _family("policybot_requests_total", "counter",
                    "Messages answered, by channel and outcome (the dialog path, or error).", requests)
            + _family("policybot_abstentions_total", "counter",
                      "Questions the documents did not answer, by channel.", _by_channel(self._abstentions))
            + _family("policybot_retries_total", "counter",
                      "Platform retries answered from the stored reply, by channel.",
                      _by_channel(self._retries))
        )

    def _histogram(self) -> list[str]:
        lines = [
            "# HELP policybot_answer_latency_seconds Time to compute an answer.",
            "# TYPE policybot_answer_latency_seconds histogram",
        ]
        cumulative = 0
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), self._buckets, strict=True):
            cumulative += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'policybot_answer_latency_seconds_bucket{{le="{le}"}} {cumulative}')
        lines.append(f"policybot_answer_latency_seconds_sum {self._latency_sum!r}")
        lines.append(f"policybot_answer_latency_seconds_count {self._latency_count}")
        return lines


def _family(name: str, kind: str, help_text: str, samples: dict[str, int]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    return lines + [f"{name}{{{labels}}} {value}" for labels, value in sorted(samples.items())]


def _by_channel(counts: dict[str, int]) -> dict[str, int]:
    return {f'channel="{_escape(channel)}"': n for channel, n in counts.items()}


def _escape(value: str) -> str:
    """A label value with backslash, double quote and newline escaped, as the format requires."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
