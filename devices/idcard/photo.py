"""The card's photo: vendor-encrypted WLT bytes, kept opaque, decoded only by a licensed plug-in.

The WLT format (1024 bytes, decoding to a 102×126 bitmap) has no open
decoder; readers ship a licensed library for it. The hall keeps the bytes
in memory for the moment a decoder may need them and never writes them
anywhere: no file, log, message or database.
"""

from __future__ import annotations

from typing import Protocol


class PhotoDecoder(Protocol):
    """A licensed WLT decoder (a wrapper around the vendor's library)."""

    def decode(self, wlt: bytes) -> bytes:
        """Return the photo as BMP bytes."""
        ...


class NoPhotoDecoder(Exception):
    """No licensed decoder is installed, so the photo cannot be shown."""


class CardPhoto:
    """The photo bytes, with a repr and str that never show them."""

    __slots__ = ("_wlt",)

    def __init__(self, wlt: bytes) -> None:
        self._wlt = bytes(wlt)

    def __repr__(self) -> str:
        return f"<CardPhoto WLT, {len(self._wlt)} bytes>"

    __str__ = __repr__

    def __len__(self) -> int:
        return len(self._wlt)

    def decode(self, decoder: PhotoDecoder | None) -> bytes:
        """The photo as BMP bytes through ``decoder``.

        Raises:
            NoPhotoDecoder: when ``decoder`` is None.
        """
        if decoder is None:
            raise NoPhotoDecoder("no licensed WLT photo decoder is installed")
        return decoder.decode(self._wlt)
