"""The call announcement: wording, pinyin, and a WAV that holds speech, twice."""

from __future__ import annotations

import array
import shutil
import threading
import wave

import pytest
from hallkit.kiosk.display.voice import Announcer, Voice, announcement, chinese_numeral, spoken_ticket, to_pinyin

TEMPLATE = "请{ticket}号到{window}号窗口办理"


def test_wording_follows_the_hall_convention():
    assert spoken_ticket("A001") == "A零零一"
    assert [chinese_numeral(n) for n in (1, 3, 10, 12, 20, 105, 110)] == \
        ["一", "三", "十", "十二", "二十", "一百零五", "一百一十"]
    sentence = announcement(TEMPLATE, "A001", 3)
    assert sentence == "请A零零一号到三号窗口办理"
    assert to_pinyin(sentence) == "qing3 A ling2 ling2 yi1 hao4 dao4 san1 hao4 chuang1 kou3 ban4 li3"


def _rms(samples: array.array) -> float:
    return (sum(s * s for s in samples) / max(1, len(samples))) ** 0.5


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_announcement_is_speech_said_twice(tmp_path):
    spoken = threading.Event()
    announcer = Announcer(TEMPLATE, Voice("cmn-latn-pinyin", repeat=2), None, folder=tmp_path,
                          on_spoken=lambda _p: spoken.set()).start()
    announcer.announce("A001", 3)
    assert spoken.wait(30)
    announcer.stop()
    [wav_path] = tmp_path.glob("call-*.wav")
    with wave.open(str(wav_path)) as wav:
        assert wav.getsampwidth() == 2 and wav.getnchannels() == 1
        rate = wav.getframerate()
        samples = array.array("h", wav.readframes(wav.getnframes()))
    seconds = len(samples) / rate
    assert 5.0 < seconds < 16.0  # two sayings of about 3-6 s with a pause
    assert _rms(samples) > 500  # speech, not silence
    half = len(samples) // 2
    middle = samples[half - int(0.2 * rate):half + int(0.2 * rate)]
    assert _rms(middle) < _rms(samples) / 5  # the pause between the two sayings


def test_announcements_queue_and_never_overlap(tmp_path):
    """A slow player: the second call waits for the first to finish."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    log = tmp_path / "plays.log"
    player = tmp_path / "player.sh"
    player.write_text(f'#!/bin/sh\necho "start $(date +%s.%N)" >> {log}\nsleep 0.5\necho "end $(date +%s.%N)" >> {log}\n')
    player.chmod(0o755)
    done = threading.Semaphore(0)
    announcer = Announcer(TEMPLATE, Voice(repeat=1), [str(player)], folder=tmp_path / "wav",
                          on_spoken=lambda _p: done.release()).start()
    announcer.announce("A001", 1)
    announcer.announce("B002", 2)
    assert done.acquire(timeout=30) and done.acquire(timeout=30)
    announcer.stop()
    marks = [line.split() for line in log.read_text().splitlines()]
    assert [kind for kind, _ in marks] == ["start", "end", "start", "end"]
    assert float(marks[2][1]) >= float(marks[1][1])
