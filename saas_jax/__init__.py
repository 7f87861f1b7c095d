"""saas_jax: SAAS ("Say Anything with Any Style", AAAI 2024) in JAX/Flax."""
