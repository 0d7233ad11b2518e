"""Raw-pages hop: fetched pages onto Kafka."""
