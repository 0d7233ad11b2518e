"""The WARC archive of raw pages: written from the raw-pages topic, read back for replays past retention."""
