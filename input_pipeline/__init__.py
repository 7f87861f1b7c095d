"""Data: readers, audio features, corpora, TFDS shards and batch builders.

Nothing here imports the JAX models; data flows from here into saas_jax.
"""
