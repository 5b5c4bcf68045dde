"""Errors a user sees as one line.

Every failure that is the user's input or their machine's state raises a
JwenvError subclass; the CLI prints ``str(err)`` on one line and exits non-zero.
Anything else is a bug and shows a traceback only with ``--debug``.
"""

from __future__ import annotations


class JwenvError(Exception):
    """Base class: the message is one complete line for the user."""

    exit_code = 1


class BadInput(JwenvError):
    """Malformed version, name, context or path."""

    exit_code = 2


class UnknownVersion(JwenvError):
    """No jwst release matches the request."""


class IndexUnreachable(JwenvError):
    """PyPI (or the configured index) or the jwst git repository cannot be reached."""


class NoInterpreter(JwenvError):
    """No Python on this machine satisfies a release (bad input for this machine: 2)."""

    exit_code = 2


class EnvNotFound(JwenvError):
    """The named environment is not installed (or not complete)."""


class Conflict(JwenvError):
    """The request disagrees with what is installed under that name (e.g. another lock)."""


class CrdsCacheIncomplete(JwenvError):
    """Offline, the CRDS cache lacks what a run needs (checked before the run starts)."""


class InstallFailed(JwenvError):
    """Every way of building the environment failed."""


class StoreError(JwenvError):
    """The store cannot be written or is corrupt."""
