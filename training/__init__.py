"""The centre: ingest what boxes send, clean it, train and evaluate the next models."""
