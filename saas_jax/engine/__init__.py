"""The one training engine every stage uses.

A stage (saas_jax.trainers.*) supplies a model, an init function, a pure
`train_step(state, batch, rng) -> (state, metrics)`, its batches and an
evaluation function; the engine does the rest: mesh and shardings, sharded
init, restore-or-init, the jitted step, checkpoints, logging, evaluation.
"""
