"""makeflux: render one cluster.yaml into a Flux-ready kubernetes/ tree."""

__version__ = "0.1.0"
