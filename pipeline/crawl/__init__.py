"""Crawl stage: discover article URLs and fetch pages."""
