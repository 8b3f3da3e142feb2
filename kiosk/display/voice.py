"""Calls spoken in Mandarin, offline: the config template, turned into pinyin, read by espeak-ng.

espeak-ng's ``cmn`` voice reads many common characters (请、号、到 …) as English letter
names, so by default the text is first turned into numbered pinyin (``qing3 A ling2 ling2
yi1 hao4 …``) with pypinyin and read by the ``cmn-latn-pinyin`` voice, which speaks proper
Mandarin syllables. A ticket is read letter then digit by digit (A001 → A零零一), a window
as a number (12 → 十二), as halls announce them.

Each call is synthesized once into a WAV that holds it ``repeat`` times with a pause
between, then played by an available player. Calls wait in a queue and are spoken
one at a time on the announcer's own thread: they never overlap and never hold up the board.
"""

from __future__ import annotations

import logging
import queue
import shutil
import subprocess
import tempfile
import threading
import wave
from collections import deque
from collections.abc import Callable
from pathlib import Path

from pypinyin import Style, lazy_pinyin

log = logging.getLogger(__name__)

DIGITS = "零一二三四五六七八九"
MAX_WINDOW = 999
"""The largest number ``chinese_numeral`` says (hundreds, tens, ones)."""
PAUSE_SECONDS = 0.8
"""Silence between the repeats of one call."""
SPEED_WPM = 140
"""espeak-ng's default is 175; slower is clearer across a hall and for elderly residents."""
KEEP_WAVS = 20


def spoken_ticket(number: str) -> str:
    """A001 → A零零一: the letter by name, each digit on its own (what residents hear in halls)."""
    return "".join(DIGITS[int(c)] if c.isdigit() else c for c in number)


def chinese_numeral(n: int) -> str:
    """1 → 一, 10 → 十, 12 → 十二, 20 → 二十, 105 → 一百零五 (windows count up to 999)."""
    if not 0 <= n <= MAX_WINDOW:
        raise ValueError(f"no window number {n}")
    if n < len(DIGITS):
        return DIGITS[n]
    hundreds, rest = divmod(n, 100)
    tens, ones = divmod(rest, 10)
    out = ""
    if hundreds:
        out += DIGITS[hundreds] + "百"
        if rest == 0:
            return out
        if tens == 0:
            return out + "零" + DIGITS[ones]
        out += DIGITS[tens] + "十"
    else:
        out += ("" if tens == 1 else DIGITS[tens]) + "十"
    return out + (DIGITS[ones] if ones else "")


def announcement(template: str, number: str, window: int) -> str:
    """The sentence to speak, e.g. 请A零零一号到三号窗口办理."""
    return template.format(ticket=spoken_ticket(number), window=chinese_numeral(window))


def to_pinyin(sentence: str) -> str:
    """Numbered pinyin for the cmn-latn-pinyin voice; Latin letters stay (read by their names)."""
    syllables = lazy_pinyin(sentence, style=Style.TONE3, neutral_tone_with_five=True, errors="default")
    words: list[str] = []
    for chunk in syllables:
        # Runs pypinyin leaves alone (A, punctuation): letters apart, punctuation as a pause.
        if chunk.isascii() and not chunk.isalnum():
            words.append(",")
        elif chunk.isascii() and chunk.isalpha() and chunk.isupper():
            words.extend(chunk)
        else:
            words.append(chunk)
    return " ".join(words)


