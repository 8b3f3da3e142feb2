"""The self-service kiosk (自助取号机) and the hall display (叫号大屏), both in Kivy.

- ``boot``: Kivy settings that must be made before Kivy opens a window (kiosk mode, CJK font).
- ``hub``: the kiosk's requests to the hub, from a worker thread.
- ``feed``: the hall's retained state and call events, pushed to the screens.
- ``devices``: printer spooler, ID-card watcher and document camera, each off the UI thread.
- ``app`` and ``screens/``: the kiosk (one Screen class and one kv file per screen).
- ``display/``: the hall display board and its Mandarin voice.
- ``testing``: taps, waits and screenshots for tests and the bench.

See docs/kiosk.md.
"""
