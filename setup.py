"""saas_jax: SAAS ("Say Anything with Any Style") in JAX/Flax."""

import pathlib

import setuptools

_ROOT = pathlib.Path(__file__).parent


def _requirements():
  lines = (_ROOT / "requirements.txt").read_text().splitlines()
  reqs = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
  # Test and lint tools (with the notebook runner), Beam, eSpeak NG and the
  # converters' torch are installed by requirements.txt (the development
  # install), not by the package.
  dev_only = (
    "pytest",
    "ruff",
    "apache-beam",
    "torch",
    "safetensors",
    "nbclient",
    "nbformat",
    "ipykernel",
    "espeakng-loader",
  )
  return [r for r in reqs if not r.startswith(dev_only)]


setuptools.setup(
  name="saas_jax",
  version="0.1.0",
  description="Stylized talking-face motion (SAAS) in JAX/Flax.",
  long_description=(_ROOT / "README.md").read_text(),
  long_description_content_type="text/markdown",
  python_requires=">=3.12",
  license="Apache-2.0",
  license_files=["LICENSE", "NOTICE"],
  packages=setuptools.find_packages(
    include=["saas_jax", "saas_jax.*", "input_pipeline", "input_pipeline.*"]
  ),
  package_data={
    "input_pipeline": ["**/*.md", "**/*.json", "**/*.npz"],
    "saas_jax": ["assets/*.npz"],
  },
  install_requires=_requirements(),
  extras_require={
    # Converting PyTorch checkpoints (PIRender, official SAAS, SadTalker):
    # python -m saas_jax.convert.
    "torch": ["torch==2.13.0", "safetensors==0.8.0"],
    # The synthetic corpus's eSpeak NG voices (--speech espeak; GPL-3.0).
    "espeak": ["espeakng-loader==0.2.4"],
    # Building very large corpora with Apache Beam.
    "beam": ["apache-beam==2.77.0"],
  },
)
