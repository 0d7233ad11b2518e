"""A bundled local news site, so tests and the demo can crawl something without the internet."""
