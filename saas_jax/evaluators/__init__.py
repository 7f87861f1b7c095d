"""Evaluation, written once: used by the trainers' periodic evaluation and
by `python -m saas_jax.evaluate`.

windows     cut clips into 32-frame windows, run a model over them in
            batches (sharded over the mesh), average per clip
codebook    use of a VQ codebook: usage, perplexity, dead fraction
style       classification, style-code distance, half-clip retrieval
judge       an independent style judge (LDA on clip statistics, fitted on
            the train split), never trained against
expression  against ground truth: landmark and coefficient errors, soft-DTW
lip_sync    mouth opening against the speech envelope, with the best lag
pose        head-pose statistics, style distance, nods, jitter, diversity
image       PSNR and SSIM of frames
stats       bootstrap confidence intervals over clips and seeds
benchmark   the held-out (content, style[, ground truth]) pairs

Modules import NumPy and JAX only (no TensorFlow, no trainer), except
`benchmark`, which reads prepared tables.
"""
