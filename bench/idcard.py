"""Time from 'card placed' to resident record on the simulated reader, and the codec's throughput.

Run:  .venv/bin/python bench/idcard.py [--cards 50] [--poll 0.1]
"""

from __future__ import annotations

import argparse
import queue
import random
import statistics
import time

from hallkit.devices.idcard.codec import IdCardDecoder, Reply, Status, encode
from hallkit.devices.idcard.problems import IdCardError
from hallkit.devices.idcard.reader import CardRead, CardWatcher, ReaderSettings, SerialIdCardReader
from hallkit.devices.idcard.simulator import IdCardSimulator

HASH_KEY = "bench-secret-0123456789"


class Stopwatch:
    """A listener that notes when each record arrives."""

    def __init__(self) -> None:
        self.arrivals: queue.Queue[float] = queue.Queue()

    def card_read(self, read: CardRead) -> None:
        self.arrivals.put(time.monotonic())

    def card_problem(self, error: IdCardError) -> None:
        raise SystemExit(f"unexpected reader problem: {error}")


def placed_to_record(cards: int, poll: float) -> list[float]:
    """Seconds from placing a card to its record reaching a listener, per card."""
    latencies: list[float] = []
    with IdCardSimulator() as simulator:
        settings = ReaderSettings(port=simulator.port, poll_interval=poll)
        with SerialIdCardReader(settings, HASH_KEY, 65) as reader:
            stopwatch = Stopwatch()
            watcher = CardWatcher(reader, poll_interval=poll, removal_polls=1)
            watcher.add_listener(stopwatch)
            with watcher:
                for n in range(cards):
                    simulator.place("elderly" if n % 2 else "valid")
                    placed = simulator.placed_at
                    arrived = stopwatch.arrivals.get(timeout=30)
                    assert placed is not None
                    latencies.append(arrived - placed)
                    simulator.remove()
                    # The hand lifts the card, then places the next one at a random point of the poll cycle.
                    time.sleep(poll * 3 + random.uniform(0, poll))
    return latencies


def read_only(cards: int) -> list[float]:
    """Seconds for find, select and read of a card already lying there (no poll wait)."""
    times: list[float] = []
    with IdCardSimulator() as simulator, SerialIdCardReader(
        ReaderSettings(port=simulator.port), HASH_KEY, 65
    ) as reader:
        simulator.place("valid")
        for _ in range(cards):
            start = time.monotonic()
            reader.read_card(10)
            times.append(time.monotonic() - start)
    return times


def _p50_p99(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def codec_throughput(seconds: float = 2.0) -> tuple[float, float]:
    """Frames per second decoded: small 'find card' replies, and full 1295-byte card reads."""
    small = encode(Reply.of(Status.CARD_FOUND, bytes(4))) * 100
    large = encode(Reply.of(Status.OK, bytes(4) + bytes(range(256)) * 5)) * 20
    rates = []
    for batch, per_batch in ((small, 100), (large, 20)):
        frames, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            frames += len(IdCardDecoder().feed(batch))
        assert frames % per_batch == 0
        rates.append(frames / (time.perf_counter() - start))
    return rates[0], rates[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cards", type=int, default=50)
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between 'find card' polls")
    args = parser.parse_args()
    p50, p99 = _p50_p99(placed_to_record(args.cards, args.poll))
    read50, read99 = _p50_p99(read_only(args.cards))
    small, large = codec_throughput()
    print(f"card placed -> resident record ({args.cards} cards, poll every {args.poll * 1000:.0f} ms): "
          f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    print(f"of which find+select+read+parse on the pty: p50 {read50 * 1000:.1f} ms, p99 {read99 * 1000:.1f} ms")
    print(f"codec: {small:,.0f} frames/s ('find card' replies), {large:,.0f} frames/s (1295-byte card reads)")


if __name__ == "__main__":
    main()
