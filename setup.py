"""The importable package is `clonedesk`; its source is the `services/` tree (one folder per service).

pyproject.toml cannot rename a package *and* discover its sub-packages, so that one mapping lives here.
"""

from setuptools import find_packages, setup

setup(
    package_dir={"clonedesk": "services"},
    packages=["clonedesk"] + [f"clonedesk.{name}" for name in find_packages("services")],
)
