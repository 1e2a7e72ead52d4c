"""Readers that turn each source (sync bundles, datasets, teacher CSV) into examples."""
