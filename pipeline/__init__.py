"""newsfeed: crawl news sites into Kafka, extract, de-duplicate and tag articles."""

__version__ = "0.1.0"
