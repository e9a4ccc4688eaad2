"""Packaging entry point; the metadata is declared in setup.cfg."""
from setuptools import setup

setup()
