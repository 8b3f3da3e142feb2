"""Runs ``hall pad touch``'s app in its own process (Kivy keeps one window per process) with taps:

    python -m tests.kiosk.touch_harness WORK BROKER_URL CONFIG WIDTHxHEIGHT

The staff member taps 呼叫 and 办结 on the tablet's staff strip, the resident taps 不满意, two
reasons and 提交评价; screenshots of each screen go to WORK/shots. Writes WORK/result.json;
the exit code is 0 only when every step was seen on screen.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from hallkit.contracts.mqtt import parse_broker_url

from hallkit.config import load_config


def main(argv: list[str]) -> int:
    work, broker_url, config_path, size = Path(argv[0]), argv[1], Path(argv[2]), argv[3]
    logging.basicConfig(level=logging.INFO, filename=work / "harness.log",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    width, height = (int(n) for n in size.split("x"))
    from hallkit.kiosk import boot

    boot.prepare((width, height), "windowed", kiosk=True)
    from hallkit.kiosk.testing import MARKUP, Script, screenshot, settled, tap, texts, visible
    from hallkit.kiosk.touch_pad import TouchPadApp
    from kivy.uix.label import Label

    config = load_config(config_path)
    app = TouchPadApp(parse_broker_url(broker_url), config.hall.id, "pad-1", 1, config, staff_keys=True)
    shots: list[dict[str, object]] = []

    def first_line(widget: Label) -> str:
        return MARKUP.sub("", widget.text).split("\n")[0]

    def button(words: str) -> Label:
        """The visible button whose first line reads exactly ``words`` (不满意 is not 非常不满意)."""
        for widget in app.root.walk(restrict=True):
            if isinstance(widget, Label) and first_line(widget) == words and visible(widget):
                return widget
        raise AssertionError(f"no button {words!r} in {texts(app.root)}")

    def showing(words: str):  # noqa: ANN202
        """Until a label with ``words`` is on screen and laid out (a new screen's widgets sit at the
        origin with Kivy's default 100×100 until the next layout pass: a tap then lands elsewhere)."""
        def held() -> bool:
            return any(words in MARKUP.sub("", w.text) and visible(w) and list(w.size) != [100, 100]
                       and tuple(w.pos) != (0, 0) and w.texture_size[0] > 0
                       for w in app.root.walk(restrict=True) if isinstance(w, Label))
        held.__doc__ = f"the screen shows {words!r}"
        return held

    def shot(name: str) -> None:
        shots.append(screenshot(app.root, work / "shots", f"pad-{size}-{name}"))

    def scenario():  # noqa: ANN202
        yield showing("欢迎光临")
        yield showing("综合窗口")
        yield showing("张三")
        yield settled(app.root)
        shot("idle")
        tap(button("呼叫"))
        yield showing("A001")
        yield settled(app.root)
        shot("serving")
        tap(button("办结"))
        yield showing("非常不满意")
        yield showing("不满意")
        yield settled(app.root)
        shot("rating")
        tap(button("不满意"))
        yield showing("态度不好")
        yield settled(app.root)
        tap(button("态度不好"))
        yield lambda: app.chosen_reasons == {"态度不好"}
        yield showing("效率低")
        tap(button("效率低"))
        yield lambda: app.chosen_reasons == {"态度不好", "效率低"}
        yield showing("提交评价")
        yield settled(app.root)
        shot("reasons")
        tap(button("提交评价"))
        yield showing("感谢您的评价")
        yield settled(app.root)
        shot("thanks")
        yield showing("欢迎光临")  # back to idle by itself

    script = Script(app, scenario()).start()
    app.run()
    passed = script.finished and script.error is None
    (work / "result.json").write_text(json.dumps({"passed": passed, "error": script.error, "shots": shots},
                                                 ensure_ascii=False, indent=1, default=str), "utf-8")
    if not passed:
        print(script.error or "the app stopped before the scenario ended", file=sys.stderr)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
