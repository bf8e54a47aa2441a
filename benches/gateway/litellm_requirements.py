"""Prints the requirements of a LiteLLM wheel with the `proxy` extra, one per line, for `pip install -r`.

Used when `pip install 'litellm[proxy]==VERSION'` cannot resolve because the wheel pins a CA bundle
(`certifi>=…`) newer than any the package index offers: every requirement is kept as the wheel states it
except `certifi`, which is relaxed to the newest available. The CA bundle plays no part in a proxy that
talks plain HTTP to a local upstream, so the measurement is unaffected.

usage: python litellm_requirements.py WHEEL
"""

import sys
import zipfile

from pip._vendor.packaging.requirements import Requirement

RELAXED = {"certifi"}
EXTRAS = ("", "proxy")


def requirements(wheel_path):
    with zipfile.ZipFile(wheel_path) as wheel:
        name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = wheel.read(name).decode("utf-8")
    for line in metadata.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        requirement = Requirement(line.split(":", 1)[1].strip())
        if requirement.marker is not None and not any(
            requirement.marker.evaluate({"extra": extra}) for extra in EXTRAS
        ):
            continue
        requirement.marker = None
        if requirement.name in RELAXED:
            requirement.specifier = type(requirement.specifier)("")
        yield str(requirement)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    for requirement in sorted(set(requirements(sys.argv[1]))):
        print(requirement)


if __name__ == "__main__":
    main()
