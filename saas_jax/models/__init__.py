"""Linen modules. No I/O, no config parsing: sizes come in as attributes."""
