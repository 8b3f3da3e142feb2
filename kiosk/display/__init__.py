"""The hall display (叫号大屏): the board everyone reads from afar, and the Mandarin voice."""
