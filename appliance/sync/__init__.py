"""Getting records off the box: sync bundles for a USB stick or the network."""
