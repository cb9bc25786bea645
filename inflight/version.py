"""The installed version of inflight."""

from importlib import metadata


def version_string():
    try:
        return metadata.version('inflight')
    except metadata.PackageNotFoundError:
        return 'unknown'
