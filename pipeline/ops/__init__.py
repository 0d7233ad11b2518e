"""Operating the pipeline: the local broker, topics and Kafka client settings."""
