"""Document cameras (高拍仪): one capture interface, hooks run on each page, three implementations.

Only :class:`~devices.scanner.camera.DocumentCaptured` metadata travels on the
hall's bus; the page images go only where a registered hook puts them.
"""