class Voice:
    """espeak-ng with a Mandarin voice, writing WAV files.

    Args:
        voice: ``cmn-latn-pinyin`` (text turned into pinyin first) or ``cmn``.
        repeat: times the sentence is said in one WAV.
    """

    def __init__(self, voice: str = "cmn-latn-pinyin", repeat: int = 2) -> None:
        self.voice = voice
        self.repeat = repeat
        self.engine = shutil.which("espeak-ng")

    @property
    def available(self) -> bool:
        return self.engine is not None

    def synthesize(self, sentence: str, target: Path) -> Path:
        """Write ``sentence`` said ``repeat`` times to ``target`` (a WAV file).

        Raises:
            RuntimeError: espeak-ng is missing or failed.
        """
        if self.engine is None:
            raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
        said = to_pinyin(sentence) if self.voice == "cmn-latn-pinyin" else sentence
        once = target.with_suffix(".once.wav")
        result = subprocess.run([self.engine, "-v", self.voice, "-s", str(SPEED_WPM), "-w", str(once), said],
                                capture_output=True, timeout=30, check=False)
        if result.returncode != 0 or not once.exists():
            raise RuntimeError(f"espeak-ng failed: {result.stderr.decode(errors='replace').strip()}")
        _repeat_wav(once, target, self.repeat, PAUSE_SECONDS)
        once.unlink()
        return target


def _repeat_wav(source: Path, target: Path, times: int, pause: float) -> None:
    with wave.open(str(source), "rb") as reader:
        params = reader.getparams()
        frames = reader.readframes(reader.getnframes())
    silence = b"\0" * (int(params.framerate * pause) * params.sampwidth * params.nchannels)
    with wave.open(str(target), "wb") as writer:
        writer.setparams(params)
        writer.writeframes(silence.join([frames] * times))


def find_player(choice: str) -> list[str] | None:
    """The command that plays a WAV: ``auto`` takes paplay (PulseAudio/PipeWire), else aplay (ALSA)."""
    if choice == "none":
        return None
    if choice != "auto":
        return choice.split()
    for name in ("paplay", "aplay"):
        found = shutil.which(name)
        if found:
            return [found] if name == "paplay" else [found, "-q"]
    return None


class Announcer:
    """Speaks calls one after another from its own thread.

    Args:
        template: the call wording, with ``{ticket}`` and ``{window}``.
        voice: the synthesizer.
        player: the command that plays a WAV (its path appended), or None to only write WAVs.
        folder: where the WAVs go (a temporary folder when None); the last few are kept.
        on_spoken: told each WAV once written and played (tests measure it).
    """

    def __init__(self, template: str, voice: Voice, player: list[str] | None, folder: Path | None = None,
                 on_spoken: Callable[[Path], None] | None = None) -> None:
        self.template = template
        self.voice = voice
        self.player = player
        self.folder = folder or Path(tempfile.mkdtemp(prefix="hall-voice-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.on_spoken = on_spoken
        self.spoken = 0
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._files: deque[Path] = deque()
        self._player_failed = False
        self._thread = threading.Thread(target=self._run, name="hall-voice", daemon=True)

    def start(self) -> Announcer:
        if not self.voice.available:
            log.warning("espeak-ng is not installed: calls are shown but not spoken")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def announce(self, number: str, window: int) -> None:
        """Queue a call; returns at once."""
        self._queue.put(announcement(self.template, number, window))

    def _run(self) -> None:
        while (sentence := self._queue.get()) is not None:
            if not self.voice.available:
                continue
            self.spoken += 1
            target = self.folder / f"call-{self.spoken:05d}.wav"
            try:
                self.voice.synthesize(sentence, target)
            except (RuntimeError, OSError, subprocess.TimeoutExpired, wave.Error) as exc:
                log.warning("announcement %r not synthesized: %s", sentence, exc)
                continue
            self._play(target)
            self._files.append(target)
            while len(self._files) > KEEP_WAVS:
                self._files.popleft().unlink(missing_ok=True)
            if self.on_spoken is not None:
                self.on_spoken(target)

    def _play(self, wav: Path) -> None:
        if self.player is None:
            return
        try:
            # Waiting for the player is what keeps two announcements from overlapping.
            result = subprocess.run([*self.player, str(wav)], capture_output=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self._player_problem(str(exc))
            return
        if result.returncode != 0:
            lines = result.stderr.decode(errors="replace").strip().splitlines()
            self._player_problem(lines[-1] if lines else f"exit code {result.returncode}")

    def _player_problem(self, detail: str) -> None:
        if not self._player_failed:
            self._player_failed = True  # say it once, not at every call
            assert self.player is not None
            log.warning("cannot play announcements with %s: %s", self.player[0], detail)
