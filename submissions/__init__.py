"""The bundled submissions: one folder per training method (see submissions/template/).

The harness finds them by folder (``harness.discovery``), never by importing this package; it
is a package so that methods can share ``submissions._common`` (schedules and optimizer
recipes), in a checkout and in an installed ttr-bench alike.
"""
