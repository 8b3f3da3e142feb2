"""One shape for every device's byte-stream decoder: bytes in, frames out, garbage counted.

Each device kind frames its bytes its own way (ESC/POS commands, GA/T 467 frames, the pad
protocol), but every decoder is used the same way::

    decoder = IdCardDecoder()          # or EscposDecoder(), PadDecoder()
    for chunk in reads:
        for frame in decoder.feed(chunk):
            ...
    decoder.flush()                    # end of input, or the line went quiet
    decoder.discarded                  # noise skipped so far: a field diagnostic

A kind writes only :meth:`BufferedDecoder.scan`, a pure function of the bytes kept so far
(no I/O, threads or clock): it returns the whole frames at the front, how many bytes they and
any noise before them used, and how many of those were noise. The base class keeps the rest
for the next read, as pymodbus's framers do.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

FrameT = TypeVar("FrameT")


class FrameDecoder(Protocol[FrameT]):
    """What callers of any device's decoder rely on."""

    @property
    def discarded(self) -> int:
        """Bytes since the decoder was made that carried no frame of the protocol (noise, broken frames)."""
        ...

    @property
    def pending(self) -> int:
        """Bytes kept, waiting for the rest of their frame."""
        ...

    def feed(self, data: bytes) -> list[FrameT]:
        """Add a read; return the frames it completed, in order."""
        ...

    def flush(self) -> list[FrameT]:
        """The input ended or the line went quiet: what is pending will not be completed.

        Returns the frames still found in it (text the stream ended on, a whole frame hiding
        behind a false start); the rest is discarded, so :attr:`pending` is 0 afterwards.
        """
        ...

    def reset(self) -> None:
        """Forget pending bytes without counting them, e.g. after the exchange they belonged to was given up."""
        ...


@dataclass(frozen=True, slots=True)
class Scan(Generic[FrameT]):
    """What one pure scan of a buffer found.

    Attributes:
        frames: the whole frames at the front of the buffer, in order.
        consumed: bytes at the front that are done with (frames and noise); the caller keeps the rest.
        discarded: how many of the consumed bytes were noise or broken frames.
    """

    frames: list[FrameT]
    consumed: int
    discarded: int


class BufferedDecoder(ABC, Generic[FrameT]):
    """A :class:`FrameDecoder` built on a pure :meth:`scan`: keeps the unconsumed bytes between reads."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._discarded = 0

    @abstractmethod
    def scan(self, buffer: bytes, final: bool) -> Scan[FrameT]:
        """Find the frames at the front of ``buffer``.

        Never raises on bad input: noise is skipped (and counted) up to the next place a frame
        can start. With ``final`` the buffer will get no more bytes, so nothing may be kept:
        ``consumed`` is the whole buffer.
        """

    @property
    def discarded(self) -> int:
        return self._discarded

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[FrameT]:
        self._buffer += data
        return self._take(final=False)

    def flush(self) -> list[FrameT]:
        return self._take(final=True)

    def reset(self) -> None:
        self._buffer.clear()

    def _take(self, final: bool) -> list[FrameT]:
        if not self._buffer:
            return []
        found = self.scan(bytes(self._buffer), final)
        del self._buffer[: found.consumed]
        self._discarded += found.discarded
        return found.frames
